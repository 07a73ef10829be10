"""mcscan: neutrino millicharge sensitivity scans from CEvNS response tables."""

__version__ = "0.1.0"

"""Physics in NumPy: source, nuclei, cross sections, atomic data, detector response (no numba, no I/O)."""

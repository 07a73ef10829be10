"""mcscan: neutrino millicharge sensitivity scans from CEvNS response tables.

The public API::

    import mcscan
    a = mcscan.Analysis()                         # built-in ESS configuration: CsI, Xe, Ge
    lim = a.limits("q_ee", detectors="Ge")        # a Limit: lim.regions in e
    lim.save("results/ge_q_ee.h5")
    same = mcscan.open_results("results/ge_q_ee.h5")

Names: :func:`load_config`, :func:`build_tables`, :class:`Analysis`,
:func:`open_results`, :data:`PARAMS` and the error classes.  Importing
``mcscan`` is light: the numerical modules load on first use of a name.
"""

__version__ = "0.1.0"   # first: mcscan.stats._jit reads it at import

from .errors import ConfigError, InputError, McscanError, OutputError, ResultsError, TableError  # noqa: E402
from .params import PARAMS  # noqa: E402

__all__ = [
    "__version__",
    "load_config",
    "build_tables",
    "Analysis",
    "open_results",
    "PARAMS",
    "McscanError",
    "ConfigError",
    "TableError",
    "InputError",
    "OutputError",
    "ResultsError",
]

#: Public names loaded on first use: name -> (module, attribute).
_LAZY = {
    "load_config": ("mcscan.config.load", "load_config"),
    "build_tables": ("mcscan.api", "build_tables"),
    "Analysis": ("mcscan.api", "Analysis"),
    "open_results": ("mcscan.results", "open_results"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mcscan' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

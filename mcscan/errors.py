"""Exceptions mcscan raises for problems a user can fix.

The command line turns every :class:`McscanError` into one line on stderr
and a non-zero exit status; library users catch them like any exception.
"""

__all__ = ["McscanError", "ConfigError", "TableError", "InputError", "OutputError", "ResultsError"]


class McscanError(Exception):
    """Base class: a problem with the user's input, files or configuration."""


class ConfigError(McscanError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


class TableError(McscanError):
    """A response table or results file is missing, corrupt or mismatched."""


class InputError(McscanError, ValueError):
    """A bad argument: an unknown parameter, a non-finite charge, a bad grid."""


class OutputError(McscanError, OSError):
    """A results or table file could not be written (disk full, read-only place, name too long)."""


class ResultsError(McscanError):
    """A results file is missing, corrupt, edited by hand or of an unknown kind or version."""

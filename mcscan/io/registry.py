"""The types results files are read into, by class name.

Result types register themselves when their class is defined
(:class:`mcscan.results.Result`), and so do the types a result is made of;
:mod:`mcscan.io.results` builds objects through this table and so never
imports the modules that define them.  Plain Python: importing it is free.
"""
from __future__ import annotations

__all__ = ["TYPES", "register"]

#: class name -> class
TYPES: dict = {}


def register(cls):
    """Make ``cls`` known to the results readers; returns ``cls`` (usable as a decorator)."""
    TYPES[cls.__name__] = cls
    return cls

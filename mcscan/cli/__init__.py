"""The ``mcscan`` command: parse, call the API, format."""
from .commands import main, run

__all__ = ["main", "run"]

"""The ``mcscan`` command: parse, call the API, format."""
from .commands import main

__all__ = ["main"]

"""Configuration: dataclasses, TOML loading and validation, the built-in ESS configuration."""
from .load import *  # noqa: F401,F403
from .load import __all__  # noqa: F401

"""``python -m mcscan``: the command line."""
import sys

try:
    from .cli import run
except KeyboardInterrupt:          # Ctrl-C while starting: quietly, as any interrupt
    sys.exit(130)

run()

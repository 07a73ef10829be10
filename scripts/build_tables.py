#!/usr/bin/env python
"""Build (or keep, if up to date) mcscan response tables.

    python scripts/build_tables.py [--config FILE] [--tables DIR] [--detector NAME ...] [--force]

A thin script over the public API (``mcscan.build_tables``): one line per
table on stdout; a problem ends as one line ``build_tables: error: ...`` on
stderr with exit status 2 (bad input or configuration) or 1 (a table that
cannot be written).
"""
from __future__ import annotations

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"build_tables: error: {message} (see --help)\n")


def main(argv=None) -> int:
    p = _Parser(prog="build_tables", description="Build (or keep, if up to date) the HDF5 "
                "response table of each detector of an mcscan configuration.")
    p.add_argument("--config", metavar="FILE",
                   help="user TOML file overriding the built-in ESS configuration")
    p.add_argument("--tables", metavar="DIR", default="tables",
                   help="folder of the tables (default: tables)")
    p.add_argument("--detector", action="append", metavar="NAME",
                   help="detector to build (repeatable; default every detector of the configuration)")
    p.add_argument("--force", action="store_true", help="rebuild tables that are up to date")
    args = p.parse_args(argv)

    import mcscan

    try:
        if args.config is not None:
            from mcscan.io.paths import check_input_file

            check_input_file(args.config, "configuration file")
        cfg = mcscan.load_config(args.config)
        done = mcscan.build_tables(cfg, args.detector, args.tables, force=args.force)
    except (mcscan.InputError, mcscan.ConfigError) as exc:
        print(f"build_tables: error: {exc}", file=sys.stderr)
        return 2
    except mcscan.McscanError as exc:
        print(f"build_tables: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("build_tables: interrupted: a table being written was not replaced", file=sys.stderr)
        return 130
    for name, (path, status) in done.items():
        print(f"{name}: {status} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

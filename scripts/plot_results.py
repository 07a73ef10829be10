#!/usr/bin/env python
"""Draw every figure from the results files of `mcscan figures`.

    python scripts/plot_results.py FOLDER [OUTDIR]

FOLDER holds profiles.h5, regions.h5, csi_electron.h5,
csi_electron_regions.h5 and xsec.h5 (any subset); figures are written as
PNG and PDF into OUTDIR (default FOLDER).
"""
import sys

from mcscan.plot import plot_all


def main(argv):
    if not 1 <= len(argv) <= 2:
        sys.exit(__doc__)
    for path in plot_all(*argv):
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])

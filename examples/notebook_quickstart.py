"""mcscan in a notebook: limits, a region, saved and read back.

Run from any folder (the tables are built on first use, about 2 s):

    python examples/notebook_quickstart.py            # tables in ./tables
    MCSCAN_TABLES=/path/to/tables python examples/notebook_quickstart.py

It writes results/quickstart_Ge_q_ee.h5 and results/quickstart_region.h5
(replacing its own earlier output: force=True) and prints what it computed.
Only the public API is used: ``import mcscan`` and what it exports.
"""
import os

import mcscan

# The built-in ESS configuration with its three detectors; tables are loaded
# (built if missing) and checked once, here.
a = mcscan.Analysis(tables=os.environ.get("MCSCAN_TABLES", "tables"))

# 90% C.L. allowed interval of q_ee for each detector and all three combined.
for det in a.detectors:
    print(f"{det:>8}: q_ee in {a.limits('q_ee', detectors=det).regions} e")
combined = a.limits("q_ee")
print(f"combined: q_ee in {combined.regions} e")

# The allowed region of (q_ee, q_mumu) for Ge at 90% C.L. (2 d.o.f.).
reg = a.region(("q_ee", "q_mumu"), detectors="Ge")
print(f"Ge region: {len(reg.polygons)} polygon(s), area {reg.area:.3g} e^2, extent {reg.extent}")

# Save both and read them back: open_results returns the same kind of object.
os.makedirs("results", exist_ok=True)
lim = a.limits("q_ee", detectors="Ge")
lim.save("results/quickstart_Ge_q_ee.h5", config=a.config, force=True)
reg.save("results/quickstart_region.h5", config=a.config, force=True)
back = mcscan.open_results("results/quickstart_Ge_q_ee.h5")
print(f"read back: {back.kind} of {back.param}, {back.regions} e")
assert back.regions == lim.regions

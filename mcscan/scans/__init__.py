"""Scans: grids, the streamed N-D engine, executors, limits, regions, sweeps."""

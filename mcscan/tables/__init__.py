"""Response tables: data types and the builder (table I/O lives in :mod:`mcscan.io.tables`)."""

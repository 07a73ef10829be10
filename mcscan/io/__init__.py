"""File I/O: the only modules that import h5py."""

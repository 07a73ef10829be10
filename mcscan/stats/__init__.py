"""Statistics: coefficients, the NumPy reference chi2 and the numba kernels."""

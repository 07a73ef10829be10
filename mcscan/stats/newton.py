"""Constants of the safeguarded Newton profile over the two pulls.

The NumPy reference (:mod:`mcscan.stats.reference`) and the numba kernels
(:mod:`mcscan.stats.kernels`) run the same iteration; both take every
constant from here, so that they cannot drift apart.  See docs/physics.md
section 8.2.
"""

#: Sufficient-decrease constant of the backtracking line search (Armijo).
ARMIJO = 1e-4
#: Squared Newton decrement above which a step is damped by the line search
#: (decrement 1/4: inside it Newton converges quadratically with full steps).
DECREMENT2_MAX = 0.0625
#: A step goes at most this fraction of the way to the nearest zero of any T_i.
STEP_TO_ZERO = 0.9
#: Step factor per backtracking trial, and the most trials.
BACKTRACK = 0.5
MAX_BACKTRACK = 60
#: |eps| below which eps - log1p(eps) is taken from its series.
DEVIANCE_SERIES_EPS = 1e-3
#: Default convergence tolerance on both pull steps, and the most Newton iterations.
TOL = 1e-10
MAX_ITER = 60
#: Default pull widths (fractional normalisation uncertainties of signal and background).
SIGNAL_PULL = 0.10
BACKGROUND_PULL = 0.01

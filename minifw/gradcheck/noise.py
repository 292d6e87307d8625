"""The rounding noise of a function, measured where it is evaluated (Moré and Wild, 2011).

A central difference ``(f(x + s) - f(x - s)) / 2s`` carries the rounding error of the two
values of ``f`` divided by the step; a tolerance has to know that error. :func:`noise_level`
measures it at the point: ``f`` at ``m`` equally spaced points a small distance apart, whose
``j``-th differences are, for the smooth part of ``f``, of the order ``delta**j`` and, for the
noise, of the order ``sigma * sqrt(C(2j, j))`` whatever ``delta``. With ``j`` from 4 to 6 the
smooth part is gone and ``median(|d_j|) / 0.6745 * sqrt(j!**2 / (2j)!)`` estimates ``sigma``
(the median, not the mean square, so that a jump or a kink of ``f`` among the points, which
spoils ``j + 1`` of the ``j``-th differences, does not pass for noise); the largest of the
three is taken, so a remnant of curvature errs towards a larger tolerance.

>>> import numpy as onp
>>> jitter = onp.random.default_rng(0).standard_normal(POINTS)  # "rounding" of size 1e-12
>>> rough = lambda s: 1.0 + s + 1e-12 * jitter[round(s / 1e-6)]
>>> 3e-13 < noise_level(rough, 1e-6) < 3e-12
True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as onp

#: Points sampled: enough sixth differences that the estimate is good to a factor of about 2.
POINTS = 24


#: The median of ``|z|`` for a standard normal ``z``.
MAD = 0.6745


def noise_level(phi: Callable[[float], float], delta: float, points: int = POINTS) -> float:
    """The standard deviation of the rounding noise of ``phi`` near 0.

    Arguments:
        phi: a function of one real number (``f`` along a line).
        delta: the spacing of the samples, small against the scale on which ``phi`` curves.
        points: how many samples.

    Returns:
        ``sigma``, at least one rounding of the largest ``|phi|`` seen (``eps |phi|``).
    """
    v = onp.array([phi(k * delta) for k in range(points)], dtype=onp.float64)
    floor = float(onp.finfo(onp.float64).eps) * float(onp.abs(v).max(initial=0.0))
    if not onp.isfinite(v).all():
        return math.inf
    sigmas = []
    d = v
    for j in range(1, 7):
        d = onp.diff(d)
        if j >= 4:
            gamma = math.factorial(j) ** 2 / math.factorial(2 * j)
            sigmas.append(math.sqrt(gamma) * float(onp.median(onp.abs(d))) / MAD)
    return max(*sigmas, floor)

"""Judging one element (or one direction): is autograd's derivative right there?

Let ``phi(s) = f(x + s u)`` along the element's axis (or a direction) ``u``, and ``a`` autograd's
derivative along it. The central difference with the step ``s0`` was computed for every
element at once; an element whose ``a`` it does not confirm comes here, to a **step sweep**:
steps ``s0 / 4**k`` (each shrunk by a random factor in ``[0.55, 1)`` drawn from the check's
generator, so that no fixed set of offsets can be defeated by an input), at each the central
difference ``c``, its fourth-order twin ``c4``, and the one-sided second-order differences
``D+ = (-3 phi(0) + 4 phi(s) - phi(2s)) / 2s`` and ``D- = (3 phi(0) - 4 phi(-s) + phi(-2s)) / 2s``.
Each step is classed as

- **agree**: ``c``, ``c4`` or (where they agree with each other) ``D+`` and ``D-`` match ``a``
  within the step's tolerance;
- **smooth**: ``D+`` and ``D-`` match each other: ``phi`` is differentiable on the scale of
  that step, with derivative ``D = (D+ + D-) / 2``;
- **jump**: they do not: a kink (or a jump of ``f`` itself) lies within ``2s``.

and the sweep stops at the first two consecutive steps of the same class (both *agree*, or
with estimates that agree with each other; a kink near the element, not at it, shows as
jumps at the larger steps and smooth at the smaller ones, which decide), or where rounding
noise swamps the estimates:

- two **agree**: the derivative is right (``"ok"``);
- two **smooth** with ``D`` away from ``a``: ``phi`` is differentiable there and ``a`` is wrong
  (``"fail"``), however close a kink is: a backward pass wrong only at one point, or in a small
  region beside a kink, is caught;
- two **jump** with the same jump ``D+ - D-``: a kink at the element itself; or two steps
  (not agreeing) with the same nonzero ``f(x + s) - f(x - s)``: a jump of ``f`` itself at the
  element, as the book's step function has at 0. There no value is "the"
  derivative, so autograd's convention is not judged; instead autograd's derivative just
  beside it, on each side, must match a central difference taken on that side alone
  (``"kink"`` if both do, ``"fail"`` if not). Only such elements go unjudged, and the verdict
  says how it knows;
- one side's estimate drifting like ``1/s`` while the other stays put: a kink beside the
  element; ``a`` matching the steady side passes, anything else is left to smaller steps;
- anything else: ``"undecided"``, with the reason, never "wrong".

Tolerances: ``rtol * max(|a|, |d|) + kappa * noise / s`` for a central difference and four
times that for a one-sided one (their coefficients sum to 4), with ``noise`` the rounding noise
of ``phi`` measured at the point (:mod:`minifw.gradcheck.noise`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as onp

#: Rounding margin over the measured noise (a central difference has about 0.7 noise / s).
KAPPA = 8.0

#: At most this many steps: ``4**-24`` of the first reaches from 1e-5 below 1e-19.
LEVELS = 24


@dataclass
class Verdict:
    """The judgement of one element or direction."""

    status: str  # "ok", "kink", "fail" or "undecided"
    autograd: float
    numerical: float
    step: float  # the step the verdict rests on
    how: str = ""  # how the checker knows (kinks, failures, undecided)


class Line:
    """``phi(s) = f(x + s u)`` and autograd's derivative along ``u`` at ``x + s u``.

    Arguments:
        value: ``s -> phi(s)``.
        slope: ``s -> autograd's derivative along u at x + s u``.
        at: where the line runs along one element, that element's value: steps are then
            rounded to ones that ``x + s`` represents exactly, and no smaller than 16 of its
            units in the last place. (Along a direction, the rounding of ``x + s u`` shows in
            the measured noise of ``phi``.)
    """

    def __init__(self, value: Callable[[float], float], slope: Callable[[float], float],
                 at: float | None = None):
        self.value, self.slope, self.at = value, slope, at
        self.floor = 0.0 if at is None else 16 * float(onp.spacing(abs(at)))
        self._cache: dict[float, float] = {}

    def step(self, s: float) -> float:
        """``s`` made exact: ``(x + s) - x`` along an element."""
        return s if self.at is None else (self.at + s) - self.at

    def __call__(self, s: float) -> float:
        if s not in self._cache:
            self._cache[s] = float(self.value(s))
        return self._cache[s]


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def judge(line: Line, a: float, s0: float, noise: float, rtol: float,
          rng: onp.random.Generator, atol: float = 0.0) -> Verdict:
    """Judge autograd's derivative ``a`` along ``line`` (see the module docstring).

    Arguments:
        line: ``phi`` and autograd's slope along the element or direction.
        a: autograd's derivative at ``s = 0``.
        s0: the first step (the one of the vectorised central differences).
        noise: the rounding noise of one value of ``phi``.
        rtol: the relative tolerance (truncation and the rounding of autograd's own value).
        rng: draws the random shrink factors of the steps.
        atol: an absolute tolerance on top (the checker's: ``rtol`` times the largest gradient,
            so that no derivative far below the others fails on rounding).

    >>> line = Line(lambda s: max(s, 0.0), lambda s: float(s > 0))  # relu: a kink at 0
    >>> judge(line, 0.0, 1e-5, 1e-16, 1e-6, onp.random.default_rng(0)).status
    'kink'
    >>> line = Line(lambda s: s * s + 3 * s, lambda s: 2 * s + 3)  # smooth; 0 is wrong
    >>> judge(line, 0.0, 1e-5, 1e-16, 1e-6, onp.random.default_rng(0)).status
    'fail'
    """
    f0 = line(0.0)
    prev: tuple[str, float, float, float, float] | None = None
    prev_leap, leaping = 0.0, False
    jumps: list[tuple[str, float, float, float, float]] = []
    beside: Verdict | None = None
    first: tuple[float, float] | None = None
    for k in range(LEVELS):
        s = line.step(s0 * 4.0 ** -k * (1.0 if k == 0 else float(rng.uniform(0.55, 1.0))))
        if k and s <= line.floor:
            break  # below what x + s resolves
        p1, m1, p2, m2 = line(s), line(-s), line(2 * s), line(-2 * s)
        c = (p1 - m1) / (2 * s)
        c4 = (8 * (p1 - m1) - (p2 - m2)) / (12 * s)
        d_plus = (-3 * f0 + 4 * p1 - p2) / (2 * s)
        d_minus = (3 * f0 - 4 * m1 + m2) / (2 * s)
        first = first or (c, s)
        t_c, t_1 = KAPPA * noise / s, 4 * KAPPA * noise / s
        size = max(abs(a), abs(c), abs(d_plus), abs(d_minus))
        flat = a == 0 and p1 == m1  # f the same to the last bit: no rounding to fear
        if not all(map(onp.isfinite, (c, d_plus, d_minus))) or (
                k and t_c > 0.25 * size > 0 and not flat):
            break  # rounding swamps every estimate from here on
        if flat or _close(a, c, rtol, t_c + atol):
            kind, d = "agree", c
        elif _close(a, c4, rtol, 1.5 * t_c + atol):
            kind, d = "agree", c4
        elif _close(d_plus, d_minus, rtol, 2 * t_1) and _close(
                a, (d_plus + d_minus) / 2, rtol, 2 * t_c + atol):  # as a smooth pair decides
            # the one-sided estimates, exact for a quadratic on each side, match a: a kink in
            # f' (ReLU feeding a square) spoils c by O(s), not them
            kind, d = "agree", (d_plus + d_minus) / 2
        elif t_1 > 0.25 * size:  # too noisy for one-sided estimates: only "agree" may follow
            kind, d = "noisy", c
        elif _close(d_plus, d_minus, rtol, 2 * t_1):
            kind, d = "smooth", (d_plus + d_minus) / 2
        else:
            kind, d = "jump", d_plus - d_minus
        here = (kind, s, d, d_plus, d_minus)
        # two steps that agree with a each decide; two smooth or jump steps must also agree
        # with each other (the estimate has settled)
        if prev is not None and prev[0] == kind != "noisy" and (kind == "agree" or _close(
                prev[2], d, 10 * rtol, 2 * t_1 + atol)):
            return _decide(line, a, here, prev, noise, rtol, rng, atol)
        leap = p1 - m1  # constant as s shrinks where f itself jumps within the step
        leaping = prev is not None and {kind, prev[0]} <= {"smooth", "jump"} and abs(
            leap) > 4 * KAPPA * noise and _close(prev_leap, leap, 10 * rtol, 2 * KAPPA * noise)
        jumps = jumps[-2:] + [here] if kind == "jump" else []
        # a matches the steady side: right whether the element sits beside the kink or on
        # one of its own (any one-sided derivative is a fair convention there); a failure is
        # left to smaller steps, which resolve a kink beside the element if rounding allows
        side = _beside_a_kink(jumps, a, rtol, 2 * t_1, atol)
        if side is not None and side.status == "ok":
            return side
        beside = side or (beside if jumps else None)
        prev, prev_leap = here, leap
    else:
        k = LEVELS
    if beside is not None:  # the steps ended among the kinks: no fair verdict of "wrong"
        return Verdict("undecided", a, beside.numerical, beside.step,
                       f"undecided: rounding ended the steps before {beside.how}")
    if leaping and prev is not None:  # f jumped within every step, down to the last
        return _decide(line, a, ("leap", prev[1], prev_leap, *prev[3:]), prev, noise, rtol, rng,
                       atol)
    if k == LEVELS:
        c, s = first or (0.0, s0)
        return Verdict("undecided", a, c, s, f"undecided: no two of {LEVELS} steps from "
                                             f"{s0:.2g} down agreed")
    if prev is not None and prev[0] in ("agree", "smooth") and _close(
            a, prev[2], rtol, 2 * KAPPA * noise / prev[1] + atol):
        # rounding ends the sweep after one step that shows f differentiable with slope a
        return Verdict("ok", a, prev[2], prev[1], f"only the step {prev[1]:.2g} resolved f "
                       f"above rounding, and there f is differentiable with slope {prev[2]:.8g}")
    c, s = first or (0.0, s0)
    why = ("rounding noise swamped the estimates before two steps agreed" if prev else
           "no step gave a finite estimate")
    return Verdict("undecided", a, c, s, f"undecided: {why} (steps from {s0:.2g} down)")


def _beside_a_kink(jumps: list[tuple[str, float, float, float, float]], a: float, rtol: float,
                   tol: float, atol: float) -> Verdict | None:
    """The verdict at an element beside (not at) a kink, from the last three jump steps.

    A kink at a distance ``beta`` on one side adds ``1.5 (D+ - D-) beta / s`` to that side's
    one-sided estimate, a drift that grows as the step shrinks (curvature's shrinks), while
    the other side's stays put: the element lies on that side, where ``f`` is differentiable,
    and autograd must match its estimate, however close the kink.
    """
    if len(jumps) < 3:
        return None
    (_, s0, _, p0, m0), (_, s1, _, p1, m1), (_, s2, _, p2, m2) = jumps
    for name, (x0, x1, x2), (y0, y1, y2) in (("D+", (p0, p1, p2), (m0, m1, m2)),
                                            ("D-", (m0, m1, m2), (p0, p1, p2))):
        drifts = abs(y2 - y1) > 2 * abs(y1 - y0) and not _close(y1, y2, 10 * rtol, tol)
        if drifts and _close(x1, x2, 10 * rtol, tol):
            other = "D-" if name == "D+" else "D+"
            how = (f"a kink beside the element: {other} drifts as the step shrinks ({y1:.8g}, "
                   f"{y2:.8g} at steps {s1:.2g}, {s2:.2g}) while {name} stays {x2:.8g}: "
                   f"differentiable here, with that derivative")
            if _close(a, x2, rtol, tol + atol):
                return Verdict("ok", a, x2, s2, how)
            return Verdict("fail", a, x2, s2, f"{how}, and autograd says {a:.8g}: the gradient "
                                              f"is wrong")
    return None


def _decide(line: Line, a: float, here: tuple[str, float, float, float, float],
            prev: tuple[str, float, float, float, float], noise: float, rtol: float,
            rng: onp.random.Generator, atol: float) -> Verdict:
    kind, s, d, d_plus, d_minus = here
    steps = f"steps {prev[1]:.2g} and {s:.2g}"
    if kind == "agree":
        return Verdict("ok", a, d, s)
    if kind == "smooth":
        if _close(a, d, rtol, 2 * KAPPA * noise / s + atol):
            return Verdict("ok", a, d, s)
        return Verdict("fail", a, d, s, f"differentiable here (D- = {d_minus:.8g} and D+ = "
                                        f"{d_plus:.8g} agree at {steps}), and autograd says "
                                        f"{a:.8g}: the gradient is wrong")
    # a kink at the element: judge autograd just beside it, on each side, instead
    delta = s * float(rng.uniform(0.3, 0.5))
    sides = []
    for sign in (1.0, -1.0):
        u = sign * delta
        q = delta / 4
        numerical = (line(u + q) - line(u - q)) / (2 * q)
        slope = float(line.slope(u))
        sides.append((slope, numerical, _close(slope, numerical, rtol,
                                                        2 * KAPPA * noise / q + atol)))
    how = (f"a jump at the element: f(x + s) - f(x - s) stays {d:.3g} at {steps}"
           if kind == "leap" else f"a kink at the element: the one-sided derivatives D- = "
           f"{d_minus:.8g} and D+ = {d_plus:.8g} differ at {steps}")
    if all(ok for _, _, ok in sides):
        return Verdict("kink", a, (d_plus + d_minus) / 2, s,
                       f"{how}; autograd matches central differences just beside it "
                       f"(+-{delta:.2g}) on both sides")
    slope, numerical, _ = next(side for side in sides if not side[2])
    return Verdict("fail", slope, numerical, delta,
                   f"{how}; just beside it autograd says {slope:.8g}, central differences "
                   f"{numerical:.8g}: the gradient is wrong")


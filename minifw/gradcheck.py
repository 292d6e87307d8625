"""The gradient checker: autograd held against central differences, kink-aware.

``check_grads(f, params, *args)`` compares the autograd gradient of the scalar function
``f(params, *args)`` with central differences, per parameter array, and returns a
:class:`~minifw.report.GradCheckReport`. ``mode="full"`` checks every element;
``mode="projection"`` checks the derivative along random unit directions (entries uniform
in ``[-1/2, 1/2)`` before normalising, a matrix's the outer product of two such vectors; from
a seeded ``Generator``), a fixed number per array (so a bug in a small array is not drowned by
a large one), at a cost independent of the number of parameters.

How an element (or direction) is judged. Let ``phi(s) = f(x + s u)`` along the element's axis
(or the direction) ``u``, and ``a`` autograd's ``grad . u``.

1. Central difference at the step ``h`` (relative: ``h * max(1, |x_i|)``). Agreement within
   ``atol + rtol * max(|a|, |numerical|)`` passes. Almost every element stops here, so a full
   check costs one numerical gradient plus one autograd gradient.
2. Otherwise the step shrinks to ``h/4`` and ``h/16``. A kink (ReLU, leaky ReLU or step at 0)
   at distance ``d`` from ``x`` spoils every central difference with step ``> d``, and none
   with step ``< d``; truncation error also falls 16x per shrink. A correct gradient whose
   estimate was spoiled by a nearby kink or by curvature passes here. ``atol`` grows with
   ``1/step``, as the rounding error does.
3. Otherwise, at ``s = h/16``, the second-order one-sided differences
   ``D+ = (-3 phi(0) + 4 phi(s) - phi(2s)) / 2s`` and
   ``D- = (3 phi(0) - 4 phi(-s) + phi(-2s)) / 2s`` estimate the right and left derivatives
   with ``O(s**2)`` error. If both match ``a``, it passes: this covers a kink in the
   *curvature* (``relu(x)**2`` at 0), where the central difference is off by ``O(h)``
   instead of ``O(h**2)`` but the one-sided estimates are not.
4. Otherwise ``x`` sits on a kink, or ``a`` is wrong. At a kink no value is "the" derivative,
   and autograd's convention (``relu'(0) = 0``) need not lie between ``D-`` and ``D+`` once
   several kinks meet at ``x``: ``relu(x) - relu(-x)`` is ``x``, yet autograd says 0 at 0.
   So the check moves off the kink instead of judging at it: on each side, at ``x +- 2h u``,
   autograd's derivative (one more gradient evaluation) must match the central difference
   with step ``h`` there, whose points all lie on that side. Other kinks may sit a little
   further along the line (an input of ``1e-9`` puts one there), so the steps ``4h``, ``h/4``
   and ``16h`` are tried too. Both sides agreeing means the gradient code is right on both
   pieces; the element is counted as a kink and passes.

A wrong gradient fails: where ``f`` is smooth, no step brings the central difference to a
wrong value, ``D+ = D-`` leaves no room, and the same wrong code runs at ``x +- s u``. What
goes unjudged is only autograd's value exactly at a kink, and the report counts those
elements. One limit: kinks packed along the line at every one of those offsets (within
``48 h`` of ``x``) can spoil a side check and fail a correct function.

Step and tolerances come from the least precise float dtype among the parameters, the array
arguments and ``f``'s value (see :func:`default_tolerances`); a report states them. On a
failure the worst element of each failing row is re-checked at steps from ``16 h`` to ``h/4``
and the row's verdict says whether the disagreement follows the step (finite-difference
error) or stays flat (a wrong gradient).

Nothing is changed: the check works on a private float64 (or float) copy of ``params``, so the
caller's arrays are bit-identical afterwards, also when ``f`` raises.

>>> import numpy as onp, minifw as mf
>>> model = mf.Sequential(mf.Linear(3, 4), mf.ReLU(), mf.Linear(4, 2))
>>> rng = onp.random.default_rng(0)
>>> params, x = model.init(rng), rng.standard_normal((5, 3))
>>> f = lambda p, x: mf.SoftmaxCrossEntropy()(model(p, x), onp.array([0, 1, 0, 1, 1]))
>>> check_grads(f, params, x).ok, check_grads(f, params, x, mode="projection", rng=0).ok
(True, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import autograd.numpy as mnp
import numpy as onp

from minifw.functions import LossOp, _axes, real_number
from minifw.layers import Layer
from minifw.numerical import (
    central_differences,
    default_step,
    evaluate_at,
    scalar_value,
    step_size,
)
from minifw.report import GradCheckReport, GradCheckRow
from minifw.stacked import Probe
from minifw.stacked import central_differences as stacked_differences
from minifw.tape import trace
from minifw.training import as_generator
from minifw.tree import Tree, copy_float, leaves, tree_map

MODES = ("full", "projection")
SHRINK = (1.0, 0.25, 0.0625)  # steps tried, as fractions of h (stage 2)
# steps of the side checks, as multiples of h (stage 4): kinks of other units can sit at any
# small distance along the line, one of these is clear of them; none is below h/4, where
# rounding (tolerance atol / k) would let a wrong gradient pass in float32
SIDES = (1.0, 4.0, 0.25, 16.0)


def default_tolerances(dtype: Any, f0: float = 1.0) -> tuple[float, float, float]:
    """``(h, rtol, atol)`` for a function of ``dtype`` whose value is ``f0``.

    - ``h = eps**(1/3)`` balances truncation and rounding (:func:`minifw.numerical.default_step`).
    - ``rtol = 64 sqrt(eps)``: 9.5e-7 in float64, 2.2e-2 in float32 (JAX's ``check_grads``
      uses 1e-5 and 2e-2). The best central difference is accurate to about ``eps**(2/3)``
      (4e-11 in float64), while a wrong gradient is wrong by a factor, not in the 7th digit.
    - ``atol = 64 eps max(1, |f0|) / h``: the rounding error of the quotient,
      ``eps |f| / h``, with a margin of 64 for the rounding accumulated inside ``f``;
      2.3e-9 in float64 and 1.6e-3 in float32 for ``|f0| <= 1``.

    >>> [f"{v:.2g}" for v in default_tolerances("float64")]
    ['6.1e-06', '9.5e-07', '2.3e-09']
    """
    eps = float(onp.finfo(dtype).eps)
    h = default_step(dtype)
    return h, 64 * eps**0.5, 64 * eps * max(1.0, abs(float(f0))) / h


def _least_precise(work: Tree, args: tuple[Any, ...], f0: Any) -> onp.dtype:
    dtypes = [a.dtype for _, a in leaves(work)] + [onp.asarray(f0).dtype]
    dtypes += [a.dtype for a in args if isinstance(a, onp.ndarray)]
    floats = [d for d in dtypes if d.kind == "f"]
    return max(floats, key=lambda d: onp.finfo(d).eps, default=onp.dtype(onp.float64))


class _Line:
    """``f`` along ``x + s u`` for one array ``x`` of the private tree ``work``."""

    def __init__(self, fun: Callable[[Tree], Any], grad_x: Callable[[Tree], onp.ndarray],
                 work: Tree, x: onp.ndarray, a: onp.ndarray, idx: Any,
                 u: onp.ndarray | None = None, probe: Probe | None = None,
                 factors: tuple[onp.ndarray, onp.ndarray] | None = None):
        self.fun, self.grad_x, self.work, self.x, self.a = fun, grad_x, work, x, a
        self.idx, self.u = idx, u
        # along a direction, autograd predicts the change s (a . u) for the nominal step s u;
        # x + s u is off from it by eps |x| per element, 1e-10 of the step in float64
        self.a_u = None if u is None else float(onp.sum(a * u))
        self.probe = probe if probe is not None and probe.knows(x) else None
        self.along = None if self.probe is None or u is None else self.probe.line(x, u, factors)

    def moved(self, s: float) -> onp.ndarray:
        """``x[idx]`` (or ``x``) moved by ``s`` along the line."""
        x, dt = self.x, self.x.dtype.type
        return x[self.idx] + dt(s) if self.u is None else x + dt(s) * self.u

    def slope(self, s: float) -> float:
        """Autograd's derivative along the line at ``x + s u``."""
        g = evaluate_at(self.grad_x, self.work, self.x, self.idx, self.moved(s), scalar=False)
        return float(g[self.idx]) if self.u is None else float(onp.sum(g * self.u))

    def at(self, s: float) -> tuple[float, float]:
        """``f(x + s u)`` and autograd's prediction of the change, ``a . (actual step)``."""
        if self.along is not None:  # f knows its structure: s -> f(x + s u) by linearity
            return self.along(s), s * self.a_u  # type: ignore[operator]
        x, moved = self.x, self.moved(s)
        if self.a_u is None:
            change = float(self.a[self.idx]) * (float(moved) - float(x[self.idx]))
        else:
            change = s * self.a_u
        if self.probe is not None:  # a column of the network, not all of it
            return self.probe.at(x, self.idx, moved), change
        return float(evaluate_at(self.fun, self.work, x, self.idx, moved)), change

    def central(self, s: float) -> tuple[float, float]:
        """``(autograd, numerical)`` directional derivatives with the central step ``s``."""
        f_up, p_up = self.at(s)
        f_down, p_down = self.at(-s)
        return (p_up - p_down) / (2 * s), (f_up - f_down) / (2 * s)


def _direction(gen: onp.random.Generator, shape: tuple[int, ...]
               ) -> tuple[onp.ndarray, tuple[onp.ndarray, onp.ndarray] | None]:
    """A random unit direction of the given shape, and its factors ``(v, w)`` if a matrix.

    Entries uniform in ``[-1/2, 1/2)``: like a Gaussian direction, orthogonal to a given
    error vector with probability 0 (a hyperplane has measure 0). A matrix's direction is the
    outer product ``v w^T`` of two such vectors: still orthogonal to a given nonzero error
    ``E`` with probability 0 (``v^T E w`` is a nonzero polynomial in ``v`` and ``w``), with
    the same mean square projection, and a layer's output moves along it by a matrix-vector
    product instead of a matrix product.
    """
    def unit(n: Any) -> onp.ndarray:
        v = gen.random(n)
        v -= 0.5
        v *= 1 / onp.linalg.norm(v)
        return v

    if len(shape) != 2:
        return unit(shape), None
    v, w = unit(shape[0]), unit(shape[1])
    return onp.outer(v, w), (v, w)


def _close(a: float, n: float, rtol: float, atol: float) -> bool:
    return abs(a - n) <= atol + rtol * max(abs(a), abs(n))


def _judge(line: _Line, s0: float, f0: float, a_u: float, rtol: float, atol: float,
           start: int) -> tuple[str, float, float]:
    """``(status, autograd, numerical)`` for one element or direction (stages 2 and 3).

    ``status`` is ``"ok"``, ``"kink"`` or ``"fail"``; the two values are those of the step
    that passed, else those at ``h``.
    """
    first = None
    for frac in SHRINK[start:]:
        a, n = line.central(s0 * frac)
        first = first or (a, n)
        if _close(a, n, rtol, atol / frac):
            return "ok", a, n
    s = s0 * SHRINK[-1]
    up1, up2, down1, down2 = (line.at(k * s)[0] for k in (1, 2, -1, -2))
    d_plus = (-3 * f0 + 4 * up1 - up2) / (2 * s)
    d_minus = (3 * f0 - 4 * down1 + down2) / (2 * s)
    # the one-sided formulas carry 4x the central difference's rounding (|-3|+|4|+|-1| over 2)
    tol = 4 * atol / SHRINK[-1] + rtol * max(abs(d_plus), abs(d_minus), abs(a_u))
    if abs(d_plus - a_u) <= tol and abs(d_minus - a_u) <= tol:
        return "ok", a_u, (d_plus + d_minus) / 2
    if all(any(_side_agrees(line, sign * s0, k, rtol, atol) for k in SIDES) for sign in (1, -1)):
        return ("kink", *(first or line.central(s0)))
    return ("fail", *(first or line.central(s0)))


def _side_agrees(line: _Line, s0: float, k: float, rtol: float, atol: float) -> bool:
    """On one side of a kink at ``x``: autograd at ``x + 2k s0 u`` against the central
    difference with step ``k |s0|`` there, whose points ``x + k s0 u .. x + 3k s0 u`` all lie
    on that side; ``atol`` (set for the step ``h``) scales with ``1 / k``, as rounding does."""
    f_up, _ = line.at(3 * k * s0)
    f_down, _ = line.at(k * s0)
    return _close(line.slope(2 * k * s0), (f_up - f_down) / (2 * k * s0), rtol, atol / k)


def _verdict(line: _Line, s0: float, f_eps: float) -> str:
    """Re-check at steps 16h .. h/4: does the disagreement follow the step or stay flat?

    ``f_eps`` is the rounding error of one value of ``f`` (``eps |f|``)."""
    fracs = (16.0, 4.0, 1.0, 0.25)
    errs = [abs(a - n) for a, n in (line.central(s0 * k) for k in fracs)]
    shown = ", ".join(f"{e:.1e}" for e in errs)
    where = f"errors at steps 16h, 4h, h, h/4: {shown}"
    slope = onp.log(errs[0] / errs[2]) / onp.log(16.0) if errs[2] > 0 else 0.0
    if slope > 1.5 and errs[1] > 3 * errs[2]:
        return (f"the disagreement shrinks with the step like h^2 ({where}): finite-difference "
                "truncation error; the gradient is probably right, try a smaller h")
    if slope > 0.7 and errs[1] > 1.5 * errs[2]:
        return (f"the disagreement shrinks with the step like h ({where}): a kink in the "
                "curvature nearby; the gradient is probably right, try a smaller h")
    if (errs[3] > 2 * errs[2] and errs[2] > 2 * errs[1]) or errs[0] <= 2 * f_eps / (16 * s0):
        return (f"the disagreement grows as the step shrinks, or is within the rounding error "
                f"of f, eps |f| / step ({where}): rounding error; try float64 or a larger h")
    return f"the disagreement stays flat whatever the step ({where}): the gradient is wrong"


Result = tuple[Any, str, float, float]  # (index or direction, status, autograd, numerical)


def _row(path: str, x: onp.ndarray, results: list[Result], rtol: float, atol: float, f_eps: float,
         line_of: Callable[[Any], tuple[_Line, float]]) -> GradCheckRow:
    """Summarise the results of one array into a row of the report."""
    def badness(item: Result) -> float:
        _, status, a, n = item
        return abs(a - n) / (atol + rtol * max(abs(a), abs(n))) + (1e300 if status == "fail" else 0)

    smooth = [r for r in results if r[1] != "kink"]
    fails = [r for r in results if r[1] == "fail"]
    idx, _, a, n = max(smooth or results, key=badness, default=(None, "ok", 0.0, 0.0))
    abs_err = max((abs(r[2] - r[3]) for r in smooth), default=0.0)
    rel_err = max((abs(r[2] - r[3]) / max(abs(r[2]), abs(r[3]), atol) for r in smooth),
                  default=0.0)
    verdict = _verdict(*line_of(idx), f_eps) if fails else ""
    return GradCheckRow(path, tuple(x.shape), not fails, idx, a, n, abs_err, rel_err,
                        len(results) - len(smooth), len(results), len(fails), verdict)


class _Check:
    """One check: the private tree, ``f`` on it, its value and autograd gradient, tolerances."""

    def __init__(self, fun: Callable[[Tree], Any], work: Tree, f0: float, h: float,
                 rtol: float, atol: float, f_eps: float, probe: Probe | None = None):
        self.fun, self.work, self.f0, self.h, self.rtol, self.atol = fun, work, f0, h, rtol, atol
        self.f_eps, self.probe = f_eps, probe

    def grad_x(self, path: str, reference: bool = False) -> Callable[[Tree], onp.ndarray]:
        """The leaf at ``path`` of autograd's (whole) gradient of ``f``, as float64: through
        the backward passes, or (``reference``) through the trace of the forward passes."""
        def g(tree: Tree) -> onp.ndarray:
            grads = dict(leaves(trace(self.fun, tree, reference=reference).gradient()))
            return onp.asarray(grads[path], dtype=onp.float64)
        return g

    def full_row(self, path: str, x: onp.ndarray, a: onp.ndarray,
                 c: onp.ndarray | None = None) -> GradCheckRow:
        """Every element of ``x``; ``c``: its central differences, if already computed."""
        if c is None:
            c = central_differences(lambda _: self.fun(self.work), x, self.h, relative=True)

        def line_of(idx: Any) -> tuple[_Line, float]:
            s0 = self.h * max(1.0, abs(float(x[idx])))
            return _Line(self.fun, self.grad_x(path), self.work, x, a, idx,
                         probe=self.probe), s0

        # the elements that agree at once are summarised by array operations (their worst
        # stand for them all); only the others are judged one by one
        err = onp.abs(a - c)
        size = onp.maximum(onp.abs(a), onp.abs(c))
        close = err <= self.atol + self.rtol * size
        results: list[Result] = [
            (idx, *_judge(*line_of(idx), self.f0, a[idx], self.rtol, self.atol, 1))
            for idx in map(tuple, onp.argwhere(~close).tolist())]
        if close.any():
            worst = {int(onp.where(close, v, -1.0).argmax())
                     for v in (err, err / onp.maximum(size, self.atol),
                               err / (self.atol + self.rtol * size))}
            for i in sorted(worst):
                idx = tuple(int(k) for k in onp.unravel_index(i, x.shape))
                results.append((idx, "ok", float(a[idx]), float(c[idx])))
        row = _row(path, x, results, self.rtol, self.atol, self.f_eps, line_of)
        return dataclasses.replace(row, checked=x.size)

    def against_trace(self, row: GradCheckRow, x: onp.ndarray, a: onp.ndarray,
                      ref: Reference) -> GradCheckRow:
        """``row`` with the backward passes' gradient ``a`` held against the trace's.

        Two analytic gradients of one function differ by rounding alone, except at a kink,
        where conventions may differ. So an element where they differ beyond rounding passes
        only if (1) just left and right of it (at one of the side offsets) the backward pass
        agrees with the trace, and either the trace jumps there (a kink) or the backward
        pass's value is the common limit of both sides (the derivative is continuous, and
        the trace's convention at a tie is what differs), or (2) central differences side
        clearly with the backward pass (the trace, outside their tolerance, is off there: a
        forward pass that autograd differentiates badly at one point). Otherwise the backward
        pass is wrong there, however small the difference, also below what central
        differences can resolve.
        """
        r = ref.grads[row.path]
        unit = ref.eps * (onp.abs(a) + onp.abs(r) + ref.scale)
        diff = onp.abs(a - r)
        wrong = [idx for idx in map(tuple, onp.argwhere(diff > TRACE_ROUNDING * unit).tolist())
                 if not self._explained(row.path, x, a, ref, idx)]
        err = float((diff / onp.maximum(unit, 1e-300)).max(initial=0.0))
        if not wrong:
            return dataclasses.replace(row, trace_error=err)
        idx = max(wrong, key=lambda i: diff[i] / unit[i])
        verdict = (f"the backward pass disagrees with autograd's trace of the forward pass "
                   f"at {idx}: {a[idx]:.10g} against {r[idx]:.10g} ({diff[idx] / unit[idx]:.3g} "
                   f"eps, beyond the {TRACE_ROUNDING:g} of rounding), and no kink explains it: "
                   "the backward pass is wrong there")
        return dataclasses.replace(row, ok=False, failures=row.failures + len(wrong),
                                   trace_error=err, verdict=(row.verdict + "; " if row.verdict
                                                             else "") + verdict)

    def _explained(self, path: str, x: onp.ndarray, a: onp.ndarray, ref: Reference,
                   idx: Any) -> bool:
        """Whether a kink (or a trace that is off at one point) explains ``a[idx] != r[idx]``."""
        line = _Line(self.fun, self.grad_x(path), self.work, x, a, idx, probe=self.probe)
        s0 = self.h * max(1.0, abs(float(x[idx])))
        status, _, n = _judge(line, s0, self.f0, a[idx], self.rtol, self.atol, 0)
        if status == "ok" and not _close(float(ref.grads[path][idx]), n, self.rtol, self.atol):
            return True
        backward = self.grad_x(path)

        def same(u: float, v: float, slack: float = 0.0) -> bool:
            return abs(u - v) <= TRACE_ROUNDING * ref.eps * (abs(u) + abs(v) + ref.scale) + slack

        def sides(k: float) -> tuple[float, float, bool]:
            """The trace just left and right (at ``k s0``), and whether the backward pass
            agrees with it there."""
            out, agree = [], True
            for s in (-k * s0, k * s0):
                moved = x[idx] + x.dtype.type(s)
                b = float(evaluate_at(backward, self.work, x, idx, moved, scalar=False)[idx])
                out.append(ref.at(path, idx, float(moved)))
                agree = agree and same(b, out[-1])
            return out[0], out[1], agree

        for k in SIDES:
            l1, r1, agree1 = sides(k)
            l4, r4, agree4 = sides(k / 4)
            if not (agree1 and agree4):
                continue  # the codes differ beside the element too (or another kink is near)
            # they differ at the element only. Extrapolated to the element (linearly, from k
            # and k/4), the trace's jump across it, and its one-sided limits:
            jump = (4 * (r4 - l4) - (r1 - l1)) / 3
            left, right = (4 * l4 - l1) / 3, (4 * r4 - r1) / 3
            if not same(jump, 0.0):
                return True  # a kink, where conventions differ
            # no jump: the derivative is continuous there, and the backward pass must have
            # its limit (autograd's convention at a tie, 1/2, is then what is off)
            return same(float(a[idx]), (left + right) / 2, abs(left - l4) + abs(right - r4))
        return False

    def projection_row(self, path: str, x: onp.ndarray, a: onp.ndarray,
                       gen: onp.random.Generator, directions: int) -> tuple[GradCheckRow, str]:
        """Random unit directions in ``x``'s space; element by element if one fails."""
        draws = [_direction(gen, x.shape) for _ in range(directions if x.size else 0)]
        us = [u.astype(x.dtype, copy=False) for u, _ in draws]
        s0 = self.h * max(1.0, float(onp.abs(x).max(initial=0.0)))

        def line_of(k: Any) -> tuple[_Line, float]:
            return _Line(self.fun, self.grad_x(path), self.work, x, a, Ellipsis, us[k],
                         probe=self.probe, factors=draws[k][1]), s0

        results = []
        for k in range(len(us)):
            line = line_of(k)[0]
            a_u = line.a_u
            assert a_u is not None  # a line along a direction always has it
            results.append((k, *_judge(line, s0, self.f0, a_u, self.rtol, self.atol, 0)))
        if all(r[1] != "fail" for r in results):
            return _row(path, x, results, self.rtol, self.atol, self.f_eps, line_of), ""
        # A direction moves every element at once, so kinks of several elements (inputs at or
        # near 0) can meet along it, where no step is clean: settle this array element-wise.
        note = (f"{path}: a direction failed; checked element by element, the verdict of "
                "full mode")
        return self.full_row(path, x, a), note


def check_grads(
    f: Callable[..., Any],
    params: Tree,
    *args: Any,
    mode: str = "full",
    rng: Any = None,
    h: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    directions: int = 1,
) -> GradCheckReport:
    """Compare the autograd gradient of ``f(params, *args)`` with central differences.

    Arguments:
        f: a scalar function written with ``minifw.np``; differentiated in ``params``.
        params: an array or a nested dict of arrays (never changed; integers become float64).
        args: further arguments of ``f``, passed as they are.
        mode: ``"full"`` (every element) or ``"projection"`` (random directions per array).
        rng: a ``numpy.random.Generator`` or seed for the projection directions (``None``:
            seed 0, so reports are reproducible).
        h, rtol, atol: step and tolerances; ``None`` picks them from the dtype
            (:func:`default_tolerances`).
        directions: random directions per array in projection mode. One finds any wrong
            gradient of that array with probability 1 (a direction drawn from a continuous
            distribution is orthogonal to the error with probability 0); more shrink the
            chance that the error's projection hides under the tolerance.

    Returns:
        A :class:`~minifw.report.GradCheckReport`; ``report.ok`` is the verdict.

    >>> import minifw as mf
    >>> check_grads(lambda w: mf.np.sum(mf.np.sin(w)), onp.arange(3.0)).ok
    True
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    h = None if h is None else step_size(h)
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if tol is not None and real_number(name, tol) < 0:
            raise ValueError(f"{name} must be >= 0, got {tol!r}")
    if isinstance(directions, bool) or not isinstance(directions, (int, onp.integer)) or (
            directions < 1):
        raise ValueError(f"directions must be a whole number >= 1, got {directions!r}")
    if rng is not None:
        as_generator(rng)  # refused in full mode too, where it is not used
    work = copy_float(params)
    fun = lambda p: f(p, *args)  # noqa: E731
    tape = trace(f, work, args)  # the backward passes, as training runs them
    f0 = float(scalar_value(tape.value))
    grads = tape.gradient()
    if not onp.isfinite(f0):
        raise ValueError(f"check_grads: f is {f0} at the given parameters; nothing to check")
    for path, a in leaves(grads):  # e.g. inf * 0 for an infinite input that tanh saturates
        if not onp.all(onp.isfinite(a)):
            raise ValueError(f"check_grads: autograd's gradient at {path or 'params'!r} is not "
                             f"finite ({onp.asarray(a).ravel()[~onp.isfinite(a).ravel()][:3]}) "
                             f"though f = {f0:.6g} is: is a parameter or an input infinite?")
    dtype = _least_precise(work, args, f0)
    h0, rtol0, atol0 = default_tolerances(dtype, f0)
    h = h0 if h is None else float(h)
    rtol = rtol0 if rtol is None else float(rtol)
    atol = atol0 * h0 / h if atol is None else float(atol)
    calls = trace(f, work, args, record=True)  # every op call, for the numerical engine
    check = _Check(fun, work, f0, h, rtol, atol, float(onp.finfo(dtype).eps) * abs(f0),
                   Probe.of(f, work, args, calls))
    reference, notes = Reference.of(f, work, args, dtype)
    rows = []
    if mode == "full":
        # stacked when f's calls form a chain, else the loop
        numerical = stacked_differences(f, work, args, h, tape=calls)
        for (path, x), (_, a), (_, c) in zip(leaves(work), leaves(grads), leaves(numerical)):
            rows.append(check.full_row(path, x, onp.asarray(a, dtype=onp.float64), c))
    else:
        gen = as_generator(0 if rng is None else rng)
        for (path, x), (_, a) in zip(leaves(work), leaves(grads)):
            row, note = check.projection_row(path, x, onp.asarray(a, dtype=onp.float64), gen,
                                             directions)
            rows.append(row)
            notes += [note] if note else []
    if reference is not None:
        rows = [check.against_trace(row, x, onp.asarray(a, dtype=onp.float64), reference)
                for row, (_, x), (_, a) in zip(rows, leaves(work), leaves(grads))]
    return GradCheckReport(rows, mode, str(dtype), h, rtol, atol, notes)


#: Backward and trace agree to within ``TRACE_ROUNDING eps (|a| + |r| + scale)`` per element,
#: ``scale`` the largest cotangent of the trace: of ``max |r|`` over the whole gradient and of
#: every intermediate value's (cancellation in a sum leaves an element the rounding of its
#: terms, which those bound even where all of the gradient cancels, as a softmax's bias
#: gradient does on a batch of every class): two analytic gradients of one function,
#: computed in another order, differ by rounding alone. Measured on 400 random built-in
#: networks away from kinks: at most 1.6 (float64) and 24 (float32, against the float64 trace).
TRACE_ROUNDING = 64.0


class Reference:
    """Autograd's trace of ``f``'s forward passes alone, the backward passes' exact twin.

    In float64 even for a float32 ``f`` (parameters and float arguments upcast): a float32
    trace rounds more than the float32 backward passes themselves do (its log-sum-exp and
    max cancel), and float64 leaves only the backward passes' own rounding to compare.
    """

    def __init__(self, f: Callable[..., Any], tree: Tree, args: tuple[Any, ...], dtype: Any):
        self.f, self.tree, self.args = f, tree, args
        self.eps = float(onp.finfo(dtype).eps)
        tape = trace(f, tree, args, reference=True)
        self.bypassed = tape.bypassed
        self.grads = {p: onp.asarray(g, dtype=onp.float64) for p, g in leaves(tape.gradient())}
        self.scale = max([float(onp.abs(g).max(initial=0.0)) for g in self.grads.values()]
                         + [tape.largest_cotangent])

    @classmethod
    def of(cls, f: Callable[..., Any], work: Tree, args: tuple[Any, ...], dtype: Any
           ) -> tuple[Reference | None, list[str]]:
        """The reference of ``f`` at ``work`` (``None`` if no hand-written backward pass took
        part, or if the forward passes cannot be traced, with a note saying so)."""
        wide = copy_float(tree_map(lambda a: a.astype(onp.float64), work))
        wide_args = tuple(a.astype(onp.float64) if isinstance(a, onp.ndarray) and a.dtype.kind
                          == "f" else a for a in args)
        try:
            ref = cls(f, wide, wide_args, dtype)
        except Exception as e:
            if "Box" not in str(e):  # f's own error, not autograd's at a forward it cannot trace
                raise
            return None, [f"the forward passes alone could not be traced ({type(e).__name__}: "
                          f"{e}): the backward passes are held against central differences "
                          "only"]
        return (ref if ref.bypassed else None), []

    def at(self, path: str, idx: Any, value: float) -> float:
        """The trace's gradient at ``path[idx]`` with that element set to ``value``."""
        leaf = dict(leaves(self.tree))[path]

        def g(tree: Tree) -> onp.ndarray:
            return dict(leaves(trace(self.f, tree, self.args, reference=True).gradient()))[path]

        return float(evaluate_at(g, self.tree, leaf, idx, value, scalar=False)[idx])


def check_layer(
    layer: Layer,
    x: Any,
    params: Tree | None = None,
    mode: str = "full",
    rng: Any = None,
    h: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> GradCheckReport:
    """Check a layer's gradients with respect to its input ``x`` and every parameter.

    The scalar checked is ``sum(layer(params, x) * G)`` for a random cotangent ``G``, so
    every output element's VJP takes part with its own weight.

    Arguments:
        layer: a :class:`minifw.Layer` (built-in or a user's own).
        x: an input batch (never changed; integers become float64).
        params: the layer's parameters; ``None`` draws them with ``layer.init(rng)``.
        mode, rng, h, rtol, atol: as in :func:`check_grads`; ``rng`` also draws ``G``.

    Returns:
        A report with a row ``"x"`` for the input and one per parameter (``"W"``, ``"b"``).

    >>> import minifw as mf
    >>> check_layer(mf.Linear(3, 2), onp.ones((4, 3))).ok
    True
    """
    if not isinstance(layer, Layer):
        hint = " (a class: instantiate it)" if isinstance(layer, type) else ""
        raise TypeError(f"check_layer: layer must be a minifw.Layer, got {layer!r}{hint}")
    gen = as_generator(0 if rng is None else rng)
    params = layer.init(gen) if params is None else params
    if not isinstance(params, dict):
        raise TypeError(f"check_layer: params must be a dict, got {type(params).__name__}")
    params = copy_float(params)  # the layer never sees the caller's arrays
    if "x" in params:
        raise ValueError("check_layer: the layer has a parameter named 'x', the input's name")
    x = copy_float(x)
    y = onp.asarray(layer(params, x))
    G = gen.standard_normal(y.shape).astype(y.dtype if y.dtype.kind == "f" else onp.float64)

    def f(tree: dict[str, Any]) -> Any:  # sum(layer(p, tree["x"]) * G) over {"x": x, **p}
        return COTANGENT(layer({k: v for k, v in tree.items() if k != "x"}, tree["x"]), G)

    return check_grads(f, {"x": x, **params}, mode=mode, rng=gen, h=h, rtol=rtol, atol=atol)


#: ``sum(y * G)``: the scalar :func:`check_layer` differentiates, with ``G`` the cotangent.
COTANGENT = LossOp("cotangent", lambda y, G, lead: mnp.sum(y * G, axis=_axes(y, lead)),
                   lambda g, v, y, G: g * G, lambda g, v, y, G: g * y, reduce="sum")


def assert_grads_close(f: Callable[..., Any], params: Tree, *args: Any, **kwargs: Any) -> None:
    """Like :func:`check_grads`, but raise ``AssertionError`` with the report's table on failure.

    >>> import minifw as mf
    >>> assert_grads_close(lambda w: mf.np.sum(w ** 2), onp.ones(3))
    """
    report = check_grads(f, params, *args, **kwargs)
    if not report.ok:
        raise AssertionError(str(report))

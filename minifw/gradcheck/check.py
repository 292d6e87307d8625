"""``check_grads``: the backward passes held against central differences and the trace.

For the scalar ``f(params, *args)`` the checker computes the gradient as training does (the
backward passes, ``method="autograd"``) and holds it against two independent references:
central differences of ``f``, every element at once by the stacked engine (``mode="full"``)
or along random directions (``mode="projection"``), and, where hand-written backward passes
took part, autograd's trace of the forward passes alone (:mod:`minifw.gradcheck.reference`).

**Precision.** A check runs in float64: a float32 (or float16) ``f`` is evaluated on float64
copies of its parameters and float arguments, where central differences resolve relative
errors of 1e-6 instead of 1e-2; the float32 backward passes are then held against the float64
ones to within float32 rounding. If ``f`` cannot run in float64 the check runs in its own
precision (a note says so), except float16, whose values cannot test a gradient: refused.

**Tolerances** come from the rounding noise of ``f`` measured at the point, per array
(:mod:`minifw.gradcheck.noise`), with the old worst case ``64 eps max(1, |f|) / h`` as a floor
(the stacked engine rounds within it); an element that the first comparison does not confirm
is judged by a step sweep (:mod:`minifw.gradcheck.judge`), which passes it, fails it, or, only
where the function has a kink at the element itself, judges autograd on both sides of it.
Where the noise leaves central differences no power over a gradient, the row is undecided,
never passed.

Integer and boolean arrays (indices, masks) are not differentiated; their rows say so.
Nothing is changed: the check works on private copies, also when ``f`` raises.

>>> import numpy as onp, minifw as mf
>>> model = mf.Sequential(mf.Linear(3, 4), mf.ReLU(), mf.Linear(4, 2))
>>> rng = onp.random.default_rng(0)
>>> params, x = model.init(rng), rng.standard_normal((5, 3))
>>> f = lambda p, x: mf.SoftmaxCrossEntropy()(model(p, x), onp.array([0, 1, 0, 1, 1]))
>>> check_grads(f, params, x).ok, check_grads(f, params, x, mode="projection", rng=0).ok
(True, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as onp

from minifw.functions import real_number
from minifw.gradcheck.judge import KAPPA, Line, Verdict, judge
from minifw.gradcheck.noise import noise_level
from minifw.gradcheck.reference import TRACE_ROUNDING, Reference
from minifw.gradcheck.report import GradCheckReport, GradCheckRow
from minifw.numerical import default_step, evaluate_at, scalar_value, step_size
from minifw.stacked import Probe
from minifw.stacked import central_differences as stacked_differences
from minifw.tape import Tape, trace
from minifw.tree import Tree, leaves, tree_map

MODES = ("full", "projection")

#: A gradient whose first tolerance exceeds this fraction of its size cannot be tested there.
POWERLESS = 1e-2


def default_tolerances(dtype: Any, f0: float = 1.0) -> tuple[float, float, float]:
    """``(h, rtol, atol)`` for a function of ``dtype`` whose value is ``f0``.

    - ``h = eps**(1/3)`` balances truncation and rounding (:func:`minifw.numerical.default_step`).
    - ``rtol = 64 sqrt(eps)``: 9.5e-7 in float64. The best central difference is accurate to
      about ``eps**(2/3)`` (4e-11), while a wrong gradient is wrong by a factor, not in the
      7th digit.
    - ``atol = 64 eps max(1, |f0|) / h``: the rounding error of the quotient, ``eps |f| / h``,
      with a margin of 64 for the rounding accumulated inside ``f``; 2.3e-9 in float64. It is
      the floor of the tolerance; the measured noise of ``f`` sets it where that is larger.

    >>> [f"{v:.2g}" for v in default_tolerances("float64")]
    ['6.1e-06', '9.5e-07', '2.3e-09']
    """
    eps = float(onp.finfo(dtype).eps)
    h = default_step(dtype)
    return h, 64 * eps**0.5, 64 * eps * max(1.0, abs(float(f0))) / h


def _floats(tree: Tree) -> list[tuple[str, onp.ndarray]]:
    return [(p, a) for p, a in leaves(tree) if a.dtype.kind == "f"]


def _copy(tree: Tree, dtype: Any = None) -> Tree:
    """A private copy: float leaves as ``dtype`` (or their own), integers kept (constants)."""
    def one(a: Any) -> onp.ndarray:
        a = onp.array(a)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"expected real numeric arrays, got dtype {a.dtype}: {a!r:.80}")
        return a.astype(dtype) if dtype is not None and a.dtype.kind == "f" else a
    try:
        return tree_map(one, tree)
    except ValueError as e:  # a ragged list
        raise TypeError(f"expected numeric arrays, got a ragged sequence ({e})") from None


def _wide(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.astype(onp.float64, copy=False) if isinstance(a, onp.ndarray)
                 and a.dtype.kind == "f" else a for a in args)


def _least_precise(tree: Tree, args: tuple[Any, ...], f0: Any) -> onp.dtype:
    dtypes = [a.dtype for _, a in _floats(tree)] + [onp.asarray(f0).dtype]
    dtypes += [a.dtype for a in args if isinstance(a, onp.ndarray)]
    floats = [d for d in dtypes if d.kind == "f"]
    return max(floats, key=lambda d: onp.finfo(d).eps, default=onp.dtype(onp.float64))


def _direction(gen: onp.random.Generator, shape: tuple[int, ...]
               ) -> tuple[onp.ndarray, tuple[onp.ndarray, onp.ndarray] | None]:
    """A random unit direction of the given shape, and its factors ``(v, w)`` if a matrix.

    Entries uniform in ``[-1/2, 1/2)``: orthogonal to a given error vector with probability 0.
    A matrix's direction is the outer product ``v w^T`` of two such vectors: still
    orthogonal to a given nonzero error ``E`` with probability 0 (``v^T E w`` is a nonzero
    polynomial in ``v`` and ``w``), and a layer's output moves along it by a matrix-vector
    product.
    """
    def unit(n: Any) -> onp.ndarray:
        v = gen.random(n) - 0.5
        return v / onp.linalg.norm(v)

    if len(shape) != 2:
        return unit(shape), None
    v, w = unit(shape[0]), unit(shape[1])
    return onp.outer(v, w), (v, w)


class Check:
    """One check at one (float) point: ``f``, its value, gradient, probe and tolerances."""

    def __init__(self, f: Callable[..., Any], work: Tree, args: tuple[Any, ...], tape: Tape,
                 h: float, rtol: float, atol: float, gen: onp.random.Generator,
                 probe: Probe | None, reference: Reference | None):
        self.f, self.work, self.args, self.h, self.rtol, self.atol = f, work, args, h, rtol, atol
        self.gen, self.probe, self.reference = gen, probe, reference
        self.f0 = float(tape.value)
        self.grads = {p: onp.asarray(g, dtype=onp.float64) for p, g in leaves(tape.gradient())}
        #: each array's largest ``|gradient|``
        self.sizes = {p: float(onp.abs(g).max(initial=0.0)) for p, g in self.grads.items()}
        #: the largest gradient: differences below ``rtol`` times it are rounding, not bugs
        self.scale = max(self.sizes.values(), default=0.0)
        self.eps = float(onp.finfo(onp.float64).eps)
        self.started = time.perf_counter()
        self.bar: Any = None
        self.noises: dict[str, float] = {}
        self.atols: dict[str, onp.ndarray] = {}
        self.atol_given: float | None = None

    def fun(self, tree: Tree) -> Any:
        return scalar_value(self.f(tree, *self.args))

    def gradient_at(self, tree: Tree, path: str) -> onp.ndarray:
        """The backward passes' gradient of ``path`` at ``tree`` (float64)."""
        grads = trace(self.f, tree, self.args, integers=False).gradient()
        return onp.asarray(dict(leaves(grads))[path], dtype=onp.float64)

    def line(self, path: str, x: onp.ndarray, idx: Any = None, u: onp.ndarray | None = None,
             factors: tuple[onp.ndarray, onp.ndarray] | None = None) -> Line:
        """``f`` and the backward passes' slope along one element (``idx``) or ``u``."""
        probe = self.probe if self.probe is not None and self.probe.knows(x) else None
        where = idx if u is None else Ellipsis

        def moved(s: float) -> Any:
            return x[idx] + s if u is None else x + s * u

        value: Callable[[float], float]
        if probe is None:
            value = lambda s: float(evaluate_at(self.fun, self.work, x, where,  # noqa: E731
                                                moved(s)))
        elif u is None:
            value = lambda s: probe.at(x, idx, moved(s))  # noqa: E731
        else:
            value = probe.line(x, u, factors)

        def slope(s: float) -> float:
            g = evaluate_at(lambda t: self.gradient_at(t, path), self.work, x, where, moved(s),
                            scalar=False)
            return float(g[idx]) if u is None else float(onp.sum(g * u))

        if u is None:
            return Line(value, slope, at=float(x[idx]))
        return Line(value, slope)  # the rounding of x + s u is part of the measured noise

    def noise(self, path: str, x: onp.ndarray) -> float:
        """Measured once per array, where a comparison needs it."""
        if path not in self.noises:
            self.noises[path] = self._measure_noise(path, x)
        return self.noises[path]

    def _measure_noise(self, path: str, x: onp.ndarray) -> float:
        """The rounding noise of ``f`` as this array moves (along a random direction).

        Sampled 1/64 of the default float64 step apart, whatever ``h`` the caller gave: far
        enough apart for distinct values, close enough that curvature does not pass for
        noise and that few kinks fall among the points (a larger spacing would inflate the
        tolerance on a steep ``f``)."""
        if x.size == 0:
            return 0.0
        u, factors = _direction(self.gen, x.shape)
        delta = default_step(onp.float64) * max(1.0, float(onp.abs(x).max())) / 64
        return noise_level(self.line(path, x, u=u, factors=factors), delta)

    def _floor(self, noise: float) -> float:
        """``atol * step``: ``KAPPA`` times the measured noise, at least 8 roundings of ``f``
        (or the ``atol`` the caller gave)."""
        return self.atol_given * self.h if self.atol_given is not None else max(
            KAPPA * noise, 8 * self.eps * abs(self.f0))

    def _tick(self, n: int = 1) -> None:
        """Progress, once a check has run for 2 seconds."""
        if self.bar is None and time.perf_counter() - self.started > 2.0:
            from tqdm.auto import tqdm

            self.bar = tqdm(desc="gradient check", unit="element", leave=False)
        if self.bar is not None:
            self.bar.update(n)

    def _judged(self, line: Line, a: float, s0: float, noise: float) -> Verdict:
        self._tick()
        return judge(line, a, s0, noise, self.rtol, self.gen, self.rtol * self.scale)

    def _by_trace(self, path: str, idx: Any, v: Verdict) -> Verdict:
        """An element central differences left undecided (rounding swamped them) passes if
        the backward passes match autograd's trace of the forward passes there; one they
        failed passes if the trace is NumPy's derivatives alone (no user primitive in it)
        and matches: then the forward pass varies on a scale below every step (saturation
        at 1e300, say), and two analytic derivatives of the same code by other rules agree."""
        ref = self.reference
        if v.status not in ("undecided", "fail") or ref is None or (
                v.status == "fail" and not ref.independent):
            return v
        r = float(ref.grads[path][idx])
        if not ref.same(v.autograd, r):
            return v
        return Verdict("ok", v.autograd, v.numerical, v.step, f"central differences: "
                       f"{v.how.removeprefix('undecided: ')}; but the backward passes match "
                       f"autograd's trace of the forward passes there ({r:.8g})")

    def full_row(self, path: str, x: onp.ndarray, a: onp.ndarray,
                 c: onp.ndarray) -> GradCheckRow:
        """Every element of ``x``; ``c``: its central differences at the step ``h``."""
        s0 = self.h * onp.maximum(1.0, onp.abs(x))
        err = onp.abs(a - c)
        noise, close = 0.0, onp.zeros(x.shape, bool)
        for measured in (False, True):  # the noise is measured only if some element needs it
            noise = self.noise(path, x) if measured else 0.0
            atol = self._floor(noise) / s0
            tol = atol + self.rtol * (onp.maximum(onp.abs(a), onp.abs(c)) + self.scale)
            close = err <= tol
            if close.all():
                break
        items: list[tuple[Any, Verdict, float]] = []
        for idx in map(tuple, onp.argwhere(~close).tolist()):
            v = self._judged(self.line(path, x, idx), float(a[idx]), float(s0[idx]), noise)
            items.append((idx, self._by_trace(path, idx, v), float(tol[idx])))
        if close.any():  # the worst of the confirmed stands for them all
            i = int(onp.where(close, err / onp.maximum(tol, 1e-300), -1.0).argmax())
            idx = tuple(int(k) for k in onp.unravel_index(i, x.shape))
            items.append((idx, Verdict("ok", float(a[idx]), float(c[idx]), float(s0[idx])),
                          float(tol[idx])))
        self.atols[path] = atol
        return _summary(path, x, items, x.size, atol)

    def projection_row(self, path: str, x: onp.ndarray, a: onp.ndarray,
                       directions: int) -> tuple[GradCheckRow, str]:
        """Random unit directions in ``x``'s space; element by element if one fails."""
        draws = [_direction(self.gen, x.shape) for _ in range(directions if x.size else 0)]
        s0 = self.h * max(1.0, float(onp.abs(x).max(initial=0.0)))
        atol = self._floor(0.0) / s0
        items = []
        for k, (u, factors) in enumerate(draws):
            line = self.line(path, x, u=u, factors=factors)
            a_u = float(onp.sum(a * u))
            c = (line(s0) - line(-s0)) / (2 * s0)
            tol = atol + self.rtol * (max(abs(a_u), abs(c)) + self.scale)
            if abs(a_u - c) > tol:  # measure the noise only where it is needed
                atol = self._floor(self.noise(path, x)) / s0
                tol = atol + self.rtol * (max(abs(a_u), abs(c)) + self.scale)
            v = (Verdict("ok", a_u, c, s0) if abs(a_u - c) <= tol
                 else self._judged(line, a_u, s0, self.noise(path, x)))
            items.append((k, v, tol))
        self.atols[path] = onp.broadcast_to(onp.float64(atol), x.shape)  # one value, no copies
        row = _summary(path, x, items, len(draws), self.atols[path])
        if row.ok:
            return row, ""
        # a direction moves every element at once, and what it found wrong or could not
        # decide can be a meeting of several elements' kinks: settle this array element by
        # element, as full mode would
        c = stacked_differences(self.f, self.work, self.args, self.h, integers=False)
        note = (f"{path}: a direction {'failed' if row.failures else 'was undecided'}; checked "
                "element by element, the verdict of full mode")
        return self.full_row(path, x, a, onp.asarray(dict(leaves(c))[path])), note

    def against_trace(self, row: GradCheckRow, x: onp.ndarray, a: onp.ndarray) -> GradCheckRow:
        """``row`` with the backward passes' gradient held against the trace's.

        An element where they differ beyond rounding passes only if a kink at it explains
        the difference (:meth:`Reference.explains`), or central differences side clearly
        with the backward pass (the trace, outside their tolerance, is off there: a forward
        pass that autograd differentiates badly at one point); otherwise the backward pass is
        wrong there, however small the difference, also below what central differences see.
        """
        ref = self.reference
        assert ref is not None
        r = ref.grads[row.path]
        unit = ref.unit(a, row.path)
        diff = onp.abs(a - r)
        beyond = diff > TRACE_ROUNDING * unit
        # the difference in units of rounding, in place (the arrays can be large)
        ratio = onp.divide(diff, onp.maximum(unit, 1e-300, out=unit), out=unit)
        err = float(ratio.max(initial=0.0))
        wrong = [idx for idx in map(tuple, onp.argwhere(beyond).tolist())
                 if not self._explained(row.path, x, a, idx)] if beyond.any() else []
        if not wrong:
            return _replace(row, trace_error=err)
        idx = max(wrong, key=lambda i: ratio[i])
        verdict = (f"the backward pass disagrees with autograd's trace of the forward pass at "
                   f"{idx}: {a[idx]:.10g} against {r[idx]:.10g} ({ratio[idx]:.3g} "
                   f"eps, beyond the {TRACE_ROUNDING:g} of rounding), and no kink explains it: "
                   "the backward pass is wrong there")
        return _replace(row, ok=False, failures=row.failures + len(wrong), trace_error=err,
                        verdict=(row.verdict + "; " if row.verdict else "") + verdict)

    def _explained(self, path: str, x: onp.ndarray, a: onp.ndarray, idx: Any) -> bool:
        ref = self.reference
        assert ref is not None
        s0 = self.h * max(1.0, abs(float(x[idx])))
        line = self.line(path, x, idx)
        noise = self.noise(path, x)
        v = judge(line, float(a[idx]), s0, noise, self.rtol, self.gen, self.rtol * self.scale)
        r = float(ref.grads[path][idx])
        if v.status == "kink" or v.status == "ok" and abs(r - v.numerical) > (
                self.rtol * max(abs(r), abs(v.numerical)) + self._floor(noise) / s0):
            return True
        return ref.explains(path, float(a[idx]), idx, x, s0 / 16, lambda s: line.slope(s))


def _replace(row: GradCheckRow, **changes: Any) -> GradCheckRow:
    import dataclasses

    return dataclasses.replace(row, **changes)


def _summary(path: str, x: onp.ndarray, items: list[tuple[Any, Verdict, float]], checked: int,
             atol: onp.ndarray) -> GradCheckRow:
    """A row from the judged elements (or directions): the worst is the one with the largest
    error against its tolerance (failures first), and its own errors are shown."""
    def badness(item: tuple[Any, Verdict, float]) -> float:
        _, v, tol = item
        return abs(v.autograd - v.numerical) / max(tol, 1e-300) + (
            1e300 if v.status == "fail" else 1e200 if v.status == "undecided" else 0.0)

    smooth = [it for it in items if it[1].status != "kink"]
    fails = [it for it in items if it[1].status == "fail"]
    undecided = [it for it in items if it[1].status == "undecided"]
    idx, v, _ = max(smooth or items, key=badness, default=(None, Verdict("ok", 0.0, 0.0, 0.0),
                                                             1.0))
    floor = float(atol.min(initial=0.0)) if atol.size else 0.0

    def errors(w: Verdict) -> tuple[float, float]:
        e = abs(w.autograd - w.numerical)
        return e, e / max(abs(w.autograd), abs(w.numerical), floor, 1e-300)

    abs_e, rel_e = errors(v)
    maxima = [errors(w) for _, w, _ in smooth]
    kinks = len(items) - len(smooth)
    verdict = (fails or undecided)[0][1].how if fails or undecided else ""
    if kinks and not smooth and not verdict:
        verdict = f"every element judged was on a kink; one of them: {items[0][1].how}"
    value = float(x[idx]) if isinstance(idx, tuple) and x.ndim == len(idx) else None
    return GradCheckRow(path, tuple(x.shape), not fails and not undecided, idx, v.autograd,
                        v.numerical, abs_e, rel_e, kinks, checked, len(fails), verdict,
                        value=value, max_abs_error=max((m[0] for m in maxima), default=0.0),
                        max_rel_error=max((m[1] for m in maxima), default=0.0),
                        undecided=len(undecided))


def _powerless(row: GradCheckRow, atol: onp.ndarray, size: float, traced: bool
               ) -> GradCheckRow:
    """A passing row whose tolerance dwarfs its gradient (``size``: its largest element)
    has not been tested by central differences: undecided, unless the backward passes
    matched the trace (``traced``)."""
    worst = float(atol.max(initial=0.0))
    if not row.ok or size == 0.0 or worst <= POWERLESS * size:
        return row
    coarse = (f"the rounding noise of f gives central differences a tolerance of {worst:.2g} "
              f"against gradients of size {size:.2g}")
    if traced:
        return _replace(row, verdict=f"{coarse}: they are told apart by autograd's trace of "
                                     f"the forward passes, which the backward passes match")
    return _replace(row, ok=False, undecided=max(1, row.undecided), verdict=(
        f"undecided: {coarse}: too coarse to test them (compute f in float64, or scale it)"))


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
    order: int = 1,
) -> GradCheckReport:
    """Hold the gradient of ``f(params, *args)`` against central differences and the trace.

    Arguments:
        f: a scalar function written with ``minifw.np`` and minifw's ops and layers.
        params: an array or a nested dict of arrays (never changed); integer and boolean
            arrays are held constant, not differentiated.
        args: further arguments of ``f``, passed as they are.
        mode: ``"full"`` (every element) or ``"projection"`` (random directions per array).
        rng: a ``numpy.random.Generator`` or seed for the directions and the steps' random
            factors (``None``: seed 0, so reports are reproducible).
        h, rtol, atol: the first step and tolerances; ``None`` picks them from the precision
            the check runs in (:func:`default_tolerances`); the measured noise of ``f``
            raises ``atol`` where it is larger.
        directions: random directions per array in projection mode. One finds any wrong
            gradient of that array with probability 1; more shrink the chance that a small
            error's projection hides under the tolerance.
        order: 2 also checks second derivatives: the Hessian-vector products autograd gets by
            differentiating the backward passes, against central differences of gradients
            (:func:`minifw.gradcheck.second.check_second_order`).

    Returns:
        A :class:`~minifw.gradcheck.report.GradCheckReport`; ``report.ok`` is the verdict.
        A failing report names, where ``f``'s calls form a chain, the calls whose backward
        passes fail their own check in place (``report.blame``).

    >>> import minifw as mf
    >>> check_grads(lambda w: mf.np.sum(mf.np.sin(w)), onp.arange(3.0)).ok
    True
    """
    return run_check(f, params, args, mode=mode, rng=rng, h=h, rtol=rtol, atol=atol,
                     directions=directions, order=order)


def run_check(f: Callable[..., Any], params: Tree, args: tuple[Any, ...], *, mode: str = "full",
              rng: Any = None, h: float | None = None, rtol: float | None = None,
              atol: float | None = None, directions: int = 1, order: int = 1,
              blame: bool = True) -> GradCheckReport:
    """:func:`check_grads` with ``args`` as a tuple; ``blame=False`` skips the per-call
    checks of a failing ``f`` (the checks of blame itself)."""
    from minifw.gradcheck.blame import blame as blame_calls
    from minifw.gradcheck.blame import smooth_along
    from minifw.gradcheck.second import check_second_order
    from minifw.training import as_generator

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    h = None if h is None else step_size(h)
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if tol is not None and real_number(name, tol) < 0:
            raise ValueError(f"{name} must be >= 0, got {tol!r}")
    for name, n, allowed in (("directions", directions, None), ("order", order, (1, 2))):
        if isinstance(n, bool) or not isinstance(n, (int, onp.integer)) or n < 1 or (
                allowed and n not in allowed):
            raise ValueError(f"{name} must be {'1 or 2' if allowed else 'a whole number >= 1'}"
                             f", got {n!r}")
    gen = as_generator(0 if rng is None else rng)
    own = _copy(params)
    native = trace(f, own, args, integers=False)  # the backward passes, as training runs them
    f0 = float(scalar_value(native.value))
    if not onp.isfinite(f0):
        raise ValueError(f"check_grads: f is {f0} at the given parameters; nothing to check")
    _sound_gradient(f, own, args, native, f0)
    # nothing but integer leaves: nothing to differentiate, whatever f computes in
    dtype = _least_precise(own, args, native.value) if _floats(own) else onp.dtype(onp.float64)
    work, wide_args, tape = own, args, native
    notes: list[str] = []
    if dtype != onp.float64:
        work, wide_args, tape, notes = _in_float64(f, own, args, native, dtype)
    h0, rtol0, atol0 = default_tolerances(onp.float64 if work is not own else dtype, f0)
    h = h0 if h is None else float(h)
    rtol = rtol0 if rtol is None else float(rtol)
    atol_given = None if atol is None else float(atol)
    atol = atol0 * h0 / h if atol is None else float(atol)
    calls = trace(f, work, wide_args, record=True, integers=False)  # for the numerical engine
    wide = work if work is not own or dtype == onp.float64 else _copy(own, onp.float64)
    reference, ref_notes = Reference.of(f, wide, _wide(wide_args), float(onp.finfo(dtype).eps))
    check = Check(f, work, wide_args, tape, h, rtol, atol, gen,
                  Probe.of(f, work, wide_args, calls), reference)
    check.atol_given = atol_given
    numerical = dict(leaves(stacked_differences(f, work, wide_args, h, tape=calls,
                                                integers=False))) if mode == "full" else {}
    rows = []
    for path, x in leaves(work):
        if x.dtype.kind != "f":
            rows.append(GradCheckRow(path, tuple(x.shape), True, None, 0.0, 0.0, 0.0, 0.0, 0,
                                     0, 0, skipped=f"{x.dtype} array: not differentiated"))
            continue
        a = check.grads[path]
        if mode == "full":
            row = check.full_row(path, x, a, onp.asarray(numerical[path], dtype=onp.float64))
        else:
            row, note = check.projection_row(path, x, a, directions)
            notes += [note] if note else []
        if reference is not None:
            row = check.against_trace(row, x, a)
        rows.append(_powerless(row, check.atols[path], check.sizes[path], reference is not None))
    if check.bar is not None:
        check.bar.close()
    found = blame_calls(f, work, wide_args, calls) if blame and not all(
        r.ok for r in rows) else None
    if found is not None and not found[0] and found[1] and _chained_alike(check, calls):
        wrong = next(filter(None, (smooth_along(f, work, wide_args, row.path, row.index,
                                                found[1], gen)
                                   for row in rows if not row.ok and not row.undecided
                                   and isinstance(row.index, tuple))), None)
        if wrong is None:
            rows = [_composite(row, [name for _, name, *_ in found[1]]) for row in rows]
        else:
            found[0].append(wrong)
    if work is not own:
        rows = _native_rows(rows, native, check, dtype)
    report = GradCheckReport(rows, mode, str(dtype), h, rtol, atol, notes + ref_notes,
                             checked_in=str(onp.dtype(onp.float64) if work is not own else dtype))
    report.blame = found[0] if found is not None else []
    if order == 2:
        check_second_order(report, f, work, wide_args, gen)
    return report


def _chained_alike(check: Check, calls: Tape) -> bool:
    """Whether the gradient training computes is autograd's chain of the calls' own
    backward passes (the recorded tape), to rounding: no bug between the calls."""
    eps = float(onp.finfo(onp.float64).eps)
    chained = dict(leaves(calls.gradient()))
    return all(onp.all(onp.abs(a - onp.asarray(chained[p], dtype=onp.float64)) <= TRACE_ROUNDING
                       * eps * (onp.abs(a) + check.scale)) for p, a in check.grads.items())


def _composite(row: GradCheckRow, kinked: list[str]) -> GradCheckRow:
    """A failing row of a chain whose every call passes its own check in place, some on
    kinks of their own, and whose gradient is the chain of those calls' backward passes:
    not a wrong backward pass. ``f`` is differentiable there although its calls are not
    (their kinks cancel), and the chain rule, multiplying each call's convention at its
    kink, need not give ``f``'s derivative.
    """
    if row.ok or row.undecided:
        return row
    return _replace(row, ok=True, failures=0, kinks=row.kinks + row.failures, verdict=(
        f"{row.verdict}; but every call's backward pass passes its own check at the input it "
        f"sees, {', '.join(kinked)} on kinks there, and the gradient is their chain: f is "
        "differentiable at a meeting of kinks, whose conventions the chain rule multiplies"))


def _sound_gradient(f: Callable[..., Any], own: Tree, args: tuple[Any, ...], tape: Tape,
                    f0: float) -> None:
    """Refuse a gradient autograd cannot form, of the wrong shape, or not finite."""
    from minifw.gradcheck.vjps import misshapen

    def refuse(error: Exception | None, fallback: str) -> ValueError:
        wrong = misshapen(f, own, args)
        if wrong is None and error is not None:
            return error  # type: ignore[return-value]
        return ValueError(f"check_grads: {wrong or fallback}: a VJP returns the gradient of "
                          "its argument, shaped like it")

    try:
        grads = dict(leaves(tape.gradient()))
    except (ValueError, TypeError, AttributeError) as e:
        raise refuse(e, "") from e
    for path, x in leaves(own):
        if onp.shape(grads[path]) != onp.shape(x):
            raise refuse(None, f"the gradient of {path or 'params'!r} has shape "
                               f"{onp.shape(grads[path])}, the array has shape {onp.shape(x)}")
    for path, a in grads.items():  # e.g. inf * 0 for an input tanh saturates
        if not onp.all(onp.isfinite(a)):
            raise ValueError(f"check_grads: autograd's gradient at {path or 'params'!r} is not "
                             f"finite ({onp.asarray(a).ravel()[~onp.isfinite(a).ravel()][:3]}) "
                             f"though f = {f0:.6g} is: is a parameter or an input infinite?")


def _in_float64(f: Callable[..., Any], own: Tree, args: tuple[Any, ...], native: Tape,
                dtype: Any) -> tuple[Tree, tuple[Any, ...], Tape, list[str]]:
    """The point in float64, and ``f``'s tape there; or the native ones, with a note."""
    wide, wide_args = _copy(own, onp.float64), _wide(args)
    try:
        tape = trace(f, wide, wide_args, integers=False)
        if onp.asarray(tape.value).dtype.kind == "f" and onp.finfo(
                onp.asarray(tape.value).dtype).eps > 1e-6:
            raise TypeError(f"f returns {onp.asarray(tape.value).dtype} from float64 inputs")
        float(scalar_value(tape.value))
        return wide, wide_args, tape, []
    except Exception as e:
        if onp.finfo(dtype).eps > 1e-4:  # float16: its values cannot test a gradient
            eps = float(onp.finfo(dtype).eps)
            raise ValueError(
                f"check_grads: f computes in {dtype}, whose rounding (eps {eps:.1g}) leaves "
                f"central differences no power over a gradient, and it does not run in float64 "
                f"({type(e).__name__}: {e}); compute f in float32 or float64") from e
        return own, args, native, [f"f does not run in float64 ({type(e).__name__}: {e}): "
                                   f"checked in {dtype}, with its own rounding"]


def _native_rows(rows: list[GradCheckRow], native: Tape, check: Check, dtype: Any
                 ) -> list[GradCheckRow]:
    """Rows with the native (float32) backward passes held against the float64 ones.

    The unit of rounding per element is ``eps (|a| + |a64| + max |a64| + |f| / max(1, |x|))``:
    a gradient that cancels (a sum of terms of the size of ``f`` over ``x``, say a batch's
    ``p - t``) keeps the rounding of its terms, however small the sum."""
    eps = float(onp.finfo(dtype).eps)
    grads = dict(leaves(native.gradient()))
    arrays = dict(leaves(check.work))
    out = []
    for row in rows:
        if row.skipped:
            out.append(row)
            continue
        a, wide = onp.asarray(grads[row.path], dtype=onp.float64), check.grads[row.path]
        terms = abs(check.f0) / max(1.0, float(onp.abs(arrays[row.path]).max(initial=0.0)))
        unit = eps * (onp.abs(a) + onp.abs(wide) + check.scale + terms)
        bad = onp.abs(a - wide) > TRACE_ROUNDING * unit
        if bad.any():
            i = tuple(int(k) for k in onp.argwhere(bad)[0])
            row = _replace(row, ok=False, failures=row.failures + int(bad.sum()), verdict=(
                f"the {dtype} backward pass gives {a[i]:.8g} at {i} where the float64 one gives "
                f"{wide[i]:.8g}: beyond {dtype} rounding ({TRACE_ROUNDING * unit[i]:.2g})"))
        out.append(row)
    return out


def assert_grads_close(f: Callable[..., Any], params: Tree, *args: Any, **kwargs: Any) -> None:
    """Like :func:`check_grads`, but raise ``AssertionError`` with the report's table on failure.

    >>> import minifw as mf
    >>> assert_grads_close(lambda w: mf.np.sum(w ** 2), onp.ones(3))
    """
    report = check_grads(f, params, *args, **kwargs)
    if not report.ok:
        raise AssertionError(str(report))

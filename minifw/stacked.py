"""Central differences of a whole chain at once, on the same ops and layers ``f`` calls.

The loop of :func:`minifw.numerical.central_differences` moves one parameter to ``w + s`` and
``w - s`` and evaluates all of ``f`` twice. For an ``f`` whose calls form a chain (each call
takes the previous call's output, the last one is a loss; :meth:`minifw.tape.Tape.chain`),
this module evaluates the *same* central differences, ``(f(w + s) - f(w - s)) / ((w + s) -
(w - s))`` with the same steps, by re-running only what a move changes, with the calls' own
forward passes:

1. **Nothing before the moved parameter's call changes**: its input is reused.
2. **Samples are independent** after a ``per_sample`` call: ``f`` is the mean of per-sample
   losses, so a move's effect is the sum of its effects on each sample, and a batch of
   perturbed samples ("rows", any number of them) goes through the rest of the chain in one
   call per op. Of NumPy's own functions (a layer's forward pass written with ``minifw.np``,
   traced), an elementwise ufunc whose other arguments broadcast over the batch and a product
   ``x @ W`` with a matrix keep samples apart too: that is what they are.
3. **A weight of** :data:`~minifw.functions.AFFINE` (or of NumPy's ``x @ W``, an affine call
   with ``b = 0``) **moves one column along a line.** Moving
   ``W[i, j]`` by ``s`` moves sample ``b``'s output column ``j`` by ``s x[b, i]``: for every
   ``i``, sample ``b`` travels the same line ``z[b] + d e_j``. Each line's loss ``G(d)`` is
   evaluated at ``d = +-1/3, +-2/3, +-1`` times the largest move any ``i`` needs; its odd part
   ``(G(d) - G(-d)) / 2 = c1 d + c3 d**3`` is fitted at ``2/3`` and ``1`` and checked at
   ``1/3``. The central difference of every ``W[i, j]`` then follows by two products with
   ``x``. The fit's error is ``O(d**5)`` (``d ~ 1e-5`` in float64), far below rounding; a line
   that fails the check (a kink on it, a steep function) is evaluated point by point.
4. Any other parameter is moved element by element through its call (all at once when the
   call broadcasts over a leading stack axis of it, which is checked on the first move),
   then goes on as rows. A ``per_sample``
   op may name further arguments aligned with the batch in ``batch_args`` (a dropout mask):
   rows of samples get their rows of those too (:func:`on_rows`).

What does not fit (a side branch, a parameter used twice, a loss that is not a minifw loss, a
call after a non-``per_sample`` one that is not the loss) runs the loop. Results agree with
the loop to within its rounding error (the tests hold them to ``64 eps max(1, |f|) / step``).

>>> import numpy as onp, minifw as mf
>>> from minifw.numerical import central_differences as loop
>>> model = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), mf.Linear(4, 2))
>>> rng = onp.random.default_rng(0)
>>> params, x, t = model.init(rng), rng.standard_normal((5, 3)), onp.array([0, 1, 1, 0, 1])
>>> f = lambda p, x, t: mf.SoftmaxCrossEntropy()(model(p, x), t)
>>> fast = central_differences(f, params, (x, t), h=1e-5)
>>> slow = loop(lambda p: f(p, x, t), params, 1e-5, relative=True)
>>> bool(onp.abs(fast["0"]["W"] - slow["0"]["W"]).max() < 64 * 2.2e-16 / 1e-5)
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as onp

from minifw import numerical
from minifw.functions import AFFINE, LossOp
from minifw.tape import Call, Tape, _rebuild, trace
from minifw.tree import Tree

#: Elements of the largest array of rows per call (2 MB of float64): large enough that the
#: cost of a Python call vanishes, small enough to stay in cache.
CHUNK = 1 << 18

#: The points of a line, as fractions of its largest move: fitted at the last two, checked
#: at the first.
POINTS = (1 / 3, 2 / 3, 1.0)


def chain_of(f: Callable[..., Any], params: Tree, args: tuple[Any, ...],
             tape: Tape | None = None, integers: bool = True) -> Tape | None:
    """The recorded tape of ``f(params, *args)`` (or ``tape``, if made with ``record=True``)
    if its calls form a chain ending in a minifw loss over a batch, else ``None``.

    ``f`` that autograd cannot trace (plain NumPy on the parameters, say) has no chain; if
    it fails when called plainly too, that error is raised.
    """
    if tape is None:
        try:
            tape = trace(f, params, args, record=True, integers=integers)
        except Exception:
            f(params, *args)  # the loop's first call would raise this: raise it now
            return None
    calls = tape.chain()
    if (not calls or not isinstance(calls[-1].op, LossOp) or onp.ndim(calls[-1].args[0]) < 2
            or onp.size(calls[-1].args[0]) == 0):
        return None
    tape.calls = calls  # type: ignore[attr-defined]
    return tape


def _steps(w: onp.ndarray, h: float, relative: bool) -> onp.ndarray:
    """Half the step the loop takes, ``((w + s) - (w - s)) / 2`` with ``s = h max(1, |w|)``."""
    s = h * onp.maximum(1.0, onp.abs(w)) if relative else onp.full_like(w, h)
    s = s.astype(w.dtype)
    return ((w + s).astype(onp.float64) - (w - s)) / 2


def _samplewise(call: Call) -> bool:
    """Whether sample ``b`` of the call's output depends only on sample ``b`` of its running
    value: a minifw op says so itself; of NumPy's functions (a layer written with
    ``minifw.np``), an elementwise ufunc whose other arguments have fewer axes (so they
    broadcast over the batch), and a matrix product with a matrix, are."""
    if call.op is not None:
        return call.op.samplewise(call.options)
    fun, args = call.fun, call.args
    if call.options or not args:
        return False
    axes = onp.ndim(args[0])
    if isinstance(fun, onp.ufunc) and fun.signature is None and fun.nout == 1:
        return axes >= 1 and all(onp.ndim(a) < axes for a in args[1:])
    return _product(call) and axes >= 2


def _product(call: Call) -> bool:
    """Whether the call is NumPy's ``x @ W`` (``matmul`` or ``dot``) with ``W`` a matrix: linear
    in ``W`` as :data:`~minifw.functions.AFFINE` is."""
    return (call.op is None and (call.fun is onp.matmul or call.fun is onp.dot)
            and len(call.args) == 2 and not call.options and onp.ndim(call.args[1]) == 2)


def on_rows(call: Call, Z: Any, samples: onp.ndarray) -> Any:
    """``call`` on rows ``Z`` that are the samples ``samples`` of its batch: the arguments its
    op names in ``batch_args`` (aligned with the batch, such as a dropout mask) are indexed by
    ``samples`` too; the others (parameters) broadcast over any rows."""
    batched = getattr(call.op, "batch_args", ())
    if not batched:
        return call(Z)
    args = list(call.args)
    args[0] = Z
    for i in batched:
        args[i] = onp.asarray(args[i])[samples]
    return call.fun(*args, **call.options)


class Engine:
    """The chain of ``tape`` and what every move of a parameter does to ``f``."""

    def __init__(self, tape: Tape, h: float, relative: bool):
        self.calls: list[Call] = tape.calls  # type: ignore[attr-defined]
        self.arrays, self.h, self.relative = tape.arrays, h, relative
        loss = self.calls[-1]
        self.loss: LossOp = loss.op  # type: ignore[assignment]
        self.y, self.t = loss.args[0], loss.args[1]
        self.scale = self.loss.scale(self.y)
        self.base = onp.asarray(self.loss.values(self.y, self.t, 1), dtype=onp.float64)
        self.users = {leaf: (k, at) for k, c in enumerate(self.calls)
                      for at, leaf in c.params.items()}
        # (call, argument): whether the call broadcasts over a stack of moved copies of it
        self.stacks: dict[tuple[int, int], bool] = {}
        n = len(self.calls)
        # rows_after[k]: every call after k, up to the loss, keeps the samples apart
        self.rows_after = [all(map(_samplewise, self.calls[k + 1:n - 1])) for k in range(n)]

    # --- evaluating the rest of the chain ---------------------------------------------------

    def rows(self, k: int, samples: onp.ndarray, Z: Any) -> onp.ndarray:
        """Per-sample loss values when sample ``samples[r]``'s output of call ``k`` is
        ``Z[r]``, in float64 (the loss's own per-sample values)."""
        for c in self.calls[k + 1:-1]:
            Z = on_rows(c, Z, samples)
        return onp.asarray(self.loss.values(Z, self.t[samples], 1), dtype=onp.float64)

    def total(self, k: int, out: Any) -> float:
        """``f`` when call ``k`` outputs ``out`` (the whole batch)."""
        for c in self.calls[k + 1:-1]:
            out = c(out)
        return float(self.scale * onp.sum(self.loss.values(out, self.t, 1)))

    def moved(self, k: int, outs: Callable[[], Any], n: int) -> onp.ndarray:
        """The change of the sum of per-sample values for ``n`` moves, whose outputs of call
        ``k`` ``outs()`` gives stacked as ``(n, batch, ...)`` (or one by one)."""
        if k == len(self.calls) - 1:  # the loss itself: its outputs are values of f
            return onp.array([float(o) for o in outs()]) / self.scale - self.base.sum()
        if not self.rows_after[k]:
            return onp.array([self.total(k, o) / self.scale - self.base.sum() for o in outs()])
        stack = onp.asarray(outs())
        batch = stack.shape[1]
        change = self.rows(k, onp.tile(onp.arange(batch), n), stack.reshape(n * batch,
                                                                              *stack.shape[2:]))
        return (change.reshape(n, batch) - self.base).sum(axis=1)

    # --- the parameters -------------------------------------------------------------------

    def gradients(self) -> list[onp.ndarray]:
        """The central differences of every parameter leaf, in the tape's order."""
        grads = [onp.zeros(onp.shape(a)) for a in self.arrays]
        done: set[int] = set()
        for k, c in enumerate(self.calls):
            if ((c.op is AFFINE or _product(c)) and onp.ndim(c.args[0]) == 2
                    and self.rows_after[k] and c.params.keys() & {1, 2}):
                W, b = self.lines(k)
                for at, g in ((1, W), (2, b)):
                    if at in c.params:
                        grads[c.params[at]][...] = g
                        done.add(c.params[at])
        for leaf, (k, at) in self.users.items():
            if leaf not in done:
                grads[leaf][...] = self.elements(k, at)
        return grads

    def elements(self, k: int, at: int) -> onp.ndarray:
        """Central differences of argument ``at`` of call ``k``, element by element."""
        c = self.calls[k]
        w = onp.asarray(c.args[at])
        flat = w.ravel()
        s = _steps(flat, self.h, self.relative)
        up, down = (flat + s).astype(w.dtype), (flat - s).astype(w.dtype)
        span = up.astype(onp.float64) - down
        out = onp.empty(flat.size)
        if at == 0 and _samplewise(c) and self.rows_after[k]:
            return self.inputs(k, w, up, down, span)
        per = max(1, CHUNK // max(1, onp.size(c.out)))
        for start in range(0, flat.size, per):
            idx = onp.arange(start, min(start + per, flat.size))
            diffs = [self.moved(k, self._outs(k, at, w, idx, v), len(idx)) for v in (up, down)]
            out[idx] = self.scale * (diffs[0] - diffs[1]) / span[idx]
        return out.reshape(w.shape)

    def _outs(self, k: int, at: int, w: onp.ndarray, idx: onp.ndarray,
              values: onp.ndarray) -> Callable[[], Any]:
        """The outputs of call ``k`` with ``w.flat[i]`` set to ``values[i]``, for ``i`` in
        ``idx``: one call on a stack of moved copies when the call broadcasts over it."""
        c = self.calls[k]

        def copies() -> onp.ndarray:
            stack = onp.repeat(w[None], len(idx), axis=0)
            stack.reshape(len(idx), -1)[onp.arange(len(idx)), idx] = values[idx]
            return stack

        def outs() -> Any:
            stack = copies()
            if self.stacks.get((k, at)):  # it broadcasts: one call for all
                return onp.asarray(c(stack, at))
            one = onp.asarray(c(stack[-1], at))
            if (k, at) not in self.stacks:  # does it? checked on one move, the first time
                self.stacks[k, at] = False
                try:
                    out = onp.asarray(c(stack, at))
                    tol = 64 * float(onp.finfo(out.dtype).eps) * float(
                        onp.abs(one).max(initial=1.0))
                    if out.shape == (len(idx), *one.shape) and onp.allclose(
                            out[-1], one, rtol=0, atol=tol):
                        self.stacks[k, at] = True
                        return out
                except Exception:  # noqa: S110  it does not: one move at a time
                    pass
            return [one] if len(idx) == 1 else [onp.asarray(c(m, at)) for m in stack]

        return outs

    def inputs(self, k: int, x: onp.ndarray, up: onp.ndarray, down: onp.ndarray,
               span: onp.ndarray) -> onp.ndarray:
        """Central differences of the input of the ``per_sample`` call ``k``: each move
        changes one sample, which goes through the chain as a row of its own."""
        c = self.calls[k]
        batch, size = x.shape[0], x[0].size
        flat = x.reshape(batch, size)
        out = onp.empty(x.size)
        per = max(1, CHUNK // (2 * max(size, onp.size(c.out) // max(batch, 1))))
        for start in range(0, x.size, per):
            idx = onp.arange(start, min(start + per, x.size))
            samples = idx // size
            rows = onp.concatenate([flat[samples], flat[samples]])
            cols = onp.concatenate([idx % size, idx % size])
            rows[onp.arange(len(rows)), cols] = onp.concatenate([up[idx], down[idx]])
            both = onp.concatenate([samples, samples])
            v = self.rows(k, both, on_rows(c, rows.reshape(len(rows), *x.shape[1:]), both))
            out[idx] = self.scale * (v[:len(idx)] - v[len(idx):]) / span[idx]
        return out.reshape(x.shape)

    def lines(self, k: int) -> tuple[onp.ndarray, onp.ndarray]:
        """Central differences of the ``W`` and ``b`` of the affine call ``k`` (``x`` 2-D),
        one fitted line per sample and output column (see the module docstring); a product
        ``x @ W`` is the affine call without ``b`` (its ``b``'s, returned, are not used)."""
        c = self.calls[k]
        x, W = (onp.asarray(a) for a in c.args[:2])
        z = onp.asarray(c.out)
        N, J = z.shape
        # a product is the affine call with b = 0 (whose steps still set each line's least
        # extent, as an affine call's do)
        b = onp.asarray(c.args[2]) if c.op is AFFINE else onp.zeros(J, dtype=W.dtype)
        sW, sb = _steps(W, self.h, self.relative), _steps(b, self.h, self.relative)
        x64 = x.astype(onp.float64)
        # the largest move of line (n, j): max_i |s_ij x_ni| <= max_i |x_ni| max_i |s_ij|
        d0 = onp.maximum(onp.abs(x64).max(axis=1)[:, None] * onp.abs(sW).max(axis=0), sb)
        n, j = onp.divmod(onp.arange(N * J), J)
        pts = onp.array(POINTS)
        odd = self._odd(k, z, onp.tile(n, 3), onp.tile(j, 3),
                        (pts[:, None] * d0.ravel()).ravel()).reshape(3, N, J)
        c3 = (2 / 3 * odd[2] - odd[1]) * 27 / 10
        c1 = odd[2] - c3
        tol = 64 * float(onp.finfo(z.dtype).eps) * onp.maximum(1.0, onp.abs(self.base))[:, None]
        smooth = onp.abs(c1 / 3 + c3 / 27 - odd[0]) <= tol
        safe = onp.where(smooth, d0, 1.0)
        u1, u3 = onp.where(smooth, c1 / safe, 0.0), onp.where(smooth, c3 / safe ** 3, 0.0)
        gW = x64.T @ u1 + sW ** 2 * ((x64 ** 3).T @ u3)
        gb = u1.sum(axis=0) + sb ** 2 * u3.sum(axis=0)
        rough_n, rough_j = onp.nonzero(~smooth)  # those lines point by point
        if len(rough_n):
            n_in = x.shape[1]
            moves = onp.concatenate([sW[:, rough_j] * x64[rough_n].T, sb[None, rough_j]])
            exact = self._odd(k, z, onp.broadcast_to(rough_n, moves.shape).ravel(),
                              onp.broadcast_to(rough_j, moves.shape).ravel(),
                              moves.ravel()).reshape(moves.shape)
            onp.add.at(gW.T, rough_j, (exact[:n_in] / sW[:, rough_j]).T)
            onp.add.at(gb, rough_j, exact[n_in] / sb[rough_j])
        return self.scale * gW, self.scale * gb

    def _odd(self, k: int, z: onp.ndarray, samples: onp.ndarray, cols: onp.ndarray,
             moves: onp.ndarray) -> onp.ndarray:
        """``(G(m) - G(-m)) / 2`` for each entry, ``G`` the per-sample loss of sample
        ``samples[r]`` when its output column ``cols[r]`` of call ``k`` moves by ``m``."""
        out = onp.empty(len(moves))
        per = max(1, CHUNK // (2 * z.shape[1]))
        for start in range(0, len(moves), per):
            r = slice(start, start + per)
            rows = onp.concatenate([z[samples[r]], z[samples[r]]])
            L = len(rows) // 2
            m = moves[r].astype(z.dtype)
            rows[onp.arange(L), cols[r]] += m
            rows[onp.arange(L, 2 * L), cols[r]] -= m
            v = self.rows(k, onp.concatenate([samples[r], samples[r]]), rows)
            out[r] = (v[:L] - v[L:]) / 2
        return out


def central_differences(f: Callable[..., Any], params: Tree, args: tuple[Any, ...], h: float,
                        relative: bool = True, tape: Tape | None = None,
                        integers: bool = True) -> Tree:
    """Central differences of ``f(params, *args)`` in ``params``: stacked when ``f``'s calls
    form a chain, else the loop (:func:`minifw.numerical.central_differences`).

    Arguments:
        f: the scalar function.
        params: the point (left exactly as it was).
        args: the other arguments of ``f``.
        h: the step.
        relative: use the step ``h * max(1, |w|)`` per element, as the loop does.
        tape: ``f``'s recorded tape at ``params`` (:func:`minifw.tape.trace` with
            ``record=True``), if the caller has it.
        integers: differentiate integer arrays; ``False`` holds them constant (0).

    Returns:
        The central differences, with the structure of ``params``.

    >>> central_differences(lambda p, c: c * (p ** 2).sum(), onp.array([1.0]), (3.0,),
    ...                     1e-5).round(6)
    array([6.])
    """
    tape = chain_of(f, params, args, tape, integers)
    if tape is not None:
        with onp.errstate(all="ignore"):  # a non-finite estimate goes to the loop, which says why
            grads = Engine(tape, h, relative).gradients()
        if all(onp.isfinite(g).all() for g in grads):
            return _rebuild(params, iter(g.astype(onp.result_type(a, onp.float32), copy=False)
                                         for g, a in zip(grads, tape.arrays)))
    return numerical.central_differences(lambda p: f(p, *args), params, h, relative=relative,
                                         integers=integers)


class Probe:
    """Values of ``f`` near one point, re-running only the calls after the moved parameter's:
    what a gradient checker evaluates again and again.

    ``at(leaf, index, moved)`` is ``f`` with ``leaf[index]`` set to ``moved``; ``line(leaf,
    u)(s)`` is ``f(leaf + s u)`` (for an argument of an affine call or of ``x @ W``, by its
    linearity: one product per line). ``leaf`` is one of the arrays of the tree the probe was
    made on.

    >>> import numpy as onp, minifw as mf
    >>> model = mf.Sequential(mf.Linear(2, 3), mf.Tanh(), mf.Linear(3, 2))
    >>> rng = onp.random.default_rng(0)
    >>> params, x, t = model.init(rng), rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    >>> f = lambda p, x, t: mf.SumSquaresError()(model(p, x), t)
    >>> probe = Probe.of(f, params, (x, t))
    >>> W = params["0"]["W"]
    >>> slow = mf.numerical.evaluate_at(lambda p: f(p, x, t), params, W, (1, 2), W[1, 2] + 0.5)
    >>> bool(abs(probe.at(W, (1, 2), W[1, 2] + 0.5) - slow) < 1e-14)
    True
    """

    def __init__(self, engine: Engine, arrays: list[Any]):
        self.engine = engine
        self.where = {id(a): engine.users[i] for i, a in enumerate(arrays) if i in engine.users}

    @classmethod
    def of(cls, f: Callable[..., Any], params: Tree, args: tuple[Any, ...],
           tape: Tape | None = None) -> Probe | None:
        """A probe of ``f(params, *args)`` if its calls form a chain, else ``None``."""
        tape = chain_of(f, params, args, tape)
        return None if tape is None else cls(Engine(tape, 1.0, True), tape.arrays)

    def knows(self, leaf: Any) -> bool:
        """Whether ``leaf`` is a parameter array that ``f`` uses, as one of its calls' arguments."""
        return id(leaf) in self.where

    def _f(self, k: int, out: Any) -> float:
        e = self.engine
        if k == len(e.calls) - 1:
            return float(out)
        for c in e.calls[k + 1:]:
            out = c(out)
        return float(out)

    def at(self, leaf: onp.ndarray, index: Any, moved: Any) -> float:
        """``f`` with the element ``leaf[index]`` replaced by ``moved``."""
        k, at = self.where[id(leaf)]
        w = leaf.copy()
        w[index] = moved
        return self._f(k, self.engine.calls[k](w, at))

    def line(self, leaf: onp.ndarray, u: onp.ndarray,
             factors: tuple[onp.ndarray, onp.ndarray] | None = None) -> Callable[[float], float]:
        """``s -> f(leaf + s u)``, ``u`` a direction shaped like ``leaf`` (``factors``: ``u``
        as ``outer(v, w)``, for a matrix)."""
        k, at = self.where[id(leaf)]
        c = self.engine.calls[k]
        if (c.op is AFFINE or _product(c)) and onp.ndim(c.args[0]) == 2:
            x, W = c.args[:2]
            if at == 1:
                du = onp.outer(x @ factors[0], factors[1]) if factors is not None else x @ u
            else:
                du = u @ W if at == 0 else onp.broadcast_to(u, onp.shape(c.out))
            z = c.out
            return lambda s: self._f(k, z + s * du)
        return lambda s: self._f(k, c((leaf + s * u).astype(leaf.dtype), at))

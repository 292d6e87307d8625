"""Central differences of a whole network at once: stacked perturbations, one vectorised call.

The loop of :func:`minifw.numerical.central_differences` moves one parameter ``w`` to
``w + s`` and to ``w - s``, runs the whole network twice, and divides the difference of the
two losses by the step. For a 784-50-10 network that is 79,520 forward passes. This module
computes the *same* central differences, ``(f(w + s) - f(w - s)) / ((w + s) - (w - s))`` with
the same steps, for a chain of ``Linear`` layers and activations ending in a built-in loss
(:class:`Chain`), by three observations:

1. **Nothing before the perturbed layer changes.** The unperturbed activations are computed
   once and reused.
2. **A weight moves one column.** Moving ``W[i, j]`` of a layer with input ``A`` by ``d``
   changes only column ``j`` of its output, by ``d * A[:, i]`` (and moving ``b[j]``, by
   ``d``); an elementwise activation keeps that change in column ``j``, and the next layer
   turns it into the rank-one change ``delta[:, None] * W_next[j]``. Thousands of perturbations
   are stacked along a new axis and carried through the rest of the network together, as
   *changes* of each activation (``act(z + dz) - act(z)``; for a ``Linear``, ``dz @ W``).
3. **Every loss here is a sum over samples**, so the change of ``f`` is the sum of the changes
   of the per-sample losses, each written without cancellation (softmax cross-entropy:
   ``log1p(sum_c p_c expm1(dz_c)) - t . dz``). A sample whose activations did not change
   (a ReLU that stays off, an input pixel that is 0) adds exactly 0 and is skipped.

**Rounding bound.** In exact arithmetic the two computations are identical: ``f(w + s) -
f(w - s)`` is the difference of the change of ``f`` at ``+s`` and at ``-s``. In floating point
the loop's difference of two values of ``f`` is off by a few ``eps |f|``; here each change of
an activation is off by a few ``eps`` times that activation (``act(z + dz) - act(z)``, as the
loop's forward pass is), and the change of the loss by a few ``eps`` times the change itself
(no cancellation). Divided by the step, both are within the rounding error of a central
difference, and the stated bound is that error with the checker's margin:
``|fast - loop| <= 64 eps max(1, |f|) / step`` per element, the ``atol`` of
:func:`minifw.gradcheck.default_tolerances`. The tests hold every fast path to it against the
loop, on random networks of every supported kind (measured: a few percent of the bound).

>>> import numpy as onp, minifw as mf
>>> from minifw.numerical import central_differences
>>> model = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), mf.Linear(4, 2))
>>> f = mf.Objective(model, mf.SoftmaxCrossEntropy())
>>> rng = onp.random.default_rng(0)
>>> params, x, t = model.init(rng), rng.standard_normal((5, 3)), onp.array([0, 1, 1, 0, 1])
>>> fast = fused_central_differences(f, params, (x, t), h=1e-5)
>>> loop = central_differences(lambda p: f(p, x, t), params, 1e-5, relative=True)
>>> bool(onp.abs(fast["0"]["W"] - loop["0"]["W"]).max() < 64 * 2.2e-16 / 1e-5)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as onp

from minifw import functions as F
from minifw.numerical import central_differences
from minifw.tree import Tree

#: Elements of the largest stacked array per vectorised call (2 MB of float64, in a buffer
#: allocated once): large enough that Python's per-call cost vanishes.
CHUNK_ELEMENTS = 1 << 18

#: Elements of the other arrays per call (128 kB): glibc serves larger arrays by mmap, and
#: returns them to the system when freed, so every new one costs page faults (a 6x slowdown
#: of the activations here); arrays below this size come from the heap.
SMALL_ELEMENTS = 1 << 14

#: Carry on with only the samples whose activations changed when fewer than this fraction did.
COMPACT_BELOW = 0.8


@dataclass
class Chain:
    """A network as the engine sees it: ops, their weights, the loss and the targets.

    Arguments:
        ops: the ops in order (:class:`minifw.objective.Op`: ``kind`` is ``"linear"``,
            ``"act"`` or ``"softmax"``, and ``forward(a)`` computes an activation).
        weights: ``(W, b)`` of each ``"linear"`` op, in order (float64).
        loss: ``"sce"`` (softmax cross-entropy on logits), ``"ce"`` (cross-entropy on
            probabilities), ``"sse"``, ``"mse"``, or ``"dot"`` (``sum(y * target)``, the
            scalar of :func:`minifw.check_layer`).
        target: integer labels ``(batch,)`` or an array shaped like the output.
    """

    ops: Sequence[Any]
    weights: Sequence[tuple[onp.ndarray, onp.ndarray]]
    loss: str
    target: onp.ndarray

    def forward(self, x: onp.ndarray) -> list[onp.ndarray]:
        """The unperturbed activations: ``acts[k]`` is the input of op ``k``, ``acts[-1]`` y."""
        acts = [x]
        k = 0
        for op in self.ops:
            if op.kind == "linear":
                acts.append(op.forward(acts[-1], *self.weights[k]))
                k += 1
            else:
                acts.append(op.forward(acts[-1]))
        return acts


Cols = Any  # one column index (an int: every perturbation in that column) or one per perturbation
Samples = Any  # None (every sample) or an index array


def _take(a: onp.ndarray, sel: Samples, cols: Cols) -> onp.ndarray:
    """``a[sel][:, cols]``; an int ``cols`` gives a column of shape ``(samples, 1)``."""
    if isinstance(cols, int):
        return a[:, cols:cols + 1] if sel is None else a[sel, cols:cols + 1]
    return a[:, cols] if sel is None else a[onp.ix_(sel, cols)]


def _rows(a: onp.ndarray | None, sel: Samples) -> Any:
    return a if a is None or sel is None else a[sel]


class _Loss:
    """The change of ``f`` when the network's output ``y`` changes, sample by sample.

    ``column(sel, cols, d)``: output column ``cols[p]`` of sample ``sel[b]`` changes by
    ``d[b, p]``; ``dense(sel, d)``: output ``c`` of sample ``sel[b]`` changes by ``d[b, c, p]``
    (perturbations last, so that every elementwise step runs along contiguous memory). Both
    return the change of ``f`` per perturbation ``p``, each sample's change written without
    cancellation.
    """

    def __init__(self, kind: str, y: onp.ndarray, target: onp.ndarray):
        batch, classes = y.shape
        self.kind = kind
        self.labels = target if target.ndim == 1 else None
        T = onp.eye(classes)[target] if target.ndim == 1 else target
        self.T = T
        self.scale = 1.0 / y.size if kind == "mse" else 1.0 if kind == "dot" else 1.0 / batch
        self.Tb = None
        if kind == "sce":
            shifted = y - y.max(axis=-1, keepdims=True)
            e = onp.exp(shifted)
            self.p = e / e.sum(axis=-1, keepdims=True)
            self.Tb = None if self.labels is not None else T.sum(axis=-1)
        elif kind == "ce":
            self.q = y + F.DELTA
        elif kind in ("sse", "mse"):
            self.r = y - T

    def column(self, sel: Samples, cols: Cols, d: onp.ndarray) -> onp.ndarray:
        T = _take(self.T, sel, cols)
        if self.kind == "sce":
            # lse(z + dz) - lse(z) = log1p(p_j expm1(dz_j)) when only z_j moves
            change = onp.log1p(_take(self.p, sel, cols) * onp.expm1(d))
            if self.Tb is not None:
                change *= _rows(self.Tb, sel)[:, None]
            change -= T * d
        elif self.kind == "ce":
            change = -T * onp.log1p(d / _take(self.q, sel, cols))
        elif self.kind == "sse":
            change = d * (_take(self.r, sel, cols) + 0.5 * d)
        elif self.kind == "mse":
            change = d * (2.0 * _take(self.r, sel, cols) + d)
        else:  # dot
            change = d * T
        return self.scale * change.sum(axis=0)

    def dense(self, sel: Samples, d: onp.ndarray) -> onp.ndarray:
        kind, labels = self.kind, _rows(self.labels, sel)
        if labels is not None and kind in ("sce", "ce"):
            at_label = d[onp.arange(len(labels)), labels]  # (samples, perturbations)
        if kind == "sce":
            t_dot = at_label if labels is not None else _rowdot(d, _rows(self.T, sel))
            # lse(z + dz) - lse(z) = log1p(sum_c p_c expm1(dz_c)); d is ours to overwrite
            change = onp.log1p(_rowdot(onp.expm1(d, out=d), _rows(self.p, sel)))
            if self.Tb is not None:
                change *= _rows(self.Tb, sel)[:, None]
            change -= t_dot
        elif kind == "ce":
            q = _rows(self.q, sel)
            if labels is not None:
                change = -onp.log1p(at_label / q[onp.arange(len(labels)), labels][:, None])
            else:
                change = -_rowdot(onp.log1p(d / q[:, :, None]), _rows(self.T, sel))
        elif kind == "sse":
            change = _rowdot(d, _rows(self.r, sel)) + 0.5 * _rowdot(d * d, None)
        elif kind == "mse":
            change = 2.0 * _rowdot(d, _rows(self.r, sel)) + _rowdot(d * d, None)
        else:  # dot
            change = _rowdot(d, _rows(self.T, sel))
        return self.scale * change.sum(axis=0)


def _rowdot(d: onp.ndarray, v: onp.ndarray | None) -> onp.ndarray:
    """``sum_c v[b, c] * d[b, c, p]`` (``v = None``: ones), a batch of vector-matrix products."""
    if v is None:
        return d.sum(axis=1)
    return onp.matmul(v[:, None, :], d)[:, 0, :]


class _Engine:
    """Carries stacked changes of one layer's output through the rest of the chain."""

    def __init__(self, chain: Chain, x: onp.ndarray, acts: list[onp.ndarray] | None = None):
        self.chain = chain
        self.acts = chain.forward(x) if acts is None else acts
        self.loss = _Loss(chain.loss, self.acts[-1], chain.target)
        self.buffer = onp.empty(CHUNK_ELEMENTS)  # reused: no page faults, stays in cache
        self.linear_of: dict[int, int] = {}
        for k, op in enumerate(chain.ops):
            if op.kind == "linear":
                self.linear_of[k] = len(self.linear_of)

    def width_after(self, k: int) -> int:
        """The widest row that stacked changes after op ``k`` need (1 if they stay a column)."""
        widths = [1]
        dense = False
        for j in range(k + 1, len(self.chain.ops)):
            dense = dense or self.chain.ops[j].kind != "act"
            if dense:
                widths.append(self.acts[j + 1].shape[1])
        return max(widths)

    def change_of_f(self, k: int, sel: Samples, cols: Cols, d: onp.ndarray,
                    dense: onp.ndarray | None = None) -> onp.ndarray:
        """The change of ``f`` per perturbation ``p`` when the output of op ``k`` (``k = -1``:
        the input) changes by ``d[b, p]`` in column ``cols[p]`` (or ``cols``) of sample
        ``sel[b]``; or, given ``dense``, by ``dense[b, c, p]`` in every column ``c``."""
        ops, acts = self.chain.ops, self.acts
        n = d.shape[1] if dense is None else dense.shape[2]
        for j in range(k + 1, len(ops)):
            op = ops[j]
            if op.kind == "linear":
                WT = self.chain.weights[self.linear_of[j]][0].T
                if dense is None:  # a column change becomes rank one, in the reused buffer
                    w = _take(WT, None, cols)  # (out, 1) or (out, n)
                    size = d.shape[0] * WT.shape[0] * n
                    out = self.buffer[:size].reshape(d.shape[0], WT.shape[0], n)
                    dense = onp.multiply(d[:, None, :], w, out=out)
                else:
                    dense = onp.matmul(WT, dense)
            elif op.kind == "act" and dense is None:
                d = op.forward(_take(acts[j], sel, cols) + d)
                d -= _take(acts[j + 1], sel, cols)
                changed = d.any(axis=1)
                n_changed = int(changed.sum())
                if n_changed == 0:
                    return onp.zeros(n)
                if n_changed < COMPACT_BELOW * len(d):  # drop the samples that did not change
                    everyone = onp.arange(len(acts[0])) if sel is None else sel
                    sel, d = everyone[changed], d[changed]
            elif op.kind == "act":
                dense = op.forward(_rows(acts[j], sel)[:, :, None] + dense)
                dense -= _rows(acts[j + 1], sel)[:, :, None]
            else:
                z = _rows(acts[j], sel)
                if dense is None:  # softmax mixes the columns of a row
                    dense = onp.zeros((len(z), z.shape[1], n))
                    if isinstance(cols, int):
                        dense[:, cols, :] = d
                    else:
                        dense[:, cols, onp.arange(n)] = d
                # softmax acts on the last axis: move the outputs there and back
                moved = op.forward(z[:, None, :] + dense.transpose(0, 2, 1))
                dense = (moved - _rows(acts[j + 1], sel)[:, None, :]).transpose(0, 2, 1)
        if dense is None:
            return self.loss.column(sel, cols, d)
        return self.loss.dense(sel, dense)

    def central(self, k: int, sel: Samples, cols: Cols, a: onp.ndarray, w: onp.ndarray,
                h: float, relative: bool) -> onp.ndarray:
        """Central differences of ``n`` parameters ``w`` whose move by ``s`` changes the
        output of op ``k`` in column ``cols[p]`` by ``s * a[:, p]``."""
        up, down = _steps(w, h, relative)
        n = len(w)
        d = onp.empty((a.shape[0], 2 * n))
        onp.multiply(a, up - w, out=d[:, :n])
        onp.multiply(a, down - w, out=d[:, n:])
        both = cols if isinstance(cols, int) else onp.concatenate([cols, cols])
        change = self.change_of_f(k, sel, both, d)
        return (change[:n] - change[n:]) / (up - down)

    def linear(self, k: int, h: float, relative: bool) -> tuple[onp.ndarray, onp.ndarray]:
        """Central differences of the ``W`` and ``b`` of the ``Linear`` op ``k``."""
        W, b = self.chain.weights[self.linear_of[k]]
        A = self.acts[k]
        n_in, n_out = W.shape
        Wb = onp.vstack([W, b])  # row n_in: the bias, whose input is 1
        A1 = onp.hstack([A, onp.ones((len(A), 1))])
        grad = onp.zeros_like(Wb)
        # a row whose input is 0 in every sample moves nothing: its differences are exactly 0
        used = onp.flatnonzero(A1.any(axis=0))
        A1, Wb = A1[:, used], Wb[used]
        per_chunk = max(1, min(CHUNK_ELEMENTS // self.width_after(k), SMALL_ELEMENTS)
                        // (2 * len(A)))
        if per_chunk >= len(used):  # whole columns per call
            step = per_chunk // len(used)
            for j0 in range(0, n_out, step):
                js = onp.arange(j0, min(j0 + step, n_out))
                rows = onp.tile(onp.arange(len(used)), len(js))
                cols = onp.repeat(js, len(used))
                g = self.central(k, None, cols, A1[:, rows], Wb[rows, cols], h, relative)
                grad[onp.ix_(used, js)] = g.reshape(len(js), len(used)).T
        else:  # a column in one or more calls
            for j in range(n_out):
                for start in range(0, len(used), per_chunk):
                    part = slice(start, start + per_chunk)
                    g = self.central(k, None, j, A1[:, part], Wb[part, j], h, relative)
                    grad[used[part], j] = g
        return grad[:n_in], grad[n_in]

    def inputs(self, h: float, relative: bool) -> onp.ndarray:
        """Central differences of the input ``x``, one sample at a time (a row change)."""
        x = self.acts[0]
        grad = onp.zeros_like(x)
        per_chunk = max(1, CHUNK_ELEMENTS // (2 * self.width_after(-1)))
        for i in range(len(x)):
            for start in range(0, x.shape[1], per_chunk):
                cols = onp.arange(start, min(start + per_chunk, x.shape[1]))
                ones = onp.ones((1, len(cols)))
                grad[i, cols] = self.central(-1, onp.array([i]), cols, ones, x[i, cols], h,
                                             relative)
        return grad


class Probe:
    """Values of ``f`` near one point, by the engine: what a gradient checker re-evaluates.

    Made by :func:`fused_probe` for an ``f`` that knows its structure. ``at(leaf, index,
    moved)`` is ``f`` with the element ``leaf[index]`` replaced by ``moved``, and
    ``line(leaf, u)(s)`` is ``f(leaf + s u)``, where ``leaf`` is one of the parameter arrays
    the probe was made with. Both equal the values :func:`minifw.numerical.evaluate_at` gives
    to within rounding, and every difference of such values (whose coefficients sum to 0) is
    computed as the change of ``f``, without the rounding of ``f`` itself. One element costs
    a column of the network; a line, one product with the layer's input and then a row of
    the network per sample for each ``s``.

    >>> import numpy as onp, minifw as mf
    >>> model = mf.Sequential(mf.Linear(2, 3), mf.Tanh(), mf.Linear(3, 2))
    >>> f = mf.Objective(model, mf.SumSquaresError())
    >>> rng = onp.random.default_rng(0)
    >>> params, x, t = model.init(rng), rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    >>> probe = fused_probe(f, params, (x, t))
    >>> W = params["0"]["W"]
    >>> moved = W[1, 2] + 0.5
    >>> slow = mf.numerical.evaluate_at(lambda p: f(p, x, t), params, W, (1, 2), moved)
    >>> bool(abs(probe.at(W, (1, 2), moved) - slow) < 1e-14)
    True
    """

    def __init__(self, engine: _Engine, f0: float):
        self.engine, self.f0 = engine, f0
        self.where: dict[int, tuple[int, int]] = {}  # id(leaf) -> (op, 0 for W or 1 for b)
        for k, n in engine.linear_of.items():
            W, b = engine.chain.weights[n]
            self.where[id(W)], self.where[id(b)] = (k, 0), (k, 1)

    def knows(self, leaf: Any) -> bool:
        """Whether ``leaf`` is one of the parameter arrays of this probe."""
        return id(leaf) in self.where

    def at(self, leaf: onp.ndarray, index: Any, moved: Any) -> float:
        """``f`` with the element ``leaf[index]`` replaced by ``moved``."""
        k, which = self.where[id(leaf)]
        A = self.engine.acts[k]
        i, j = (index if which == 0 else (None, *index))
        delta = float(moved) - float(leaf[index])
        column = A[:, i:i + 1] * delta if which == 0 else onp.full((len(A), 1), delta)
        return self.f0 + float(self.engine.change_of_f(k, None, int(j), column)[0])

    def line(self, leaf: onp.ndarray, u: onp.ndarray,
             factors: tuple[onp.ndarray, onp.ndarray] | None = None) -> Callable[[float], float]:
        """``s -> f(leaf + s u)``, ``u`` a direction shaped like ``leaf``.

        The layer's output moves by ``s (A @ u)`` (linearity), so the product is taken once
        per line; for ``u = outer(v, w)`` (``factors``) it is ``outer(A @ v, w)``, a
        matrix-vector product.
        """
        k, which = self.where[id(leaf)]
        A = self.engine.acts[k]
        if which == 1:
            du = onp.broadcast_to(u, (len(A), len(u)))
        elif factors is not None:
            du = onp.outer(A @ factors[0], factors[1])
        else:
            du = A @ u
        engine, f0 = self.engine, self.f0

        def f(s: float) -> float:
            dense = (s * du)[:, :, None]
            return f0 + float(engine.change_of_f(k, None, 0, dense[:, :, 0], dense)[0])

        return f


def fused_probe(f: Callable[..., Any], params: Tree, args: tuple[Any, ...],
                f0: float | None = None) -> Probe | None:
    """A :class:`Probe` of ``f(params, *args)`` if ``f`` knows its structure, else ``None``.

    Arguments:
        f: the scalar function (a :class:`minifw.Objective` gives a probe).
        params: the point; the probe is valid while its arrays keep their values.
        args: the other arguments of ``f``.
        f0: ``f(params, *args)``, if the caller has it (else it is computed).

    >>> fused_probe(lambda p: p.sum(), onp.zeros(2), ()) is None
    True
    """
    make = getattr(f, "_fused_probe", None)
    return make(params, *args, f0=f0) if make is not None else None


def _steps(w: onp.ndarray, h: float, relative: bool) -> tuple[onp.ndarray, onp.ndarray]:
    """``w + s`` and ``w - s`` as the loop takes them (``s = h max(1, |w|)`` if relative)."""
    s = h * onp.maximum(1.0, onp.abs(w)) if relative else onp.full_like(w, h)
    return w + s, w - s


def chain_central_differences(
    chain: Chain, x: onp.ndarray, h: float, relative: bool = True, wrt_x: bool = False,
    acts: list[onp.ndarray] | None = None,
) -> tuple[list[tuple[onp.ndarray, onp.ndarray]], onp.ndarray | None] | None:
    """Central differences of every ``W`` and ``b`` of ``chain`` (and of ``x``), stacked.

    Arguments:
        chain: the network, its weights, loss and targets.
        x: the input batch, float64 of shape ``(batch, in)``.
        h: the step.
        relative: use the step ``h * max(1, |w|)`` per element, as the loop does.
        wrt_x: also differentiate with respect to ``x``.
        acts: the unperturbed activations (:meth:`Chain.forward`), if already computed.

    Returns:
        ``([(dW, db) per Linear], dx or None)``, the same central differences as
        :func:`minifw.numerical.central_differences` to within its rounding error; ``None``
        if an estimate is not finite (then the loop should decide).

    >>> import numpy as onp, minifw as mf
    >>> from minifw.objective import Op
    >>> ops = [Op("linear", mf.Linear(2, 1))]
    >>> W, b = onp.array([[2.0], [3.0]]), onp.zeros(1)
    >>> chain = Chain(ops, [(W, b)], "sse", onp.zeros((1, 1)))
    >>> (dW, db), = chain_central_differences(chain, onp.array([[1.0, 1.0]]), 1e-6)[0]
    >>> dW.round(6).ravel(), db.round(6)
    (array([5., 5.]), array([5.]))
    """
    # an overflow or invalid value here gives a non-finite estimate, and then the loop, whose
    # own evaluations of f warn as f does
    with onp.errstate(all="ignore"):
        engine = _Engine(chain, x, acts)
        grads = [engine.linear(k, h, relative) for k in engine.linear_of]
        gx = engine.inputs(h, relative) if wrt_x else None
    finite = all(onp.isfinite(gW).all() and onp.isfinite(gb).all() for gW, gb in grads)
    if not finite or (gx is not None and not onp.isfinite(gx).all()):
        return None
    return grads, gx


def fused_central_differences(f: Callable[..., Any], params: Tree, args: tuple[Any, ...],
                              h: float, relative: bool = True) -> Tree:
    """Central differences of ``f(params, *args)`` in ``params``: stacked when ``f`` allows.

    The hook :func:`minifw.check_grads` (full mode) uses. An ``f`` that knows its structure
    (a :class:`minifw.Objective`) evaluates the stacked engine; any other ``f``, or a call the
    engine does not cover, gets :func:`minifw.numerical.central_differences`, the loop.

    Arguments:
        f: the scalar function.
        params: the point (a tree of arrays; the loop may perturb it in place and restores it).
        args: the other arguments of ``f``.
        h: the step.
        relative: use the step ``h * max(1, |w|)`` per element.

    Returns:
        The central differences, with the structure of ``params``.

    >>> fused_central_differences(lambda p, c: c * (p ** 2).sum(), onp.array([1.0]), (3.0,),
    ...                           1e-5).round(6)
    array([6.])
    """
    fused = getattr(f, "_fused_central_differences", None)
    grads = fused(params, *args, h=h, relative=relative) if fused is not None else None
    if grads is None:
        grads = central_differences(lambda p: f(p, *args), params, h, relative=relative)
    return grads

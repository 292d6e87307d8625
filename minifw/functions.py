"""Seed functions: the activations and losses of "Deep Learning from Scratch", as ops.

Each is an :class:`~minifw.ops.Op`: a forward pass written with ``minifw.np`` and its
hand-written backward pass, side by side (the activations are :class:`~minifw.ops.Elementwise`:
a value and a derivative). Activations act elementwise (softmax: over the last axis) and
accept any leading axes; ``affine`` is ``x @ W + b``. Losses treat axis 0 as the batch and
take the mean over it; each is the mean of per-sample values (:class:`Loss`), with its
gradient with respect to ``y``.

Non-finite values: activations follow IEEE arithmetic (NaN in, NaN out at the same place;
infinities give the limits), while a loss, a sum in which a NaN would hide where it came
from, refuses NaN or infinite ``y`` or ``t`` with :class:`NonFiniteError` (a ``ValueError``)
naming the first bad element, and so it does when finite inputs overflow float64.

>>> import numpy as onp
>>> y = onp.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
>>> t = onp.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
>>> round(float(sum_squares_error(y, t)), 4), round(float(cross_entropy_error(y, 2)), 6)
(0.0975, 0.510825)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval, isbox

from minifw.ops import Elementwise, Op

Array = Any  # an ndarray, or an autograd box around one

__all__ = [
    "identity", "step", "sigmoid", "tanh", "relu", "leaky_relu", "softmax", "affine",
    "sum_squares_error", "mean_squared_error", "cross_entropy_error", "softmax_cross_entropy",
    "one_hot_targets", "check_labels", "check_finite", "all_finite", "real_number",
    "NonFiniteError", "LossOp", "DELTA", "AFFINE",
]

#: Added inside the log of the cross-entropy, as in the book, so that log(0) never happens.
DELTA = 1e-7


class NonFiniteError(ValueError):
    """NaN or infinite values where a finite number is needed (a loss, its inputs, a step).

    A ``ValueError``; :func:`minifw.fit` turns it into a ``FloatingPointError`` that says at
    which epoch and batch it happened.
    """


def _float(x: Array) -> Array:
    """Plain data as a real float array (floats keep their dtype); autograd boxes pass through.

    Integers and booleans become float64; anything else (objects, strings, complex numbers,
    datetimes) raises ``TypeError``.
    """
    if hasattr(x, "_value"):  # an autograd box: already numeric and being traced
        return x
    x = onp.asarray(x)
    if x.dtype.kind == "f":
        return x
    if x.dtype.kind in "biu":
        return x.astype(onp.float64)
    raise TypeError(f"expected a real numeric array, got dtype {x.dtype}")


def _first_bad(a: onp.ndarray, bad: onp.ndarray) -> str:
    """``"x at index (i, j)"`` for the first True of ``bad``, and how many there are."""
    idx = tuple(int(i) for i in onp.argwhere(bad)[0]) if a.ndim else ()
    return f"{a[idx]} at index {idx} ({int(bad.sum())} of {a.size} values)"


def check_finite(x: Array, name: str, what: str) -> None:
    """Raise :class:`NonFiniteError` naming ``what`` and the first bad element if ``x`` is not
    finite throughout.

    >>> check_finite(onp.array([1.0, onp.nan]), "loss", "y")
    Traceback (most recent call last):
    ...
    minifw.functions.NonFiniteError: loss: y contains NaN or infinite values: nan at index (1,) \
(1 of 2 values)
    """
    a = onp.asarray(getval(x))
    finite = onp.isfinite(a)
    if not finite.all():
        raise NonFiniteError(f"{name}: {what} contains NaN or infinite values: "
                             f"{_first_bad(a, ~finite)}")


def all_finite(*arrays: Any) -> bool:
    """Whether every element of the numeric arrays is finite.

    The common case costs one dot product per array: ``a . a``, and their sum, are finite only
    if every element is (a NaN or an infinity makes them NaN or infinite); only when the sum
    is not (non-finite elements, or magnitudes above about ``1e154``, whose squares overflow)
    are the elements looked at.

    >>> all_finite(onp.array([1.0, 1e300]), 3), all_finite(onp.array([1.0, onp.inf]))
    (True, False)
    """
    total = 0.0
    for a in arrays:
        a = a if type(a) is onp.ndarray else onp.asarray(a)
        kind = a.dtype.kind
        if kind == "f":
            total += float(onp.vdot(a, a))  # BLAS: an overflowing square is inf, no warning
        elif kind not in "biu":  # e.g. complex: looked at element by element
            total = math.inf
    if math.isfinite(total):
        return True
    return all(bool(onp.isfinite(a).all()) for a in map(onp.asarray, arrays)
               if a.dtype.kind not in "biu")


def real_number(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite real number (Python or NumPy; not a bool).

    >>> real_number("alpha", onp.float32(0.5))
    0.5
    """
    if isinstance(value, (bool, onp.bool_)) or not isinstance(value, (int, float, onp.integer,
                                                                       onp.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not onp.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


# --- activations ------------------------------------------------------------------------------


def _like(x: Array, v: Any) -> onp.ndarray:
    """``v`` as an array of ``x``'s float dtype (a Python float would make float32 float64)."""
    return onp.asarray(v, dtype=getval(x).dtype)


def identity(x: Array) -> Array:
    """Return ``x`` unchanged (as a float array): the output activation of regression.

    >>> identity([1, 2])
    array([1., 2.])
    """
    return _float(x)


def _step(x: Array) -> Array:
    y = np.where(x > 0, _like(x, 1.0), _like(x, 0.0))
    return np.where(x != x, x, y)  # NaN stays NaN (the comparison would make it 0.0)


_STEP = Elementwise("step", _step, lambda x, y: 0.0)


def step(x: Array) -> Array:
    """The perceptron's step function: 1.0 where ``x > 0``, else 0.0; its gradient is 0.

    >>> step([-1.0, 0.0, 2.0])
    array([0., 0., 1.])
    """
    return _STEP(_float(x))


def _minus_abs(x: Array) -> Array:
    # -|x|, written so that autograd's derivative at 0 is the x >= 0 branch's (-1), where the
    # branches below meet: abs() would give 0 there and the traced sigmoid'(0) would be 0
    return np.where(x >= 0, -x, x)


def _sigmoid(x: Array) -> Array:
    # 1 / (1 + exp(-x)) overflows exp for x < -709, and 0.5 * (tanh(x / 2) + 1) rounds to 0
    # below x = -37. With e = exp(-|x|) <= 1, both branches are accurate to a few ulps in
    # relative terms for every x, and exp never overflows.
    e = np.exp(_minus_abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_derivative(x: Array, y: Array) -> Array:
    # sigmoid(x) * sigmoid(-x) = e / (1 + e)**2: y * (1 - y) would round to 0 for x > 37
    e = np.exp(_minus_abs(x))
    return e / (1.0 + e) ** 2


_SIGMOID = Elementwise("sigmoid", _sigmoid, _sigmoid_derivative)


def sigmoid(x: Array) -> Array:
    """The logistic function ``1 / (1 + exp(-x))``, without overflow for any input.

    >>> sigmoid([-1000.0, 0.0, 1000.0])
    array([0. , 0.5, 1. ])
    """
    return _SIGMOID(_float(x))


def _tanh_derivative(x: Array, y: Array) -> Array:
    # 1 / cosh(x)**2 = 4 e / (1 + e)**2 with e = exp(-2|x|): 1 - y * y would round to 0 for
    # |x| > 19, and cosh overflows for |x| > 710
    e = np.exp(2.0 * _minus_abs(x))
    return 4.0 * e / (1.0 + e) ** 2


_TANH = Elementwise("tanh", np.tanh, _tanh_derivative)


def tanh(x: Array) -> Array:
    """The hyperbolic tangent.

    >>> float(tanh(0.0))
    0.0
    """
    return _TANH(_float(x))


# the derivative at the kink 0 is taken as 0, the left derivative
_RELU = Elementwise("relu", lambda x: np.maximum(x, 0.0), lambda x, y: x > 0)


def relu(x: Array) -> Array:
    """``max(x, 0)``; its gradient at 0 is taken as 0, the left derivative.

    >>> relu([-2.0, 0.0, 3.0])
    array([0., 0., 3.])
    """
    return _RELU(_float(x))


def _leaky_relu(x: Array, alpha: float) -> Array:
    if alpha == 0:  # relu; 0 * -inf would be NaN
        return np.where(x > 0, x, np.where(x != x, x, _like(x, 0.0)))
    with onp.errstate(over="ignore"):  # alpha > 1 can overflow: -inf is then the value
        return np.where(x > 0, x, alpha * x)


_LEAKY_RELU = Elementwise("leaky_relu", _leaky_relu,
                          lambda x, y, alpha: np.where(x > 0, _like(x, 1.0), _like(x, alpha)))


def leaky_relu(x: Array, alpha: float = 0.01) -> Array:
    """``x`` where ``x > 0``, else ``alpha * x``; the gradient at 0 is ``alpha``.

    ``alpha`` must be a finite real number (``TypeError``/``ValueError`` otherwise).

    >>> leaky_relu([-2.0, 3.0], alpha=0.1)
    array([-0.2,  3. ])
    """
    return _LEAKY_RELU(_float(x), alpha=real_number("leaky_relu: alpha", alpha))


def _softmax(x: Array) -> Array:
    m = np.max(x, axis=-1, keepdims=True)
    with onp.errstate(over="ignore", invalid="ignore"):
        if onp.isfinite(getval(m)).all():
            shifted = x - m  # shift: exp never overflows (x - m may: -inf, probability 0)
        else:
            shifted = _shift_non_finite(getval(x), getval(m))
        e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def _shift_non_finite(x: Array, m: Array) -> Array:
    """``x - max`` for rows whose max is not finite: a NaN row stays NaN; in a row with
    ``+inf``, the ``+inf`` entries share the probability (0 each, the rest ``-inf``); a row
    that is ``-inf`` throughout has no softmax."""
    none = onp.isneginf(m)
    if none.any():
        row = tuple(int(i) for i in onp.argwhere(none)[0][:-1])
        raise ValueError(f"softmax: row {row} of x (shape {x.shape}) is -inf throughout; "
                         "its softmax is undefined")
    inf_row = onp.isposinf(m)
    shares = onp.where(onp.isposinf(x), 0.0, -onp.inf).astype(x.dtype)
    return onp.where(inf_row, shares, x - m)


_SOFTMAX = Op("softmax", _softmax,
              lambda g, y, x: y * (g - (g * y).sum(axis=-1, keepdims=True)), per_sample=True)


def softmax(x: Array) -> Array:
    """Softmax over the last axis, stable for large inputs (no overflow at 1e3).

    A row holding NaN is NaN throughout; in a row holding ``+inf``, the ``+inf`` entries share
    the probability (the limit); ``-inf`` entries get probability 0 (masking). A row that is
    ``-inf`` throughout, an empty last axis and a scalar raise ``ValueError``.

    >>> softmax([1000.0, 1000.0])
    array([0.5, 0.5])
    """
    x = _float(x)
    check_softmax_input(x)
    return _SOFTMAX(x)


def check_softmax_input(x: Array) -> None:
    """``ValueError`` for a scalar or an empty last axis, which have no softmax."""
    shape = onp.shape(getval(x))
    if not shape:
        raise ValueError("softmax needs at least one axis, got a scalar")
    if shape[-1] == 0:
        raise ValueError(f"softmax over an empty last axis: x has shape {shape}")


def _rows(a: Array) -> Array:
    """Leading axes folded into one: ``(..., n) -> (rows, n)``."""
    return a if a.ndim == 2 else a.reshape(-1, a.shape[-1])


def _affine(x: Array, W: Array, b: Array) -> Array:
    z = x @ W
    z += b  # on a fresh array; a traced one has no in-place add and rebinds z
    return z


#: ``x @ W + b`` with its three VJPs; the numerical engine knows that it is linear in each.
AFFINE = Op(
    "affine", _affine,
    lambda g, y, x, W, b: g @ W.T,
    lambda g, y, x, W, b: _rows(x).T @ _rows(g),
    lambda g, y, x, W, b: _rows(g).sum(axis=0),
    per_sample=True,
)


def affine(x: Array, W: Array, b: Array) -> Array:
    """``x @ W + b`` over the last axis of ``x``, one op with hand-written VJPs.

    >>> affine(onp.ones((1, 2)), onp.ones((2, 3)), onp.arange(3.0))
    array([[2., 3., 4.]])
    """
    return AFFINE(x, W, b)


# --- losses -----------------------------------------------------------------------------------


class LossOp(Op):
    """A loss op: the mean over the batch (axis 0) of per-sample values (``"sum"``: their sum).

    Arguments:
        name: shown in errors.
        values: ``values(y, t, lead) -> per-sample values``: reduces every axis from ``lead``
            on (``lead = 1`` for a batch, 0 for one sample, 2 for a stack of batches).
        vjp, vjp_t: the gradients of the loss with respect to ``y`` and to ``t``,
            ``vjp(g, value, y, t)``.
        reduce: ``"mean"`` or ``"sum"`` over the samples.
    """

    def __init__(self, name: str, values: Callable[..., Any], vjp: Callable[..., Any],
                 vjp_t: Callable[..., Any], reduce: str = "mean"):
        self.values, self.reduce = values, reduce

        def forward(y: Array, t: Array) -> Array:
            shape = y.shape if type(y) is onp.ndarray else onp.shape(y)
            v = values(y, t, 1 if len(shape) > 1 else 0).sum()
            return v / (shape[0] if len(shape) > 1 else 1) if reduce == "mean" else v

        super().__init__(name, forward, vjp, vjp_t)

    def scale(self, y: Any) -> float:
        """The factor of the sum of per-sample values: ``1 / batch`` for a mean."""
        return 1.0 / _batch_size(y) if self.reduce == "mean" else 1.0


def _axes(a: Array, lead: int) -> tuple[int, ...]:
    return tuple(range(lead, onp.ndim(a)))


def _check_same_shape(y: Array, t: Array, name: str) -> None:
    if onp.shape(y) != onp.shape(t):
        raise ValueError(f"{name}: y has shape {onp.shape(y)} but t has shape {onp.shape(t)}")
    if onp.size(y) == 0:
        raise ValueError(f"{name}: empty input of shape {onp.shape(y)}")
    # a loss is a sum: a NaN anywhere would make all of it NaN and say nothing of where
    if not all_finite(getval(y), getval(t)):
        check_finite(y, name, "y")
        check_finite(t, name, "t")


def _finite_loss(value: Array, name: str, y: Array, t: Array) -> Array:
    """``value`` if finite; else the inputs were finite but too large: say so."""
    if not onp.isfinite(getval(value)):
        big = max(float(onp.abs(getval(y)).max()), float(onp.abs(getval(t)).max()))
        raise NonFiniteError(f"{name}: the loss overflows float64 (the largest |value| in y "
                             f"and t is {big:.3g}); scale the outputs or targets down")
    return value


def _batch_size(y: Array) -> int:
    shape = y.shape if type(y) is onp.ndarray else onp.shape(y)
    return 1 if len(shape) <= 1 else shape[0]


def _checked(loss: LossOp, y: Array, t: Array,
             domain: Callable[[Array], None] | None = None) -> Array:
    """``loss(y, t)`` after the checks every loss makes (and ``domain(y)``, if given)."""
    _check_same_shape(y, t, loss.name)
    if domain is not None:
        domain(y)
    with onp.errstate(over="ignore", invalid="ignore"):
        value = loss(y, t)
    return _finite_loss(value, loss.name, y, t)


SUM_SQUARES = LossOp("sum_squares_error",
                   lambda y, t, lead: 0.5 * np.sum((y - t) ** 2, axis=_axes(y, lead)),
                   lambda g, v, y, t: g * (y - t) / _batch_size(y),
                   lambda g, v, y, t: g * (t - y) / _batch_size(y))


def sum_squares_error(y: Array, t: Array) -> Array:
    """``0.5 * sum((y - t)**2)`` for one sample (1-D); for a batch, the mean over samples.

    >>> float(sum_squares_error([0.5, 0.5], [1.0, 0.0]))
    0.25
    """
    return _checked(SUM_SQUARES, _float(y), _float(t))


def _mse_values(y: Array, t: Array, lead: int) -> Array:
    # mean over all elements = the mean over samples of each sample's mean
    return np.mean((y - t) ** 2, axis=_axes(y, lead))


MEAN_SQUARED = LossOp("mean_squared_error", _mse_values,
                    lambda g, v, y, t: g * (2.0 / np.size(y)) * (y - t),
                    lambda g, v, y, t: g * (2.0 / np.size(y)) * (t - y))


def mean_squared_error(y: Array, t: Array) -> Array:
    """``mean((y - t)**2)`` over all elements.

    >>> float(mean_squared_error([0.5, 0.5], [1.0, 0.0]))
    0.25
    """
    return _checked(MEAN_SQUARED, _float(y), _float(t))


def one_hot_targets(y: Array, t: Array, name: str) -> Array:
    """Targets shaped like ``y``: one-hot or soft targets pass, labels become one-hot.

    Labels are integers in ``[0, classes)``: shape ``(N,)`` for a batch ``y`` of shape
    ``(N, classes)``, or a scalar for a 1-D ``y``. Anything else raises ``ValueError``.

    >>> one_hot_targets(onp.zeros((2, 3)), [2, 0], "loss")
    array([[0., 0., 1.],
           [1., 0., 0.]])
    """
    y_shape = onp.shape(y)
    t_val = getval(t)
    if onp.shape(t_val) == tuple(y_shape):
        t = _float(t)
        return t if getval(t).dtype == getval(y).dtype else t.astype(getval(y).dtype)
    if len(y_shape) == 0 or onp.shape(t_val) != tuple(y_shape[:-1]):
        raise ValueError(
            f"{name}: t of shape {onp.shape(t_val)} is neither one-hot (shape {tuple(y_shape)}) "
            f"nor labels (shape {tuple(y_shape[:-1])})"
        )
    classes = y_shape[-1]
    return onp.eye(classes, dtype=getval(y).dtype)[check_labels(t_val, classes, name)]


_INT64 = onp.dtype(onp.int64)


def check_labels(labels: Any, classes: int, name: str) -> onp.ndarray:
    """``labels`` as int64 if they are whole numbers in ``[0, classes)``; else ``ValueError``.

    Whole floats (``2.0``) count as labels; booleans, fractions, NaN and objects do not.

    >>> check_labels([2.0, 0], 3, "loss")
    array([2, 0])
    """
    labels = labels if type(labels) is onp.ndarray else onp.asarray(labels)
    if labels.dtype is _INT64 and labels.size:  # the common case, in one reduction:
        if labels.view(onp.uint64).max() < classes:  # unsigned, a negative label is huge
            return labels
    elif labels.dtype.kind in "iu" and labels.size:
        unsigned = labels.view(f"u{labels.itemsize}") if labels.dtype.kind == "i" else labels
        if int(onp.maximum.reduce(unsigned, axis=None)) < classes:
            return labels.astype(onp.int64)
    whole = labels.dtype.kind in "iu" or (
        labels.dtype.kind == "f" and bool(onp.all(onp.isfinite(labels)))
        and bool(onp.all(labels == onp.round(labels)))
    )
    if not whole:
        raise ValueError(f"{name}: labels must be integers, got {labels.dtype} values {labels}")
    bad = (labels < 0) | (labels >= classes)  # before the cast: 1e300 is no int64
    if onp.any(bad):
        raise ValueError(
            f"{name}: labels must lie in [0, {classes}), got {onp.asarray(labels)[bad][:5]}"
        )
    return labels.astype(onp.int64)


CROSS_ENTROPY = LossOp("cross_entropy_error",
                     lambda y, t, lead: -np.sum(t * np.log(y + DELTA), axis=_axes(y, lead)),
                     lambda g, v, y, t: -g * t / ((y + DELTA) * _batch_size(y)),
                     lambda g, v, y, t: -g * np.log(y + DELTA) / _batch_size(y))


def cross_entropy_error(y: Array, t: Array) -> Array:
    """``-sum(t * log(y + 1e-7))`` for one sample; for a batch, the mean over samples.

    ``y`` holds probabilities; ``t`` is one-hot (same shape as ``y``) or integer labels.

    >>> round(float(cross_entropy_error([0.1, 0.9], 1)), 6)
    0.10536
    """
    y = _float(y)
    return _checked(CROSS_ENTROPY, y, one_hot_targets(y, t, "cross_entropy_error"),
                    _probabilities)


def _probabilities(y: Array) -> None:
    low = getval(y) + DELTA <= 0
    if low.any():
        raise ValueError(
            f"cross_entropy_error takes probabilities (y + 1e-7 > 0), got y = "
            f"{_first_bad(onp.asarray(getval(y)), low)}; for logits use softmax_cross_entropy"
        )


def _shifted(x: Array) -> Array:
    # x - max over the last axis: exp never overflows, and log-sum-exp of it is in [0, log C]
    return x - x.max(axis=-1, keepdims=True)


def _labelled(x: Array, t: Array) -> bool:
    return onp.ndim(t) == onp.ndim(x) - 1  # integer labels, for a 1-D or 2-D x


def _picked(s: Array, t: Array) -> Array:
    """``s`` at each sample's label."""
    return s[t] if onp.ndim(s) == 1 else s[onp.arange(len(t)), t]


def _sce_values(x: Array, t: Array, lead: int) -> Array:
    # -sum(t * log_softmax(x)) = sum(t * (lse(s) - s)) with s = x - max: per sample
    s = _shifted(x)
    lse = np.log(np.exp(s).sum(axis=-1))
    if _labelled(x, t):
        return lse - _picked(s, t)
    terms = t * (lse[..., None] - s)
    values = terms.sum(axis=_axes(terms, lead))
    if not onp.isfinite(getval(values)).all():  # 0 * inf for a logit 1e308 below the largest
        values = np.where(t != 0, terms, _like(x, 0.0)).sum(axis=_axes(terms, lead))
    return values


def _sce_vjp(g: Array, v: Array, x: Array, t: Array) -> Array:
    # d/dx of sum(t * (lse(x) - x)) = softmax(x) * sum(t, -1) - t  (= p - t for one-hot t)
    e = np.exp(_shifted(x))
    p = e / e.sum(axis=-1, keepdims=True)
    if not _labelled(x, t):
        return g * (p * t.sum(axis=-1, keepdims=True) - t) / _batch_size(x)
    if isbox(p) or isbox(g):  # traced (a second derivative): without assignment
        return g * (p - onp.eye(onp.shape(x)[-1], dtype=getval(p).dtype)[t]) / _batch_size(x)
    if onp.ndim(p) == 1:
        p[t] -= 1.0
    else:
        p[onp.arange(len(t)), t] -= 1.0  # p is ours: one pass instead of a one-hot array
    p *= g / _batch_size(x)
    return p


def _sce_vjp_t(g: Array, v: Array, x: Array, t: Array) -> Array:
    s = _shifted(x)
    return g * (np.log(np.exp(s).sum(axis=-1, keepdims=True)) - s) / _batch_size(x)


SOFTMAX_CROSS_ENTROPY = LossOp("softmax_cross_entropy", _sce_values, _sce_vjp, _sce_vjp_t)


def softmax_cross_entropy(logits: Array, t: Array) -> Array:
    """Cross-entropy of ``softmax(logits)`` against ``t``, fused and stable (log-sum-exp).

    Equal to ``cross_entropy_error(softmax(logits), t)`` up to the book's ``1e-7``, but exact
    for any logits: no ``log(0)``, no overflow. ``t``: one-hot or integer labels.

    >>> round(float(softmax_cross_entropy([[0.0, 0.0]], [1])), 6)
    0.693147
    """
    x = _float(logits)
    name = "softmax_cross_entropy"
    xv = getval(x)
    shape = onp.shape(xv)
    if not shape:
        raise ValueError(f"{name} needs at least one axis, got a scalar")
    if len(shape) <= 2 and onp.shape(getval(t)) == shape[:-1] and 0 not in shape:
        t = check_labels(getval(t), shape[-1], name)  # labels as they are: no one-hot
        if math.isfinite(float(onp.vdot(xv, xv))):
            # every |x| < 1.4e154: x - max(x) cannot overflow, and so nothing can, or be NaN
            return SOFTMAX_CROSS_ENTROPY(x, t)
        check_finite(x, name, "y")
        with onp.errstate(over="ignore", invalid="ignore"):
            value = SOFTMAX_CROSS_ENTROPY(x, t)
        return _finite_loss(value, name, x, t)
    return _checked(SOFTMAX_CROSS_ENTROPY, x, one_hot_targets(x, t, name))

"""Seed functions: the activations and losses of "Deep Learning from Scratch", autograd-traceable.

Activations act elementwise (softmax: over the last axis) and accept any leading axes. Losses
treat axis 0 as the batch and take the mean over it. Several functions are autograd primitives
with hand-written VJPs: one traced operation instead of several, and numerically stable
formulas; each VJP is proved by the gradient checker in the test suite.

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
from typing import Any

import autograd.numpy as np
import numpy as onp
from autograd.extend import defvjp, primitive
from autograd.tracer import getval

Array = Any  # an ndarray, or an autograd box around one

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


def identity(x: Array) -> Array:
    """Return ``x`` unchanged (as a float array): the output activation of regression.

    >>> identity([1, 2])
    array([1., 2.])
    """
    return _float(x)


@primitive
def _step(x: Array) -> Array:
    y = (x > 0).astype(x.dtype)
    return onp.where(x != x, x, y) if onp.isnan(x).any() else y  # NaN stays NaN


defvjp(_step, lambda ans, x: lambda g: g * 0.0)


def step(x: Array) -> Array:
    """The perceptron's step function: 1.0 where ``x > 0``, else 0.0; its gradient is 0.

    NaN stays NaN (the comparison would make it a silent 0.0).

    >>> step([-1.0, 0.0, 2.0])
    array([0., 0., 1.])
    """
    return _step(_float(x))


@primitive
def _sigmoid(x: Array) -> Array:
    # 1 / (1 + exp(-x)) overflows exp for x < -709, and 0.5 * (tanh(x / 2) + 1) rounds to 0
    # below x = -37. With e = exp(-|x|) <= 1, both branches are accurate to a few ulps in
    # relative terms for every x, and exp never overflows.
    e = onp.exp(-onp.abs(x))
    return onp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))[()]


def _sigmoid_vjp(ans: Array, x: Array) -> Any:
    # sigmoid(x) * sigmoid(-x) = e / (1 + e)**2: ans * (1 - ans) would round to 0 for x > 37
    e = onp.exp(-onp.abs(x))
    return lambda g: g * (e / (1.0 + e) ** 2)


defvjp(_sigmoid, _sigmoid_vjp)


def sigmoid(x: Array) -> Array:
    """The logistic function ``1 / (1 + exp(-x))``, without overflow for any input.

    >>> sigmoid([-1000.0, 0.0, 1000.0])
    array([0. , 0.5, 1. ])
    """
    return _sigmoid(_float(x))


def tanh(x: Array) -> Array:
    """The hyperbolic tangent.

    >>> float(tanh(0.0))
    0.0
    """
    return np.tanh(_float(x))


@primitive
def _relu(x: Array) -> Array:
    return onp.maximum(x, 0.0)


defvjp(_relu, lambda ans, x: lambda g: g * (x > 0))


def relu(x: Array) -> Array:
    """``max(x, 0)``; its gradient at 0 is taken as 0, the left derivative.

    >>> relu([-2.0, 0.0, 3.0])
    array([0., 0., 3.])
    """
    return _relu(_float(x))


@primitive
def _leaky_relu(x: Array, alpha: float) -> Array:
    if alpha == 0:  # relu; 0 * -inf would be NaN
        return onp.where(x > 0, x, onp.where(x != x, x, 0.0)).astype(x.dtype)
    with onp.errstate(over="ignore"):  # alpha > 1 can overflow: -inf is then the value
        return onp.where(x > 0, x, alpha * x)


defvjp(_leaky_relu, lambda ans, x, alpha: lambda g: g * onp.where(x > 0, 1.0, alpha))


def leaky_relu(x: Array, alpha: float = 0.01) -> Array:
    """``x`` where ``x > 0``, else ``alpha * x``; the gradient at 0 is ``alpha``.

    ``alpha`` must be a finite real number (``TypeError``/``ValueError`` otherwise).

    >>> leaky_relu([-2.0, 3.0], alpha=0.1)
    array([-0.2,  3. ])
    """
    return _leaky_relu(_float(x), real_number("leaky_relu: alpha", alpha))


@primitive
def _softmax(x: Array) -> Array:
    m = x.max(axis=-1, keepdims=True)
    with onp.errstate(over="ignore", invalid="ignore"):
        if onp.isfinite(m).all():
            shifted = x - m  # shift: exp never overflows (x - m may: -inf, probability 0)
        else:
            shifted = _shift_non_finite(x, m)
        e = onp.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


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


defvjp(_softmax, lambda y, x: lambda g: y * (g - (g * y).sum(axis=-1, keepdims=True)))


def softmax(x: Array) -> Array:
    """Softmax over the last axis, stable for large inputs (no overflow at 1e3).

    A row holding NaN is NaN throughout; in a row holding ``+inf``, the ``+inf`` entries share
    the probability (the limit); ``-inf`` entries get probability 0 (masking). A row that is
    ``-inf`` throughout, an empty last axis and a scalar raise ``ValueError``.

    >>> softmax([1000.0, 1000.0])
    array([0.5, 0.5])
    """
    x = _float(x)
    if onp.ndim(x) == 0:
        raise ValueError("softmax needs at least one axis, got a scalar")
    if onp.shape(x)[-1] == 0:
        raise ValueError(f"softmax over an empty last axis: x has shape {onp.shape(x)}")
    return _softmax(x)


# --- losses -----------------------------------------------------------------------------------


def _check_same_shape(y: Array, t: Array, name: str) -> None:
    if onp.shape(y) != onp.shape(t):
        raise ValueError(f"{name}: y has shape {onp.shape(y)} but t has shape {onp.shape(t)}")
    if onp.size(y) == 0:
        raise ValueError(f"{name}: empty input of shape {onp.shape(y)}")
    # a loss is a sum: a NaN anywhere would make all of it NaN and say nothing of where
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
    return 1 if onp.ndim(y) <= 1 else onp.shape(y)[0]


def sum_squares_error(y: Array, t: Array) -> Array:
    """``0.5 * sum((y - t)**2)`` for one sample (1-D); for a batch, the mean over samples.

    >>> float(sum_squares_error([0.5, 0.5], [1.0, 0.0]))
    0.25
    """
    y, t = _float(y), _float(t)
    _check_same_shape(y, t, "sum_squares_error")
    with onp.errstate(over="ignore", invalid="ignore"):
        value = 0.5 * np.sum((y - t) ** 2) / _batch_size(y)
    return _finite_loss(value, "sum_squares_error", y, t)


def mean_squared_error(y: Array, t: Array) -> Array:
    """``mean((y - t)**2)`` over all elements.

    >>> float(mean_squared_error([0.5, 0.5], [1.0, 0.0]))
    0.25
    """
    y, t = _float(y), _float(t)
    _check_same_shape(y, t, "mean_squared_error")
    with onp.errstate(over="ignore", invalid="ignore"):
        value = np.mean((y - t) ** 2)
    return _finite_loss(value, "mean_squared_error", y, t)


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
        return _float(t)
    if len(y_shape) == 0 or onp.shape(t_val) != tuple(y_shape[:-1]):
        raise ValueError(
            f"{name}: t of shape {onp.shape(t_val)} is neither one-hot (shape {tuple(y_shape)}) "
            f"nor labels (shape {tuple(y_shape[:-1])})"
        )
    classes = y_shape[-1]
    return onp.eye(classes, dtype=getval(y).dtype)[check_labels(t_val, classes, name)]


def check_labels(labels: Any, classes: int, name: str) -> onp.ndarray:
    """``labels`` as int64 if they are whole numbers in ``[0, classes)``; else ``ValueError``.

    Whole floats (``2.0``) count as labels; booleans, fractions, NaN and objects do not.

    >>> check_labels([2.0, 0], 3, "loss")
    array([2, 0])
    """
    labels = onp.asarray(labels)
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


def cross_entropy_error(y: Array, t: Array) -> Array:
    """``-sum(t * log(y + 1e-7))`` for one sample; for a batch, the mean over samples.

    ``y`` holds probabilities; ``t`` is one-hot (same shape as ``y``) or integer labels.

    >>> round(float(cross_entropy_error([0.1, 0.9], 1)), 6)
    0.10536
    """
    y = _float(y)
    t = one_hot_targets(y, t, "cross_entropy_error")
    _check_same_shape(y, t, "cross_entropy_error")
    low = getval(y) + DELTA <= 0
    if low.any():
        raise ValueError(
            f"cross_entropy_error takes probabilities (y + 1e-7 > 0), got y = "
            f"{_first_bad(onp.asarray(getval(y)), low)}; for logits use softmax_cross_entropy"
        )
    with onp.errstate(over="ignore", invalid="ignore"):
        value = -np.sum(t * np.log(y + DELTA)) / _batch_size(y)
    return _finite_loss(value, "cross_entropy_error", y, t)


def _log_softmax(x: Array) -> Array:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - onp.log(onp.exp(shifted).sum(axis=-1, keepdims=True))


@primitive
def _softmax_cross_entropy(x: Array, t: Array) -> Array:
    log_sm = _log_softmax(x)
    value = -(t * log_sm).sum() / _batch_size(x)
    if not onp.isfinite(value):  # 0 * -inf for a logit 1e308 below the row's largest
        value = -onp.where(t != 0, t * log_sm, 0.0).sum() / _batch_size(x)
    return value


def _sce_vjp_x(ans: Array, x: Array, t: Array) -> Any:
    # d/dx of -sum(t * log_softmax(x)) = softmax(x) * sum(t, -1) - t  (= y - t for one-hot t)
    def vjp(g: Array) -> Array:
        p = onp.exp(_log_softmax(x))
        return g * (p * t.sum(axis=-1, keepdims=True) - t) / _batch_size(x)

    return vjp


defvjp(
    _softmax_cross_entropy,
    _sce_vjp_x,
    lambda ans, x, t: lambda g: -g * _log_softmax(x) / _batch_size(x),
)


def softmax_cross_entropy(logits: Array, t: Array) -> Array:
    """Cross-entropy of ``softmax(logits)`` against ``t``, fused and stable (log-sum-exp).

    Equal to ``cross_entropy_error(softmax(logits), t)`` up to the book's ``1e-7``, but exact
    for any logits: no ``log(0)``, no overflow. ``t``: one-hot or integer labels.

    >>> round(float(softmax_cross_entropy([[0.0, 0.0]], [1])), 6)
    0.693147
    """
    x = _float(logits)
    if onp.ndim(x) == 0:
        raise ValueError("softmax_cross_entropy needs at least one axis, got a scalar")
    t = one_hot_targets(x, t, "softmax_cross_entropy")
    _check_same_shape(x, t, "softmax_cross_entropy")
    with onp.errstate(over="ignore", invalid="ignore"):  # logits 1e308 apart: x - max = -inf
        value = _softmax_cross_entropy(x, t)
    return _finite_loss(value, "softmax_cross_entropy", x, t)

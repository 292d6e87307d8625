"""Seed functions: the activations and losses of "Deep Learning from Scratch", autograd-traceable.

Activations act elementwise (softmax: over the last axis) and accept any leading axes. Losses
treat axis 0 as the batch and take the mean over it. Several functions are autograd primitives
with hand-written VJPs: one traced operation instead of several, and numerically stable
formulas; each VJP is proved by the gradient checker in the test suite.

>>> import numpy as onp
>>> y = onp.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
>>> t = onp.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
>>> round(float(sum_squares_error(y, t)), 4), round(float(cross_entropy_error(y, 2)), 6)
(0.0975, 0.510825)
"""

from __future__ import annotations

from typing import Any

import autograd.numpy as np
import numpy as onp
from autograd.extend import defvjp, primitive
from autograd.tracer import getval

Array = Any  # an ndarray, or an autograd box around one

#: Added inside the log of the cross-entropy, as in the book, so that log(0) never happens.
DELTA = 1e-7


def _float(x: Array) -> Array:
    """Plain data as a float array (floats keep their dtype); autograd boxes pass through."""
    if hasattr(x, "_value"):  # an autograd box: already numeric and being traced
        return x
    x = onp.asarray(x)
    if x.dtype.kind in "fc":
        return x
    if x.dtype.kind in "biu":
        return x.astype(onp.float64)
    raise TypeError(f"expected a numeric array, got dtype {x.dtype}")


# --- activations ------------------------------------------------------------------------------


def identity(x: Array) -> Array:
    """Return ``x`` unchanged (as a float array): the output activation of regression.

    >>> identity([1, 2])
    array([1., 2.])
    """
    return _float(x)


@primitive
def _step(x: Array) -> Array:
    return (x > 0).astype(x.dtype)


defvjp(_step, lambda ans, x: lambda g: g * 0.0)


def step(x: Array) -> Array:
    """The perceptron's step function: 1.0 where ``x > 0``, else 0.0; its gradient is 0.

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
    return onp.where(x > 0, x, alpha * x)


defvjp(_leaky_relu, lambda ans, x, alpha: lambda g: g * onp.where(x > 0, 1.0, alpha))


def leaky_relu(x: Array, alpha: float = 0.01) -> Array:
    """``x`` where ``x > 0``, else ``alpha * x``; the gradient at 0 is ``alpha``.

    >>> leaky_relu([-2.0, 3.0], alpha=0.1)
    array([-0.2,  3. ])
    """
    return _leaky_relu(_float(x), float(alpha))


@primitive
def _softmax(x: Array) -> Array:
    e = onp.exp(x - x.max(axis=-1, keepdims=True))  # shift: exp never overflows
    return e / e.sum(axis=-1, keepdims=True)


defvjp(_softmax, lambda y, x: lambda g: y * (g - (g * y).sum(axis=-1, keepdims=True)))


def softmax(x: Array) -> Array:
    """Softmax over the last axis, stable for large inputs (no overflow at 1e3).

    >>> softmax([1000.0, 1000.0])
    array([0.5, 0.5])
    """
    x = _float(x)
    if onp.ndim(x) == 0:
        raise ValueError("softmax needs at least one axis, got a scalar")
    return _softmax(x)


# --- losses -----------------------------------------------------------------------------------


def _check_same_shape(y: Array, t: Array, name: str) -> None:
    if onp.shape(y) != onp.shape(t):
        raise ValueError(f"{name}: y has shape {onp.shape(y)} but t has shape {onp.shape(t)}")
    if onp.size(y) == 0:
        raise ValueError(f"{name}: empty input of shape {onp.shape(y)}")


def _batch_size(y: Array) -> int:
    return 1 if onp.ndim(y) <= 1 else onp.shape(y)[0]


def sum_squares_error(y: Array, t: Array) -> Array:
    """``0.5 * sum((y - t)**2)`` for one sample (1-D); for a batch, the mean over samples.

    >>> float(sum_squares_error([0.5, 0.5], [1.0, 0.0]))
    0.25
    """
    y, t = _float(y), _float(t)
    _check_same_shape(y, t, "sum_squares_error")
    return 0.5 * np.sum((y - t) ** 2) / _batch_size(y)


def mean_squared_error(y: Array, t: Array) -> Array:
    """``mean((y - t)**2)`` over all elements.

    >>> float(mean_squared_error([0.5, 0.5], [1.0, 0.0]))
    0.25
    """
    y, t = _float(y), _float(t)
    _check_same_shape(y, t, "mean_squared_error")
    return np.mean((y - t) ** 2)


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
    labels = onp.asarray(t_val)
    if labels.dtype.kind == "f" and onp.all(onp.isfinite(labels)):
        if onp.all(labels == onp.round(labels)):
            labels = labels.astype(onp.int64)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: labels must be integers, got {labels.dtype} values {labels}")
    classes = y_shape[-1]
    bad = (labels < 0) | (labels >= classes)
    if onp.any(bad):
        raise ValueError(
            f"{name}: labels must lie in [0, {classes}), got {onp.asarray(labels)[bad][:5]}"
        )
    return onp.eye(classes, dtype=getval(y).dtype)[labels]


def cross_entropy_error(y: Array, t: Array) -> Array:
    """``-sum(t * log(y + 1e-7))`` for one sample; for a batch, the mean over samples.

    ``y`` holds probabilities; ``t`` is one-hot (same shape as ``y``) or integer labels.

    >>> round(float(cross_entropy_error([0.1, 0.9], 1)), 6)
    0.10536
    """
    y = _float(y)
    t = one_hot_targets(y, t, "cross_entropy_error")
    _check_same_shape(y, t, "cross_entropy_error")
    return -np.sum(t * np.log(y + DELTA)) / _batch_size(y)


def _log_softmax(x: Array) -> Array:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - onp.log(onp.exp(shifted).sum(axis=-1, keepdims=True))


@primitive
def _softmax_cross_entropy(x: Array, t: Array) -> Array:
    return -(t * _log_softmax(x)).sum() / _batch_size(x)


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
    return _softmax_cross_entropy(x, t)

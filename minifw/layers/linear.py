"""``Linear``: the fully connected layer, ``y = x @ W + b`` (the op ``functions.AFFINE``).

>>> import numpy as onp
>>> layer = Linear(3, 2, weight_init="he")
>>> {k: v.shape for k, v in layer.init(onp.random.default_rng(0)).items()}
{'W': (3, 2), 'b': (2,)}
"""

from __future__ import annotations

from typing import Any

import numpy as onp
from autograd.tracer import getval

from minifw import functions as F
from minifw.layers.base import Layer, Params

#: Weight initialisations: the standard deviation of ``W`` for ``in_features`` inputs.
#: "book": the fixed 0.01 of the book's TwoLayerNet; "xavier": 1/sqrt(n), keeps the variance of
#: sigmoid and tanh layers; "he": sqrt(2/n), keeps it for ReLU layers (the book, ch. 6.2).
WEIGHT_INITS = {
    "book": lambda n: 0.01,
    "xavier": lambda n: 1.0 / onp.sqrt(n),
    "he": lambda n: onp.sqrt(2.0 / n),
}


def check_weight_init(name: str, weight_init: Any) -> Any:
    """``weight_init`` if it is a known name or a standard deviation (finite, >= 0), else
    ``ValueError`` naming the layer."""
    if isinstance(weight_init, str):
        known = weight_init in WEIGHT_INITS
    else:  # a standard deviation: a finite real >= 0, not True
        known = isinstance(weight_init, (int, float, onp.integer, onp.floating)) and not (
            isinstance(weight_init, (bool, onp.bool_))) and bool(
            onp.isfinite(weight_init) and weight_init >= 0)
    if not known:
        raise ValueError(
            f"{name}: weight_init must be one of {sorted(WEIGHT_INITS)} or a standard "
            f"deviation (a finite number >= 0), got {weight_init!r}"
        )
    return weight_init


def weight_std(weight_init: Any, fan_in: int) -> float:
    """The standard deviation ``weight_init`` gives for ``fan_in`` inputs."""
    return WEIGHT_INITS[weight_init](fan_in) if isinstance(weight_init, str) else float(
        weight_init)


def whole(name: str, n: Any) -> int:
    """``n`` as an int if it is a whole number >= 1, else ``ValueError`` naming it."""
    if isinstance(n, bool) or not isinstance(n, (int, onp.integer)) or n < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {n!r}")
    return int(n)


class Linear(Layer):
    """A fully connected layer, ``y = x @ W + b``, with ``W`` of shape ``(in, out)``.

    Arguments:
        in_features: the width of the input's last axis.
        out_features: the width of the output's last axis.
        weight_init: ``"he"`` (default: right for the ReLU that usually follows, and what
            ``minifw train`` uses there), ``"xavier"`` (before sigmoid or tanh), ``"book"``
            or a standard deviation.
    """

    ops_only = True
    op = F.AFFINE
    param_names = ("W", "b")

    def __init__(self, in_features: int, out_features: int, weight_init: str | float = "he"):
        self.in_features = whole("Linear: in_features", in_features)
        self.out_features = whole("Linear: out_features", out_features)
        self.weight_init = check_weight_init("Linear", weight_init)

    def init(self, rng: onp.random.Generator) -> Params:
        std = weight_std(self.weight_init, self.in_features)
        W = std * rng.standard_normal((self.in_features, self.out_features))
        return {"W": W, "b": onp.zeros(self.out_features)}

    def check(self, params: Params, x: Any) -> None:
        try:  # the common case, arrays or autograd boxes of the right shapes, in a few lookups
            n, m = self.in_features, self.out_features
            if (x.shape[-1] == n and params["W"].shape == (n, m)
                    and params["b"].shape == (m,)):
                return
        except (AttributeError, IndexError, KeyError, TypeError):
            pass
        plain = getval(params)  # an autograd DictBox under autograd.grad itself
        if not isinstance(plain, dict) or "W" not in plain or "b" not in plain:
            got = list(plain) if isinstance(plain, dict) else type(plain).__name__
            raise TypeError(f"{self!r} expects params {{'W': ..., 'b': ...}}, got {got}")
        shape = _shape(x)
        if not shape or shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expects inputs whose last axis is {self.in_features}, "
                             f"got shape {shape}")
        W, b = params["W"], params["b"]
        if _shape(W) != (self.in_features, self.out_features) or _shape(b) != (
                self.out_features,):
            raise ValueError(
                f"{self!r} expects W {(self.in_features, self.out_features)} and "
                f"b {(self.out_features,)}, got W {_shape(W)} and b {_shape(b)}")


def _shape(a: Any) -> tuple[int, ...]:
    v = getval(a)
    return v.shape if type(v) is onp.ndarray else onp.shape(v)

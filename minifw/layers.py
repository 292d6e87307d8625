"""Layers: pure functions of ``(params, x)`` that hold hyperparameters only.

``layer.init(rng) -> params`` draws parameters from an explicit ``numpy.random.Generator``;
``layer(params, x) -> y`` computes. Nothing is cached on the layer, so one layer object serves
any number of parameter sets, and autograd differentiates ``forward`` directly. Layers act on
the last axis and accept any leading axes.

>>> import numpy as onp
>>> model = Sequential(Linear(2, 3), ReLU(), Linear(3, 1))
>>> params = model.init(onp.random.default_rng(0))
>>> sorted(params), model(params, onp.ones((4, 2))).shape
(['0', '2'], (4, 1))
"""

from __future__ import annotations

from typing import Any

import numpy as onp
from autograd.extend import defvjp, primitive
from autograd.tracer import getval

from minifw import functions as F
from minifw.functions import Array

Params = dict[str, Any]


class Layer:
    """Base of every layer: subclass it and define ``forward`` (and ``init`` if it has params).

    >>> class Double(Layer):
    ...     def forward(self, params, x):
    ...         return 2 * x
    >>> Double()({}, 1.5)
    3.0
    """

    def init(self, rng: onp.random.Generator) -> Params:
        """Draw this layer's parameters from ``rng``; a layer without parameters returns ``{}``."""
        return {}

    def forward(self, params: Params, x: Array) -> Array:
        """Compute the output for input ``x`` with parameters ``params``."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, params, x)")

    def __call__(self, params: Params, x: Array) -> Array:
        return self.forward(params, x)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


# --- Linear -----------------------------------------------------------------------------------

#: Weight initialisations: the standard deviation of ``W`` for ``in_features`` inputs.
#: "book": the fixed 0.01 of the book's TwoLayerNet; "xavier": 1/sqrt(n), keeps the variance of
#: sigmoid and tanh layers; "he": sqrt(2/n), keeps it for ReLU layers (the book, ch. 6.2).
WEIGHT_INITS = {
    "book": lambda n: 0.01,
    "xavier": lambda n: 1.0 / onp.sqrt(n),
    "he": lambda n: onp.sqrt(2.0 / n),
}


@primitive
def affine(x: Array, W: Array, b: Array) -> Array:
    """``x @ W + b`` as one traced operation, with hand-written VJPs for ``x``, ``W`` and ``b``.

    >>> affine(onp.ones((1, 2)), onp.ones((2, 3)), onp.arange(3.0))
    array([[2., 3., 4.]])
    """
    return x @ W + b


def _rows(a: Array) -> Array:
    """Leading axes folded into one: ``(..., n) -> (rows, n)``."""
    return a.reshape(-1, a.shape[-1])


defvjp(
    affine,
    lambda y, x, W, b: lambda g: g @ W.T,
    lambda y, x, W, b: lambda g: _rows(x).T @ _rows(g),
    lambda y, x, W, b: lambda g: _rows(g).sum(axis=0),
)


class Linear(Layer):
    """A fully connected layer, ``y = x @ W + b``, with ``W`` of shape ``(in, out)``.

    Arguments:
        in_features: the width of the input's last axis.
        out_features: the width of the output's last axis.
        weight_init: ``"xavier"`` (default), ``"he"``, ``"book"`` or a standard deviation.

    >>> layer = Linear(3, 2, weight_init="he")
    >>> {k: v.shape for k, v in layer.init(onp.random.default_rng(0)).items()}
    {'W': (3, 2), 'b': (2,)}
    """

    def __init__(self, in_features: int, out_features: int, weight_init: str | float = "xavier"):
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, (int, onp.integer)) or n < 1:
                raise ValueError(f"Linear: {name} must be a whole number >= 1, got {n!r}")
        if isinstance(weight_init, str):
            known = weight_init in WEIGHT_INITS
        else:  # a standard deviation: a finite real >= 0, not True
            known = isinstance(weight_init, (int, float, onp.integer, onp.floating)) and not (
                isinstance(weight_init, (bool, onp.bool_))) and bool(
                onp.isfinite(weight_init) and weight_init >= 0)
        if not known:
            raise ValueError(
                f"Linear: weight_init must be one of {sorted(WEIGHT_INITS)} or a standard "
                f"deviation (a finite number >= 0), got {weight_init!r}"
            )
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight_init = weight_init

    def init(self, rng: onp.random.Generator) -> Params:
        w = self.weight_init
        std = WEIGHT_INITS[w](self.in_features) if isinstance(w, str) else float(w)
        W = std * rng.standard_normal((self.in_features, self.out_features))
        return {"W": W, "b": onp.zeros(self.out_features)}

    def forward(self, params: Params, x: Array) -> Array:
        x = F._float(x)
        plain = getval(params)  # an autograd DictBox while traced
        if not isinstance(plain, dict) or "W" not in plain or "b" not in plain:
            got = list(plain) if isinstance(plain, dict) else type(plain).__name__
            raise TypeError(f"{self!r} expects params {{'W': ..., 'b': ...}}, got {got}")
        W, b = params["W"], params["b"]
        if onp.ndim(x) == 0 or onp.shape(x)[-1] != self.in_features:
            raise ValueError(
                f"{self!r} expects inputs whose last axis is {self.in_features}, "
                f"got shape {onp.shape(x)}"
            )
        if onp.shape(W) != (self.in_features, self.out_features) or onp.shape(b) != (
            self.out_features,
        ):
            raise ValueError(
                f"{self!r} expects W {(self.in_features, self.out_features)} and "
                f"b {(self.out_features,)}, got W {onp.shape(W)} and b {onp.shape(b)}"
            )
        return affine(x, W, b)


# --- activations ------------------------------------------------------------------------------


class Identity(Layer):
    """``y = x``."""

    def forward(self, params: Params, x: Array) -> Array:
        return F.identity(x)


class Step(Layer):
    """The step function (gradient 0)."""

    def forward(self, params: Params, x: Array) -> Array:
        return F.step(x)


class Sigmoid(Layer):
    """The logistic sigmoid."""

    def forward(self, params: Params, x: Array) -> Array:
        return F.sigmoid(x)


class Tanh(Layer):
    """The hyperbolic tangent."""

    def forward(self, params: Params, x: Array) -> Array:
        return F.tanh(x)


class ReLU(Layer):
    """``max(x, 0)``."""

    def forward(self, params: Params, x: Array) -> Array:
        return F.relu(x)


class LeakyReLU(Layer):
    """``x`` for ``x > 0``, else ``alpha * x``."""

    def __init__(self, alpha: float = 0.01):
        self.alpha = F.real_number("LeakyReLU: alpha", alpha)

    def forward(self, params: Params, x: Array) -> Array:
        return F.leaky_relu(x, self.alpha)


class Softmax(Layer):
    """Softmax over the last axis."""

    def forward(self, params: Params, x: Array) -> Array:
        return F.softmax(x)


#: The activation layers by name, for strategies, the command line and reports.
ACTIVATIONS: dict[str, type[Layer]] = {
    "identity": Identity,
    "step": Step,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "softmax": Softmax,
}


# --- Sequential -------------------------------------------------------------------------------


class Sequential(Layer):
    """Layers applied in order; params keyed by position, ``"0"``, ``"1"``, ...

    A layer without parameters has no key.

    >>> model = Sequential(Linear(4, 2), Softmax())
    >>> list(model.init(onp.random.default_rng(0))), len(model)
    (['0'], 2)
    """

    def __init__(self, *layers: Layer):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {layer!r}, not a minifw.Layer")
        self.layers = list(layers)

    def init(self, rng: onp.random.Generator) -> Params:
        params = {}
        for i, layer in enumerate(self.layers):
            p = layer.init(rng)
            if p:
                params[str(i)] = p
        return params

    def forward(self, params: Params, x: Array) -> Array:
        if not isinstance(getval(params), dict):  # an autograd DictBox while traced
            raise TypeError(f"Sequential: params must be a dict keyed by position ('0', '1', "
                            f"...), got {type(params).__name__}")
        for i, layer in enumerate(self.layers):
            x = layer(params.get(str(i), {}), x)
        return x

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __repr__(self) -> str:
        return "Sequential(" + ", ".join(map(repr, self.layers)) + ")"

"""The activation layers: each applies one elementwise op of :mod:`minifw.functions`.

Their maths (value and derivative) lives with the ops; a layer only names one. A new
activation is an :class:`minifw.ops.Elementwise` and a two-line layer like these.

>>> import numpy as onp
>>> ReLU()({}, onp.array([-1.0, 2.0]))
array([0., 2.])
"""

from __future__ import annotations

from typing import Any

from minifw import functions as F
from minifw.layers.base import Layer, Params


class Activation(Layer):
    """Base of the activation layers: an elementwise op on ``x``, no parameters."""

    ops_only = True


class Identity(Activation):
    """``y = x``."""

    def forward(self, params: Params, x: Any) -> Any:
        return F.identity(x)


class Step(Activation):
    """The step function (gradient 0)."""

    def forward(self, params: Params, x: Any) -> Any:
        return F.step(x)


class Sigmoid(Activation):
    """The logistic sigmoid."""

    def forward(self, params: Params, x: Any) -> Any:
        return F.sigmoid(x)


class Tanh(Activation):
    """The hyperbolic tangent."""

    def forward(self, params: Params, x: Any) -> Any:
        return F.tanh(x)


class ReLU(Activation):
    """``max(x, 0)``."""

    def forward(self, params: Params, x: Any) -> Any:
        return F.relu(x)


class LeakyReLU(Activation):
    """``x`` for ``x > 0``, else ``alpha * x``."""

    def __init__(self, alpha: float = 0.01):
        self.alpha = F.real_number("LeakyReLU: alpha", alpha)

    def forward(self, params: Params, x: Any) -> Any:
        return F.leaky_relu(x, self.alpha)


class Softmax(Activation):
    """Softmax over the last axis."""

    def forward(self, params: Params, x: Any) -> Any:
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

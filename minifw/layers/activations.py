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

    op = F._STEP


class Sigmoid(Activation):
    """The logistic sigmoid."""

    op = F._SIGMOID


class Tanh(Activation):
    """The hyperbolic tangent."""

    op = F._TANH


class ReLU(Activation):
    """``max(x, 0)``."""

    op = F._RELU


class LeakyReLU(Activation):
    """``x`` for ``x > 0``, else ``alpha * x``."""

    op = F._LEAKY_RELU

    def __init__(self, alpha: float = 0.01):
        self.alpha = F.real_number("LeakyReLU: alpha", alpha)

    def options(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class Softmax(Activation):
    """Softmax over the last axis."""

    op = F._SOFTMAX

    def check(self, params: Params, x: Any) -> None:
        F.check_softmax_input(x)


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

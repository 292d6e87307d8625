"""Losses as objects: ``loss(y, t) -> scalar``, each a thin layer over a seed function.

Axis 0 is the batch; every loss is the mean over it. ``t`` is one-hot or integer labels for
the two cross-entropies, and of ``y``'s shape for the squared errors.

>>> import numpy as onp
>>> round(float(SoftmaxCrossEntropy()(onp.zeros((2, 4)), onp.array([0, 3]))), 6)
1.386294
"""

from __future__ import annotations

from minifw import functions as F
from minifw.functions import Array


class Loss:
    """Base of the losses: subclass it and define ``forward(y, t)``; ``loss(y, t)`` calls it."""

    def forward(self, y: Array, t: Array) -> Array:
        """The scalar loss of output ``y`` against target ``t``."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, y, t)")

    def __call__(self, y: Array, t: Array) -> Array:
        return self.forward(y, t)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SumSquaresError(Loss):
    """``0.5 * sum((y - t)**2)``, the mean over the batch (:func:`F.sum_squares_error`)."""

    def forward(self, y: Array, t: Array) -> Array:
        return F.sum_squares_error(y, t)


class MeanSquaredError(Loss):
    """``mean((y - t)**2)`` over all elements (:func:`F.mean_squared_error`)."""

    def forward(self, y: Array, t: Array) -> Array:
        return F.mean_squared_error(y, t)


class CrossEntropyError(Loss):
    """Cross-entropy on probabilities, with the book's ``1e-7`` (:func:`F.cross_entropy_error`)."""

    def forward(self, y: Array, t: Array) -> Array:
        return F.cross_entropy_error(y, t)


class SoftmaxCrossEntropy(Loss):
    """Softmax then cross-entropy, fused and stable, on logits (:func:`F.softmax_cross_entropy`)."""

    def forward(self, y: Array, t: Array) -> Array:
        return F.softmax_cross_entropy(y, t)


#: The losses by name, for strategies and the command line.
LOSSES: dict[str, type[Loss]] = {
    "sse": SumSquaresError,
    "mse": MeanSquaredError,
    "cross_entropy": CrossEntropyError,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
}

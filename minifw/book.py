"""The book's names and meanings: "Deep Learning from Scratch", chapters 3 to 5, as printed.

The book's code imports ``common/functions.py``, ``common/gradient.py``,
``common/layers.py`` and ``dataset/mnist.py``; ``from minifw.book import *`` gives the same
names with the same meanings, computed by minifw, so a chapter's code runs as printed and
gives the book's numbers. Where minifw's own names differ:

- ``identity_function(x)`` returns ``x`` (minifw's ``functions.identity`` returns floats).
- ``step_function(x)`` gives integers 0/1, as the book's ``np.array(x > 0, dtype=int)``;
  minifw's ``functions.step`` gives floats 0.0/1.0, for networks.
- ``sigmoid``, ``relu``, ``softmax``, ``cross_entropy_error`` (one-hot or labels, the mean over
  a batch) are minifw's ``functions`` of those names; ``sigmoid_grad(x)`` is autograd's
  ``sigmoid'(x)``.
- ``mean_squared_error(y, t)`` is the book's: ``0.5 * sum((y - t)**2)``, summed over a batch
  too; ``sum_squared_error`` is the same (its name in the English edition). minifw's own
  ``functions.mean_squared_error`` is ``mean((y - t)**2)``, and ``functions.sum_squares_error``
  the mean over a batch's samples of the book's value.
- ``softmax_loss(x, t)`` is ``cross_entropy_error(softmax(x), t)``; minifw's
  ``functions.softmax_cross_entropy`` is the stable form, without the ``1e-7``.
- ``numerical_diff``, ``numerical_gradient``, ``gradient_descent`` are
  :mod:`minifw.numerical`'s (``h = 1e-4``).
- ``MulLayer``, ``AddLayer``, ``Relu``, ``Sigmoid``, ``Affine``, ``SoftmaxWithLoss`` are the
  book's layer objects, whose ``forward`` keeps what ``backward(dout)`` needs, with minifw's
  ops doing the maths (backward passes included). minifw's own layers are pure:
  ``mf.ReLU()``, ``mf.Sigmoid()``, ``mf.Linear(in, out)`` called as ``layer(params, x)``, and
  the loss ``mf.SoftmaxCrossEntropy()``.
- ``load_mnist`` is :func:`minifw.datasets.load_mnist`, with the book's arguments.

``gradient_descent`` with the book's ``lr=10.0`` shows the divergence the book shows, with a
:class:`~minifw.divergence.DivergenceWarning`; where ``x`` has grown past ``1e12`` the step
``h`` no longer changes it and the run stops there (the book's printed point, ``-2.6e13``, is
where its rounding noise left it).

Differentiable code of your own (a layer for minifw) cannot change arrays in place as the
book's layers do (``out = x.copy(); out[x <= 0] = 0``): write ``np.where(x > 0, x, 0.0)``
with ``minifw.np``, or give the layer a backward pass; minifw's error says so.

>>> import numpy as np
>>> step_function(np.array([-1.0, 1.0, 2.0]))
array([0, 1, 1])
>>> y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
>>> t = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
>>> float(mean_squared_error(y, t)), float(cross_entropy_error(y, t))
(0.09750000000000003, 0.510825457099338)
"""

from __future__ import annotations

from typing import Any

import autograd.numpy as anp
import numpy as onp
from autograd.tracer import getval

from minifw import functions as F
from minifw.datasets import load_mnist
from minifw.gradients import grad
from minifw.numerical import gradient_descent, numerical_diff, numerical_gradient

__all__ = [
    "identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu", "softmax",
    "mean_squared_error", "sum_squared_error", "cross_entropy_error", "softmax_loss",
    "numerical_diff", "numerical_gradient", "gradient_descent",
    "MulLayer", "AddLayer", "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "load_mnist",
]

sigmoid, relu, softmax, cross_entropy_error = F.sigmoid, F.relu, F.softmax, F.cross_entropy_error


# --- chapter 3: activations -------------------------------------------------------------------


def identity_function(x: Any) -> Any:
    """The book's output activation of regression: ``x`` itself.

    >>> identity_function([0.31682708, 0.69627909])
    [0.31682708, 0.69627909]
    """
    return x


def step_function(x: Any) -> Any:
    """The book's step function: the integer 1 where ``x > 0``, else 0.

    >>> step_function(onp.array([-1.0, 0.0, 2.0]))
    array([0, 0, 1])
    """
    return onp.asarray(onp.asarray(getval(x)) > 0, dtype=onp.int64)


def sigmoid_grad(x: Any) -> Any:
    """The derivative of the sigmoid, ``(1 - sigmoid(x)) * sigmoid(x)``, elementwise.

    >>> float(sigmoid_grad(0.0))
    0.25
    """
    x = F._float(x)
    return grad(lambda z: anp.sum(F.sigmoid(z)))(x)


# --- chapter 4: losses ------------------------------------------------------------------------


def mean_squared_error(y: Any, t: Any) -> Any:
    """The book's ``mean_squared_error``: ``0.5 * sum((y - t)**2)``, over a whole batch too.

    minifw's own :func:`minifw.functions.mean_squared_error` is ``mean((y - t)**2)``, and its
    :func:`~minifw.functions.sum_squares_error` the mean of this over a batch's samples.

    >>> float(mean_squared_error(onp.array([[1.0, 0.0], [0.0, 1.0]]), onp.zeros((2, 2))))
    1.0
    """
    y, t = F._float(y), F._float(t)
    value = F.sum_squares_error(y, t)
    return value * onp.shape(y)[0] if onp.ndim(y) > 1 else value


sum_squared_error = mean_squared_error  # the name of the English edition


def softmax_loss(x: Any, t: Any) -> Any:
    """The book's ``softmax_loss``: ``cross_entropy_error(softmax(x), t)``.

    >>> round(float(softmax_loss(onp.array([0.0, 0.0]), onp.array([1, 0]))), 6)
    0.693147
    """
    return F.cross_entropy_error(F.softmax(x), t)


# --- chapter 5: the book's layer objects ------------------------------------------------------


def _vjp(f: Any, inputs: dict[str, Any], dout: Any) -> dict[str, Any]:
    """The gradients of ``sum(f(**inputs) * dout)``: ``f``'s backward pass applied to ``dout``."""
    return grad(lambda p: anp.sum(f(**p) * dout))({k: F._float(v) for k, v in inputs.items()})


class MulLayer:
    """The book's multiplication node (5.4.1): ``forward(x, y)``, ``backward(dout)``."""

    def __init__(self) -> None:
        self.x: Any = None
        self.y: Any = None

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return dout * self.y, dout * self.x


class AddLayer:
    """The book's addition node (5.4.2): ``forward(x, y)``, ``backward(dout)``."""

    def forward(self, x: Any, y: Any) -> Any:
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return dout * 1, dout * 1


class Relu:
    """The book's ReLU layer (5.5.1), minifw's ``relu`` op forward and backward."""

    def __init__(self) -> None:
        self.x: Any = None

    def forward(self, x: Any) -> Any:
        self.x = x
        return F.relu(x)

    def backward(self, dout: Any) -> Any:
        return _vjp(F.relu, {"x": self.x}, dout)["x"]


class Sigmoid:
    """The book's sigmoid layer (5.5.2), minifw's ``sigmoid`` op forward and backward."""

    def __init__(self) -> None:
        self.x: Any = None

    def forward(self, x: Any) -> Any:
        self.x = x
        return F.sigmoid(x)

    def backward(self, dout: Any) -> Any:
        return _vjp(F.sigmoid, {"x": self.x}, dout)["x"]


class Affine:
    """The book's affine layer (5.6.2): ``Affine(W, b)``; ``backward`` sets ``dW`` and ``db``.

    ``W`` and ``b`` are the arrays given (the network's ``params``), not copies, so that an
    optimizer's updates reach the layer. An input of more than two axes is flattened to
    ``(N, -1)``, as the book's is.
    """

    def __init__(self, W: Any, b: Any) -> None:
        self.W, self.b = W, b
        self.x: Any = None
        self.original_x_shape: tuple[int, ...] = ()
        self.dW: Any = None
        self.db: Any = None

    def forward(self, x: Any) -> Any:
        self.original_x_shape = onp.shape(x)
        self.x = onp.reshape(x, (onp.shape(x)[0], -1))
        return F.affine(self.x, self.W, self.b)

    def backward(self, dout: Any) -> Any:
        g = _vjp(F.affine, {"x": self.x, "W": self.W, "b": self.b}, dout)
        self.dW, self.db = g["W"], g["b"]
        return g["x"].reshape(self.original_x_shape)


class SoftmaxWithLoss:
    """The book's softmax-with-loss layer (5.6.3): ``forward(x, t)`` is
    ``cross_entropy_error(softmax(x), t)``; ``backward()`` is ``(y - t) / batch_size``,
    the gradient of minifw's ``softmax_cross_entropy``."""

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: Any = None
        self.t: Any = None
        self.x: Any = None

    def forward(self, x: Any, t: Any) -> Any:
        self.x, self.t = x, t
        self.y = F.softmax(x)
        self.loss = F.cross_entropy_error(self.y, t)
        return self.loss

    def backward(self, dout: Any = 1) -> Any:
        t = self.t
        return _vjp(lambda x: F.softmax_cross_entropy(x, t), {"x": self.x}, dout)["x"]

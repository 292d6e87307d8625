"""Layers: pure functions of ``(params, x)`` that hold hyperparameters only.

One file per kind: :mod:`~minifw.layers.base` (the ``Layer`` protocol and how a layer with a
backward pass becomes one op), :mod:`~minifw.layers.linear`,
:mod:`~minifw.layers.activations`, :mod:`~minifw.layers.sequential`. Layers act on the last
axis and accept any leading axes.

>>> import numpy as onp
>>> model = Sequential(Linear(2, 3), ReLU(), Linear(3, 1))
>>> params = model.init(onp.random.default_rng(0))
>>> sorted(params), model(params, onp.ones((4, 2))).shape
(['0', '2'], (4, 1))
"""

from minifw.layers.activations import (
    ACTIVATIONS,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Step,
    Tanh,
)
from minifw.layers.base import Layer, Params
from minifw.layers.linear import WEIGHT_INITS, Linear
from minifw.layers.sequential import Sequential

__all__ = ["Layer", "Params", "Linear", "WEIGHT_INITS", "Identity", "Step", "Sigmoid", "Tanh",
           "ReLU", "LeakyReLU", "Softmax", "Sequential", "ACTIVATIONS"]

"""Layers: pure functions of ``(params, x)`` that hold hyperparameters only.

One file per kind: :mod:`~minifw.layers.base` (the ``Layer`` protocol and how a layer with a
backward pass becomes one op), :mod:`~minifw.layers.linear`,
:mod:`~minifw.layers.activations`, :mod:`~minifw.layers.conv` (``Conv2D``),
:mod:`~minifw.layers.pooling` (``MaxPool2D``, ``AvgPool2D``), :mod:`~minifw.layers.reshape`
(``Flatten``), :mod:`~minifw.layers.norm` (``BatchNorm``), :mod:`~minifw.layers.dropout`,
:mod:`~minifw.layers.sequential`. Dense layers and activations act on the last axis and
accept any leading axes; convolution and pooling take NCHW images.

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
from minifw.layers.conv import Conv2D
from minifw.layers.dropout import Dropout
from minifw.layers.linear import WEIGHT_INITS, Linear
from minifw.layers.norm import BatchNorm
from minifw.layers.pooling import AvgPool2D, MaxPool2D
from minifw.layers.reshape import Flatten
from minifw.layers.sequential import Sequential

__all__ = ["Layer", "Params", "Linear", "WEIGHT_INITS", "Identity", "Step", "Sigmoid", "Tanh",
           "ReLU", "LeakyReLU", "Softmax", "Sequential", "ACTIVATIONS", "Conv2D", "MaxPool2D",
           "AvgPool2D", "Flatten", "BatchNorm", "Dropout"]

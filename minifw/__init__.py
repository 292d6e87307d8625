"""minifw: a small neural-network framework on NumPy and HIPS autograd.

Every gradient has two independent sources, central differences and autograd, and a gradient
checker holds them against each other.

>>> import numpy as onp, minifw as mf
>>> model = mf.Sequential(mf.Linear(4, 8), mf.ReLU(), mf.Linear(8, 3))
>>> params = model.init(onp.random.default_rng(0))
>>> x, t = onp.ones((2, 4)), onp.array([0, 2])
>>> f = lambda p: mf.SoftmaxCrossEntropy()(model(p, x), t)
>>> sorted(mf.grad(f)(params)["0"]), mf.check_grads(f, params).ok
(['W', 'b'], True)
"""

import autograd.numpy as np
from autograd.extend import defvjp, primitive

from minifw import functions, modes, numerical, optim
from minifw.divergence import DivergenceWarning
from minifw.files import load, save
from minifw.functions import NonFiniteError
from minifw.gradcheck import (
    GradCheckReport,
    GradCheckRow,
    assert_grads_close,
    check_grads,
    check_layer,
)
from minifw.gradients import grad, value_and_grad
from minifw.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dropout,
    Flatten,
    Identity,
    Layer,
    LeakyReLU,
    Linear,
    MaxPool2D,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Step,
    Tanh,
)
from minifw.losses import (
    CrossEntropyError,
    Loss,
    MeanSquaredError,
    SoftmaxCrossEntropy,
    SumSquaresError,
)
from minifw.modelfile import SavedModel, load_model, save_model
from minifw.modes import evaluation
from minifw.ops import Elementwise, Op
from minifw.perceptron import Perceptron
from minifw.summary import Summary, summary
from minifw.training import History, accuracy, fit

# ``mf.training`` is the training block of minifw.modes: bound here, after every import, since
# importing the module minifw.training (above, or from any other module) binds the name to it
training = modes.training

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # minifw.testing imports hypothesis (slow to import), minifw.book is for the book's
    # readers: each is loaded on first use
    if name in ("testing", "book"):
        import importlib

        return importlib.import_module(f"minifw.{name}")
    raise AttributeError(f"module 'minifw' has no attribute {name!r}")


__all__ = [
    "np", "primitive", "defvjp", "functions", "numerical", "optim",
    "Layer", "Linear", "Identity", "Step", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softmax",
    "Sequential", "Loss", "SumSquaresError", "MeanSquaredError", "CrossEntropyError",
    "SoftmaxCrossEntropy", "grad", "value_and_grad", "Perceptron", "fit", "accuracy", "History",
    "save", "load", "save_model", "load_model", "SavedModel", "summary", "Summary",
    "DivergenceWarning", "NonFiniteError", "check_grads", "check_layer", "assert_grads_close",
    "GradCheckReport", "GradCheckRow",
    "Op", "Elementwise",
    "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "BatchNorm", "Dropout", "modes", "training",
    "evaluation",
]

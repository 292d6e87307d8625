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
from minifw.functions import NonFiniteError
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
from minifw.modes import evaluation
from minifw.ops import Elementwise, Op
from minifw.perceptron import Perceptron
from minifw.summary import Summary, summary
from minifw.training import History, accuracy, fit

# ``mf.training`` is the training block of minifw.modes: bound here, after every import, since
# importing the module minifw.training (above, or from any other module) binds the name to it
training = modes.training

__version__ = "0.1.0"


#: Names loaded on first use, from the module that holds them: the gradient checker and the
#: files are not needed to build and train a model, and a third of ``import minifw``'s time
#: went to them; ``minifw.testing`` imports hypothesis, ``minifw.book`` is for the book's
#: readers. The modules themselves are names too (``mf.gradcheck.check_grads``). (No module
#: here shares a name it holds, as ``minifw.summary`` does: importing such a module would
#: replace the name by the module.)
_LAZY = {
    "check_grads": "gradcheck", "check_layer": "gradcheck", "assert_grads_close": "gradcheck",
    "GradCheckReport": "gradcheck", "GradCheckRow": "gradcheck",
    "load": "files", "save": "files",
    "SavedModel": "modelfile", "load_model": "modelfile", "save_model": "modelfile",
    "testing": None, "book": None, "gradcheck": None, "files": None, "modelfile": None,
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'minifw' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f"minifw.{_LAZY[name] or name}")
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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

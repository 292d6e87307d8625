"""``Sequential``: layers applied in order, params keyed by position.

>>> import numpy as onp
>>> from minifw.layers import Linear, ReLU
>>> model = Sequential(Linear(2, 3), ReLU(), Linear(3, 1))
>>> params = model.init(onp.random.default_rng(0))
>>> sorted(params), model(params, onp.ones((4, 2))).shape
(['0', '2'], (4, 1))
"""

from __future__ import annotations

from typing import Any

import numpy as onp
from autograd.tracer import getval

from minifw.layers.base import Layer, Params


class Sequential(Layer):
    """Layers applied in order; params keyed by position, ``"0"``, ``"1"``, ...

    A layer without parameters has no key.

    >>> from minifw.layers import Linear, Softmax
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

    def forward(self, params: Params, x: Any) -> Any:
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

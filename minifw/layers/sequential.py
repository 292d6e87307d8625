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
from autograd.core import make_vjp
from autograd.tracer import getval, isbox

from minifw import modes
from minifw.functions import _float
from minifw.layers.base import Layer, Params
from minifw.ops import Op, chain_grads, mode, open_layers, recording
from minifw.tape import _rebuild
from minifw.tree import flat


def chainable(layer: Layer) -> bool:
    """Whether ``layer``'s call is ops on the running value only: it has a backward pass (one
    op), or it says ``ops_only``."""
    return layer.backward is not None or layer.ops_only


class Sequential(Layer):
    """Layers applied in order; params keyed by position, ``"0"``, ``"1"``, ...

    A layer without parameters has no key, and so in the state (``init_state()``) a layer
    without any. While a :mod:`minifw.modes` block is active, the Sequential keeps the path of
    the layer it is calling, by which dropout and batch norm find their masks and statistics.
    When every layer is :func:`chainable`, a traced
    call is one op whose backward pass is a short loop: the recorded op calls of the forward
    pass, reversed, each running its own backward pass (:func:`minifw.ops.chain_grads`).

    >>> from minifw.layers import Linear, Softmax
    >>> model = Sequential(Linear(4, 2), Softmax())
    >>> list(model.init(onp.random.default_rng(0))), len(model)
    (['0'], 2)
    """

    def __init__(self, *layers: Layer):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {layer!r}, not a minifw.Layer")
        self.layers = tuple(layers)
        self.ops_only = all(map(chainable, self.layers))  # type: ignore[misc]
        self._keys = tuple(str(i) for i in range(len(self.layers)))

    def init(self, rng: onp.random.Generator) -> Params:
        params = {}
        for i, layer in enumerate(self.layers):
            p = layer.init(rng)
            if p:
                params[str(i)] = p
        return params

    def init_state(self) -> Params:
        state = {}
        for key, layer in zip(self._keys, self.layers):
            s = layer.init_state()
            if s:
                state[key] = s
        return state

    def forward(self, params: Params, x: Any) -> Any:
        if not isinstance(getval(params), dict):  # an autograd DictBox while traced
            raise TypeError(f"Sequential: params must be a dict keyed by position ('0', '1', "
                            f"...), got {type(params).__name__}")
        m = modes.active()
        for key, layer in zip(self._keys, self.layers):
            p = params.get(key, EMPTY)
            x = layer(p, x) if m is None else m.call(key, layer, p, x)
        return x

    def __call__(self, params: Params, x: Any) -> Any:
        if not self.ops_only or mode() is not None or not isinstance(params, dict):
            return self.forward(params, x)
        arrays = flat(params)
        if not (isbox(x) or any(map(isbox, arrays))):
            return self.forward(params, x)
        return SEQUENCE(x, *arrays, model=self, tree=params, calls=[])

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __repr__(self) -> str:
        return "Sequential(" + ", ".join(map(repr, self.layers)) + ")"


EMPTY: dict[str, Any] = {}


def _run(model: Sequential, tree: Params, x: Any, calls: list[Any],
         m: modes.Mode | None) -> Any:
    """``model``'s forward pass on plain arrays (``tree``, ``x``), each op call appended to
    ``calls``: a layer that is one op runs it directly, any other layer is called while
    recording (in the mode ``m``, at its path)."""
    for key, layer in zip(model._keys, model.layers):
        p = tree.get(key, EMPTY)
        if layer.one_op():
            if type(x) is not onp.ndarray or x.dtype.kind != "f":
                x = _float(x)
            layer.check(p, x)
            op = layer.op
            args = (x, *[p[k] for k in layer.param_names])
            options = layer.options()
            x = op.forward(*args, **options)  # type: ignore[union-attr]
            calls.append((op, args, options, x))
        else:
            if m is not None:
                m.path.append(key)
            try:  # its ops (or itself, a backward's op) record
                x = _run(layer, p, x, calls, m) if type(layer) is Sequential else layer(p, x)
            finally:
                if m is not None:
                    m.path.pop()
    return x


def _forward(x: Any, *arrays: Any, model: Sequential, tree: Params, calls: list[Any]) -> Any:
    # autograd hands the op its arguments unboxed: the layers see (and check) plain arrays
    with recording() as r:
        y = _run(model, _rebuild(tree, iter(arrays)), x, r.calls, modes.active())
    calls.append(r.calls)
    return y


def _backward(g: Any, y: Any, x: Any, *arrays: Any, needs: tuple[bool, ...], model: Sequential,
              tree: Params, calls: list[Any]) -> list[Any]:
    grads = chain_grads(calls[0], x, arrays, y, g, needs)
    if grads is not None:
        return grads
    # not a chain of ops (e.g. a layer that says ops_only but is not): autograd traces the
    # forward pass again, one layer call at a time
    with open_layers():
        vjp, _ = make_vjp(lambda xs: model.forward(_rebuild(tree, iter(xs[1:])), xs[0]),
                          (x, *arrays))
        return list(vjp(g))


#: The call of a Sequential of chainable layers, under autograd: one op.
SEQUENCE = Op("sequential", _forward, backward=_backward)

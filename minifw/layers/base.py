"""The ``Layer`` protocol: hyperparameters on the layer, parameters passed in, nothing cached.

``layer.init(rng) -> params`` draws parameters from an explicit ``numpy.random.Generator``;
``layer(params, x) -> y`` computes. A layer is written like a layer of "Deep Learning from
Scratch", chapter 5, made pure: ``forward(params, x)`` with ``minifw.np`` and, if it wants a
hand-written backward pass, ``backward(params, x, y, g) -> (gx, grads)``, which receives
everything it needs instead of reading ``self.x``. A layer with a backward pass is one op:
under autograd its call is recorded once and its backward pass is the VJP, so training, the
gradient checker and ``method="trace"`` (which traces ``forward`` alone) all run this code.
A layer without one is traced through its forward pass.

>>> import numpy as onp, minifw as mf
>>> class Scale(Layer):
...     def init(self, rng):
...         return {"a": onp.ones(1)}
...     def forward(self, params, x):
...         return params["a"] * x
...     def backward(self, params, x, y, g):
...         return params["a"] * g, {"a": (g * x).sum(keepdims=True).reshape(1)}
>>> mf.check_layer(Scale(), onp.ones((2, 3))).ok
True
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as onp
from autograd.tracer import getval

from minifw.functions import _float
from minifw.ops import Op, bypass_backward
from minifw.tree import flat, leaves

Params = dict[str, Any]


class Layer:
    """Base of every layer: subclass it and define ``forward`` (and ``init`` if it has params).

    Optional:

    - ``backward(self, params, x, y, g) -> (gx, grads)``: the hand-written backward pass,
      ``grads`` shaped like ``params``. If it takes a keyword ``need_x``, it is told when
      ``x`` needs no gradient (the first layer's input is data) and may return ``None`` for
      ``gx``, saving that work.
    - ``per_sample = True``: sample ``b`` of the output depends only on sample ``b`` of ``x``
      (no batch statistics); the numerical engine then perturbs one sample at a time.
    - ``ops_only = True``: ``forward`` only applies minifw ops and layers to the running value
      (no other computation on it, nothing in place), so a ``Sequential`` may run its reverse
      pass itself. A layer with a backward pass is one op, and needs no such promise.
    - ``op`` and ``param_names``: the layer is one op applied to ``x`` and its parameters in
      that order (with ``options()`` as keywords, after ``check(params, x)``); then
      ``forward`` need not be written, and a ``Sequential`` calls the op directly. The
      built-in layers are written so.

    >>> class Double(Layer):
    ...     def forward(self, params, x):
    ...         return 2 * x
    >>> Double()({}, 1.5)
    3.0
    """

    backward: Any = None
    per_sample: ClassVar[bool] = False
    ops_only: ClassVar[bool] = False
    op: ClassVar[Op | None] = None
    param_names: ClassVar[tuple[str, ...]] = ()
    _tells_need_x: ClassVar[bool] = False
    _one_op: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.backward is not None:
            cls._tells_need_x = "need_x" in inspect.signature(cls.backward).parameters
        cls._one_op = (cls.op is not None and cls.backward is None
                       and cls.forward is Layer.forward and cls.__call__ is Layer.__call__)

    def init(self, rng: onp.random.Generator) -> Params:
        """Draw this layer's parameters from ``rng``; a layer without parameters returns ``{}``."""
        return {}

    def init_state(self) -> Params:
        """This layer's initial state (running statistics; see :mod:`minifw.modes`): ``{}``
        for a layer without any, as for every layer but ``BatchNorm``."""
        return {}

    def forward(self, params: Params, x: Any) -> Any:
        """Compute the output for input ``x`` with parameters ``params``."""
        if self.op is None:
            raise NotImplementedError(f"{type(self).__name__} must define forward(self, params, "
                                      "x)")
        x = _float(x)
        self.check(params, x)
        return self.op(x, *[params[k] for k in self.param_names], **self.options())

    def check(self, params: Params, x: Any) -> None:
        """Raise ``ValueError``/``TypeError`` naming the problem if ``params`` or ``x`` do not
        fit this layer (a layer that is one ``op``; the default checks nothing)."""

    def options(self) -> dict[str, Any]:
        """The keyword arguments of this layer's ``op`` (its hyperparameters)."""
        return {}

    def one_op(self) -> bool:
        """Whether the layer's call is exactly its ``op`` (no own ``forward`` or backward)."""
        return self._one_op and self.backward is None  # a backward set on the instance

    def __call__(self, params: Params, x: Any) -> Any:
        if self.backward is None or bypass_backward():
            return self.forward(params, x)
        plain = getval(params)
        if not isinstance(plain, dict):
            raise TypeError(f"{self!r} expects a dict of parameters, got {type(plain).__name__}")
        arrays = flat(params)
        return LAYER(x, *arrays, layer=self, skeleton=_skeleton(params))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def shape_of(a: Any) -> tuple[int, ...]:
    """The shape of an array, a number or an autograd box around one."""
    v = getval(a)
    return v.shape if type(v) is onp.ndarray else onp.shape(v)


def expect_params(layer: Layer, params: Params, shapes: dict[str, tuple[int, ...]],
                  what: str = "params") -> None:
    """Raise ``TypeError`` unless ``params`` is a dict with the keys of ``shapes``, and
    ``ValueError`` naming both unless the arrays have those shapes; ``what`` names them.

    >>> expect_params(Layer(), {"W": onp.zeros(2)}, {"W": (3,)})
    Traceback (most recent call last):
    ...
    ValueError: Layer() expects W (3,), got W (2,)
    """
    plain = getval(params)  # an autograd DictBox under autograd.grad itself
    if not isinstance(plain, dict) or any(k not in plain for k in shapes):
        got = list(plain) if isinstance(plain, dict) else type(plain).__name__
        want = ", ".join(f"{k!r}: ..." for k in shapes)
        raise TypeError(f"{layer!r} expects {what} {{{want}}}, got {got}")
    got_shapes = {k: shape_of(params[k]) for k in shapes}
    if got_shapes != shapes:
        def spell(d: dict[str, tuple[int, ...]]) -> str:
            return " and ".join(f"{k} {v}" for k, v in d.items())
        named = "" if what == "params" else f"{what} "
        raise ValueError(f"{layer!r} expects {named}{spell(shapes)}, got {spell(got_shapes)}")


def _skeleton(tree: Any) -> Any:
    return {k: _skeleton(v) for k, v in tree.items()} if isinstance(tree, dict) else None


def _fill(skeleton: Any, items: Any) -> Any:
    if isinstance(skeleton, dict):
        return {k: _fill(v, items) for k, v in skeleton.items()}
    return next(items)


def _forward(x: Any, *arrays: Any, layer: Layer, skeleton: Any) -> Any:
    return layer.forward(_fill(skeleton, iter(arrays)), x)


def _backward(g: Any, y: Any, x: Any, *arrays: Any, needs: tuple[bool, ...], layer: Layer,
              skeleton: Any) -> list[Any]:
    params = _fill(skeleton, iter(arrays))
    if layer._tells_need_x:
        gx, grads = layer.backward(params, x, y, g, need_x=needs[0])
    else:
        gx, grads = layer.backward(params, x, y, g)
    name = f"{type(layer).__name__}.backward"
    if needs[0] and onp.shape(getval(gx)) != onp.shape(getval(x)):
        raise ValueError(f"{name} returned the input's gradient of shape "
                         f"{onp.shape(getval(gx))} for x of shape {onp.shape(getval(x))}")
    if not isinstance(grads, dict):
        raise TypeError(f"{name} must return (gx, grads) with grads a dict shaped like params, "
                        f"got {type(grads).__name__}")
    got = dict(leaves(grads))
    out = [gx]
    for (path, a) in leaves(params):
        if path not in got or got[path] is None:
            raise ValueError(f"{name} returned no gradient for the parameter {path!r} "
                             f"(it returned {sorted(got)})")
        shape = onp.shape(getval(got[path]))
        if shape != onp.shape(getval(a)):
            raise ValueError(f"{name} returned the gradient of {path!r} with shape {shape}; "
                             f"the parameter has shape {onp.shape(getval(a))}")
        out.append(got[path])
    return out


class _LayerCall(Op):
    """The op every call of a layer with a backward pass is: ``x, *params -> y``."""

    def samplewise(self, options: dict[str, Any]) -> bool:
        return bool(options["layer"].per_sample)


LAYER = _LayerCall("layer", _forward, backward=_backward)

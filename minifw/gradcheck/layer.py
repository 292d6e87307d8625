"""``check_layer``: a layer's gradients with respect to its inputs and every parameter.

The scalar checked is ``sum(layer(params, x) * G)`` for a cotangent ``G`` (random unless
given), so that every output element's backward pass takes part with its own weight. ``x``
may be a tuple of inputs (a layer that takes several); integer and boolean inputs (indices,
masks, labels) are passed as they are and not differentiated. A layer with several outputs
(a tuple) gets a cotangent for each.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import autograd.numpy as np
import numpy as onp

from minifw.functions import LossOp, _axes
from minifw.gradcheck.check import MODES, _copy, run_check
from minifw.gradcheck.report import GradCheckReport
from minifw.layers import Layer

#: ``sum(y * G)``: the scalar :func:`check_layer` differentiates, ``G`` the cotangent.
COTANGENT = LossOp("cotangent", lambda y, G, lead: np.sum(y * G, axis=_axes(y, lead)),
                   lambda g, v, y, G: g * G, lambda g, v, y, G: g * y, reduce="sum")


def _names(x: Any) -> list[str]:
    return ["x"] if not isinstance(x, tuple) else [f"x{i}" for i in range(len(x))]


def check_layer(
    layer: Layer,
    x: Any,
    params: dict[str, Any] | None = None,
    mode: str = "full",
    rng: Any = None,
    h: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    *,
    cotangent: Any = None,
    directions: int = 1,
    order: int = 1,
) -> GradCheckReport:
    """Check a layer's gradients with respect to its input(s) and every parameter.

    Arguments:
        layer: a :class:`minifw.Layer` (built-in or a user's own).
        x: an input batch, or a tuple of inputs (never changed; integer and boolean inputs
            are not differentiated).
        params: the layer's parameters; ``None`` draws them with ``layer.init(rng)``. The
            layer only ever sees copies.
        mode, rng, h, rtol, atol, directions, order: as in :func:`check_grads`; ``rng`` also
            draws the cotangent.
        cotangent: ``G`` (shaped like the output, a tuple for several outputs), or ``None``
            for a standard normal one.

    Returns:
        A report with a row per input (``"x"``, or ``"x0"``, ``"x1"``, ...) and per parameter
        (``"W"``, ``"b"``).

    >>> import numpy as onp, minifw as mf
    >>> check_layer(mf.Linear(3, 2), onp.ones((4, 3))).ok
    True
    """
    from minifw.training import as_generator

    if not isinstance(layer, Layer):
        hint = " (a class: instantiate it)" if isinstance(layer, type) else ""
        raise TypeError(f"check_layer: layer must be a minifw.Layer, got {layer!r}{hint}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    gen = as_generator(0 if rng is None else rng)
    params = layer.init(gen) if params is None else params
    if not isinstance(params, dict):
        raise TypeError(f"check_layer: params must be a dict, got {type(params).__name__}")
    names = _names(x)
    if set(names) & set(params):
        raise ValueError(f"check_layer: the layer has a parameter named {names[0]!r}, the "
                         "input's name")
    params = _copy(params)  # the layer never sees the caller's arrays, params or inputs
    inputs = [_copy(a) for a in (x if isinstance(x, tuple) else (x,))]
    y = layer(params, tuple(inputs) if isinstance(x, tuple) else inputs[0])
    outputs = y if isinstance(y, tuple) else (y,)
    G = _cotangents(outputs, cotangent, gen)

    def f(tree: dict[str, Any]) -> Any:
        p = {k: v for k, v in tree.items() if k not in names}
        xs = [tree[n] for n in names]
        out = layer(p, tuple(xs) if isinstance(x, tuple) else xs[0])
        terms = [COTANGENT(y_k, G_k) for y_k, G_k in zip(
            out if isinstance(out, tuple) else (out,), G)]
        # one output: the cotangent loss ends the chain, so the stacked engine, the probe and
        # blame see it (a sum starting from 0.0 would end it in an addition, and the loop run)
        return functools.reduce(operator.add, terms)

    tree = {**dict(zip(names, inputs)), **params}
    return run_check(f, tree, (), mode=mode, rng=gen, h=h, rtol=rtol, atol=atol,
                     directions=directions, order=order)


def _cotangents(outputs: tuple[Any, ...], given: Any, gen: onp.random.Generator
                ) -> list[onp.ndarray]:
    if given is None:
        return [gen.standard_normal(onp.shape(y)).astype(
            onp.asarray(y).dtype if onp.asarray(y).dtype.kind == "f" else onp.float64)
            for y in outputs]
    given = list(given) if isinstance(given, tuple) else [given]
    if len(given) != len(outputs):
        raise ValueError(f"check_layer: the layer has {len(outputs)} outputs but "
                         f"{len(given)} cotangents were given")
    out = []
    for k, (y, G) in enumerate(zip(outputs, given)):
        G = onp.asarray(G, dtype=onp.float64)
        if G.shape != onp.shape(y):
            raise ValueError(f"check_layer: cotangent {k} has shape {G.shape} but the layer's "
                             f"output {k} has shape {onp.shape(y)}")
        out.append(G)
    return out

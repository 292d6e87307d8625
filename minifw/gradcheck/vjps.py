"""A VJP that returns the wrong shape, or nothing: named, before autograd trips over it.

A VJP must return the gradient of its argument, shaped like that argument. When one does not,
autograd fails later with a broadcast error far from the cause; :func:`misshapen` replays each
recorded call's VJPs on a cotangent of ones and names the first that returns ``None`` or the
wrong shape, with the parameter (or intermediate value) it belongs to and both shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as onp
from autograd.core import primitive_vjps
from autograd.tracer import toposort

from minifw.tape import _Recorded, trace
from minifw.tree import Tree


def misshapen(f: Callable[..., Any], tree: Tree, args: tuple[Any, ...]) -> str | None:
    """What is wrong with the first VJP of ``f``'s calls that misbehaves, if any.

    >>> import minifw as mf
    >>> double = mf.primitive(lambda x: 2 * x)
    >>> mf.defvjp(double, lambda ans, x: lambda g: None)
    >>> print(misshapen(lambda p: mf.np.sum(double(p["w"])), {"w": onp.ones(3)}, ()))
    the VJP of <lambda> for its argument 0 (the parameter 'w') returns None for an argument ...
    """
    tape = trace(f, tree, args, record=True, integers=False)
    if tape.end is None or not isinstance(tape.end, _Recorded):
        return None
    roots = {root: path for root, path in zip(tape.roots, tape.paths) if root is not None}
    for node in toposort(tape.end):
        if not isinstance(node, _Recorded) or node.fun is None:
            continue
        vjps = primitive_vjps.get(node.fun)
        if vjps is None:
            continue
        for argnum, parent in zip(node.argnums, node.parents):
            arg = node.args[argnum]
            g = next(iter(vjps((argnum,), node.out, node.args, node.options)(
                onp.ones_like(node.out))))
            if g is None or onp.shape(g) != onp.shape(arg):
                what = (f"the parameter {roots[parent]!r}" if parent in roots else
                        "an intermediate value")
                got = "None" if g is None else f"shape {onp.shape(g)}"
                name = getattr(node.fun, "__name__", repr(node.fun))
                return (f"the VJP of {name} for its argument {argnum} ({what}) returns {got} "
                        f"for an argument of shape {onp.shape(arg)}")
    return None

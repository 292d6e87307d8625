"""Gradients from two independent sources, switchable by one argument.

``grad(f, method="autograd")`` differentiates ``f(params, *args)`` with respect to ``params``
by reverse mode (HIPS autograd); ``method="numerical"`` by central differences. Both return
exactly the structure of ``params``.

>>> import numpy as onp
>>> f = lambda p, x: (p["w"] * x).sum() ** 2
>>> p, x = {"w": onp.array([1.0, 2.0])}, onp.array([3.0, 4.0])
>>> grad(f)(p, x)["w"], grad(f, method="numerical")(p, x)["w"].round(6)
(array([66., 88.]), array([66., 88.]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as onp
from autograd.core import make_vjp as _make_vjp
from autograd.extend import vspace
from autograd.wrap_util import unary_to_nary

from minifw.functions import NonFiniteError, all_finite
from minifw.numerical import central_differences, default_step, scalar_value, step_size
from minifw.tree import Tree, copy_float, leaves

METHODS = ("autograd", "numerical")


@unary_to_nary
def _autograd_value_and_grad(fun: Callable[[Tree], Any], x: Tree) -> tuple[Any, Tree]:
    vjp, ans = _make_vjp(fun, x)
    value = scalar_value(ans)
    return value, vjp(vspace(ans).ones())


def _refuse_non_finite(grads: Tree) -> None:
    # f can be finite where its gradient is not (inf * 0 behind a saturated tanh, a backward
    # pass that overflows): refuse that rather than hand NaN to an optimizer
    pairs = list(leaves(grads))
    if all_finite(*(g for _, g in pairs)):
        return
    for path, g in pairs:
        if not all_finite(g):
            bad = onp.asarray(g).ravel()[~onp.isfinite(onp.asarray(g).ravel())][:3]
            raise NonFiniteError(f"the autograd gradient at {path!r} is not finite "
                                 f"({bad.tolist()}) although f is finite")


def _dtype(params: Tree) -> Any:
    dtypes = [onp.asarray(a).dtype for _, a in leaves(params)]
    floats = [d for d in dtypes if d.kind == "f"]
    return onp.result_type(*floats) if floats else onp.float64


def value_and_grad(
    f: Callable[..., Any], method: str = "autograd", h: float | None = None
) -> Callable[..., tuple[Any, Tree]]:
    """Like :func:`grad`, but the returned function gives ``(f(params, *args), grads)``.

    >>> import numpy as onp
    >>> value_and_grad(lambda p: (p ** 2).sum())(onp.array([3.0]))
    (np.float64(9.0), array([6.]))
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")

    # An f that knows its own structure (a minifw.Objective) offers fused paths; each returns
    # None when it does not cover a call (or, for the gradient, when it is not finite), and
    # then the generic path runs, errors included.
    fused_vg = getattr(f, "_fused_value_and_grad", None)
    fused_cd = getattr(f, "_fused_central_differences", None)

    def value_and_grad_f(params: Tree, *args: Any) -> tuple[Any, Tree]:
        if method == "autograd":
            out = fused_vg(params, *args) if fused_vg is not None else None
            if out is not None:  # the hook's gradients are finite
                return out
            if any(isinstance(a, onp.ndarray) and a.dtype.kind in "biu" for _, a in leaves(params)):
                params = copy_float(params)  # autograd cannot differentiate integers
            value, grads = _autograd_value_and_grad(f, 0)(params, *args)
            _refuse_non_finite(grads)
            return value, grads
        step = None if h is None else step_size(h)
        value = scalar_value(f(params, *args))  # first f's own errors: a model names its params
        step = default_step(_dtype(params)) if step is None else step
        grads = fused_cd(params, *args, h=step) if fused_cd is not None else None
        if grads is None:
            grads = central_differences(lambda p: f(p, *args), params, step, relative=True)
        return value, grads

    return value_and_grad_f


def grad(
    f: Callable[..., Any], method: str = "autograd", h: float | None = None
) -> Callable[..., Tree]:
    """The gradient of a scalar function ``f(params, *args)`` with respect to ``params``.

    Arguments:
        f: a scalar function written with ``minifw.np`` (autograd.numpy).
        method: ``"autograd"`` (reverse mode) or ``"numerical"`` (central differences).
        h: the numerical step; ``None`` chooses ``eps**(1/3)`` of the parameters' dtype,
            scaled by ``max(1, |x_i|)`` per element.

    Returns:
        A function ``g(params, *args) -> grads`` with exactly the structure of ``params``.

    >>> import numpy as onp
    >>> grad(lambda p: (p ** 3).sum(), method="numerical")(onp.array([2.0])).round(6)
    array([12.])
    """
    vg = value_and_grad(f, method, h)
    return lambda params, *args: vg(params, *args)[1]

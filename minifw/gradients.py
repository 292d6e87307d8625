"""Gradients from three sources, switched by one argument, each with the structure of ``params``.

``grad(f, method=...)`` differentiates a scalar ``f(params, *args)`` with respect to
``params``:

- ``"autograd"`` (default): reverse mode through the ops' hand-written backward passes, the
  fast path that training runs.
- ``"trace"``: reverse mode through autograd's trace of the forward passes alone, a
  reference that no hand-written backward takes part in.
- ``"numerical"``: central differences of ``f``: the stacked engine when ``f``'s calls form a
  chain (:mod:`minifw.stacked`), else the per-element loop, with the same steps.

``grad`` knows nothing about ``f`` beyond what ``f`` computes.

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

from minifw.functions import NonFiniteError, all_finite
from minifw.numerical import default_step, scalar_value, step_size
from minifw.tape import trace
from minifw.tree import Tree, flat, leaves

METHODS = ("autograd", "trace", "numerical")


def refuse_non_finite(grads: Tree, what: str = "the autograd gradient") -> None:
    """Raise :class:`NonFiniteError` naming the first path whose gradient is not finite.

    ``f`` can be finite where its gradient is not (``inf * 0`` behind a saturated tanh, a
    backward pass that overflows): that is refused rather than handed to an optimizer.
    """
    if all_finite(*flat(grads)):
        return
    for path, g in leaves(grads):
        if not all_finite(g):
            bad = onp.asarray(g).ravel()[~onp.isfinite(onp.asarray(g).ravel())][:3]
            raise NonFiniteError(f"{what} at {path or 'params'!r} is not finite "
                                 f"({bad.tolist()}) although f is finite")


def float_dtype(params: Tree) -> Any:
    """The float dtype of the parameters (float64 if none is a float)."""
    floats = [d for d in (onp.asarray(a).dtype for _, a in leaves(params)) if d.kind == "f"]
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
    return lambda params, *args: gradient(f, method, h, params, args)


def gradient(f: Callable[..., Any], method: str, h: float | None, params: Tree,
             args: tuple[Any, ...], refuse: bool = True) -> tuple[Any, Tree]:
    """``(f(params, *args), grads)`` by ``method``; ``refuse=False`` leaves a non-finite
    gradient to the caller (an optimizer's update checks the values it makes of it)."""
    step = None if h is None else step_size(h)
    if method == "numerical":
        from minifw.stacked import central_differences

        value = scalar_value(f(params, *args))  # f's own errors first (a model names them)
        s = default_step(float_dtype(params)) if step is None else step
        return value, central_differences(f, params, args, s)
    tape = trace(f, params, args, reference=method == "trace")
    value = scalar_value(tape.value)
    grads = tape.gradient()
    if refuse:
        refuse_non_finite(grads, f"the {method} gradient")
    return value, grads


def grad(
    f: Callable[..., Any], method: str = "autograd", h: float | None = None
) -> Callable[..., Tree]:
    """The gradient of a scalar function ``f(params, *args)`` with respect to ``params``.

    Arguments:
        f: a scalar function written with ``minifw.np`` (autograd.numpy) and minifw's layers.
        method: ``"autograd"`` (the backward passes), ``"trace"`` (autograd's trace of the
            forward passes alone) or ``"numerical"`` (central differences).
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

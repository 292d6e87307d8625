"""Ops: each operation's maths in one place, its forward pass beside its backward pass.

An :class:`Op` is the book's chapter-5 layer made pure: a forward pass written with
``minifw.np`` and a hand-written backward pass that receives what it needs (the cotangent
``g``, the output ``y`` and the inputs) and returns gradients, caching nothing. Calling an op
runs its forward pass; under autograd the call is recorded once, and its backward pass is the
VJP autograd runs. So the fast path (training), the traced path (autograd) and the checked
path (the gradient checker) are the same code.

Three gradient sources come out of one definition (:func:`minifw.grad`'s ``method``):

- ``"autograd"``: reverse mode through the ops' backward passes (fast; what trains).
- ``"trace"``: autograd tracing the forward passes alone (:func:`forward_only`): a
  reference that no hand-written backward takes part in.
- ``"numerical"``: central differences of the forward passes.

:class:`Elementwise` is the kind every activation belongs to: a value and a derivative.
``per_sample`` marks an op whose sample ``b`` (axis 0) depends only on the inputs' sample
``b``; the numerical engine carries such ops' perturbations one sample at a time.

>>> import numpy as onp, minifw as mf
>>> cube = Op("cube", lambda x: x ** 3, lambda g, y, x: 3 * g * x ** 2)
>>> mf.grad(lambda x: cube(x).sum())(onp.array([1.0, 2.0]))
array([ 3., 12.])
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

from autograd.extend import defvjp_argnums, primitive

#: Set while autograd traces forward passes alone; counts the backward passes it bypassed.
_FORWARD_ONLY: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "minifw_forward_only", default=None)


@contextlib.contextmanager
def forward_only() -> Iterator[list[int]]:
    """Within this block, ops and layers run their forward passes only, traced by autograd.

    Yields a one-element list counting the hand-written backward passes that were bypassed
    (0 means the trace is the same computation as ``method="autograd"``).

    >>> with forward_only() as bypassed:
    ...     _ = Op("id", lambda x: x, lambda g, y, x: g)(1.0)
    >>> bypassed
    [1]
    """
    count = [0]
    token = _FORWARD_ONLY.set(count)
    try:
        yield count
    finally:
        _FORWARD_ONLY.reset(token)


def bypass_backward() -> bool:
    """Whether forward passes run alone now (counting this call as one bypass)."""
    count = _FORWARD_ONLY.get()
    if count is None:
        return False
    count[0] += 1
    return True


class Op:
    """A function with a hand-written backward pass.

    Arguments:
        name: shown in errors and reports.
        forward: ``forward(*args, **options) -> y``, written with ``minifw.np`` so that
            autograd can trace it (``method="trace"``).
        vjps: one per positional argument, ``vjp(g, y, *args, **options) -> gradient`` of
            that argument (``None`` for an argument that is not differentiable, e.g. labels).
        backward: instead of ``vjps``, one function ``backward(g, y, *args, needs, **options)``
            returning a gradient (or ``None``) for every positional argument; ``needs`` is a
            tuple of bools, which of them are wanted.
        per_sample: sample ``b`` of the output depends only on sample ``b`` of the first
            argument (axis 0), for every ``b``.

    Options (keyword arguments) are passed through and never differentiated.
    """

    elementwise = False

    def __init__(self, name: str, forward: Callable[..., Any], *vjps: Callable[..., Any] | None,
                 backward: Callable[..., Any] | None = None, per_sample: bool = False):
        if bool(vjps) == (backward is not None):
            raise TypeError(f"Op {name!r}: give either one VJP per argument or a backward")
        self.name, self.forward, self.vjps, self.backward = name, forward, vjps, backward
        self.per_sample = per_sample
        self.primitive = primitive(forward)
        self.primitive.op = self  # type: ignore[attr-defined]  # how the tape finds the op
        defvjp_argnums(self.primitive, self._vjp)

    def _vjp(self, argnums: tuple[int, ...], y: Any, args: tuple[Any, ...],
             options: dict[str, Any]) -> Callable[[Any], Any]:
        if self.backward is not None:
            needs = tuple(i in argnums for i in range(len(args)))
            backward = self.backward
            return lambda g: _pick(backward(g, y, *args, needs=needs, **options), argnums, self)
        vjps = [self.vjps[i] if i < len(self.vjps) else None for i in argnums]
        if any(v is None for v in vjps):
            bad = [i for i, v in zip(argnums, vjps) if v is None]
            raise TypeError(f"{self.name} is not differentiable with respect to its argument "
                            f"{bad[0]} (counting from 0)")
        return lambda g: [vjp(g, y, *args, **options) for vjp in vjps]  # type: ignore[misc]

    def samplewise(self, options: dict[str, Any]) -> bool:
        """Whether this call (with these options) is ``per_sample``."""
        return self.per_sample

    def __call__(self, *args: Any, **options: Any) -> Any:
        if bypass_backward():
            return self.forward(*args, **options)
        return self.primitive(*args, **options)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _pick(grads: Any, argnums: tuple[int, ...], op: Op) -> list[Any]:
    if not isinstance(grads, (tuple, list)):
        raise TypeError(f"the backward pass of {op.name} must return a tuple of gradients, "
                        f"got {type(grads).__name__}")
    return [grads[i] for i in argnums]


class Elementwise(Op):
    """An elementwise op given by its value and its derivative: ``y = value(x)``,
    ``dy/dx = derivative(x, y)``; options (such as a slope) go to both.

    >>> import numpy as onp
    >>> square = Elementwise("square", lambda x: x * x, lambda x, y: 2 * x)
    >>> square(onp.array([3.0]))
    array([9.])
    """

    elementwise = True

    def __init__(self, name: str, value: Callable[..., Any], derivative: Callable[..., Any]):
        self.value, self.derivative = value, derivative
        super().__init__(name, value, lambda g, y, x, **o: g * derivative(x, y, **o),
                         per_sample=True)

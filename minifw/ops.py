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
from collections.abc import Callable
from typing import Any

import numpy as onp
from autograd.extend import defvjp_argnums, primitive


class _Mode:
    """What op calls do besides computing, while a ``with`` block of this module runs."""

    forward_only = False  # run forward passes alone, for autograd to trace (count them)
    open_layers = False  # run layers' calls as the ops they make (for the numerical engine)
    recording = False  # record the calls made on plain arrays (a chain's reverse pass)

    def __init__(self) -> None:
        self.bypassed = 0
        self.calls: list[tuple[Op, tuple[Any, ...], dict[str, Any], Any]] = []
        self.depth = 0


_MODE: contextvars.ContextVar[_Mode | None] = contextvars.ContextVar("minifw_mode", default=None)


def mode() -> _Mode | None:
    """The mode of the innermost active block, or ``None``."""
    return _MODE.get()


class _entered:
    """A block in a new mode with ``flags`` set (a class, not a generator: a Sequential's
    traced call enters one per step)."""

    __slots__ = ("mode", "token")

    def __init__(self, **flags: bool) -> None:
        self.mode = m = _Mode()
        for k, v in flags.items():
            setattr(m, k, v)

    def __enter__(self) -> _Mode:
        self.token = _MODE.set(self.mode)
        return self.mode

    def __exit__(self, *exc: object) -> None:
        _MODE.reset(self.token)


def forward_only() -> contextlib.AbstractContextManager[_Mode]:
    """Within this block, ops and layers run their forward passes only, traced by autograd.

    The mode it yields counts, in ``bypassed``, the hand-written backward passes that were
    left out (0 means the trace is the same computation as ``method="autograd"``).

    >>> with forward_only() as m:
    ...     _ = Op("id", lambda x: x, lambda g, y, x: g)(1.0)
    >>> m.bypassed
    1
    """
    return _entered(forward_only=True)


def open_layers() -> contextlib.AbstractContextManager[_Mode]:
    """Within this block a ``Sequential`` runs its layers one call at a time (no fused reverse
    pass), so that a recorded trace shows every op."""
    return _entered(open_layers=True)


def recording() -> contextlib.AbstractContextManager[_Mode]:
    """Within this block, ops called on plain arrays append ``(op, args, options, y)`` to the
    mode's ``calls`` (not the ops they call in turn): the tape of a chain's reverse pass."""
    return _entered(recording=True)


def bypass_backward() -> bool:
    """Whether forward passes run alone now (counting this call as one bypass)."""
    m = _MODE.get()
    if m is None or not m.forward_only:
        return False
    m.bypassed += 1
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

    def grads(self, g: Any, y: Any, args: tuple[Any, ...], options: dict[str, Any],
              argnums: tuple[int, ...]) -> list[Any]:
        """The gradients of the arguments ``argnums`` for the cotangent ``g`` of ``y``."""
        if self.backward is not None:
            wanted = [False] * len(args)
            for i in argnums:
                wanted[i] = True
            needs = tuple(wanted)
            out = self.backward(g, y, *args, needs=needs, **options)
            if not isinstance(out, (tuple, list)):
                raise TypeError(f"the backward pass of {self.name} must return a tuple of "
                                f"gradients, got {type(out).__name__}")
            return [out[i] for i in argnums]
        vjps = self.vjps
        try:
            return [vjps[i](g, y, *args, **options) for i in argnums]  # type: ignore[misc]
        except (TypeError, IndexError):
            bad = [i for i in argnums if i >= len(vjps) or vjps[i] is None]
            if not bad:
                raise
            raise TypeError(f"{self.name} is not differentiable with respect to its argument "
                            f"{bad[0]} (counting from 0)") from None

    def _vjp(self, argnums: tuple[int, ...], y: Any, args: tuple[Any, ...],
             options: dict[str, Any]) -> Callable[[Any], Any]:
        return lambda g: self.grads(g, y, args, options, argnums)

    def samplewise(self, options: dict[str, Any]) -> bool:
        """Whether this call (with these options) is ``per_sample``."""
        return self.per_sample

    def __call__(self, *args: Any, **options: Any) -> Any:
        m = _MODE.get()
        if m is None or m.open_layers:
            return self.primitive(*args, **options)
        if m.forward_only:
            m.bypassed += 1
            return self.forward(*args, **options)
        if m.depth:  # inside a recorded op: part of its computation, not of the chain
            return self.forward(*args, **options)
        m.depth = 1
        try:
            y = self.forward(*args, **options)
        finally:
            m.depth = 0
        m.calls.append((self, args, options, y))
        return y

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


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


def chain_grads(calls: list[tuple[Op, tuple[Any, ...], dict[str, Any], Any]], x: Any,
                arrays: tuple[Any, ...], y: Any, g: Any,
                needs: tuple[bool, ...]) -> list[Any] | None:
    """The reverse pass of recorded op calls that form a chain from ``x`` to ``y``.

    ``calls`` come from :func:`recording`; ``arrays`` are the parameters (found among the
    calls' arguments by identity) and ``needs[0]``/``needs[1:]`` say which of ``x`` and
    them want gradients. Returns ``[gx, *grads]`` (zeros for unused parameters, ``None``
    where not wanted), or ``None`` if the calls are not such a chain: then autograd must trace
    the computation instead.

    >>> import numpy as onp
    >>> double = Op("double", lambda x: 2 * x, lambda g, y, x: 2 * g)
    >>> with recording() as m:
    ...     y = double(double(onp.ones(2)))
    >>> chain_grads(m.calls, m.calls[0][1][0], (), y, onp.ones(2), (True,))
    [array([4., 4.])]
    """
    ids = {id(a): i for i, a in enumerate(arrays)}
    if len(ids) != len(arrays) or y is not (calls[-1][3] if calls else x):
        return None
    values, prev = {id(x)}, x  # the chain's values so far
    plan = []  # per call: [(argument position, parameter number)] of the wanted parameters
    for k, (_, args, _, out) in enumerate(calls):
        first = args[0]
        # the first call takes x, or (x wanting no gradient) data or a parameter
        if first is not prev if k else first is not x and needs[0]:
            return None
        wanted = []
        for i in range(0 if k == 0 and first is not x else 1, len(args)):
            n = ids.get(id(args[i]))
            if n is not None:
                if needs[1 + n]:
                    wanted.append((i, n))
            elif i and id(args[i]) in values:  # the running value used twice
                return None
        plan.append(wanted)
        values.add(id(out))
        prev = out
    # calls before the first that takes a wanted parameter (or x) need no gradient
    start = 0 if needs[0] else next((k for k, w in enumerate(plan) if w), len(calls))
    grads: list[Any] = [None] * len(arrays)
    for k in range(len(calls) - 1, start - 1, -1):
        op, args, options, out = calls[k]
        through = k > start or needs[0]  # the running value's gradient is wanted
        if op.backward is None and None not in op.vjps:
            vjps = op.vjps  # one VJP per wanted argument, called directly
            for i, n in plan[k]:
                gn = vjps[i](g, out, *args, **options)  # type: ignore[misc]
                grads[n] = gn if grads[n] is None else grads[n] + gn
            g = vjps[0](g, out, *args, **options) if through else None  # type: ignore[misc]
            continue
        argnums = ((0,) if through else ()) + tuple([i for i, _ in plan[k]])
        gs = op.grads(g, out, args, options, argnums)
        for (_, n), gn in zip(plan[k], gs[through:]):
            grads[n] = gn if grads[n] is None else grads[n] + gn
        g = gs[0] if through else None
    return [g if needs[0] else None, *[gr if gr is not None or not need else onp.zeros_like(a)
                                        for gr, a, need in zip(grads, arrays, needs[1:])]]

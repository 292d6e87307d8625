"""The second reference: autograd's trace of the forward passes alone, in float64.

Where ``f`` runs hand-written backward passes (ops and layers with a ``backward``), autograd can
also trace their forward passes (``method="trace"``): the same derivative by other code.
Two analytic gradients of one function differ by rounding alone, so this reference sees
errors of the backward passes far below what central differences resolve (a 1e-3 relative
error in float32, say), except at kinks, where conventions may differ: the checker explains
those before it fails an element (:meth:`minifw.gradcheck.check.Check.against_trace`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as onp
from autograd.tracer import toposort

from minifw.numerical import evaluate_at
from minifw.tape import _Recorded, trace
from minifw.tree import Tree, leaves

#: Backward and trace agree to within ``TRACE_ROUNDING eps (|a| + |r| + scale)`` per element,
#: ``scale`` the largest cotangent of the trace, of the gradient and of every intermediate
#: (cancellation in a sum leaves an element the rounding of its terms, which those bound even
#: where the whole gradient cancels), ``eps`` that of ``f``'s own precision:
#: two analytic gradients of one function, computed in another order, differ by rounding
#: alone. Measured on 400 random built-in networks away from kinks: at most 1.6 (float64) and
#: 24 (float32, against the float64 trace).
TRACE_ROUNDING = 64.0


def autograds_own(fun: Any) -> bool:
    """Whether ``fun`` (a primitive, or the function it wraps) is one of NumPy's, with
    autograd's derivative.

    >>> import autograd.numpy as anp
    >>> autograds_own(anp.tanh), autograds_own(lambda x: x)
    (True, False)
    """
    module = getattr(getattr(fun, "fun", fun), "__module__", "") or ""
    return module.split(".")[0] in ("numpy", "autograd")


class Reference:
    """Autograd's gradient of ``f`` through its forward passes alone, at a float64 point.

    Arguments:
        f: the scalar function.
        tree, args: the point and the other arguments, in float64 (a float32 trace rounds
            more than the float32 backward passes themselves do: its log-sum-exp and max
            cancel).
        eps: the rounding unit of ``f``'s own precision, for the comparisons.

    >>> import numpy as onp, minifw as mf
    >>> model = mf.Sequential(mf.Linear(2, 2), mf.Tanh())
    >>> p = model.init(onp.random.default_rng(0))
    >>> ref = Reference(lambda p: model(p, onp.ones((1, 2))).sum(), p, (), 2.2e-16)
    >>> ref.bypassed > 0, sorted(ref.grads)
    (True, ['0.W', '0.b'])
    """

    def __init__(self, f: Callable[..., Any], tree: Tree, args: tuple[Any, ...], eps: float):
        self.f, self.tree, self.args, self.eps = f, tree, args, eps
        tape = trace(f, tree, args, reference=True, integers=False)
        self.bypassed = tape.bypassed
        grads = tape.gradient(track=True)
        self.grads = {p: onp.asarray(g, dtype=onp.float64) for p, g in leaves(grads)}
        self.scale = max([float(onp.abs(g).max(initial=0.0)) for g in self.grads.values()]
                         + [tape.largest_cotangent])

    @functools.cached_property
    def independent(self) -> bool:
        """Whether the trace is NumPy's and autograd's derivatives alone: no user primitive,
        whose own VJP the trace would reuse, took part."""
        tape = trace(self.f, self.tree, self.args, reference=True, record=True, integers=False)
        return tape.end is None or all(
            autograds_own(node.fun) for node in toposort(tape.end)
            if isinstance(node, _Recorded) and node.fun is not None)

    @classmethod
    def of(cls, f: Callable[..., Any], tree: Tree, args: tuple[Any, ...], eps: float
           ) -> tuple[Reference | None, list[str]]:
        """The reference (``None`` if no hand-written backward pass took part, or if the
        forward passes cannot be traced, with a note saying so)."""
        try:
            ref = cls(f, tree, args, eps)
        except Exception as e:
            if "Box" not in str(e):  # f's own error, not autograd's at a forward it cannot trace
                raise
            return None, [f"the forward passes alone could not be traced ({type(e).__name__}: "
                          f"{str(e).split('. Autograd')[0]}): the backward passes are held "
                          "against central differences only"]
        return (ref if ref.bypassed else None), []

    def unit(self, a: onp.ndarray, path: str) -> onp.ndarray:
        """The rounding unit of each element of ``path``: ``eps (|a| + |r| + scale)``."""
        u = onp.abs(a)  # in place: the same values as eps * (|a| + |r| + scale), fewer arrays
        u += onp.abs(self.grads[path])
        u += self.scale
        u *= self.eps
        return u

    def same(self, u: float, v: float, slack: float = 0.0) -> bool:
        """Whether two derivatives agree to within the rounding of the comparison."""
        return abs(u - v) <= TRACE_ROUNDING * self.eps * (abs(u) + abs(v) + self.scale) + slack

    def at(self, path: str, idx: Any, value: float) -> float:
        """The trace's derivative at ``path[idx]`` with that element set to ``value``."""
        leaf = dict(leaves(self.tree))[path]

        def g(tree: Tree) -> onp.ndarray:
            grads = trace(self.f, tree, self.args, reference=True, integers=False).gradient()
            return dict(leaves(grads))[path]

        return float(evaluate_at(g, self.tree, leaf, idx, value, scalar=False)[idx])

    def explains(self, path: str, a: float, idx: Any, x: onp.ndarray, s0: float,
                 backward: Callable[[float], float]) -> bool:
        """Whether a kink explains ``a != r`` at ``path[idx]``: just left and right of it (at
        ``s0`` and ``s0 / 4``, extrapolated to the element) the backward pass agrees with the
        trace, and either the trace jumps there or ``a`` is the common limit of both sides
        (the derivative is continuous and the trace's convention at a tie is what differs).

        ``backward(s)`` is the backward passes' derivative with ``x[idx]`` moved by ``s``.
        """
        def sides(s: float) -> tuple[float, float, bool]:
            out, agree = [], True
            for u in (-s, s):
                moved = float(x[idx] + x.dtype.type(u))
                out.append(self.at(path, idx, moved))
                agree = agree and self.same(backward(u), out[-1])
            return out[0], out[1], agree

        l1, r1, agree1 = sides(s0)
        l4, r4, agree4 = sides(s0 / 4)
        if not (agree1 and agree4):
            return False  # the codes differ beside the element too (or another kink is near)
        jump = (4 * (r4 - l4) - (r1 - l1)) / 3
        left, right = (4 * l4 - l1) / 3, (4 * r4 - r1) / 3
        if not self.same(jump, 0.0):
            return True  # a kink, where conventions differ
        return self.same(a, (left + right) / 2, abs(left - l4) + abs(right - r4))

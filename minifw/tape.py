"""Tracing ``f(params, *args)``: its value, its gradient, and the chain of calls it made.

Each array of the parameter tree is boxed on its own, and ``f`` receives a plain dict of
boxes: no container is traced, so autograd's per-leaf bookkeeping of dicts never runs, and
the reverse pass collects one gradient per leaf. With ``record=True`` every recorded call
keeps its function and arguments, which is what the stacked numerical engine reads: the
calls ``f`` made, in order, and which parameter each took.

>>> import numpy as onp
>>> tape = trace(lambda p, x: (p["w"] * x).sum(), {"w": onp.array([1.0, 2.0])}, (3.0,))
>>> float(tape.value), tape.gradient()["w"]
(9.0, array([3., 3.]))
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as onp
from autograd.core import VJPNode, add_outgrads
from autograd.tracer import isbox, new_box, notrace_primitives, toposort, trace_stack

from minifw.ops import Op, forward_only, open_layers
from minifw.tree import Tree, flat, leaves

#: What to do when autograd cannot trace a forward pass (in-place NumPy, plain NumPy calls).
IN_PLACE_HINT = (
    "differentiable code must use minifw.np (autograd.numpy) and create new arrays instead "
    "of changing them: write `y = np.where(x > 0, x, 0.0)`, not `y = x.copy(); y[x <= 0] = 0`; "
    "or give the layer a backward pass, so that its forward pass runs on plain arrays")


class _Recorded(VJPNode):
    """A node that also keeps the call: its function, argument values, options and output."""

    __slots__ = ["fun", "args", "options", "argnums", "out"]

    def __init__(self, value: Any, fun: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                 parent_argnums: tuple[int, ...], parents: tuple[Any, ...]):
        super().__init__(value, fun, args, kwargs, parent_argnums, parents)
        self.fun, self.args, self.options = fun, args, kwargs
        self.argnums, self.out = parent_argnums, value

    def initialize_root(self) -> None:
        super().initialize_root()
        self.fun = None


# autograd passes functions without a derivative (comparisons, floor, ...) through untraced
# for its own node type: for this one too
notrace_primitives[_Recorded] = notrace_primitives[VJPNode]


@dataclass
class Call:
    """One recorded call of a chain: ``fun(*args, **options) == out``.

    ``params`` maps an argument position to the index of the parameter leaf passed there;
    the chain's running value enters at position 0 (``None`` for the first call, whose
    position 0 may hold data or, if ``0 in params``, a parameter).
    """

    fun: Callable[..., Any]
    op: Op | None
    args: list[Any]
    options: dict[str, Any]
    out: Any
    params: dict[int, int] = field(default_factory=dict)
    primitive: Callable[..., Any] | None = None  # the traced function (fun is its raw body)

    def __call__(self, x: Any, at: int = 0) -> Any:
        """This call with argument ``at`` replaced by ``x`` (plain arrays, no tracing)."""
        args = list(self.args)
        args[at] = x
        return self.fun(*args, **self.options)


def _as_leaf(a: Any) -> Any:
    # autograd differentiates floats; integers and booleans become float64 first
    if isinstance(a, onp.ndarray) and a.dtype.kind == "f" or type(a) is float or isbox(a):
        return a  # a box: an outer trace's value, differentiated again (second derivatives)
    try:
        a = onp.asarray(a)
    except ValueError:  # a ragged list: no array
        return None
    return a if a.dtype.kind == "f" else a.astype(onp.float64) if a.dtype.kind in "biu" else None


def _array(g: Any) -> Any:
    # a scalar parameter's gradient (a float or NumPy scalar) as a 0-d array, as central
    # differences give it; a box (an outer trace's, for second derivatives) as it is
    return g if type(g) is onp.ndarray or isbox(g) else onp.asarray(g)


def _floating(a: Any) -> bool:
    return isbox(a) or onp.asarray(a).dtype.kind == "f"


def _rebuild(tree: Tree, items: Any) -> Tree:
    if isinstance(tree, dict):
        return {k: _rebuild(v, items) if isinstance(v, dict) else next(items)
                for k, v in tree.items()}
    return next(items)


class Tape:
    """A traced evaluation of ``f`` at ``params``: ``value``, and ``gradient()`` from it."""

    def __init__(self, params: Tree, arrays: list[Any], roots: list[Any], end: Any, value: Any,
                 bypassed: int):
        self.params, self.arrays, self.roots = params, arrays, roots
        self.end, self.value, self.bypassed = end, value, bypassed
        self._gradient: Tree | None = None
        #: after ``gradient(track=True)``: the largest ``|cotangent|`` of any traced value but
        #: the seed's (intermediates and parameters), which bounds the terms the backward adds
        self.largest_cotangent = 0.0

    @property
    def paths(self) -> list[str]:
        """The dotted path of each parameter array, in the order of ``arrays``."""
        return [p for p, _ in leaves(self.params)]

    def gradient(self, g: Any = 1.0, track: bool = False) -> Tree:
        """The gradient of the traced value times ``g``, with the structure of ``params``
        (computed once for ``g = 1``; treat it as read-only); ``track`` also sets
        ``largest_cotangent`` (a pass over every cotangent: for the checker, not training)."""
        if isinstance(g, float) and g == 1.0 and self._gradient is not None and not track:
            return self._gradient
        grads: dict[Any, Any] = {}  # each root's (gradient, mutable) as autograd sums them
        end = self.end
        roots = set(self.roots)
        if end is None:  # f's value is a constant
            pass
        elif end in roots:  # f returned a parameter itself
            grads[end] = (g, False)
        else:
            # autograd's reverse topological order, with the parameters' roots left out of it:
            # their gradients are summed where they arrive
            edges: dict[Any, int] = {}  # per node between end and the roots: edges from nodes
            stack = [end]
            while stack:
                node = stack.pop()
                if node in edges:
                    edges[node] += 1
                else:
                    edges[node] = 1
                    stack += [p for p in node.parents if p not in roots]
            outgrads = {end: (g, False)}
            ready = [end]
            while ready:
                node = ready.pop()
                outgrad = outgrads.pop(node)[0]
                if track and node is not end:
                    self._track(outgrad)
                for parent, ingrad in zip(node.parents, node.vjp(outgrad)):
                    if parent in roots:
                        grads[parent] = add_outgrads(grads.get(parent), ingrad)
                        continue
                    outgrads[parent] = add_outgrads(outgrads.get(parent), ingrad)
                    edges[parent] -= 1
                    if not edges[parent]:
                        ready.append(parent)
        if track:
            for summed, _ in grads.values():
                self._track(summed)
        out = (_array(grads[r][0]) if r in grads else onp.zeros(onp.shape(a)) if r is None
               else onp.zeros_like(a) for r, a in zip(self.roots, self.arrays))
        tree = _rebuild(self.params, out)
        if isinstance(g, float) and g == 1.0:
            self._gradient = tree
        return tree

    def _track(self, cotangent: Any) -> None:
        if type(cotangent) is onp.ndarray:
            self.largest_cotangent = max(self.largest_cotangent,
                                         float(onp.abs(cotangent).max(initial=0.0)))

    def chain(self) -> list[Call] | None:
        """The calls ``f`` made, first to last, if they form a chain; else ``None``.

        A chain: each call takes the previous call's output at position 0 and nothing else
        traced but parameters, each parameter goes to exactly one call, and the last call's
        output is ``f``'s value. Only a tape made with ``record=True`` has one.
        """
        if self.end is None or not isinstance(self.end, _Recorded):
            return None
        index = {r: i for i, r in enumerate(self.roots) if r is not None}
        calls: list[Call] = []
        node: Any = self.end
        used = 0
        while node is not None and node not in index:
            fun = node.fun
            call = Call(fun.fun, getattr(fun, "op", None), list(node.args), node.options, node.out,
                        primitive=fun)
            nxt = None
            for argnum, parent in zip(node.argnums, node.parents):
                if parent in index:
                    call.params[argnum] = index[parent]
                elif argnum == 0 and nxt is None:
                    nxt = parent
                else:
                    return None
            used += len(call.params)
            calls.append(call)
            node = nxt
        nodes = sum(1 for n in toposort(self.end) if n not in index)
        if nodes != len(calls) or used != len({i for c in calls for i in c.params.values()}):
            return None  # a side branch, or a parameter used twice
        return calls[::-1]


def trace(f: Callable[..., Any], params: Tree, args: tuple[Any, ...] = (), *,
          record: bool = False, reference: bool = False, integers: bool = True) -> Tape:
    """Evaluate ``f(params, *args)`` under autograd, each parameter array boxed on its own.

    Arguments:
        f: a scalar function of a parameter tree (a nested dict of arrays, or one array).
        params: the point; integer arrays are differentiated as float64 copies.
        args: the other arguments, passed as they are.
        record: keep every call's function and arguments (for :meth:`Tape.chain`), with
            every layer's call made as the ops it makes (:func:`minifw.ops.open_layers`).
        reference: run forward passes only (:func:`minifw.ops.forward_only`), so that
            autograd traces them instead of running the ops' backward passes.
        integers: differentiate integer and boolean arrays as float64 copies; ``False``
            passes them as they are, constants (indices, masks), whose gradient is 0.

    Returns:
        A :class:`Tape`; ``tape.bypassed`` counts the backward passes ``reference`` skipped.
    """
    arrays = [_as_leaf(a) if integers or _floating(a) else a for a in flat(params)]
    if any(a is None for a in arrays):
        f(params, *args)  # a model names what it expected; if f takes such params, we cannot
        bad = next(p for (p, _), a in zip(leaves(params), arrays) if a is None)
        raise TypeError(f"the parameter {bad or 'params'!r} is not a real numeric array")
    new_root = (_Recorded if record else VJPNode).new_root
    mode: Any = forward_only() if reference else open_layers() if record else (
        contextlib.nullcontext())
    with trace_stack.new_trace() as t, mode as m:
        roots = [new_root() if integers or _floating(a) else None for a in arrays]
        boxed = _rebuild(params, map(lambda a, r: a if r is None else new_box(a, t, r),
                                     arrays, roots))
        try:
            out = f(boxed, *args)
        except (TypeError, AttributeError, ValueError) as e:
            if "Box" not in str(e):
                raise
            raise type(e)(f"{e}. Autograd traced f and met NumPy it cannot follow: "
                          f"{IN_PLACE_HINT}") from e
    traced = isbox(out) and out._trace == t  # else a constant here (maybe an outer box)
    return Tape(params, arrays, roots, out._node if traced else None,
                out._value if traced else out, m.bypassed if m is not None else 0)

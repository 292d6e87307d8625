"""Blame: which call's backward pass is wrong, when a network's check fails.

Each call of the failing ``f`` that runs a hand-written backward pass (an op, a layer with a
``backward``, a user's autograd primitive) is checked alone, in place: with the very input and
parameters it saw in the network, against a random cotangent. NumPy's own primitives are
autograd's, and are not blamed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as onp

from minifw.gradcheck.reference import autograds_own
from minifw.tape import Call, Tape
from minifw.tree import Tree


def _name(call: Call, k: int) -> str:
    layer = call.options.get("layer")
    what = repr(layer) if layer is not None else call.op.name if call.op is not None else (
        getattr(call.fun, "__name__", "a primitive"))
    return f"call {k + 1} ({what})"


def _trusted(call: Call) -> bool:
    return call.op is None and autograds_own(call.fun)


def blame(f: Callable[..., Any], work: Tree, args: tuple[Any, ...], calls: Tape
          ) -> tuple[list[str], list[Any]] | None:
    """What each call that fails its own check says, at the input it saw (``calls``: ``f``'s
    recorded tape), and the calls that sit on kinks of their own there (their position, name,
    check function and cotangent); ``None`` where ``f``'s calls are not a chain.

    >>> import minifw as mf
    >>> wrong = mf.Op("double", lambda x: 2 * x, lambda g, y, x: 3 * g)  # the VJP says 3
    >>> f = lambda p: mf.SumSquaresError()(wrong(p), onp.zeros((2, 2)))
    >>> report = mf.check_grads(f, onp.ones((2, 2)))
    >>> report.ok, report.blame[0].split(" fails")[0]
    (False, 'call 1 (double)')
    """
    from minifw.gradcheck.check import run_check
    from minifw.gradcheck.layer import COTANGENT

    chain = calls.chain() if calls is not None else None
    if chain is None:
        return None
    out, kinked = [], []
    rng = onp.random.default_rng(0)
    for k, call in enumerate(chain):
        if _trusted(call) or call.primitive is None:
            continue
        wrt = [i for i, a in enumerate(call.args) if isinstance(a, onp.ndarray)
               and a.dtype.kind == "f" and (i == 0 or i in call.params)]
        if not wrt:
            continue
        G = rng.standard_normal(onp.shape(call.out))
        tree = {f"argument {i}": onp.array(call.args[i], dtype=onp.float64) for i in wrt}

        def alone(t: dict[str, Any], call: Call = call, G: Any = G) -> Any:
            moved = [t.get(f"argument {i}", a) for i, a in enumerate(call.args)]
            assert call.primitive is not None
            return COTANGENT(call.primitive(*moved, **call.options), G)

        big = sum(a.size for a in tree.values()) > 4096
        report = run_check(alone, tree, (), mode="projection" if big else "full", rng=rng,
                           blame=False)
        if not report.ok:
            row = next(r for r in report.rows if not r.ok)
            out.append(f"{_name(call, k)} fails its own check at the input it sees, "
                       f"{row.path}: {row.verdict or 'autograd and central differences differ'}")
        elif any(r.kinks for r in report.rows):
            kinked.append((k, _name(call, k), alone, G))
    return out, kinked


def smooth_along(f: Callable[..., Any], work: Tree, args: tuple[Any, ...], path: str,
                 idx: Any, kinked: list[Any], rng: onp.random.Generator) -> str | None:
    """Whether a call that sat on kinks of its own is smooth along the direction in which
    the network moves its input when ``work[path][idx]`` moves, and its backward pass is
    wrong along it (routing a maximum's gradient to every tied cell, say); the verdict if so.

    A meeting of kinks excuses a network's failure only where its calls really are kinked in
    the network's own direction: elsewhere a call's per-element check could miss a wrong
    gradient that only moving several tied elements together reveals.
    """
    from minifw.gradcheck.judge import Line, judge
    from minifw.gradcheck.noise import noise_level
    from minifw.numerical import default_step, evaluate_at
    from minifw.tape import trace
    from minifw.tree import leaves

    x = dict(leaves(work))[path]
    s = default_step(onp.float64) * max(1.0, abs(float(x[idx])))

    def inputs(value: float) -> list[Any]:
        def chain_inputs(tree: Tree) -> Any:
            chain = trace(f, tree, args, record=True, integers=False).chain() or []
            return [onp.array(chain[k].args[0], dtype=onp.float64) for k, *_ in kinked]
        return evaluate_at(chain_inputs, work, x, idx, value, scalar=False)

    ups, downs = inputs(float(x[idx]) + s), inputs(float(x[idx]) - s)
    base = inputs(float(x[idx]))
    for (k, name, alone, _), up, down, x0 in zip(kinked, ups, downs, base):
        du = (up - down) / (2 * s)
        if not onp.any(du):
            continue
        du = du / onp.linalg.norm(du)

        def value(t: float, alone: Any = alone, x0: Any = x0, du: Any = du) -> float:
            return float(alone({"argument 0": x0 + t * du}))

        def slope(t: float, alone: Any = alone, x0: Any = x0, du: Any = du) -> float:
            g = trace(alone, {"argument 0": x0 + t * du}, (), integers=False).gradient()
            return float(onp.sum(onp.asarray(g["argument 0"]) * du))

        line = Line(value, slope)
        s0 = default_step(onp.float64) * max(1.0, float(onp.abs(x0).max(initial=0.0)))
        v = judge(line, slope(0.0), s0, noise_level(line, s0 / 64), 64 * onp.finfo(float).eps
                  ** 0.5, rng)
        if v.status == "fail":
            return (f"{name} is smooth along the direction in which the network moves its "
                    f"input when {path}[{idx}] moves, and its backward pass is wrong along it: "
                    f"{v.how}")
    return None

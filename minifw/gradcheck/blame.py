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
          ) -> tuple[list[str], list[str]] | None:
    """What each call that fails its own check says, at the input it saw (``calls``: ``f``'s
    recorded tape), and the calls that sit on kinks of their own there; ``None`` where
    ``f``'s calls are not a chain.

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
            kinked.append(_name(call, k))
    return out, kinked

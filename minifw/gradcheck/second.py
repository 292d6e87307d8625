"""Second derivatives: Hessian-vector products against central differences of gradients.

Where the backward passes are themselves differentiable (written with ``minifw.np``, nothing
in place), autograd differentiates them too: ``H v``, the derivative of ``grad f . v``, for a
random direction ``v`` over all the parameters. It is held against ``(grad f(x + s v) -
grad f(x - s v)) / 2s`` at the steps ``s0``, ``s0/4``, ``s0/16`` (the best one counts), array
by array. Where autograd cannot differentiate a backward pass, the report says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import autograd.numpy as np
import numpy as onp

from minifw.gradcheck.report import GradCheckReport, GradCheckRow
from minifw.numerical import default_step
from minifw.tape import trace
from minifw.tree import Tree, leaves, tree_map

#: The Hessian-vector product's relative tolerance: central differences of gradients in
#: float64 are good to about ``eps**(2/3)`` relative to the gradients' size, 1e-5 is a margin.
RTOL = 1e-5


def check_second_order(report: GradCheckReport, f: Callable[..., Any], work: Tree,
                       args: tuple[Any, ...], gen: onp.random.Generator) -> None:
    """Add a row ``"<path> (Hv)"`` per array to ``report`` (or a note why not)."""
    floats = {p for p, a in leaves(work) if a.dtype.kind == "f"}
    v = tree_map(lambda a: gen.standard_normal(a.shape) if a.dtype.kind == "f" else None, work)
    total = onp.sqrt(sum(float((u * u).sum()) for p, u in leaves(v) if p in floats)) or 1.0
    v = tree_map(lambda u: None if u is None else u / total, v)

    def grad(tree: Tree) -> dict[str, Any]:
        return dict(leaves(trace(f, tree, args, integers=False).gradient()))

    def g_dot_v(tree: Tree) -> Any:
        g = grad(tree)
        return sum(np.sum(g[p] * u) for p, u in leaves(v) if p in floats)

    s0 = default_step(onp.float64) * max(1.0, max(float(onp.abs(a).max(initial=0.0))
                                                   for p, a in leaves(work) if p in floats))
    steps = [s0, s0 / 4, s0 / 16]
    diffs = []
    for s in steps:
        up = grad(tree_map(lambda a, u: a if u is None else a + s * u, work, v))
        down = grad(tree_map(lambda a, u: a if u is None else a - s * u, work, v))
        diffs.append({p: (up[p] - down[p]) / (2 * s) for p in floats})
    try:
        tape = trace(g_dot_v, work, (), integers=False)
        if tape.end is None:  # the gradient is constant as autograd sees it: H v = 0 ...
            hv = {p: onp.zeros(onp.shape(diffs[0][p])) for p in floats}
            moved = max(float(onp.abs(d[p]).max(initial=0.0)) for d in diffs[-1:] for p in floats)
            if moved > RTOL * max(1.0, max(float(onp.abs(onp.asarray(g)).max(initial=0.0))
                                          for g in grad(work).values())):
                # ... but it moves: the backward passes compute outside autograd's trace
                raise TypeError("they compute outside autograd's trace (raw NumPy), so the "
                                "gradient does not depend on the parameters as autograd sees it")
        else:
            hv = dict(leaves(tape.gradient()))
    except Exception as e:
        report.notes.append(f"second derivatives not checked: autograd cannot differentiate "
                            f"the backward passes ({type(e).__name__}: {e}); write them with "
                            "minifw.np, without in-place assignment")
        return
    scale = max(float(onp.abs(onp.asarray(hv[p])).max(initial=0.0)) for p in floats) or 1.0
    for path in sorted(floats, key=list(dict(leaves(work))).index):
        a = onp.asarray(hv[path], dtype=onp.float64)
        errs = [float(onp.abs(a - d[path]).max(initial=0.0)) for d in diffs]
        k = int(onp.argmin(errs))
        ok = errs[k] <= RTOL * scale
        i = tuple(int(j) for j in onp.unravel_index(int(onp.abs(a - diffs[k][path]).argmax()),
                                                   a.shape)) if a.size else ()
        n = float(diffs[k][path][i]) if a.size else 0.0
        verdict = "" if ok else (
            f"second derivatives: H v from differentiating the backward passes is "
            f"{float(a[i]) if a.size else 0.0:.8g} at {i}, central differences of gradients "
            f"{n:.8g} (errors at steps {', '.join(f'{s:.2g}' for s in steps)}: "
            f"{', '.join(f'{e:.1e}' for e in errs)})")
        report.rows.append(GradCheckRow(f"{path} (Hv)", a.shape, ok, i,
                                        float(a[i]) if a.size else 0.0, n, errs[k],
                                        errs[k] / scale, 0, a.size, 0 if ok else 1, verdict))
    report.rows[:] = [dataclasses.replace(r) for r in report.rows]

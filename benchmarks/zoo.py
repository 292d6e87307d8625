"""The checker's verdicts on the zoo of custom layers (tests/zoo.py), beside torch's gradcheck.

Counts, per checker and mode, the false failures (a correct layer failed) and the false
passes (a wrong layer passed), float64 and float32. ``torch.autograd.gradcheck`` runs on the
float64 cases (its documentation asks for float64) where torch is installed, each layer
wrapped as a ``torch.autograd.Function`` around the very same NumPy forward and VJPs, in its
default mode and in ``fast_mode``.

    python benchmarks/zoo.py            # print the table
    python benchmarks/zoo.py --write    # and write docs/zoo.md

Exits with 1 if minifw gives any false verdict (its goal is 0 and 0).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as onp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from zoo import Case, cases, scalar  # noqa: E402

import minifw as mf  # noqa: E402

DTYPES = (onp.float64, onp.float32)


def minifw_verdict(case: Case, dtype: Any, mode: str) -> bool:
    f, tree = scalar(case, dtype)
    return mf.check_grads(f, tree, mode=mode, rng=0).ok


def torch_verdict(case: Case, fast: bool) -> bool:
    """torch's gradcheck of the case's op (float64), wrapped around the same NumPy code."""
    import torch

    rng = onp.random.default_rng(0)
    args = [onp.asarray(a) for a in case.inputs(rng)]

    class Op(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *ts: Any) -> Any:
            arrays = [t.detach().numpy() for t in ts]
            ctx.arrays = arrays
            out = case.forward(*arrays)
            ctx.out = out
            return torch.as_tensor(onp.asarray(out, dtype=onp.float64))

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            g = g.detach().numpy()
            return tuple(None if vjp is None or a.dtype.kind != "f" else
                         torch.as_tensor(onp.asarray(vjp(g, ctx.out, *ctx.arrays),
                                                     dtype=onp.float64))
                         for vjp, a in zip(case.vjps, ctx.arrays))

    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) if a.dtype.kind == "f"
               else torch.tensor(a) for a in args]
    try:
        return bool(torch.autograd.gradcheck(Op.apply, tensors, raise_exception=False,
                                             fast_mode=fast))
    except Exception:  # torch raises on some inputs instead of answering: not a pass
        return False


def count(verdicts: list[tuple[Case, bool]]) -> tuple[int, int, int, int]:
    """(false failures, correct cases, false passes, wrong cases)."""
    correct = [ok for case, ok in verdicts if case.correct]
    wrong = [ok for case, ok in verdicts if not case.correct]
    return correct.count(False), len(correct), wrong.count(True), len(wrong)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write docs/zoo.md")
    args = parser.parse_args(argv)
    zoo = cases()
    rows: list[tuple[str, tuple[int, int, int, int], float, list[str]]] = []
    for mode in mf.gradcheck.MODES:
        for dtype in DTYPES:
            t0 = time.perf_counter()
            verdicts = [(case, minifw_verdict(case, dtype, mode)) for case in zoo]
            missed = [case.name for case, ok in verdicts if ok is not case.correct]
            rows.append((f"minifw {mode}, {onp.dtype(dtype)}", count(verdicts),
                         time.perf_counter() - t0, missed))
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    if torch_version is not None:
        for fast in (False, True):
            t0 = time.perf_counter()
            verdicts = [(case, torch_verdict(case, fast)) for case in zoo]
            missed = [case.name for case, ok in verdicts if ok is not case.correct]
            rows.append((f"torch {torch_version} gradcheck{' fast_mode' if fast else ''}, "
                         "float64", count(verdicts), time.perf_counter() - t0, missed))
    lines = [
        "| checker | false failures | false passes | time |",
        "|---|---|---|---|",
    ] + [f"| {name} | {ff} of {nc} | {fp} of {nw} | {t:.1f} s |"
         for name, (ff, nc, fp, nw), t, _ in rows]
    table = "\n".join(lines)
    print(table)
    misses = [f"- {name}: " + "; ".join(missed) for name, _, _, missed in rows if missed]
    print("\n".join(misses))
    if args.write:
        note = ("" if torch_version else "\ntorch is not installed here: its rows are missing.\n")
        text = (ZOO_DOC.format(n=len(zoo), correct=sum(c.correct for c in zoo), table=table)
                + note + ("\nWhere a checker was wrong:\n\n" + "\n".join(misses) + "\n"
                          if misses else ""))
        (ROOT / "docs" / "zoo.md").write_text(text)
    bad = sum(ff + fp for name, (ff, _, fp, _), _, _ in rows if name.startswith("minifw"))
    return 1 if bad else 0


ZOO_DOC = """# The checker on a zoo of custom layers

`tests/zoo.py` holds {n} custom layers ({correct} correct, the rest wrong), each an autograd
primitive with hand-written VJPs as a learner writes them: affine, ReLU, leaky ReLU, sigmoid
(also steep), tanh, abs, Huber, clip, square, exp, sort, softmax, batch and layer norm (also with
`eps = 1e-12`), max and average pooling, top-2, im2col-style convolution at stride 1 and 2,
attention, a residual block, dropout with a given mask, embedding (integer indices), cross
entropy with integer labels, hinge. The wrong ones carry the bugs that slip through: a
missing factor, term or transpose, a sign, a bug in a small region beside a kink (a ReLU mask
`x > 1e-6` on inputs in `(0, 1e-6)`), at one smooth point (a sigmoid wrong only at 0), a
relative error of 1e-3. The inputs include values exactly at and within 1e-7 of kinks, ties in
pooling windows, sorts and top-k, and kinks packed at 0, +-h/2, +-2h, +-8h, +-32h. Each case
runs in float64 and float32; `tests/test_zoo.py` holds minifw to 0 false verdicts in both
modes, and `python benchmarks/zoo.py --write` wrote this table:

{table}

torch's gradcheck runs on the float64 cases, the same NumPy forward passes and VJPs wrapped in
a `torch.autograd.Function`, with its default tolerances (`atol=1e-5`, `rtol=1e-3`); an
exception counts as a failure.
"""


if __name__ == "__main__":
    sys.exit(main())

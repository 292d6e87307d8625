"""The time of ``import minifw`` in a fresh interpreter, against its budget.

Each sample is a new ``python -X importtime -c "import minifw"``: the interpreter's own start
is not counted, only the import (minifw's modules, NumPy and autograd). Bytecode is written
by a first, untimed run and then used, as in any installed package (the samples run without
``PYTHONDONTWRITEBYTECODE``, which would make every run compile minifw from source). The note
gives NumPy's and autograd's share of the same runs: the part that is not minifw's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from run import Figure, Mode, median

BUDGET_S = 0.120  # issue 17: import minifw in at most 120 ms


def import_times(rounds: int) -> list[dict[str, float]]:
    """Seconds of each top-level import (``minifw``, ``numpy``, ``autograd``...) per run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-X", "importtime", "-c", "import minifw"]
    subprocess.run(command, env=env, check=True, capture_output=True)  # writes the bytecode
    runs = []
    for _ in range(rounds):
        err = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stderr
        runs.append(_cumulative(err))
    return runs


def _cumulative(importtime: str) -> dict[str, float]:
    # lines "import time: self [us] | cumulative | name", nesting shown by the name's indent
    out: dict[str, float] = {}
    for line in importtime.splitlines()[1:]:
        _, cumulative, name = line.split("|")
        if name.strip() in ("minifw", "numpy", "autograd"):
            out[name.strip()] = int(cumulative) * 1e-6
    return out


def import_figure(mode: Mode) -> Figure:
    """``import minifw`` (median of fresh interpreters) against the 120 ms budget."""
    fig = Figure("import minifw in a fresh interpreter: seconds / the 120 ms budget", "<= 1.0",
                 "import", "budget")
    runs = import_times({"full": 15, "quick": 7}.get(mode.name, 2))
    fig.minifw_s, fig.peer_s = median([r["minifw"] for r in runs]), BUDGET_S
    shares: Any = {k: median([r.get(k, 0.0) for r in runs]) for k in ("numpy", "autograd")}
    fig.note = (f"median of {len(runs)} runs; of it, NumPy {shares['numpy'] * 1e3:.0f} ms, "
                f"autograd with NumPy {shares['autograd'] * 1e3:.0f} ms, minifw's own modules "
                "the rest")
    return fig

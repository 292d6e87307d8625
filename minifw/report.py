"""The gradient checker's report: one row per parameter path, and the table ``str()`` prints.

>>> row = GradCheckRow("W", (2, 2), True, (0, 1), 1.0, 1.0, 0.0, 0.0, 0, 4, 0)
>>> report = GradCheckReport([row], "full", "float64", 6e-6, 1e-6, 1e-9)
>>> report.ok, report.max_abs_error
(True, 0.0)
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from minifw.tables import html_table, text_table


@dataclass
class GradCheckRow:
    """The check of one parameter array (or of the input ``"x"``).

    ``index`` is the worst element's index in full mode, or the worst direction's number in
    projection mode; ``autograd`` and ``numerical`` are the two values there (a directional
    derivative in projection mode). Errors are over the elements not judged to be on a kink;
    ``rel_error`` is ``|autograd - numerical| / max(|autograd|, |numerical|, atol)``.
    ``trace_error``: the largest difference between the backward passes' gradient and
    autograd's trace of the forward passes, in units of ``eps (|a| + |r| + max |a|)`` (``None``
    when no hand-written backward pass took part); beyond ``TRACE_ROUNDING`` of them, and not
    explained by a kink, fails the row.
    """

    path: str
    shape: tuple[int, ...]
    ok: bool
    index: Any
    autograd: float
    numerical: float
    abs_error: float
    rel_error: float
    kinks: int
    checked: int
    failures: int
    verdict: str = ""
    trace_error: float | None = None


@dataclass
class GradCheckReport:
    """Everything a gradient check found: ``ok``, the worst errors, and a row per path.

    ``h``, ``rtol`` and ``atol`` are the values used (``atol`` already scaled by ``|f|``); an
    element passes when ``|autograd - numerical| <= atol + rtol * max(|autograd|, |numerical|)``.
    """

    rows: list[GradCheckRow]
    mode: str
    dtype: str
    h: float
    rtol: float
    atol: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every row passed."""
        return all(r.ok for r in self.rows)

    @property
    def max_abs_error(self) -> float:
        """The largest ``|autograd - numerical|`` over all rows (kinks excluded)."""
        return max((r.abs_error for r in self.rows), default=0.0)

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over all rows (kinks excluded)."""
        return max((r.rel_error for r in self.rows), default=0.0)

    @property
    def kinks(self) -> int:
        """How many elements (or directions) were judged to be on a kink."""
        return sum(r.kinks for r in self.rows)

    def _table(self) -> tuple[str, list[str], list[list[str]], list[str]]:
        """The head line, the columns, a row of cells per path, and the lines below."""
        unit = "elements" if self.mode == "full" else "directions"
        head = (
            f"gradient check ({self.mode} mode, {self.dtype}): "
            f"{'OK' if self.ok else 'FAILED'}; h={self.h:.3g}, rtol={self.rtol:.3g}, "
            f"atol={self.atol:.3g}"
        )
        cols = ["path", "shape", "ok", "worst", "autograd", "numerical", "max abs err",
                "max rel err", f"kinks/{unit}", "vs trace"]
        rows = [
            [
                r.path,
                "x".join(map(str, r.shape)) or "()",
                "ok" if r.ok else f"FAIL({r.failures})",
                str(r.index),
                f"{r.autograd:.8g}",
                f"{r.numerical:.8g}",
                f"{r.abs_error:.2e}",
                f"{r.rel_error:.2e}",
                f"{r.kinks}/{r.checked}",
                "-" if r.trace_error is None else f"{r.trace_error:.2g} eps",
            ]
            for r in self.rows
        ]
        below = [f"{r.path}: {r.verdict}" for r in self.rows if r.verdict] + self.notes
        return head, cols, rows, below

    def __str__(self) -> str:
        head, cols, rows, below = self._table()
        return "\n".join([head, text_table(cols, rows), *below])

    def _repr_html_(self) -> str:
        """The table for Jupyter: the head line as its caption, verdicts and notes below."""
        head, cols, rows, below = self._table()
        return html_table(cols, rows, head) + "".join(
            f"\n<p>{html.escape(line)}</p>" for line in below)

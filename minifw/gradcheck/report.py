"""The gradient checker's report: one row per parameter path, a table for ``str()`` and Jupyter.

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
    """The check of one parameter array (or of an input, ``"x"``).

    ``index`` is the worst element (the largest error against its tolerance) in full mode, or
    the worst direction's number in projection mode; ``value`` is the input there,
    ``autograd`` and ``numerical`` the two derivatives there, ``abs_error`` and ``rel_error``
    its own errors (``|a - n|`` and ``|a - n| / max(|a|, |n|, atol)``); ``max_abs_error`` and
    ``max_rel_error`` are the row's largest, over the elements not judged to be on a kink.
    ``trace_error``: the largest difference between the backward passes and autograd's trace
    of the forward passes, in units of ``eps (|a| + |r| + scale)`` (``None`` when no
    hand-written backward pass took part). ``verdict`` says why a row failed, or what it
    knows about its kinks; ``skipped`` says why an array was not differentiated.
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
    value: float | None = None
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    undecided: int = 0
    skipped: str = ""

    def __post_init__(self) -> None:
        self.max_abs_error = self.abs_error if self.max_abs_error is None else self.max_abs_error
        self.max_rel_error = self.rel_error if self.max_rel_error is None else self.max_rel_error

    def cells(self, unit: str) -> list[str]:
        """The row of the table."""
        if self.skipped:
            return [self.path, _shape(self.shape), "skipped", "-", "-", "-", "-", "-", "-",
                    "-", "-"]
        status = "ok" if self.ok else f"FAIL({self.failures})"
        if self.undecided:
            status += f" undecided({self.undecided})"
        worst = "-" if self.index is None else str(self.index)
        return [self.path, _shape(self.shape), status, worst,
                "-" if self.value is None else f"{self.value:.6g}", f"{self.autograd:.8g}",
                f"{self.numerical:.8g}", f"{self.abs_error:.2e}", f"{self.rel_error:.2e}",
                f"{self.kinks}/{self.checked}",
                "-" if self.trace_error is None else f"{self.trace_error:.2g} eps"]


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "()"


COLUMNS = ["path", "shape", "ok", "worst", "input there", "autograd", "numerical", "abs err",
           "rel err", "kinks/{unit}", "vs trace"]


@dataclass
class GradCheckReport:
    """Everything a gradient check found: ``ok``, the worst errors, and a row per path.

    ``h``, ``rtol`` and ``atol`` are the step and tolerances of the first comparison; an
    element that fails it is judged by a step sweep (:mod:`minifw.gradcheck.judge`).
    ``dtype`` is the precision of ``f``'s inputs, ``checked_in`` the one the check ran in.
    """

    rows: list[GradCheckRow]
    mode: str
    dtype: str
    h: float
    rtol: float
    atol: float
    notes: list[str] = field(default_factory=list)
    checked_in: str = ""
    blame: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every row passed."""
        return all(r.ok for r in self.rows)

    @property
    def max_abs_error(self) -> float:
        """The largest ``|autograd - numerical|`` over all rows (kinks excluded)."""
        return max((r.max_abs_error or 0.0 for r in self.rows), default=0.0)

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over all rows (kinks excluded)."""
        return max((r.max_rel_error or 0.0 for r in self.rows), default=0.0)

    @property
    def kinks(self) -> int:
        """How many elements (or directions) were judged to be on a kink."""
        return sum(r.kinks for r in self.rows)

    def _head(self) -> str:
        where = (f"{self.dtype}, checked in {self.checked_in}" if self.checked_in
                 and self.checked_in != self.dtype else self.dtype)
        return (f"gradient check ({self.mode} mode, {where}): {'OK' if self.ok else 'FAILED'}; "
                f"h={self.h:.3g}, rtol={self.rtol:.3g}, atol={self.atol:.3g}")

    def _table(self) -> tuple[list[str], list[list[str]]]:
        unit = "elements" if self.mode == "full" else "directions"
        return [c.format(unit=unit) for c in COLUMNS], [r.cells(unit) for r in self.rows]

    def _lines(self) -> list[str]:
        lines = [f"{r.path}: {r.verdict}" for r in self.rows if r.verdict]
        lines += [f"{r.path}: not differentiated ({r.skipped})" for r in self.rows if r.skipped]
        return lines + self.notes + [f"blame: {b}" for b in self.blame]

    def __str__(self) -> str:
        return "\n".join([self._head(), text_table(*self._table()), *self._lines()])

    def _repr_html_(self) -> str:
        """The table for Jupyter: the head line as its caption, verdicts and notes below."""
        return html_table(*self._table(), caption=self._head()) + "".join(
            f"\n<p>{html.escape(line)}</p>" for line in self._lines())

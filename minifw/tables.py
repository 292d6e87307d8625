"""Tables of text and HTML, for what minifw shows: histories and model summaries.

``str()`` of such an object prints :func:`text_table`; Jupyter calls its ``_repr_html_``,
which returns :func:`html_table` (the way pandas and PyTorch objects display in notebooks).
Columns whose header is in ``numeric`` are right-aligned.

>>> print(text_table(["epoch", "loss"], [[1, "0.5"], [10, "0.25"]], numeric={"epoch", "loss"}))
epoch  loss
    1   0.5
   10  0.25
>>> print(html_table(["a"], [["<b>"]]))
<table>
<thead><tr><th>a</th></tr></thead>
<tbody>
<tr><td>&lt;b&gt;</td></tr>
</tbody>
</table>
"""

from __future__ import annotations

import html
from collections.abc import Collection, Sequence
from typing import Any


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               numeric: Collection[str] = ()) -> str:
    """The rows under their headers, in columns two spaces apart, without trailing spaces.

    Arguments:
        headers: the column names.
        rows: the cells, each shown with ``str``.
        numeric: the headers of the columns to right-align.

    Returns:
        The table, one line per row.
    """
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [c.rjust(w) if h in numeric else c.ljust(w)
                 for c, w, h in zip(row, widths, headers)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               caption: str | None = None, numeric: Collection[str] = ()) -> str:
    """The same table as HTML (every cell escaped), with an optional caption.

    Arguments:
        headers: the column names.
        rows: the cells, each shown with ``str``.
        caption: a line above the table.
        numeric: the headers of the columns to right-align.

    Returns:
        A ``<table>`` element.
    """
    def cell(tag: str, value: Any, header: str) -> str:
        style = ' style="text-align: right"' if header in numeric else ""
        return f"<{tag}{style}>{html.escape(str(value))}</{tag}>"

    head = "".join(cell("th", h, h) for h in headers)
    body = "\n".join("<tr>" + "".join(cell("td", c, h) for c, h in zip(row, headers)) + "</tr>"
                     for row in rows)
    top = f"<caption>{html.escape(caption)}</caption>\n" if caption else ""
    return f"<table>\n{top}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"

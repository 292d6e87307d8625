"""A model summary: each layer with its output shape and parameter count, as PyTorch users know.

:func:`summary` takes the parameters from ``model.init`` (or the ones given) and runs one
forward pass on a sample input, layer by layer through every ``Sequential``; nothing about the
layers changes. ``str()`` of the result is a table; in Jupyter it displays as an HTML table.
Axis 0 of a sample with two or more axes is the batch, shown as ``N``.

>>> import numpy as onp, minifw as mf
>>> model = mf.Sequential(mf.Linear(64, 32), mf.ReLU(), mf.Linear(32, 10))
>>> print(summary(model, onp.zeros((1, 64))))
Sequential: 2,410 parameters (18.8 KiB), input (N, 64)
#  layer                                                      output shape  parameters
0  Linear(in_features=64, out_features=32, weight_init='he')  (N, 32)            2,080
1  ReLU()                                                     (N, 32)                0
2  Linear(in_features=32, out_features=10, weight_init='he')  (N, 10)              330
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as onp

from minifw.layers import Layer, Sequential
from minifw.tables import html_table, text_table
from minifw.tree import leaves

_HEADERS = ("#", "layer", "output shape", "parameters")


@dataclass
class SummaryRow:
    """One layer: its position (``"2.0"`` inside a nested ``Sequential``), its ``repr``, the
    shape of its output for the sample, its parameter count and its nesting depth."""

    path: str
    layer: str
    output_shape: tuple[int, ...]
    parameters: int
    depth: int = 0


@dataclass
class Summary:
    """The layers of a model, their output shapes and parameter counts (:func:`summary`)."""

    model: str
    input_shape: tuple[int, ...]
    rows: list[SummaryRow] = field(default_factory=list)
    parameters: int = 0
    nbytes: int = 0
    batched: bool = True

    def _shape(self, shape: tuple[int, ...]) -> str:
        axes: list[Any] = list(shape)
        if self.batched and axes and axes[0] == self.input_shape[0]:
            axes[0] = "N"
        return "(" + ", ".join(map(str, axes)) + ("," if len(axes) == 1 else "") + ")"

    def title(self) -> str:
        """The line above the table: the model, its parameter count and bytes, the input."""
        return (f"{self.model}: {self.parameters:,} parameters ({_size(self.nbytes)}), "
                f"input {self._shape(self.input_shape)}")

    def _cells(self) -> list[list[str]]:
        return [[r.path, "  " * r.depth + r.layer, self._shape(r.output_shape),
                 f"{r.parameters:,}"] for r in self.rows]

    def __str__(self) -> str:
        table = text_table(_HEADERS, self._cells(), numeric={"parameters"})
        return f"{self.title()}\n{table}"

    def _repr_html_(self) -> str:
        return html_table(_HEADERS, self._cells(), self.title(), numeric={"parameters"})


def summary(model: Layer, x: Any, params: dict[str, Any] | None = None, *,
            rng: onp.random.Generator | None = None) -> Summary:
    """The layers of ``model`` with the output shape each gives for the input ``x``.

    Arguments:
        model: the model (a ``Sequential`` is shown layer by layer, nested ones indented).
        x: a sample input, e.g. ``onp.zeros((1, 64))``; axis 0 is the batch if it has two or
            more axes.
        params: the parameters (default: ``model.init(rng)``).
        rng: the generator for ``model.init`` (default: seeded with 0).

    Returns:
        A :class:`Summary`; ``print`` it, or let Jupyter show it.

    Raises:
        ValueError, TypeError: a layer refuses what the layer before it gave; the message
            names the layer.
    """
    x = onp.asarray(x)
    if params is None:
        params = model.init(onp.random.default_rng(0) if rng is None else rng)
    out = Summary(type(model).__name__, x.shape, batched=x.ndim >= 2)
    if isinstance(model, Sequential):
        _walk(model, params, x, "", 0, out.rows)
    else:
        y = _call(model, params, x, type(model).__name__)
        out.rows.append(SummaryRow("", repr(model), onp.shape(y), _count(params)))
    out.parameters = _count(params)
    out.nbytes = sum(onp.asarray(a).nbytes for _, a in leaves(params))
    return out


def _walk(model: Sequential, params: dict[str, Any], x: Any, prefix: str, depth: int,
          rows: list[SummaryRow]) -> Any:
    """Run the layers of ``model`` one by one (as ``Sequential.forward`` does), a row each."""
    for i, layer in enumerate(model.layers):
        path = f"{prefix}{i}"
        p = params.get(str(i), {})
        if isinstance(layer, Sequential):
            row = SummaryRow(path, "Sequential", (), _count(p), depth)
            rows.append(row)
            x = _walk(layer, p, x, f"{path}.", depth + 1, rows)
            row.output_shape = onp.shape(x)
        else:
            x = _call(layer, p, x, f"layer {path}")
            rows.append(SummaryRow(path, repr(layer), onp.shape(x), _count(p), depth))
    return x


def _call(layer: Layer, params: Any, x: Any, where: str) -> Any:
    try:
        return layer(params, x)
    except (ValueError, TypeError) as e:
        raise type(e)(f"summary: {where}, {layer!r}, refused an input of shape "
                      f"{onp.shape(x)}: {e}") from e


def _count(params: Any) -> int:
    return sum(int(onp.size(a)) for _, a in leaves(params))


def _size(nbytes: int) -> str:
    """``nbytes`` in B, KiB or MiB, for a title."""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"

"""Pooling over the last two axes (height, width): ``MaxPool2D`` and ``AvgPool2D``.

Each window is ``pool_size`` pixels, windows start every ``stride`` pixels (the pool size by
default, so that they tile the image), and the output is ``(..., oh, ow)`` with
``oh = (H - ph) // sh + 1``: a remainder that no window covers is left out, as in the book and
PyTorch. The forward passes take the max (or sum) of each window over its rows, then over
its columns, each a few strided slices of the whole array: operations that autograd traces.

Max pooling's backward pass routes each window's gradient to one maximum: the first in
row-major order within the window when several are equal. At such a tie the maximum has no
derivative (moving one of the tied pixels up moves the maximum, moving it down does not): a
kink, where autograd's trace splits the gradient among the tied pixels instead.

>>> import numpy as onp
>>> x = onp.arange(16.0).reshape(1, 1, 4, 4)
>>> MaxPool2D(2)({}, x)[0, 0], AvgPool2D(2)({}, x)[0, 0]
(array([[ 5.,  7.],
       [13., 15.]]), array([[ 2.5,  4.5],
       [10.5, 12.5]]))
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import reduce
from typing import Any

import autograd.numpy as np
import numpy as onp

from minifw.layers.base import Layer, Params, shape_of
from minifw.layers.conv import Pair, pair
from minifw.ops import Op


def _starts(n: int, size: int, stride: int) -> list[slice]:
    """Along one axis of length ``n``: for each offset in a window, the slice of the pixels
    at that offset of every window."""
    count = (n - size) // stride + 1
    return [slice(i, i + stride * (count - 1) + 1, stride) for i in range(size)]


def _windows(shape: tuple[int, ...], pool: Pair, stride: Pair) -> Iterator[tuple[Any, ...]]:
    """The index of each offset's slice, ``x[..., i::sh, j::sw]`` cut to ``(oh, ow)``: the
    ``ph * pw`` slices whose elementwise max (or mean) is the pooled output."""
    for rows in _starts(shape[-2], pool[0], stride[0]):
        for cols in _starts(shape[-1], pool[1], stride[1]):
            yield Ellipsis, rows, cols


def _separably(combine: Any, x: Any, pool: Pair, stride: Pair) -> Any:
    """``combine`` (max, sum) over each window: over its rows first, then over its columns
    (``ph + pw - 2`` operations instead of ``ph * pw - 1``; the first on whole rows)."""
    rows = reduce(combine, [x[..., r, :] for r in _starts(x.shape[-2], pool[0], stride[0])])
    return reduce(combine, [rows[..., c] for c in _starts(x.shape[-1], pool[1], stride[1])])


def _max_pool(x: Any, pool: Pair, stride: Pair) -> Any:
    return _separably(np.maximum, x, pool, stride)


def _max_pool_vjp(g: Any, y: Any, x: Any, pool: Pair, stride: Pair) -> Any:
    gx = onp.zeros(x.shape, dtype=onp.result_type(x, g))
    free = onp.ones(y.shape, dtype=bool)  # windows whose maximum has not been found yet
    for w in _windows(x.shape, pool, stride):
        first = (x[w] == y) & free
        free &= ~first
        gx[w] += onp.where(first, g, 0)
    return gx.astype(x.dtype, copy=False)


#: The maximum of each window; the gradient goes to the first maximum of each.
MAX_POOL = Op("max_pool2d", _max_pool, _max_pool_vjp, per_sample=True)


def _avg_pool(x: Any, pool: Pair, stride: Pair) -> Any:
    return _separably(np.add, x, pool, stride) / (pool[0] * pool[1])


def _avg_pool_vjp(g: Any, y: Any, x: Any, pool: Pair, stride: Pair) -> Any:
    gx = onp.zeros(x.shape, dtype=onp.result_type(x, g))
    share = g / (pool[0] * pool[1])
    for w in _windows(x.shape, pool, stride):
        gx[w] += share
    return gx.astype(x.dtype, copy=False)


#: The mean of each window; each pixel gets its share of every window it is in.
AVG_POOL = Op("avg_pool2d", _avg_pool, _avg_pool_vjp, per_sample=True)


class _Pool2D(Layer):
    """A pooling layer: windows of ``pool_size`` every ``stride`` (default: ``pool_size``)
    over the last two axes of an input ``(N, C, H, W)`` (or any axes before ``H, W``); no
    parameters, no state: the same in training and in evaluation."""

    ops_only = True

    def __init__(self, pool_size: int | Pair, stride: int | Pair | None = None):
        name = type(self).__name__
        self.pool_size = pair(f"{name}: pool_size", pool_size)
        self.stride = self.pool_size if stride is None else pair(f"{name}: stride", stride)

    def check(self, params: Params, x: Any) -> None:
        """``x`` must have a batch axis and be at least ``pool_size`` in height and width."""
        shape = shape_of(x)
        if len(shape) < 3 or any(n < p for n, p in zip(shape[-2:], self.pool_size)):
            raise ValueError(f"{self!r} expects inputs (N, C, H, W) of height and width at "
                             f"least {self.pool_size}, got shape {shape}")

    def options(self) -> dict[str, Any]:
        return {"pool": self.pool_size, "stride": self.stride}


class MaxPool2D(_Pool2D):
    """The maximum of each window (the book's ``Pooling``); the gradient goes to one maximum
    per window, the first in row-major order at a tie."""

    op = MAX_POOL


class AvgPool2D(_Pool2D):
    """The mean of each window; each pixel gets an equal share of the window's gradient."""

    op = AVG_POOL

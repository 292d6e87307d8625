"""``Conv2D``: the convolution of "Deep Learning from Scratch", chapter 7, on NCHW input.

As in the book, a convolution is two steps, here two ops, each with its backward pass:

- :data:`IM2COL`: the input's patches as columns, ``x (N, C, H, W) -> cols (N, C*kh*kw, L)``;
  its backward pass, col2im, adds each column's gradient back onto the pixels it came from.
- :data:`CONV`: the filters applied to the columns, ``y = W @ cols + b`` cut to
  ``(N, F, oh, ow)``; its backward pass gives the columns', ``W``'s and ``b``'s gradients.

The columns are laid out so that every copy is one long contiguous run: the padded image is
flattened, a row of output positions is one padded row of pixels (``pitch`` of them, the
last few wasted, beyond ``ow``), and the patch of kernel offset ``(i, j)`` is a single strided
slice of the flat image. This is im2col with ``pitch / ow`` of the columns computed and
discarded (``18/16`` for a 3x3 kernel with padding 1 on 16x16 images; about the stride for
strided convolutions), and no short copies.

``W`` has shape ``(out_channels, in_channels, kh, kw)`` and ``b`` ``(out_channels,)``; ``CONV``
also accepts ``W`` and ``b`` with leading stack axes, giving one output per stacked copy (the
numerical engine moves many weights in one call so).

>>> import numpy as onp
>>> layer = Conv2D(1, 2, 3, padding=1)
>>> params = layer.init(onp.random.default_rng(0))
>>> layer(params, onp.ones((4, 1, 5, 5))).shape
(4, 2, 5, 5)
"""

from __future__ import annotations

from typing import Any

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from minifw.functions import _float
from minifw.layers.base import Layer, Params, expect_params, shape_of
from minifw.layers.linear import check_weight_init, weight_std, whole
from minifw.ops import Op

Pair = tuple[int, int]


def pair(name: str, value: Any, minimum: int = 1) -> Pair:
    """``value`` (an int or two) as ``(height, width)`` if whole numbers ``>= minimum``.

    >>> pair("kernel_size", 3), pair("padding", (0, 1), minimum=0)
    ((3, 3), (0, 1))
    """
    values = value if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(isinstance(v, (int, onp.integer)) and not isinstance(
            v, bool) and v >= minimum for v in values):
        raise ValueError(f"{name} must be a whole number >= {minimum} or two of them, got "
                         f"{value!r}")
    return int(values[0]), int(values[1])


def geometry(H: int, W: int, kernel: Pair, stride: Pair, padding: Pair
             ) -> tuple[int, int, int, int, int]:
    """``(oh, ow, rows, width, pitch)`` of the flat layout for an ``H x W`` image.

    The image is padded to ``rows x width`` (``padding`` on every side, then zeros below and
    on the right so that the last slice stays inside and ``width`` is a multiple of the
    horizontal stride), and output position ``(r, c)`` of kernel offset ``(i, j)`` reads
    pixel ``i * width + j + sw * (r * pitch + c)`` of the flat image.

    >>> geometry(16, 16, (3, 3), (1, 1), (1, 1))
    (16, 16, 19, 18, 18)
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    width = -(-(W + 2 * pw) // sw) * sw
    return oh, ow, kh + sh * oh, width, sh * width // sw


def _im2col(x: Any, kernel: Pair, stride: Pair, padding: Pair) -> Any:
    N, C, H, W = x.shape
    (kh, kw), sw, (ph, pw) = kernel, stride[1], padding
    oh, ow, rows, width, pitch = geometry(H, W, kernel, stride, padding)
    widths = ((0, 0), (0, 0), (ph, rows - H - ph), (pw, width - W - pw))
    flat = np.reshape(np.pad(x, widths, "constant"), (N, C, rows * width))
    span = sw * (oh * pitch - 1) + 1
    patches = [flat[:, :, None, o:o + span:sw] for o in _offsets(kernel, width)]
    return np.reshape(np.concatenate(patches, axis=2), (N, C * kh * kw, oh * pitch))


def _offsets(kernel: Pair, width: int) -> list[int]:
    """Where the patch of each kernel offset ``(i, j)`` starts in the flat image, in the order
    of ``W.reshape(F, C * kh * kw)``'s columns within a channel."""
    return [i * width + j for i in range(kernel[0]) for j in range(kernel[1])]


def _col2im(g: Any, cols: Any, x: Any, kernel: Pair, stride: Pair, padding: Pair) -> Any:
    N, C, H, W = x.shape
    (kh, kw), sw, (ph, pw) = kernel, stride[1], padding
    oh, ow, rows, width, pitch = geometry(H, W, kernel, stride, padding)
    g = onp.reshape(g, (N, C, kh * kw, oh * pitch))
    span = sw * (oh * pitch - 1) + 1
    flat = onp.zeros((N, C, rows * width), dtype=onp.result_type(x, g))
    for k, o in enumerate(_offsets(kernel, width)):
        flat[:, :, o:o + span:sw] += g[:, :, k]
    return flat.reshape(N, C, rows, width)[:, :, ph:ph + H, pw:pw + W].astype(x.dtype,
                                                                                 copy=False)


#: The patches of ``x`` as columns, ``(N, C, H, W) -> (N, C*kh*kw, oh*pitch)``; its backward
#: pass is col2im.
IM2COL = Op("im2col", _im2col, _col2im, per_sample=True)


def _conv(cols: Any, W: Any, b: Any, out: tuple[int, int, int]) -> Any:
    oh, ow, pitch = out
    F, K = W.shape[-4], cols.shape[-2]
    # stacked copies of W or b (leading axes) become more filters: one product per image
    stack = onp.broadcast_shapes(W.shape[:-4], b.shape[:-1])
    W2 = np.reshape(np.broadcast_to(W, stack + W.shape[-4:]), (-1, K))
    y = W2 @ cols  # (N, S*F, L)
    y += np.reshape(np.broadcast_to(b, stack + (F,)), (-1, 1))  # fresh: in place, or rebound
    y = np.reshape(y, (y.shape[0], *stack, F, oh, pitch))
    return (np.moveaxis(y, 0, len(stack)) if stack else y)[..., :ow]


def _widened(g: Any, out: tuple[int, int, int]) -> onp.ndarray:
    """The cotangent of ``CONV``'s output on every computed column (0 on the discarded)."""
    oh, ow, pitch = out
    wide = onp.zeros(g.shape[:2] + (oh, pitch), dtype=g.dtype)
    wide[..., :ow] = g
    return wide.reshape(g.shape[:2] + (oh * pitch,))


def _conv_backward(g: Any, y: Any, cols: Any, W: Any, b: Any, needs: tuple[bool, ...],
                   out: tuple[int, int, int]) -> tuple[Any, Any, Any]:
    wide = _widened(g, out)
    W2 = W.reshape(W.shape[0], -1)
    gcols = W2.T @ wide if needs[0] else None
    gW = (wide @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(W.shape) if needs[1] else None
    gb = g.sum(axis=(0, 2, 3)) if needs[2] else None
    return gcols, gW, gb


#: The filters on the columns: ``(cols, W, b) -> y (N, F, oh, ow)``.
CONV = Op("conv2d", _conv, backward=_conv_backward, per_sample=True)


class Conv2D(Layer):
    """A 2-D convolution (cross-correlation, as in the book and PyTorch) on NCHW input.

    Arguments:
        in_channels: ``C`` of the input ``(N, C, H, W)``.
        out_channels: the number of filters ``F``; the output is ``(N, F, oh, ow)`` with
            ``oh = (H + 2 padding - kh) // stride + 1`` (and ``ow`` alike).
        kernel_size: ``kh`` and ``kw``, one int or two.
        stride, padding: one int or two (height, width); padding adds zeros on every side.
        weight_init: ``"xavier"`` (default), ``"he"``, ``"book"`` or a standard deviation,
            for ``C * kh * kw`` inputs per output, as :class:`~minifw.Linear`.

    Parameters: ``{"W": (out_channels, in_channels, kh, kw), "b": (out_channels,)}``. The same
    in training and in evaluation (no state).
    """

    ops_only = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Pair,
                 stride: int | Pair = 1, padding: int | Pair = 0,
                 weight_init: str | float = "xavier"):
        self.in_channels = whole("Conv2D: in_channels", in_channels)
        self.out_channels = whole("Conv2D: out_channels", out_channels)
        self.kernel_size = pair("Conv2D: kernel_size", kernel_size)
        self.stride = pair("Conv2D: stride", stride)
        self.padding = pair("Conv2D: padding", padding, minimum=0)
        self.weight_init = check_weight_init("Conv2D", weight_init)

    def init(self, rng: onp.random.Generator) -> Params:
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        std = weight_std(self.weight_init, self.in_channels * shape[2] * shape[3])
        return {"W": std * rng.standard_normal(shape), "b": onp.zeros(self.out_channels)}

    def check(self, params: Params, x: Any) -> None:
        """``x`` must be ``(N, in_channels, H, W)`` with the padded image at least the kernel."""
        expect_params(self, params, {"W": (self.out_channels, self.in_channels,
                                           *self.kernel_size), "b": (self.out_channels,)})
        shape = shape_of(x)
        padded = [shape[a] + 2 * p for a, p in zip((2, 3), self.padding)] if len(
            shape) == 4 else []
        if len(shape) != 4 or shape[1] != self.in_channels or any(
                n < k for n, k in zip(padded, self.kernel_size)):
            raise ValueError(f"{self!r} expects inputs (N, {self.in_channels}, H, W) whose "
                             f"padded height and width are at least the kernel "
                             f"{self.kernel_size}, got shape {shape}")

    def forward(self, params: Params, x: Any) -> Any:
        x = _float(x)
        self.check(params, x)
        N, C, H, W = getval(x).shape
        oh, ow, _, _, pitch = geometry(H, W, self.kernel_size, self.stride, self.padding)
        cols = IM2COL(x, kernel=self.kernel_size, stride=self.stride, padding=self.padding)
        return CONV(cols, params["W"], params["b"], out=(oh, ow, pitch))

"""``Conv2D``: the convolution of "Deep Learning from Scratch", chapter 7, on NCHW input.

Two ops, each with its backward pass:

- :data:`PAD`: the images zero-padded into a flat layout, ``x (N, C, H, W) -> flat (N,
  (C + spare) * rows * width)``; its backward pass cuts the padding away again.
- :data:`CONV`: the book's im2col (the patches of ``flat`` as the columns of a matrix) and the
  filters' product with it, ``y (N, F, oh, ow)``; its backward pass gives ``W``'s and ``b``'s
  gradients, and col2im: each column's gradient added back onto the pixels it came from.

The layout makes each step a few long runs. Each channel of an image is padded to ``rows x
width`` with zeros on the top and the left only: its bottom and right padding are the next
channel's top rows and the next row's left columns (after the last channel, ``spare`` zero
channels). The channels of an image lie one after another in its flat row, so that the
patches of kernel offset ``(i, j)`` in all channels are a single slice of the row, starting
at ``i * width + j``, and col2im is ``kh * kw`` additions of a slice. Output positions run
over the whole padded grid, and those beyond ``(oh, ow)`` are computed and discarded (``17 *
17 / 16 ** 2``, 13% more, for a 3x3 kernel with padding 1 on 16x16 images). The columns end
in a row of ones, so that the product adds ``b`` too.

The products are batched over the images (one per image, in one call). Between the passes
only ``flat`` is kept, not the columns (``kh * kw`` times larger): the backward pass builds
them again, in chunks of images (:data:`CHUNK`) that bound their memory, as the forward pass.

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

from collections.abc import Iterator
from typing import Any, NamedTuple

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from minifw.functions import _float
from minifw.layers.base import Layer, Params, expect_params, shape_of
from minifw.layers.linear import check_weight_init, weight_std, whole
from minifw.ops import Op

Pair = tuple[int, int]

#: Bytes of one chunk's columns (8 MiB): chunks bound the memory the columns take on large
#: batches; below that, one product for the whole batch is the fastest here (on the issue's
#: convolution, chunks of 2 MiB cost 5-15% more than one of 5.4 MiB, those of 512 KiB 20-70%).
CHUNK = 1 << 23


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


class Geometry(NamedTuple):
    """The flat layout of a convolution's input (see the module docstring)."""

    oh: int  # the output's height and width
    ow: int
    rows: int  # a padded channel is rows x width pixels
    width: int
    pitch: int  # output positions per output row (the first ow kept)
    positions: int  # output positions per channel (rows / sh output rows)
    spare: int  # zero channels after the last, for the slices of the last kernel offsets


def geometry(H: int, W: int, kernel: Pair, stride: Pair, padding: Pair) -> Geometry:
    """The layout for ``H x W`` images: output position ``(r, c)`` of channel ``k`` reads,
    for kernel offset ``(i, j)``, pixel ``i * width + j + sw * (k * positions + r * pitch +
    c)`` of the image's flat row.

    >>> geometry(16, 16, (3, 3), (1, 1), (1, 1))
    Geometry(oh=16, ow=16, rows=17, width=17, pitch=17, positions=289, spare=1)
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    # room for the image with its top (left) padding, and for the kept output rows (columns)
    rows = -(-max(H + ph, sh * oh) // sh) * sh
    width = -(-max(W + pw, sw * ow) // sw) * sw
    reach = (kh - 1) * width + kw - sw  # how far the last offset's slice goes past the end
    return Geometry(oh, ow, rows, width, sh * width // sw, rows * width // sw,
                    -(-max(reach, 0) // (rows * width)))


def _pad(x: Any, kernel: Pair, stride: Pair, padding: Pair) -> Any:
    N, C, H, W = x.shape
    g, (ph, pw) = geometry(H, W, kernel, stride, padding), padding
    widths = ((0, 0), (0, g.spare), (ph, g.rows - H - ph), (pw, g.width - W - pw))
    return np.reshape(np.pad(x, widths, "constant"), (N, (C + g.spare) * g.rows * g.width))


def _unpad(gflat: Any, flat: Any, x: Any, kernel: Pair, stride: Pair, padding: Pair) -> Any:
    N, C, H, W = x.shape
    g, (ph, pw) = geometry(H, W, kernel, stride, padding), padding
    image = onp.reshape(gflat, (N, C + g.spare, g.rows, g.width))
    return image[:, :C, ph:ph + H, pw:pw + W].astype(x.dtype, copy=False)


#: The images in the flat layout, ``(N, C, H, W) -> (N, (C + spare) * rows * width)``; its
#: backward pass cuts the padding away.
PAD = Op("pad2d", _pad, _unpad, per_sample=True)


def _chunks(N: int, per_image: int) -> Iterator[slice]:
    """Slices of a batch of ``N``, each a chunk of images whose columns, ``per_image`` bytes
    for each, take about :data:`CHUNK` bytes (one empty chunk for an empty batch)."""
    per = max(1, CHUNK // per_image)
    return (slice(n, min(n + per, N)) for n in range(0, max(N, 1), per))


def _offsets(g: Geometry, kernel: Pair) -> list[int]:
    """Where the slice of each kernel offset ``(i, j)`` starts in an image's flat row."""
    return [i * g.width + j for i in range(kernel[0]) for j in range(kernel[1])]


def _im2col(flat: Any, C: int, g: Geometry, kernel: Pair, stride: Pair) -> Any:
    """The columns of some images in the flat layout, ``(n, kh * kw * C + 1, positions)``:
    the rows in the order of :func:`_filters`'s columns, then a row of ones (for ``b``)."""
    n, sw = flat.shape[0], stride[1]
    span = sw * (C * g.positions - 1) + 1
    # methods, not np.reshape: the same for autograd's boxes, without its wrapper's cost
    patches = [flat[:, o:o + span:sw].reshape((n, C, g.positions))
               for o in _offsets(g, kernel)]
    return np.concatenate(patches + [onp.ones((n, 1, g.positions), getval(flat).dtype)],
                          axis=1)


def _filters(W: Any) -> Any:
    """``W (..., F, C, kh, kw)`` as rows ``(..., F, kh * kw * C)``, a column per pixel of a
    patch in the order of :func:`_im2col`'s rows."""
    return np.reshape(np.moveaxis(W, -3, -1), W.shape[:-3] + (-1,))


def _conv(flat: Any, W: Any, b: Any, size: Pair, kernel: Pair, stride: Pair, padding: Pair
          ) -> Any:
    N, (F, C) = flat.shape[0], W.shape[-4:-2]
    g = geometry(*size, kernel, stride, padding)
    # stacked copies of W or b (leading axes) become more filters: one product per image
    stack = onp.broadcast_shapes(W.shape[:-4], b.shape[:-1])
    K = kernel[0] * kernel[1] * C
    Wb = np.concatenate([np.broadcast_to(_filters(W), stack + (F, K)),
                         np.broadcast_to(b[..., None], stack + (F, 1))], axis=-1)
    Wb = np.reshape(Wb, (-1, K + 1))
    per_image = (K + 1) * g.positions * onp.result_type(getval(flat), getval(W)).itemsize
    parts = [Wb @ _im2col(flat[s], C, g, kernel, stride) for s in _chunks(N, per_image)]
    y = parts[0] if len(parts) == 1 else np.concatenate(parts)  # (N, S*F, positions)
    y = np.reshape(y, (N, *stack, F, g.positions // g.pitch, g.pitch))
    return (np.moveaxis(y, 0, len(stack)) if stack else y)[..., :g.oh, :g.ow]


def _conv_backward(gy: Any, y: Any, flat: Any, W: Any, b: Any, needs: tuple[bool, ...],
                   size: Pair, kernel: Pair, stride: Pair, padding: Pair
                   ) -> tuple[Any, Any, Any]:
    N, (F, C) = flat.shape[0], W.shape[-4:-2]
    g, sw = geometry(*size, kernel, stride, padding), stride[1]
    dtype = onp.result_type(gy, flat, W)
    W2 = _filters(W).astype(dtype, copy=False)
    gWb = onp.zeros((F, W2.shape[1] + 1), dtype) if needs[1] or needs[2] else None
    gflat = onp.zeros(flat.shape, dtype) if needs[0] else None
    span = sw * (C * g.positions - 1) + 1
    per_image = (W2.shape[1] + 1) * g.positions * dtype.itemsize
    for s in _chunks(N, per_image) if any(needs) else ():
        n = s.stop - s.start
        wide = onp.empty((n, F, g.positions // g.pitch, g.pitch), dtype)
        wide[..., :g.oh, :g.ow] = gy[s]
        wide[..., :g.oh, g.ow:] = wide[..., g.oh:, :] = 0  # the discarded positions add nothing
        wide = wide.reshape(n, F, g.positions)
        if gWb is not None:
            gWb += (wide @ _im2col(flat[s], C, g, kernel, stride).transpose(0, 2, 1)).sum(0)
        if gflat is not None:  # col2im: each offset's columns added back onto its slice
            gcols = (W2.T @ wide).reshape(n, -1, C * g.positions)
            for k, o in enumerate(_offsets(g, kernel)):
                gflat[s, o:o + span:sw] += gcols[:, k]
    gW = gb = None
    if gWb is not None:  # the last column is b's: the columns' row of ones
        gW = onp.moveaxis(gWb[:, :-1].reshape(F, *kernel, C), -1, 1).astype(W.dtype)
        gb = gWb[:, -1].astype(b.dtype)
    return (None if gflat is None else gflat.astype(flat.dtype, copy=False),
            gW if needs[1] else None, gb if needs[2] else None)


#: The filters on the patches of images in the flat layout: ``(flat, W, b) -> y (N, F, oh,
#: ow)``, for images of ``size`` ``(H, W)``.
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
        options = {"kernel": self.kernel_size, "stride": self.stride, "padding": self.padding}
        flat = PAD(x, **options)
        return CONV(flat, params["W"], params["b"], size=shape_of(x)[2:], **options)

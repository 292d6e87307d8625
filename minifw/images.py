"""A picture of a handwritten digit as a model's input, the way the training images were made.

The 8x8 digits count the inked pixels of a 32x32 bitmap in 4x4 blocks, with the digit filling
the frame's height; MNIST fits each digit into 20x20 pixels centred in 28x28. So a picture
(:func:`read_image`: PNG, or any format Pillow reads) is made grey, its ink found (dark ink on
light paper or light on dark, judged by the border), cropped to the ink, scaled to fit the box
keeping its proportions (by averaging the area each output pixel covers), centred in the
frame, and given values in [0, 1], ink high: :func:`digit_input`.

>>> import numpy as onp
>>> picture = onp.ones((40, 40)); picture[5:35, 15:25] = 0.0  # a dark bar on white paper
>>> digit_input(picture, size=(8, 8), box=(8, 8)).reshape(8, 8)[:2]
array([[0., 0., 1., 1., 1., 0., 0., 0.],
       [0., 0., 1., 1., 1., 0., 0., 0.]])
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as onp

#: How much of the ink's range a pixel must have to count as part of the digit when cropping.
INK = 0.1


def read_image(path: str | os.PathLike[str]) -> onp.ndarray:
    """The picture at ``path`` as grey levels ``(height, width)`` in [0, 1] (1 is white).

    Colour is weighted as luminance (ITU-R BT.601); a transparent picture is laid on white.

    Raises:
        ValueError: the file is not a picture matplotlib (with Pillow) can read.
    """
    from matplotlib import image

    try:
        a = onp.asarray(image.imread(os.fspath(path)))
    except (OSError, ValueError, SyntaxError) as e:  # Pillow's errors for what it cannot read
        raise ValueError(f"{os.fspath(path)!r} is not a picture that can be read: {e}") from e
    if a.dtype.kind in "ui":
        a = a / float(onp.iinfo(a.dtype).max)
    a = a.astype(onp.float64)
    if a.ndim == 3 and a.shape[2] in (2, 4):  # with alpha: over white
        a = a[..., :-1] * a[..., -1:] + (1.0 - a[..., -1:])
    if a.ndim == 3 and a.shape[2] == 3:
        a = a @ onp.array([0.299, 0.587, 0.114])
    elif a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2 or min(a.shape) == 0:
        raise ValueError(f"{os.fspath(path)!r}: a picture of shape {a.shape} is not an image")
    return a


def digit_input(grey: onp.ndarray, size: Sequence[int], box: Sequence[int]) -> onp.ndarray:
    """A grey picture of one digit as a flat model input of ``size[0] * size[1]`` values.

    Arguments:
        grey: the picture, ``(height, width)`` in [0, 1].
        size: the training images' height and width (8x8 digits: ``(8, 8)``).
        box: the height and width the digit is fitted into, centred in ``size``.

    Returns:
        Values in [0, 1], ink 1, row after row.

    Raises:
        ValueError: the picture holds no ink (it is one colour throughout).
    """
    grey = onp.asarray(grey, dtype=onp.float64)
    border = onp.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if onp.median(border) > 0.5:  # light paper: the ink is what is dark
        grey, border = 1.0 - grey, 1.0 - border
    ink, background, top = grey, float(onp.median(border)), float(grey.max())
    if top - background < 1e-6:
        raise ValueError("the picture holds no digit: it is one shade throughout")
    ink = onp.clip((ink - background) / (top - background), 0.0, 1.0)
    rows, cols = onp.flatnonzero((ink > INK).any(axis=1)), onp.flatnonzero((ink > INK).any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = ink.shape
    scale = min(box[0] / h, box[1] / w)
    out_h, out_w = max(1, min(box[0], round(h * scale))), max(1, min(box[1], round(w * scale)))
    fitted = area_resize(ink, out_h, out_w)
    frame = onp.zeros(tuple(size))
    top_row, left = (size[0] - out_h) // 2, (size[1] - out_w) // 2
    frame[top_row:top_row + out_h, left:left + out_w] = fitted
    return frame.ravel()


def area_resize(a: onp.ndarray, height: int, width: int) -> onp.ndarray:
    """``a`` resampled to ``(height, width)``: each output pixel the mean of the area of ``a``
    it covers (fractions of pixels counted by their share), as the digits' 4x4 blocks are.

    >>> area_resize(onp.array([[0.0, 1.0], [1.0, 1.0]]), 1, 1)
    array([[0.75]])
    """
    return _area_weights(a.shape[0], height) @ a @ _area_weights(a.shape[1], width).T


def _area_weights(n_in: int, n_out: int) -> onp.ndarray:
    """``(n_out, n_in)``: the share of output pixel ``i`` that input pixel ``j`` covers."""
    edges = onp.linspace(0.0, n_in, n_out + 1)
    j = onp.arange(n_in)
    overlap = (onp.minimum(edges[1:, None], j + 1) - onp.maximum(edges[:-1, None], j))
    return onp.clip(overlap, 0.0, None) / (edges[1:] - edges[:-1])[:, None]

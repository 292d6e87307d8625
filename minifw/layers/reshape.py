"""``Flatten``: every axis after the batch axis made one, ``(N, C, H, W) -> (N, C*H*W)``.

The bridge from convolution and pooling (NCHW) to ``Linear`` (which acts on the last axis), as
in the book's ``Affine`` layer, which flattens its input first.

>>> import numpy as onp
>>> Flatten()({}, onp.zeros((2, 3, 4, 5))).shape
(2, 60)
"""

from __future__ import annotations

import math
from typing import Any

import autograd.numpy as np

from minifw.layers.base import Layer, Params, shape_of
from minifw.ops import Op


def _flatten(x: Any) -> Any:
    return np.reshape(x, (x.shape[0], math.prod(x.shape[1:])))


#: ``x.reshape(N, -1)``; the gradient is reshaped back.
FLATTEN = Op("flatten", _flatten, lambda g, y, x: g.reshape(x.shape), per_sample=True)


class Flatten(Layer):
    """Flattens all axes but the first (the batch): no parameters, no state, the same in
    training and in evaluation."""

    ops_only = True
    op = FLATTEN

    def check(self, params: Params, x: Any) -> None:
        """``x`` must have a batch axis."""
        if not shape_of(x):
            raise ValueError(f"{self!r} expects inputs with a batch axis, got a scalar")

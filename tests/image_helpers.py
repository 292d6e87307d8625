"""Shared by the tests of the convolutional, pooling, normalisation and dropout layers:
hypothesis strategies for NCHW images and layer geometries, and wrong backward passes to plant.

Pixels are drawn from minifw.testing's values (plain numbers, 0 and its immediate
neighbours) mixed with a few repeated values, so that pooling windows hold ties: the kinks of
max pooling.
"""

import numpy as onp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minifw as mf
from minifw import testing

#: Repeated pixel values: ties in pooling windows.
TIES = (1.0, -1.0, 0.5)

DTYPES = [onp.float64, onp.float32]


def cast(tree, dtype):
    """``tree`` (a nested dict of arrays) in ``dtype``."""
    return {k: cast(v, dtype) if isinstance(v, dict) else v.astype(dtype)
            for k, v in tree.items()}


def images(shape, dtype):
    """Arrays of ``shape`` whose values include ties and values at and beside 0."""
    width = 64 if onp.dtype(dtype).itemsize == 8 else 32
    pixels = st.one_of(st.sampled_from(TIES), testing.values(width=width))
    return hnp.arrays(dtype, shape, elements=pixels)


@st.composite
def conv_cases(draw, dtype):
    """``(Conv2D, x)``: 1-2 images of 1-2 channels, 1-3 filters, kernels 1-3 by 1-3, strides
    1-2, paddings 0-1 (each per axis), and an image at least the kernel once padded."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    N, C, F = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    H = draw(st.integers(max(1, kh - 2 * ph), 5))
    W = draw(st.integers(max(1, kw - 2 * pw), 5))
    layer = mf.Conv2D(C, F, (kh, kw), stride=(sh, sw), padding=(ph, pw))
    return layer, draw(images((N, C, H, W), dtype))


@st.composite
def pool_cases(draw, cls, dtype):
    """``(cls(pool, stride), x)``: windows 1-3 by 1-3, strides 1-3 or the default (the pool
    size), images of 1-2 samples and channels, at least a window in height and width."""
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(pool[0], 6)),
             draw(st.integers(pool[1], 6)))
    return cls(pool, stride), draw(images(shape, dtype))


def scaled(fn, by):
    """``fn`` with every gradient it returns times ``1 + by``: a small, global bug."""
    def wrong(*args, **kwargs):
        out = fn(*args, **kwargs)
        if isinstance(out, (tuple, list)):
            return type(out)(o if o is None else o * (1 + by) for o in out)
        return out * (1 + by)
    return wrong


def plant(monkeypatch, op, wrong_of):
    """Replace ``op``'s backward pass (its ``backward``, or each of its VJPs) by
    ``wrong_of(right)``."""
    if op.backward is not None:
        monkeypatch.setattr(op, "backward", wrong_of(op.backward))
    else:
        monkeypatch.setattr(op, "vjps", tuple(v if v is None else wrong_of(v) for v in op.vjps))

"""``Dropout``: in training, each unit kept with probability ``1 - rate`` and scaled by
``1 / (1 - rate)``; in evaluation, and outside any block, the identity.

The scaling at training time ("inverted" dropout, as PyTorch) keeps every unit's expected
value, so evaluation needs no change; the book scales at test time instead, which gives the
same network up to that factor. The mask is an argument of the op :data:`DROPOUT`, drawn by
:func:`minifw.modes.training` from its generator once per call site per block: the backward
pass is a pure function of it, and every evaluation in the block (a numerical gradient's, a
gradient check's) sees the same mask.

>>> import numpy as onp, minifw as mf
>>> layer = Dropout(0.5)
>>> layer({}, onp.ones(4))            # no block: the plain maths, the identity
array([1., 1., 1., 1.])
>>> with mf.training(onp.random.default_rng(0)):
...     layer({}, onp.ones(4))
array([0., 2., 2., 2.])
"""

from __future__ import annotations

from typing import Any

import numpy as onp
from autograd.tracer import getval

from minifw import modes
from minifw.functions import _float, real_number
from minifw.layers.base import Layer, Params
from minifw.ops import Op


class MaskOp(Op):
    """An op whose argument 1 is aligned with the batch like its input (a mask): the numerical
    engine gives a row of samples its rows of it (:attr:`batch_args`)."""

    batch_args = (1,)


#: ``x * mask``: the mask (0 or ``1 / (1 - rate)``) is an input, not differentiated.
DROPOUT = MaskOp("dropout", lambda x, mask: x * mask, lambda g, y, x, mask: g * mask, None,
                 per_sample=True)


class Dropout(Layer):
    """Dropout (Srivastava et al., 2014), inverted: scaled in training, identity otherwise.

    Arguments:
        rate: the probability that a unit is dropped, in ``[0, 1)``.

    Use: call the model inside ``with mf.training(rng, state):`` for a training step (one
    mask per Dropout per block, drawn from ``rng``), and inside ``with mf.evaluation(state):``
    or outside any block to predict (the identity). No parameters, no state.
    """

    ops_only = True

    def __init__(self, rate: float = 0.5):
        self.rate = real_number("Dropout: rate", rate)
        if not 0 <= self.rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")

    def forward(self, params: Params, x: Any) -> Any:
        x = _float(x)
        m = modes.active()
        if not isinstance(m, modes.Training) or self.rate == 0:
            return x
        value = getval(x)
        keep = 1 - self.rate

        def draw(rng: onp.random.Generator) -> onp.ndarray:
            return ((rng.random(value.shape) < keep) / keep).astype(value.dtype)

        return DROPOUT(x, m.mask(value.shape, draw))

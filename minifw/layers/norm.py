"""``BatchNorm``: normalise each feature (2-D input) or channel (4-D input) over the batch.

``y = gamma * (x - mean) / sqrt(var + eps) + beta``, with ``mean`` and ``var`` per feature
(axis 1) over every other axis: the batch, and height and width for images (Ioffe and
Szegedy, 2015; the book's chapter 6.3). Two ops, by where the statistics come from:

- :data:`BATCH_NORM` uses the batch's own statistics, a function of ``x`` that the backward
  pass differentiates through (the classic three-term formula). Used outside any block (the
  plain maths that :func:`minifw.check_layer` checks) and in training.
- :data:`NORMALISE` uses fixed statistics, explicit inputs that are not differentiated:
  each sample on its own, an affine map. Used in evaluation, with the running statistics.

The running statistics are state (:mod:`minifw.modes`): ``{"mean": (C,), "var": (C,)}`` per
layer, from ``init_state()`` (zeros and ones), updated by every training block as the book
does, ``running = momentum * running + (1 - momentum) * batch`` (the batch's biased
variance; PyTorch's ``momentum=0.1`` is this ``momentum=0.9``).

Both ops broadcast over leading stack axes of ``x`` (statistics per stacked copy), ``gamma``
and ``beta``.

>>> import numpy as onp
>>> layer = BatchNorm(2)
>>> y = layer(layer.init(onp.random.default_rng(0)), onp.array([[1.0, 10.0], [3.0, 30.0]]))
>>> y.round(3)
array([[-1., -1.],
       [ 1.,  1.]])
"""

from __future__ import annotations

from typing import Any

import autograd.numpy as np
import numpy as onp

from minifw import modes
from minifw.functions import _float, real_number
from minifw.layers.base import Layer, Params, expect_params, shape_of
from minifw.layers.linear import whole
from minifw.ops import Op


def _axes(spatial: int) -> tuple[int, ...]:
    """The axes the statistics reduce, counted from the end: the batch and the spatial axes."""
    return (-(spatial + 2), *range(-spatial, 0))


def _per_channel(p: Any, spatial: int) -> Any:
    """A per-channel array ``(..., C)`` shaped to broadcast against ``(..., N, C, *spatial)``:
    a leading stack axis of ``p`` gets an axis for the batch."""
    shape = p.shape[:-1] + ((1,) if p.ndim > 1 else ()) + (p.shape[-1],) + (1,) * spatial
    return np.reshape(p, shape)


def _standardised(x: Any, eps: float, spatial: int) -> tuple[Any, Any]:
    """``((x - mean) / sqrt(var + eps), 1 / sqrt(var + eps))`` by the batch's statistics."""
    axes = _axes(spatial)
    centred = x - np.mean(x, axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True) + eps)
    return centred * inv_std, inv_std


def _batch_norm(x: Any, gamma: Any, beta: Any, eps: float, spatial: int) -> Any:
    x_hat, _ = _standardised(x, eps, spatial)
    return _per_channel(gamma, spatial) * x_hat + _per_channel(beta, spatial)


def _batch_norm_backward(g: Any, y: Any, x: Any, gamma: Any, beta: Any,
                         needs: tuple[bool, ...], eps: float, spatial: int
                         ) -> tuple[Any, Any, Any]:
    axes = _axes(spatial)
    x_hat, inv_std = _standardised(x, eps, spatial)
    sum_g = g.sum(axis=axes, keepdims=True)
    sum_gx = (g * x_hat).sum(axis=axes, keepdims=True)
    gx = None
    if needs[0]:  # the batch's mean and variance depend on x too: three terms
        m = x.size // gamma.size
        gx = _per_channel(gamma, spatial) * inv_std * (g - (sum_g + x_hat * sum_gx) / m)
    return gx, sum_gx.reshape(gamma.shape), sum_g.reshape(beta.shape)


#: Batch norm by the batch's statistics: ``(x, gamma, beta) -> y``.
BATCH_NORM = Op("batch_norm", _batch_norm, backward=_batch_norm_backward)


def _normalise(x: Any, gamma: Any, beta: Any, mean: Any, var: Any, eps: float,
               spatial: int) -> Any:
    scale = gamma / np.sqrt(var + eps)
    return (_per_channel(scale, spatial) * (x - _per_channel(mean, spatial))
            + _per_channel(beta, spatial))


def _normalise_gamma(g: Any, y: Any, x: Any, gamma: Any, beta: Any, mean: Any, var: Any,
                     eps: float, spatial: int) -> Any:
    x_hat = (x - _per_channel(mean, spatial)) / _per_channel(onp.sqrt(var + eps), spatial)
    return (g * x_hat).sum(axis=_axes(spatial))



#: Normalisation by given statistics: ``(x, gamma, beta, mean, var) -> y``, sample by sample.
NORMALISE = Op(
    "normalise", _normalise,
    lambda g, y, x, gamma, beta, mean, var, eps, spatial: g * _per_channel(
        gamma / onp.sqrt(var + eps), spatial),
    _normalise_gamma,
    lambda g, y, x, gamma, beta, mean, var, eps, spatial: g.sum(axis=_axes(spatial)),
    None, None, per_sample=True)


class BatchNorm(Layer):
    """Batch normalisation over axis 1: features of ``(N, F)``, channels of ``(N, C, H, W)``.

    Arguments:
        num_features: ``F`` or ``C``, the size of axis 1.
        momentum: the weight of the old running statistics in each update (the book's; 0.9).
        eps: added to the variance before the square root.

    Parameters ``{"gamma": (C,), "beta": (C,)}`` (ones and zeros); state ``{"mean": (C,),
    "var": (C,)}`` (zeros and ones, ``init_state()``).

    Use: in training (``with mf.training(rng, state) as run:``), and outside any block, it
    normalises by the batch's statistics, and a training block collects the new running
    statistics into ``run.state``; in evaluation (``with mf.evaluation(state):``) it
    normalises by the running statistics of ``state``, each sample on its own.
    """

    ops_only = True

    def __init__(self, num_features: int, momentum: float = 0.9, eps: float = 1e-5):
        self.num_features = whole("BatchNorm: num_features", num_features)
        self.momentum = real_number("BatchNorm: momentum", momentum)
        self.eps = real_number("BatchNorm: eps", eps)
        if not 0 <= self.momentum <= 1 or self.eps <= 0:
            raise ValueError(f"BatchNorm: momentum must be in [0, 1] and eps > 0, got "
                             f"momentum={momentum!r}, eps={eps!r}")

    def init(self, rng: onp.random.Generator) -> Params:
        return {"gamma": onp.ones(self.num_features), "beta": onp.zeros(self.num_features)}

    def init_state(self) -> Params:
        return {"mean": onp.zeros(self.num_features), "var": onp.ones(self.num_features)}

    def check(self, params: Params, x: Any) -> None:
        """``x`` must be ``(N, num_features, ...)``."""
        C = self.num_features
        expect_params(self, params, {"gamma": (C,), "beta": (C,)})
        shape = shape_of(x)
        if len(shape) < 2 or shape[1] != C:
            raise ValueError(f"{self!r} expects inputs (N, {C}) or (N, {C}, H, W), got shape "
                             f"{shape}")

    def forward(self, params: Params, x: Any) -> Any:
        x = _float(x)
        self.check(params, x)
        spatial = len(shape_of(x)) - 2
        m = modes.active()
        if isinstance(m, modes.Evaluation):
            s = m.entry(repr(self))
            expect_params(self, s, {"mean": (self.num_features,), "var": (self.num_features,)},
                          what="running statistics")
            return NORMALISE(x, params["gamma"], params["beta"], s["mean"], s["var"],
                             eps=self.eps, spatial=spatial)
        if shape_of(x)[0] == 0:
            raise ValueError(f"{self!r} normalises by the batch's statistics: it needs at "
                             "least one sample, got an empty batch")
        if isinstance(m, modes.Training):
            m.record(lambda: self._updated(m.previous(self.init_state), modes.plain(x)))
        return BATCH_NORM(x, params["gamma"], params["beta"], eps=self.eps, spatial=spatial)

    def _updated(self, old: Params, x: onp.ndarray) -> Params:
        axes = (0, *range(2, x.ndim))
        k = self.momentum
        return {"mean": k * old["mean"] + (1 - k) * x.mean(axis=axes),
                "var": k * old["var"] + (1 - k) * x.var(axis=axes)}

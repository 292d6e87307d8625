"""Training: mini-batches, ``fit``, the per-epoch ``History``, and ``accuracy``.

Data flows one way: a batch goes through ``model(params, x)``, the loss makes it a scalar
``f(params, x, t)``, ``value_and_grad(f, method)`` gives its gradients, and
``optimizer.update(params, grads)`` changes ``params`` in place.

>>> import numpy as onp, minifw as mf
>>> rng = onp.random.default_rng(0)
>>> x = rng.standard_normal((64, 2)); t = (x[:, 0] > 0).astype(int)
>>> model = mf.Sequential(mf.Linear(2, 2))
>>> params = model.init(rng)
>>> h = fit(model, mf.SoftmaxCrossEntropy(), mf.optim.SGD(lr=0.5), params, x, t,
...         epochs=20, batch_size=16, rng=rng, progress=False)
>>> h.accuracy[-1] > 0.9
True
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as onp
from tqdm.auto import tqdm

from minifw.gradients import METHODS, value_and_grad
from minifw.layers import Layer
from minifw.losses import Loss
from minifw.optim import Optimizer
from minifw.tree import Tree


@dataclass
class History:
    """What ``fit`` measured, one entry per epoch (accuracies only for classification)."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[float]]:
        """The history as plain lists, e.g. for ``json.dump``."""
        return asdict(self)


def as_generator(rng: Any) -> onp.random.Generator:
    """``rng`` if it is a ``numpy.random.Generator``; a new one if it is an integer seed.

    >>> int(as_generator(0).integers(10)) == int(as_generator(0).integers(10))
    True
    """
    if isinstance(rng, onp.random.Generator):
        return rng
    if isinstance(rng, (int, onp.integer)) and not isinstance(rng, bool):
        return onp.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator or an integer seed, got {rng!r}")


def whole_number(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int if it is a whole number ``>= minimum``, else ``ValueError``.

    >>> whole_number("epochs", 3, 0)
    3
    """
    if isinstance(value, bool) or not isinstance(value, (int, onp.integer)) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def minibatches(n: int, batch_size: int, rng: onp.random.Generator) -> Iterator[onp.ndarray]:
    """Indices of one epoch: a permutation of ``range(n)`` cut into batches of ``batch_size``.

    The last batch is smaller when ``batch_size`` does not divide ``n``.

    >>> [b.tolist() for b in minibatches(5, 2, onp.random.default_rng(0))]
    [[2, 4], [3, 0], [1]]
    """
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _labels(t: onp.ndarray) -> onp.ndarray:
    return t if t.ndim == 1 else t.argmax(axis=-1)


def _is_classification(t: onp.ndarray) -> bool:
    if t.ndim == 1:
        return t.dtype.kind in "iu"
    return t.ndim == 2 and t.shape[1] > 1 and bool(onp.all((t == 0) | (t == 1)))


def accuracy(model: Layer, params: Tree, x: Any, t: Any) -> float:
    """The fraction of samples whose largest output is the target class.

    Arguments:
        model: the model.
        params: its parameters.
        x: inputs, axis 0 the batch.
        t: integer labels ``(N,)`` or one-hot ``(N, classes)``.

    Returns:
        A float in [0, 1].

    >>> import minifw as mf
    >>> model = mf.Sequential(mf.Identity())
    >>> accuracy(model, {}, onp.array([[0.9, 0.1], [0.2, 0.8]]), onp.array([0, 0]))
    0.5
    """
    x, t = onp.asarray(x), onp.asarray(t)
    if len(x) == 0 or len(x) != len(t):
        raise ValueError(f"accuracy: x has shape {x.shape} and t has shape {t.shape}")
    y = onp.asarray(model(params, x))
    if y.ndim != 2 or t.shape not in ((len(y),), y.shape):
        raise ValueError(f"accuracy: outputs of shape {y.shape} do not fit targets {t.shape}")
    return float(onp.mean(y.argmax(axis=-1) == _labels(t)))


def _check_data(x: Any, t: Any, name: str) -> tuple[onp.ndarray, onp.ndarray]:
    x, t = onp.asarray(x), onp.asarray(t)
    for what, a in (("x", x), ("t", t)):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name}: {what} must be numeric, got dtype {a.dtype}")
        if a.ndim == 0 or len(a) == 0:
            raise ValueError(f"{name}: {what} must be a non-empty batch, got shape {a.shape}")
        if not onp.all(onp.isfinite(a)):
            raise ValueError(f"{name}: {what} contains NaN or infinite values")
    if len(x) != len(t):
        raise ValueError(f"{name}: x has {len(x)} samples (shape {x.shape}) but t has {len(t)} "
                         f"(shape {t.shape})")
    return x, t


def fit(
    model: Layer,
    loss: Loss,
    optimizer: Optimizer,
    params: Tree,
    x: Any,
    t: Any,
    *,
    epochs: int,
    batch_size: int,
    rng: Any,
    gradient: str = "autograd",
    validation: tuple[Any, Any] | None = None,
    progress: bool = True,
) -> History:
    """Train ``params`` in place by mini-batch gradient descent.

    Arguments:
        model: the model, ``model(params, x) -> y``.
        loss: the loss, ``loss(y, t) -> scalar``.
        optimizer: changes ``params`` in place from the gradients.
        params: the parameters, trained in place.
        x, t: the training data, axis 0 the samples.
        epochs: passes over the data.
        batch_size: samples per step (the last batch of an epoch may be smaller).
        rng: a ``numpy.random.Generator`` (or an integer seed) for the shuffling.
        gradient: ``"autograd"`` or ``"numerical"``.
        validation: optional ``(x_val, t_val)`` measured after every epoch.
        progress: show a progress bar (only when writing to a terminal).

    Returns:
        The :class:`History` of loss (and, for classification, accuracy) per epoch.

    Bad settings or data raise ``ValueError``/``TypeError`` before any parameter changes. A
    loss or gradient that turns NaN or infinite stops training with ``FloatingPointError``
    naming the epoch and batch; ``params`` keep their last finite values.
    """
    epochs = whole_number("epochs", epochs, 0)
    batch_size = whole_number("batch_size", batch_size, 1)
    if gradient not in METHODS:
        raise ValueError(f"gradient must be one of {METHODS}, got {gradient!r}")
    rng = as_generator(rng)
    x, t = _check_data(x, t, "fit")
    if validation is not None:
        x_val, t_val = _check_data(*validation, "fit validation")
    classify = _is_classification(t)
    vg = value_and_grad(lambda p, xb, tb: loss(model(p, xb), tb), method=gradient)
    history = History()
    n_batches = -(-len(x) // batch_size)
    bar = tqdm(total=epochs * n_batches, disable=None if progress else True, unit="batch")
    try:
        for epoch in range(1, epochs + 1):
            total = 0.0
            for b, idx in enumerate(minibatches(len(x), batch_size, rng), start=1):
                value, grads = vg(params, x[idx], t[idx])
                where = f"at epoch {epoch}, batch {b} of {n_batches}"
                if not onp.isfinite(value):
                    raise FloatingPointError(
                        f"the loss became {value} {where}; params keep their last finite values"
                    )
                try:
                    optimizer.update(params, grads)
                except ValueError as e:
                    raise FloatingPointError(f"{e} {where}; params were not changed") from e
                total += float(value) * len(idx)
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{float(value):.4f}", refresh=False)
            history.loss.append(total / len(x))
            if classify:
                history.accuracy.append(accuracy(model, params, x, t))
            if validation is not None:
                history.val_loss.append(float(loss(model(params, x_val), t_val)))
                if classify:
                    history.val_accuracy.append(accuracy(model, params, x_val, t_val))
    finally:
        bar.close()
    return history

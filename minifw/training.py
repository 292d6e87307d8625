"""Training: mini-batches, ``fit``, the per-epoch ``History``, and ``accuracy``.

Data flows one way: a batch goes through ``model(params, x)``, the loss makes it a scalar
``f(params, x, t)``, and ``optimizer.step(f, params, x, t)`` takes its gradient
(``value_and_grad(f, method)``) and changes ``params`` in place (``optimizer.update``).

The :class:`History` keeps, besides the curves, the loss before training and the best epoch
with a copy of its parameters (the lowest validation loss, or training loss without
validation), also when training stops early: a ``KeyboardInterrupt`` or ``FloatingPointError``
from ``fit`` carries the history so far as ``error.history``.

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

import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as onp

from minifw import modes
from minifw.divergence import TRAINING_RTOL, DivergenceWarning, went_uphill
from minifw.functions import NonFiniteError, check_finite, check_labels
from minifw.gradients import METHODS
from minifw.layers import Layer
from minifw.losses import CrossEntropyError, Loss, SoftmaxCrossEntropy
from minifw.optim import Optimizer, gradient_then_update
from minifw.tables import html_table, text_table
from minifw.tree import Tree, leaves, tree_map


@dataclass
class History:
    """What ``fit`` measured, one entry per epoch (accuracies only for classification).

    Attributes:
        loss, accuracy: on the training data; ``loss`` is the mean over the epoch's batches.
        val_loss, val_accuracy: on the validation data, after each epoch.
        initial_loss, final_loss: the loss on all the training data at the parameters
            training began from and ended with, measured when ``fit`` finishes (``None`` if it
            did not finish, or where not finite).
        best_epoch: the epoch (from 1) of the lowest validation loss, or training loss
            without validation; ``None`` before the first epoch ends.
        best_params: a copy of the parameters after ``best_epoch`` (not in ``to_dict``).
        best_state: a copy of the state (running statistics) after ``best_epoch``, ``{}``
            for a model without any (not in ``to_dict``).

    ``print(history)`` shows a table; in Jupyter it displays as an HTML table.

    >>> print(History(loss=[0.9, 0.4], accuracy=[0.7, 0.9], initial_loss=2.3, best_epoch=2))
    epoch    loss  accuracy
        0  2.3000
        1  0.9000    0.7000
        2  0.4000    0.9000  best
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    initial_loss: float | None = None
    final_loss: float | None = None
    best_epoch: int | None = None
    best_params: Tree | None = field(default=None, repr=False, compare=False)
    best_state: Tree | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The history as plain data, e.g. for ``json.dump`` (without ``best_params``)."""
        return {"loss": list(self.loss), "accuracy": list(self.accuracy),
                "val_loss": list(self.val_loss), "val_accuracy": list(self.val_accuracy),
                "initial_loss": self.initial_loss, "final_loss": self.final_loss,
                "best_epoch": self.best_epoch}

    @property
    def monitored(self) -> list[float]:
        """The curve the best epoch is chosen on: ``val_loss`` if measured, else ``loss``."""
        return self.val_loss if self.val_loss else self.loss

    @property
    def diverged(self) -> bool:
        """Whether training ended with a loss on the training data higher than it began with,
        by more than :data:`~minifw.divergence.TRAINING_RTOL` of its size (more than noise).

        >>> History(loss=[3e8], initial_loss=2.3, final_loss=2.9e8).diverged
        True
        """
        return self.initial_loss is not None and self.final_loss is not None and went_uphill(
            self.initial_loss, self.final_loss, TRAINING_RTOL)

    def _rows(self) -> tuple[list[str], list[list[str]]]:
        curves = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if getattr(self, k)]
        rows = []
        if self.initial_loss is not None:
            rows.append(["0", f"{self.initial_loss:.4f}"] + [""] * len(curves))
        for e in range(len(self.loss)):
            cells = [f"{v[e]:.4f}" if e < len(v) else "" for v in (getattr(self, k)
                                                                   for k in curves)]
            rows.append([str(e + 1), *cells, "best" if self.best_epoch == e + 1 else ""])
        return ["epoch", *curves, ""], rows

    def __str__(self) -> str:
        headers, rows = self._rows()
        return text_table(headers, rows, numeric=headers[:-1])

    def _repr_html_(self) -> str:
        headers, rows = self._rows()
        return html_table(headers, rows, "minifw History (epoch 0: before training)",
                          numeric=headers[:-1])


def as_generator(rng: Any) -> onp.random.Generator:
    """``rng`` if it is a ``numpy.random.Generator``; a new one if it is an integer seed.

    >>> int(as_generator(0).integers(10)) == int(as_generator(0).integers(10))
    True
    """
    if isinstance(rng, onp.random.Generator):
        return rng
    if isinstance(rng, (int, onp.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng: a seed must be a whole number >= 0, got {rng!r}")
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


def _is_classification(t: onp.ndarray) -> bool:
    if t.ndim == 1:
        return t.dtype.kind in "iu"
    return t.ndim == 2 and t.shape[1] > 1 and bool(onp.all((t == 0) | (t == 1)))


def accuracy(model: Layer, params: Tree, x: Any, t: Any, batch_size: int | None = None
             ) -> float:
    """The fraction of samples whose largest output is the target class.

    Arguments:
        model: the model.
        params: its parameters.
        x: inputs, axis 0 the batch.
        t: integer labels ``(N,)`` or one-hot ``(N, classes)``.
        batch_size: run the model on this many samples at a time (``None``: all at once),
            bounding the memory its activations take; for a model whose samples do not
            interact (no batch statistics), the same result.

    Returns:
        A float in [0, 1].

    Raises ``ValueError`` for empty, non-finite or mismatched data, labels outside
    ``[0, classes)``, and outputs that are not finite (whose argmax would mean nothing).

    >>> import minifw as mf
    >>> model = mf.Sequential(mf.Identity())
    >>> accuracy(model, {}, onp.array([[0.9, 0.1], [0.2, 0.8]]), onp.array([0, 0]))
    0.5
    """
    x, t = _check_data(x, t, "accuracy")
    y = _outputs(model, params, x, batch_size)
    if y.ndim != 2 or t.shape not in ((len(y),), y.shape):
        raise ValueError(f"accuracy: outputs of shape {y.shape} do not fit targets {t.shape}")
    check_finite(y, "accuracy", "the model's outputs")
    labels = check_labels(t, y.shape[1], "accuracy") if t.ndim == 1 else t.argmax(axis=-1)
    return float(onp.mean(y.argmax(axis=-1) == labels))


def _outputs(model: Layer, params: Tree, x: onp.ndarray, batch_size: int | None) -> onp.ndarray:
    """``model(params, x)``, ``batch_size`` samples at a time."""
    if batch_size is None or len(x) <= batch_size:
        return onp.asarray(model(params, x))
    whole_number("batch_size", batch_size, 1)
    return onp.concatenate([onp.asarray(model(params, x[i:i + batch_size]))
                            for i in range(0, len(x), batch_size)])


#: Samples per call when ``fit`` measures accuracy and validation loss after an epoch: the
#: activations of a whole data set (a convolution's columns) need not fit in memory at once.
EVAL_BATCH = 1000


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


def _as_float_data(x: onp.ndarray, t: onp.ndarray) -> tuple[onp.ndarray, onp.ndarray]:
    """Integer and boolean inputs (and one-hot targets) as float64, once, not per batch;
    labels ``(N,)`` stay integers."""
    if x.dtype.kind in "biu":
        x = x.astype(onp.float64)
    if t.ndim > 1 and t.dtype.kind in "biu":
        t = t.astype(onp.float64)
    return x, t


def _check_objects(model: Any, loss: Any, optimizer: Any) -> None:
    """A class where an instance belongs (``SGD`` for ``SGD(lr=0.1)``) is a common slip."""
    for what, obj, example in (("model", model, "Sequential(...)"),
                               ("loss", loss, "SoftmaxCrossEntropy()"),
                               ("optimizer", optimizer, "SGD(lr=0.1)")):
        if isinstance(obj, type):
            raise TypeError(f"fit: {what} must be an instance such as {example}, got the class "
                            f"{obj.__name__}")
        if what == "optimizer":
            if not callable(getattr(obj, "update", None)):
                raise TypeError(f"fit: optimizer {obj!r} is not an optimizer: it has no method "
                                "update(params, grads)")
        elif not callable(obj):
            raise TypeError(f"fit: {what} {obj!r} is not a {what}")


def _check_params(params: Tree) -> None:
    """Every leaf a writeable, finite float ndarray: refused before anything changes."""
    if not isinstance(params, (dict, onp.ndarray)):
        raise TypeError(f"fit: params must be a dict of arrays, got {type(params).__name__}")
    for path, a in leaves(params):
        if not isinstance(a, onp.ndarray) or a.dtype.kind != "f" or not a.flags.writeable:
            raise TypeError(
                f"fit: parameter {path!r} must be a writeable float ndarray to train in place, "
                f"got {type(a).__name__} {getattr(a, 'dtype', '')}"
            )
        check_finite(a, "fit", f"parameter {path!r}")


def _preflight(model: Layer, loss: Loss, params: Tree, x: onp.ndarray, t: onp.ndarray,
               name: str, with_loss: bool) -> None:
    """One sample through the model (and the loss, ``with_loss``), and every label checked
    against the output width: data the model or the loss cannot take is refused before any
    parameter changes, not at the batch where it first turns up. (The training loss needs no
    trial: the first batch is computed before the first step.)"""
    y = onp.asarray(model(params, x[:1]))
    if t.ndim == 1 and y.ndim == 2 and y.shape[1] > 1 and (
            t.dtype.kind in "iub" or isinstance(loss, _LABEL_LOSSES)):
        check_labels(t, y.shape[1], name)
    if with_loss:
        loss(y, t[:1])


_LABEL_LOSSES = (CrossEntropyError, SoftmaxCrossEntropy)


class _DeferInterrupts:
    """Holds a first Ctrl-C (SIGINT) until the current step is over, so that it never lands
    between the updates of two arrays; a second Ctrl-C interrupts at once.

    ``on_signal`` is called at each Ctrl-C: ``fit`` redraws its progress bar there, so that the
    terminal's echo of the next ``^C`` lands where the last one did, not past the end of the
    line (where it would wrap and leave a copy of the bar above the next one).

    Only in the main thread, and only when SIGINT has Python's default handler.
    """

    def __init__(self, on_signal: Callable[[], Any]) -> None:
        self.on_signal = on_signal

    def __enter__(self) -> _DeferInterrupts:
        self.pending = False
        self.at: tuple[Any, ...] = ("before the first step",)  # what fit is doing (below)
        self.active = (threading.current_thread() is threading.main_thread()
                       and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if self.active:
            signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        self.on_signal()
        if self.pending:
            raise KeyboardInterrupt(f"fit interrupted {_spelled(*self.at)} by a second "
                                    "Ctrl-C, at once; params hold what that step had written")
        self.pending = True

    def check(self, *where: Any) -> None:
        """Raise the held ``KeyboardInterrupt``, if any, saying where training stopped
        (``where`` as :func:`_spelled` takes it: words are formatted only when needed)."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt(f"fit interrupted {_spelled(*where)}; params hold the values "
                                    "of that step")

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _spelled(what: str, epoch: int | None = None, batch: int | None = None,
             batches: int | None = None) -> str:
    """``"during epoch 2, batch 3 of 9"`` from ``("during", 2, 3, 9)``; fewer parts, fewer
    words."""
    if epoch is None:
        return what
    return f"{what} epoch {epoch}" + ("" if batch is None else f", batch {batch} of {batches}")


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
    state: Tree | None = None,
    early_stopping: int | None = None,
) -> History:
    """Train ``params`` in place by mini-batch gradient descent.

    Each step runs in a :func:`minifw.training` block (dropout draws its masks from ``rng``,
    batch norm collects running statistics into ``state``), and the accuracies and the
    validation loss after each epoch in a :func:`minifw.evaluation` block on ``state``.

    Arguments:
        model: the model, ``model(params, x) -> y``.
        loss: the loss, ``loss(y, t) -> scalar``.
        optimizer: changes ``params`` in place: a :class:`minifw.optim.Optimizer` (its
            ``step(f, params, x, t, method=gradient)`` once per batch), or any object with
            ``update(params, grads)`` (called after ``value_and_grad``).
        params: the parameters, trained in place.
        x, t: the training data, axis 0 the samples.
        epochs: passes over the data.
        batch_size: samples per step (the last batch of an epoch may be smaller).
        rng: a ``numpy.random.Generator`` (or an integer seed) for the shuffling.
        gradient: ``"autograd"`` or ``"numerical"``.
        validation: optional ``(x_val, t_val)`` measured after every epoch.
        progress: show a progress bar (only when writing to a terminal).
        state: the running statistics (``model.init_state()``, the default), updated in
            place after every step, as ``params``; only models with ``BatchNorm`` have any.
        early_stopping: a patience: stop once the validation loss has not improved for this
            many epochs, and leave ``params`` and ``state`` as they were after the best
            epoch (:attr:`History.best_epoch`). Needs ``validation``.

    Returns:
        The :class:`History` of loss (and, for classification, accuracy) per epoch.

    >>> import minifw as mf
    >>> rng = onp.random.default_rng(0)
    >>> x = rng.standard_normal((40, 2)); t = (x[:, 0] > 0).astype(int)
    >>> model = mf.Sequential(mf.Linear(2, 2))
    >>> params = model.init(rng)
    >>> wrong = (x[:10], 1 - t[:10])  # flipped labels: a validation loss that only grows
    >>> h = fit(model, mf.SoftmaxCrossEntropy(), mf.optim.SGD(lr=0.5), params, x, t,
    ...         epochs=30, batch_size=40, rng=rng, validation=wrong, early_stopping=2,
    ...         progress=False)
    >>> len(h.loss), h.best_epoch  # stopped after epoch 3; params are those after epoch 1
    (3, 1)

    Bad settings or data raise ``ValueError``/``TypeError`` before any parameter changes
    (labels and input widths are checked against the model up front). A loss, validation loss
    or gradient that turns NaN or infinite, or a step that would overflow the parameters,
    stops training with ``FloatingPointError`` naming the epoch and batch; ``params`` keep
    their last finite values. Ctrl-C stops between two steps with ``KeyboardInterrupt``, never
    inside one. Either exception carries the :class:`History` so far as ``error.history``.
    A run whose loss on the training data ends well above where it began (more than doubled:
    a learning rate too large) finishes with a :class:`~minifw.divergence.DivergenceWarning`.
    A ``batch_size`` of ``len(x)`` or more makes one batch of all samples per epoch.
    """
    epochs = whole_number("epochs", epochs, 0)
    batch_size = whole_number("batch_size", batch_size, 1)
    if gradient not in METHODS:
        raise ValueError(f"gradient must be one of {METHODS}, got {gradient!r}")
    rng = as_generator(rng)
    _check_objects(model, loss, optimizer)
    _check_params(params)
    patience = None if early_stopping is None else whole_number("early_stopping",
                                                                early_stopping, 1)
    if patience is not None and validation is None:
        raise ValueError("fit: early_stopping watches the validation loss; give validation="
                         "(x_val, t_val) too")
    if state is None:
        state = model.init_state()
    elif not isinstance(state, dict):
        raise TypeError(f"fit: state must be a dict (model.init_state()), got "
                        f"{type(state).__name__}")
    x, t = _as_float_data(*_check_data(x, t, "fit"))
    with modes.evaluation(state):
        _preflight(model, loss, params, x, t, "fit", with_loss=False)
    val = None
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise ValueError("fit: validation must be a pair (x_val, t_val), got "
                             f"{type(validation).__name__} {validation!r:.60}")
        val = _as_float_data(*_check_data(*validation, "fit validation"))
        with modes.evaluation(state):
            _preflight(model, loss, params, *val, "fit validation", with_loss=True)
    # whole-number float labels were checked as labels by the preflight: they classify too
    classify = _is_classification(t) or (t.ndim == 1 and isinstance(loss, _LABEL_LOSSES))

    def f(p: Tree, x: Any, t: Any) -> Any:  # the one scalar function behind everything
        return loss(model(p, x), t)

    # a minifw optimizer steps itself; any other object with update(params, grads) is stepped
    step = optimizer.step if isinstance(optimizer, Optimizer) else partial(gradient_then_update,
                                                                            optimizer)
    history = History()
    # for the loss before training
    start = (tree_map(onp.copy, params), tree_map(onp.copy, state)) if epochs else None
    n_batches = -(-len(x) // batch_size)
    from tqdm.auto import tqdm  # here, not at the top: it costs every `import minifw` 0.15 s

    bar = tqdm(total=epochs * n_batches, disable=None if progress else True, unit="batch",
               ncols=_bar_columns())
    kept = "params keep their last finite values"
    try:
        with _DeferInterrupts(on_signal=bar.refresh) as interrupts:
            for epoch in range(1, epochs + 1):
                total = 0.0
                for b, idx in enumerate(minibatches(len(x), batch_size, rng), start=1):
                    interrupts.at = ("during", epoch, b, n_batches)
                    try:
                        with modes.training(rng, state) as run:
                            value = step(f, params, x[idx], t[idx], method=gradient)
                    except NonFiniteError as e:  # a loss, gradient or step not finite
                        where = _spelled("at", epoch, b, n_batches)
                        raise FloatingPointError(f"training stopped {where}: {e}; {kept}") from e
                    if run.updates:  # the step was taken: its statistics count
                        _assign(state, run.state)
                    value = float(value)
                    total += value * len(idx)
                    if not bar.disable:  # a hidden bar's postfix would be formatted in vain
                        bar.update(1)
                        bar.set_postfix(epoch=epoch, loss=f"{value:.4f}", refresh=False)
                    interrupts.check("after", epoch, b, n_batches)
                history.loss.append(total / len(x))
                interrupts.at = ("while measuring", epoch)
                with modes.evaluation(state):
                    _measure(history, model, loss, params, (x, t), val, classify, epoch)
                _keep_if_best(history, params, state)
                if patience is not None and epoch - (history.best_epoch or 0) >= patience:
                    break
                interrupts.check("after", epoch)
    except (FloatingPointError, KeyboardInterrupt) as e:
        e.history = history  # type: ignore[union-attr]
        raise
    finally:
        bar.close()
    if patience is not None and history.best_params is not None:  # back to the best epoch
        _assign(params, history.best_params)
        _assign(state, history.best_state or {})
    if start is not None:
        history.initial_loss = _finite_loss(model, loss, *start, x, t)
        history.final_loss = _finite_loss(model, loss, params, state, x, t)
    if history.diverged:
        lr = getattr(optimizer, "lr", None)
        warnings.warn(DivergenceWarning(
            f"fit: the loss on the training data rose from {history.initial_loss:.4g} before "
            f"training to {history.final_loss:.4g} after epoch {epochs}: training diverged; "
            f"lower the learning rate{f' (lr={lr:g})' if isinstance(lr, (int, float)) else ''}"),
            stacklevel=2)
    return history


def _finite_loss(model: Layer, loss: Loss, params: Tree, state: Tree, x: onp.ndarray,
                 t: onp.ndarray) -> float | None:
    """The loss of ``params`` on all of ``(x, t)`` in evaluation (by the running statistics
    ``state``), as a float, or ``None`` where it is not finite."""
    try:
        with modes.evaluation(state):
            value = _mean_loss(model, loss, params, x, t)
    except NonFiniteError:
        return None
    return value if onp.isfinite(value) else None


def _keep_if_best(history: History, params: Tree, state: Tree) -> None:
    """Make the last epoch the best one if its monitored loss is the lowest so far, keeping a
    copy of its parameters and state."""
    curve = history.monitored
    if history.best_epoch is None or curve[-1] < curve[history.best_epoch - 1]:
        history.best_epoch = len(curve)
        history.best_params = tree_map(onp.copy, params)
        history.best_state = tree_map(onp.copy, state)


def _bar_columns() -> int | None:
    """The progress bar's width: the terminal's less three columns, so that the ``^C`` a
    terminal echoes after it does not wrap the line (and leave a second copy of the bar)."""
    try:
        return max(20, os.get_terminal_size(sys.stderr.fileno()).columns - 3)
    except (OSError, ValueError, AttributeError):  # not a terminal, or no stderr
        return None


def _mean_loss(model: Layer, loss: Loss, params: Tree, x: onp.ndarray, t: onp.ndarray
               ) -> float:
    """The loss of the whole set, :data:`EVAL_BATCH` samples at a time: every loss here is a
    mean over samples, so the chunks' losses weighted by their sizes."""
    if len(x) <= EVAL_BATCH:
        return float(loss(model(params, x), t))
    total = sum(float(loss(model(params, x[i:i + EVAL_BATCH]), t[i:i + EVAL_BATCH]))
                * len(x[i:i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH))
    return total / len(x)


def _assign(dst: dict[str, Any], src: dict[str, Any]) -> None:
    """Every array of ``src`` into ``dst`` at the same path: in place where ``dst`` has an
    array of that shape (the caller's arrays stay the caller's), else as a new entry."""
    for k, v in src.items():
        if isinstance(v, dict):
            _assign(dst.setdefault(k, {}), v)
        elif isinstance(dst.get(k), onp.ndarray) and dst[k].shape == onp.shape(v):
            onp.copyto(dst[k], v)
        else:
            dst[k] = v


def _measure(history: History, model: Layer, loss: Loss, params: Tree,
             train: tuple[onp.ndarray, onp.ndarray],
             validation: tuple[onp.ndarray, onp.ndarray] | None, classify: bool,
             epoch: int) -> None:
    """Accuracy and validation loss after an epoch; non-finite ones stop training."""
    try:
        if classify:
            history.accuracy.append(accuracy(model, params, *train, batch_size=EVAL_BATCH))
        if validation is not None:
            x_val, t_val = validation
            value = _mean_loss(model, loss, params, x_val, t_val)
            if not onp.isfinite(value):
                raise NonFiniteError(f"the validation loss is {value}")
            history.val_loss.append(value)
            if classify:
                history.val_accuracy.append(accuracy(model, params, x_val, t_val,
                                                     batch_size=EVAL_BATCH))
    except NonFiniteError as e:
        raise FloatingPointError(f"{e} after epoch {epoch}; params (finite) hold the values "
                                 "of its last step") from e

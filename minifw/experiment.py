"""One run of ``minifw train``: the data, the model, ``fit``, and what the result measures.

Nothing here prints or writes files: :mod:`minifw.cli` says what happened and
:mod:`minifw.runfolder` keeps the outputs. :func:`prepare` loads the data (holding out a
validation part of the training data, on which the best epoch is chosen and early stopping
watches), builds the network (``--model mlp``: fully connected; ``--model cnn``: the book's
SimpleConvNet, :func:`build_cnn`), its optimizer with the training aids (a learning-rate
schedule, weight decay, clipping) and draws its parameters; :func:`run` trains it and
measures the final and the best epoch's parameters on the training, validation and test
data. A run that is interrupted (Ctrl-C) or
stops on a non-finite loss is still a result: its history so far, its parameters (the last
finite ones) and its best epoch, if one ended.

>>> import minifw.cli as cli
>>> setup = prepare(cli.build_parser().parse_args(["train", "--epochs", "1", "--quiet"]))
>>> result = run(setup)
>>> result.status, len(result.history.loss), result.measures["final"]["test"]["accuracy"] > 0.8
('finished', 1, True)
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as onp

import minifw
from minifw import modes
from minifw.divergence import DivergenceWarning
from minifw.layers import (
    ACTIVATIONS,
    Conv2D,
    Flatten,
    Layer,
    Linear,
    MaxPool2D,
    Sequential,
    Softmax,
)
from minifw.losses import LOSSES, Loss
from minifw.optim import OPTIMIZERS, CosineDecay, Optimizer, Schedule, StepDecay, WarmUp
from minifw.training import EVAL_BATCH, History, _mean_loss

#: Learning rates ``minifw train`` uses when ``--lr`` is not given: each reaches about 97% test
#: accuracy on the digits with the other defaults (measured over three seeds).
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.1, "momentum": 0.02, "adagrad": 0.05, "rmsprop": 0.003, "adam": 0.01,
    "adamw": 0.01,
}

#: ``--model cnn``'s convolution by data set, when not given: ``(filters, kernel, padding,
#: hidden)``. MNIST: the book's ``SimpleConvNet`` (30 filters 5x5, pooling, 100 hidden);
#: the 8x8 digits: 32 filters 3x3 with padding 1 (a 5x5 kernel would leave 2x2 after pooling).
CNN_DEFAULTS: dict[str, tuple[int, int, int, list[int]]] = {
    "mnist": (30, 5, 0, [100]), "digits": (32, 3, 1, [100]),
}

#: The images of each data set: their height and width, and the box a digit is fitted into
#: (the 8x8 digits fill their frame; MNIST's are fitted into 20x20 and centred in 28x28).
IMAGES: dict[str, dict[str, list[int]]] = {
    "digits": {"size": [8, 8], "box": [8, 8]},
    "mnist": {"size": [28, 28], "box": [20, 20]},
}


class SettingError(ValueError):
    """A setting of ``minifw train`` that cannot work with the data (said before training)."""


def build_model(n_in: int, hidden: Sequence[int], n_out: int, activation: str, loss: str
                ) -> Sequential:
    """A fully connected network: ``Linear`` and ``activation`` per hidden size, then the output.

    The output layer suits the loss: logits for ``softmax_cross_entropy``, a ``Softmax`` for
    the losses on probabilities (``cross_entropy``, ``sse``, ``mse``). Hidden weights use He
    initialisation before ReLU-like activations, Xavier otherwise; the output layer Xavier.

    >>> build_model(64, [32], 10, "relu", "cross_entropy")
    Sequential(Linear(in_features=64, out_features=32, weight_init='he'), ReLU(), \
Linear(in_features=32, out_features=10, weight_init='xavier'), Softmax())
    """
    init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    layers: list[Layer] = []
    for size in hidden:
        layers += [Linear(n_in, size, weight_init=init), ACTIVATIONS[activation]()]
        n_in = size
    layers.append(Linear(n_in, n_out, weight_init="xavier"))
    if loss != "softmax_cross_entropy":
        layers.append(Softmax())
    return Sequential(*layers)


def build_cnn(image: Sequence[int], filters: int, kernel_size: int, padding: int,
              hidden: Sequence[int], n_out: int, activation: str, loss: str) -> Sequential:
    """The book's ``SimpleConvNet`` shape: ``Conv2D``, the activation, 2x2 max pooling,
    ``Flatten``, then the layers of :func:`build_model` (``Linear`` and the activation per
    hidden size, and the output layer). Weights use He initialisation before ReLU-like
    activations, Xavier otherwise.

    Arguments:
        image: ``(channels, height, width)`` of the input images.

    Raises:
        SettingError: a kernel and padding that leave too little of the images to pool.

    >>> build_cnn((1, 8, 8), 4, 3, 1, [], 10, "relu", "softmax_cross_entropy")
    Sequential(Conv2D(in_channels=1, out_channels=4, kernel_size=(3, 3), stride=(1, 1), \
padding=(1, 1), weight_init='he'), ReLU(), MaxPool2D(pool_size=(2, 2), stride=(2, 2)), \
Flatten(), Linear(in_features=64, out_features=10, weight_init='xavier'))
    """
    C, H, W = image
    init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    oh, ow = H + 2 * padding - kernel_size + 1, W + 2 * padding - kernel_size + 1
    if min(oh, ow) < 2:
        raise SettingError(f"--kernel-size {kernel_size} with --padding {padding} leaves "
                           f"{oh}x{ow} of {H}x{W} images, too small for 2x2 pooling")
    layers: list[Layer] = [Conv2D(C, filters, kernel_size, padding=padding, weight_init=init),
                           ACTIVATIONS[activation](), MaxPool2D(2), Flatten()]
    head = build_model(filters * (oh // 2) * (ow // 2), hidden, n_out, activation, loss)
    return Sequential(*layers, *head.layers)


def resolve_model_settings(args: argparse.Namespace) -> None:
    """Fill in the settings of ``minifw train`` left to their defaults by ``--model`` and
    ``--dataset`` (epochs, schedule, hidden sizes, a cnn's convolution), in place, and refuse
    options that do not apply (:class:`SettingError`).

    ``--model cnn``'s defaults (12 epochs of Adam, lr 0.01 on a cosine schedule, 32 filters
    3x3, 100 hidden) reach about 99% test accuracy on the digits, in well under a minute on
    a 2-core machine.

    >>> import minifw.cli as cli
    >>> args = cli.build_parser().parse_args(["train", "--model", "cnn"])
    >>> resolve_model_settings(args)
    >>> args.epochs, args.schedule, args.filters, args.kernel_size, args.padding, args.hidden
    (12, 'cosine', 32, 3, 1, [100])
    """
    cnn = args.network == "cnn"
    if args.epochs is None:
        args.epochs = 12 if cnn else 20
    if args.schedule is None:
        args.schedule = "cosine" if cnn else "constant"
    if not cnn:
        cnn_only = {"--filters": args.filters, "--kernel-size": args.kernel_size,
                    "--padding": args.padding}
        given = [k for k, v in cnn_only.items() if v is not None]
        if given:
            raise SettingError(f"{given[0]} is an option of --model cnn")
        if args.hidden is None:
            args.hidden = [64]
    else:
        filters, kernel, padding, hidden = CNN_DEFAULTS[args.dataset]
        if args.kernel_size is None and args.padding is None:
            args.kernel_size, args.padding = kernel, padding
        args.filters = filters if args.filters is None else args.filters
        args.kernel_size = kernel if args.kernel_size is None else args.kernel_size
        args.padding = (args.kernel_size - 1) // 2 if args.padding is None else args.padding
        args.hidden = list(hidden) if args.hidden is None else args.hidden
        if args.gradient == "numerical":
            raise SettingError("--gradient numerical is for --model mlp: central differences "
                               "of every weight of a cnn would take hours")
    if args.nesterov and args.optimizer != "momentum":
        raise SettingError(f"--nesterov is an option of --optimizer momentum, not "
                           f"{args.optimizer}")
    if args.early_stopping is not None and args.validation_split == 0:
        raise SettingError("--early-stopping watches the validation loss: it needs "
                           "--validation-split above 0 (default 0.1)")


def build_schedule(args: argparse.Namespace, lr: float, steps_per_epoch: int
                   ) -> float | Schedule:
    """``--lr`` with ``--schedule``, ``--lr-step``, ``--lr-gamma`` and ``--warmup`` (given in
    epochs) as a schedule of the step count, or ``lr`` itself for a constant rate.

    >>> import minifw.cli as cli
    >>> args = cli.build_parser().parse_args(["train", "--schedule", "cosine", "--warmup", "1"])
    >>> resolve_model_settings(args)
    >>> build_schedule(args, 0.1, 10)
    WarmUp(CosineDecay(lr=0.1, total_steps=200, min_lr=0.0), steps=10)
    """
    schedule: float | Schedule = lr
    if args.schedule == "step":
        every = args.lr_step if args.lr_step is not None else max(1, args.epochs // 3)
        schedule = StepDecay(lr, every * steps_per_epoch, args.lr_gamma)
    elif args.schedule == "cosine":
        schedule = CosineDecay(lr, args.epochs * steps_per_epoch)
    if args.warmup:
        schedule = WarmUp(schedule, args.warmup * steps_per_epoch)
    return schedule


def build_optimizer(args: argparse.Namespace, lr: float, steps_per_epoch: int) -> Optimizer:
    """``--optimizer`` with its learning rate (:func:`build_schedule`) and the training aids
    ``--weight-decay`` (AdamW's own default unless given), ``--nesterov`` and ``--clip-norm``.

    >>> import minifw.cli as cli
    >>> args = cli.build_parser().parse_args(["train", "--optimizer", "adamw"])
    >>> resolve_model_settings(args)
    >>> build_optimizer(args, 0.01, 45).weight_decay
    0.01
    """
    options: dict[str, Any] = {"clip_norm": args.clip_norm}
    if args.weight_decay is not None:
        options["weight_decay"] = args.weight_decay
    if args.nesterov:
        options["nesterov"] = True
    return OPTIMIZERS[args.optimizer](lr=build_schedule(args, lr, steps_per_epoch), **options)


def load_data(dataset: str, loss: str, data_dir: str | None = None, download: bool = True,
              flatten: bool = True) -> tuple[Any, Any]:
    """``((x, t), (x_test, t_test))`` of ``dataset`` as ``loss`` needs its targets: one-hot
    for the squared errors, labels otherwise; images as rows (``flatten``) or ``(N, 1, H, W)``.

    >>> (x, t), _ = load_data("digits", "sse")
    >>> x.shape, t.shape
    ((1438, 64), (1438, 10))
    """
    from minifw import datasets

    one_hot = loss in ("sse", "mse")  # squared errors need targets shaped like outputs
    if dataset == "digits":
        return datasets.load_digits(one_hot_label=one_hot, flatten=flatten)
    return datasets.load_mnist(one_hot_label=one_hot, flatten=flatten, cache_dir=data_dir,
                               download=download)


def check_size(n_in: int, hidden: Sequence[int], n_out: int, n_samples: int) -> None:
    """Refuse, before allocating anything, a network this machine cannot hold in memory.

    The estimate is a floor: the parameters, their gradients and up to two optimizer moments
    (Adam), plus the activations of the largest batch ``fit`` computes (its accuracy runs the
    whole training set through the network), all float64.

    >>> check_size(64, [10**8], 10, 1438)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    MemoryError: --hidden 100000000: a network of 7,500,000,010 parameters needs at least ...
    """
    sizes = [n_in, *hidden, n_out]
    n_params = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    need = 8 * (4 * n_params + 2 * n_samples * max(sizes))
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - no sysconf (Windows)
        return
    if need > memory:
        raise MemoryError(f"--hidden {' '.join(map(str, hidden))}: a network of {n_params:,} "
                          f"parameters needs at least {need / 1e9:.1f} GB to train on "
                          f"{n_samples} samples, more than this machine's "
                          f"{memory / 1e9:.1f} GB of memory")


@dataclass
class Setup:
    """Everything a run needs, made by :func:`prepare` before training begins."""

    args: argparse.Namespace
    model: Sequential
    params: dict[str, Any]
    loss: Loss
    optimizer: Optimizer
    lr: float
    rng: onp.random.Generator
    train: tuple[Any, Any]
    validation: tuple[Any, Any] | None
    test: tuple[Any, Any]
    inputs: int
    state: dict[str, Any] = field(default_factory=dict)  # running statistics (BatchNorm)
    classes: int = 10  # both data sets hold the digits 0..9


@dataclass
class Result:
    """What :func:`run` gives back.

    ``status`` is ``"finished"``, ``"diverged"`` (finished, but the training loss ended above
    the loss before training), ``"interrupted"`` (Ctrl-C) or ``"stopped"`` (a loss or a
    gradient was not finite); ``message`` says where it stopped. ``measures`` holds
    ``{"final" | "best": {"train" | "validation" | "test": {"loss", "accuracy"}}}``, a value
    ``None`` where it is not finite (``"best"`` only once an epoch ended).
    """

    setup: Setup
    history: History
    status: str
    message: str = ""
    seconds: float = 0.0
    measures: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)


def prepare(args: argparse.Namespace) -> Setup:
    """Resolve the settings (:func:`resolve_model_settings`), load the data, hold out the
    validation part, build the model and its optimizer and draw its parameters.

    Arguments:
        args: the parsed options of ``minifw train``
            (``build_parser().parse_args(["train", ...])``).

    Returns:
        The :class:`Setup`.

    Raises:
        SettingError: a batch larger than the training data, or options that do not apply.
        MemoryError: the network cannot fit in this machine's memory (said before anything is
            allocated).
        minifw.datasets.DatasetNotFoundError: MNIST files are missing.
    """
    resolve_model_settings(args)
    (x, t), test = load_data(args.dataset, args.loss, args.data_dir, not args.no_download,
                             flatten=args.network == "mlp")
    n_in = int(onp.prod(x.shape[1:]))
    rng = onp.random.default_rng(args.seed)
    validation = None
    if args.validation_split > 0:
        n_val = min(max(round(len(x) * args.validation_split), 1), len(x) - 1)
        order = rng.permutation(len(x))
        validation = (x[order[:n_val]], t[order[:n_val]])
        x, t = x[order[n_val:]], t[order[n_val:]]
    if args.batch_size > len(x):
        raise SettingError(f"--batch-size {args.batch_size} is larger than the {len(x)} "
                           f"training samples; --batch-size {len(x)} makes one batch of them "
                           "all")
    if args.network == "mlp":
        check_size(n_in, args.hidden, 10, max(len(x), len(test[0])))
        model = build_model(n_in, args.hidden, 10, args.activation, args.loss)
    else:
        model = build_cnn(x.shape[1:], args.filters, args.kernel_size, args.padding,
                          args.hidden, 10, args.activation, args.loss)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    optimizer = build_optimizer(args, lr, -(-len(x) // args.batch_size))
    return Setup(args, model, model.init(rng), LOSSES[args.loss](), optimizer, lr, rng, (x, t),
                 validation, test, n_in, model.init_state())


def run(setup: Setup) -> Result:
    """Train ``setup.params`` in place as ``minifw train`` does, and measure the result.

    ``fit_only`` then ``measure_result``: a command that must not be interrupted between the
    two (to keep what training made) calls them apart.
    """
    return measure_result(fit_only(setup))


def fit_only(setup: Setup) -> Result:
    """Train ``setup.params`` in place; the result without its measures.

    A ``KeyboardInterrupt`` or ``FloatingPointError`` from ``fit`` ends the run early: the
    result's ``status`` says which and ``history`` holds the epochs that ended.
    """
    args = setup.args
    start = time.perf_counter()
    status, message = "finished", ""
    # fit stops with FloatingPointError, saying where, once the loss or a gradient is not
    # finite; numpy's overflow warnings on the way there would only repeat it, less clearly.
    # A run that diverges is the result's status, not a warning.
    with onp.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        try:
            history = minifw.fit(setup.model, setup.loss, setup.optimizer, setup.params,
                                 *setup.train, epochs=args.epochs, batch_size=args.batch_size,
                                 rng=setup.rng, gradient=args.gradient,
                                 validation=setup.validation, progress=not args.quiet,
                                 state=setup.state, early_stopping=args.early_stopping)
        except (KeyboardInterrupt, FloatingPointError) as e:
            history = getattr(e, "history", None) or History()
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "stopped"
            message = str(e)
    if status == "finished" and history.diverged:
        status = "diverged"
    return Result(setup, history, status, message, time.perf_counter() - start)


def measure_result(result: Result) -> Result:
    """``result`` with its measures: the final and the best epoch's parameters on each part."""
    history = result.history
    result.measures["final"] = measure(result.setup, result.setup.params, result.setup.state)
    if history.best_params is not None:
        result.measures["best"] = measure(result.setup, history.best_params,
                                          history.best_state or {})
    return result


def measure(setup: Setup, params: dict[str, Any], state: dict[str, Any] | None = None
            ) -> dict[str, dict[str, float | None]]:
    """The loss and accuracy of ``params`` (with the running statistics ``state``) on the
    training, validation and test data."""
    parts = {"train": setup.train, "validation": setup.validation, "test": setup.test}
    return {name: evaluate(setup.model, setup.loss, params, *data, state=state)
            for name, data in parts.items() if data is not None}


def evaluate(model: Layer, loss: Loss, params: dict[str, Any], x: Any, t: Any,
             state: dict[str, Any] | None = None) -> dict[str, float | None]:
    """``{"loss": ..., "accuracy": ...}`` of ``model`` on ``(x, t)`` in evaluation (batch
    norm by the running statistics ``state``, dropout off), :data:`~minifw.training.EVAL_BATCH`
    samples at a time; ``None`` for a value that is not finite (parameters that diverged can
    overflow the outputs).

    >>> import minifw as mf
    >>> evaluate(mf.Sequential(mf.Identity()), mf.SoftmaxCrossEntropy(), {},
    ...          onp.array([[2.0, 0.0], [0.0, 2.0]]), onp.array([0, 0]))["accuracy"]
    0.5
    """
    with onp.errstate(all="ignore"), modes.evaluation(state):
        try:
            value: float | None = _mean_loss(model, loss, params, x, t)
        except ValueError:  # the outputs or the loss overflow
            value = None
        if value is not None and not onp.isfinite(value):
            value = None
        try:
            accuracy: float | None = minifw.accuracy(model, params, x, t,
                                                     batch_size=EVAL_BATCH)
        except ValueError:
            accuracy = None
    return {"loss": value, "accuracy": accuracy}

"""The ``minifw`` command: ``train``, ``gradcheck``, ``bench`` and ``plot``.

``minifw train`` trains a network on the 8x8 digits shipped with scikit-learn (no download) or
on MNIST, shows a progress bar, prints the accuracies and writes ``params.npz``,
``history.json``, ``settings.json`` and ``curves.png``. ``minifw gradcheck MODULE:LAYER``
runs the property-based gradient check on a user's layer. ``minifw bench`` runs the
benchmarks of a source checkout, and ``minifw plot`` draws the pictures of
:mod:`minifw.plots`.

Bad arguments and errors the library reports (a missing file, a bad setting) print one line
on stderr and exit with status 2, never a traceback. ``gradcheck`` exits with 1 when a
gradient is wrong.

>>> main(["train", "--epochs", "-1"])
2
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import minifw
from minifw import atomic
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
from minifw.losses import LOSSES
from minifw.optim import OPTIMIZERS, CosineDecay, Schedule, StepDecay, WarmUp

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

#: The pictures ``minifw plot`` draws; ``training_curves`` needs a history (or trains one).
PLOT_NAMES = (
    "activations", "finite_differences", "gradient_descent", "neuron_loss",
    "vanishing_gradients", "training_curves",
)


class UsageError(Exception):
    """A problem with what the user asked for: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (exit status 2)."""

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --- argument types ---------------------------------------------------------------------------


def _whole(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {value}")
        return value

    return parse


def _path(text: str) -> str:
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return text


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


# --- the parser -------------------------------------------------------------------------------


def build_parser() -> _Parser:
    """The ``minifw`` argument parser, with one subparser per command.

    >>> sorted(build_parser().commands)
    ['bench', 'gradcheck', 'plot', 'train']
    """
    parser = _Parser(
        prog="minifw",
        epilog="'minifw COMMAND --help' describes each command's options.",
        description="minifw: a small neural-network framework with two gradient sources "
        "(autograd and central differences) and a gradient checker.",
    )
    parser.add_argument("--version", action="version", version=f"minifw {minifw.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train", help="train a network on the digits (or MNIST)",
        description="Train a fully connected network (or, --model cnn, the book's "
        "SimpleConvNet) and write params.npz, history.json, settings.json and curves.png to "
        "the output folder. The default data set is the 8x8 handwritten digits shipped with "
        "scikit-learn: no download needed.",
    )
    train.add_argument("--model", choices=("mlp", "cnn"), default="mlp",
                       help="mlp (default): fully connected layers (--hidden); cnn: "
                       "convolution, ReLU, 2x2 max pooling, then --hidden fully connected "
                       "layers (the book's SimpleConvNet)")
    train.add_argument("--filters", type=_whole(1), default=None, metavar="N",
                       help="cnn: filters of the convolution (default: 30 on mnist, 32 on "
                       "digits)")
    train.add_argument("--kernel-size", type=_whole(1), default=None, metavar="N",
                       help="cnn: the kernel's height and width (default: 5 on mnist, 3 on "
                       "digits, with --padding 0 and 1)")
    train.add_argument("--padding", type=_whole(0), default=None, metavar="N",
                       help="cnn: zeros added on every side of the images")
    train.add_argument("--dataset", choices=("digits", "mnist"), default="digits",
                       help="digits (default): scikit-learn's 8x8 digits, no download; mnist: "
                       "the 28x28 MNIST files")
    train.add_argument("--data-dir", type=_path, metavar="DIR", default=None,
                       help="the folder holding the MNIST files (else $MINIFW_DATA, else "
                       "~/.cache/minifw/mnist)")
    train.add_argument("--no-download", action="store_true",
                       help="never download missing MNIST files")
    train.add_argument("--hidden", type=_whole(1), nargs="*", default=None, metavar="N",
                       help="sizes of the hidden fully connected layers (default: 64, or 100 "
                       "after a cnn's convolution; none given: none)")
    train.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu",
                       help="the hidden layers' activation (default: %(default)s)")
    train.add_argument("--loss", choices=sorted(LOSSES), default="softmax_cross_entropy",
                       help="the loss (default: %(default)s, on logits; the others on a "
                       "softmax output)")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam",
                       help="the optimizer (default: %(default)s)")
    train.add_argument("--lr", type=_positive_float, default=None,
                       help="learning rate (default by optimizer: " +
                       ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    train.add_argument("--nesterov", action="store_true",
                       help="momentum: Nesterov's accelerated gradient")
    train.add_argument("--weight-decay", type=_non_negative_float, default=None, metavar="L",
                       help="L2 weight decay: added to the gradient (sgd, momentum, adagrad, "
                       "rmsprop) or decoupled (adam, adamw: AdamW); default 0, adamw 0.01")
    train.add_argument("--schedule", choices=("constant", "step", "cosine"), default=None,
                       help="the learning rate over training: constant (the default of mlp); "
                       "step: times --lr-gamma every --lr-step epochs; cosine (the default of "
                       "cnn): down to 0 at the end")
    train.add_argument("--lr-step", type=_whole(1), default=None, metavar="EPOCHS",
                       help="step: epochs between decays (default: a third of --epochs)")
    train.add_argument("--lr-gamma", type=_positive_float, default=0.1, metavar="G",
                       help="step: the factor of each decay (default: %(default)s)")
    train.add_argument("--warmup", type=_whole(0), default=0, metavar="EPOCHS",
                       help="epochs of linear learning-rate warm-up before the schedule "
                       "(default: 0)")
    train.add_argument("--clip-norm", type=_positive_float, default=None, metavar="C",
                       help="rescale the gradients so that their global L2 norm is at most C")
    train.add_argument("--early-stopping", type=_whole(1), default=None, metavar="PATIENCE",
                       help="hold out 10%% of the training data for validation, stop once its "
                       "loss has not improved for PATIENCE epochs and keep the best epoch's "
                       "parameters")
    train.add_argument("--epochs", type=_whole(1), default=None, metavar="N",
                       help="passes over the training data (default: 20, or 12 for cnn)")
    train.add_argument("--batch-size", type=_whole(1), default=32, metavar="N",
                       help="samples per step (default: %(default)s)")
    train.add_argument("--seed", type=_whole(0), default=0,
                       help="seeds the initial weights and the shuffling (default: %(default)s)")
    train.add_argument("--gradient", choices=("autograd", "numerical"), default="autograd",
                       help="the gradient source (default: %(default)s; numerical: central "
                       "differences, slow)")
    train.add_argument("--out", type=_path, metavar="DIR", default="runs/latest",
                       help="the output folder: a new one, or one holding only a previous "
                       "run's outputs, which are replaced all together or not at all "
                       "(default: %(default)s)")
    train.add_argument("--quiet", action="store_true",
                       help="no progress bar (also off when stderr is not a terminal)")
    train.set_defaults(run=_train)

    check = commands.add_parser(
        "gradcheck", help="gradient-check a layer of yours",
        description="Check a layer's gradients (for its input and every parameter) against "
        "central differences, on many inputs drawn by hypothesis, with values at and beside "
        "kinks. Prints the report; exit status 0 if the gradients are right, 1 if not.",
    )
    check.add_argument("target", metavar="MODULE:LAYER",
                       help="MODULE: a dotted module importable from the current folder, or "
                       "a path to a .py file; LAYER: a minifw.Layer instance in it, or a Layer "
                       "class or function that makes one with no arguments")
    check.add_argument("--mode", choices=("full", "projection"), default="full",
                       help="full (default): every element; projection: random directions")
    check.add_argument("--examples", type=_whole(1), default=50, metavar="N",
                       help="how many inputs and parameter draws to check (default: "
                       "%(default)s)")
    check.add_argument("--seed", type=_whole(0), default=0,
                       help="seeds the drawn examples (default: %(default)s)")
    check.add_argument("--in-features", type=_whole(1), default=None, metavar="N",
                       help="the input width (default: the layer's in_features, else 4)")
    check.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                       help="the dtype of inputs and parameters (default: %(default)s)")
    check.add_argument("--traceback", action="store_true",
                       help="show the full traceback when the layer raises")
    check.set_defaults(run=_gradcheck)

    bench = commands.add_parser(
        "bench", help="run the benchmarks (benchmarks/run.py)",
        description="Run benchmarks/run.py of a minifw source checkout. Other arguments are "
        "passed on to it unchanged.",
    )
    bench.add_argument("--quick", action="store_true", help="a short run")
    bench.add_argument("--out", type=_path, metavar="PATH", default=None,
                       help="where to write the results (default: the script's choice)")
    bench.set_defaults(run=_bench)

    plot = commands.add_parser(
        "plot", help="draw a picture (PNG)",
        description="Draw one of minifw's pictures, or all of them ('all').",
    )
    plot.add_argument("name", choices=(*PLOT_NAMES, "all"), metavar="NAME",
                      help="one of: " + ", ".join(PLOT_NAMES) + ", or all")
    plot.add_argument("--out", type=_path, metavar="FILE", default=None,
                      help="the file to write (default: NAME.png); not with 'all'")
    plot.add_argument("--out-dir", type=_path, metavar="DIR", default=".",
                      help="the folder for 'all', each picture as NAME.png (default: the "
                      "current folder)")
    plot.add_argument("--history", type=_path, metavar="FILE", default=None,
                      help="training_curves: a history.json written by 'minifw train' (else "
                      "a short run on the digits is trained)")
    plot.add_argument("--dpi", type=_whole(20), default=110,
                      help="resolution (default: %(default)s)")
    plot.set_defaults(run=_plot)
    parser.commands = {"train": train, "gradcheck": check, "bench": bench, "plot": plot}
    return parser


# --- train ------------------------------------------------------------------------------------


def build_model(n_in: int, hidden: Sequence[int], n_out: int, activation: str, loss: str
                ) -> Sequential:
    """A fully connected network: ``Linear`` and ``activation`` per hidden size, then the output.

    The output layer suits the loss: logits for ``softmax_cross_entropy``, a ``Softmax`` for
    the losses on probabilities (``cross_entropy``, ``sse``, ``mse``). Weights use He
    initialisation before ReLU-like activations, Xavier otherwise.

    >>> build_model(64, [32], 10, "relu", "cross_entropy")
    Sequential(Linear(in_features=64, out_features=32, weight_init='he'), ReLU(), \
Linear(in_features=32, out_features=10, weight_init='xavier'), Softmax())
    """
    init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    layers: list[Layer] = []
    for size in hidden:
        layers += [Linear(n_in, size, weight_init=init), ACTIVATIONS[activation]()]
        n_in = size
    layers.append(Linear(n_in, n_out))
    if loss != "softmax_cross_entropy":
        layers.append(Softmax())
    return Sequential(*layers)


def build_cnn(image: Sequence[int], filters: int, kernel_size: int, padding: int,
              hidden: Sequence[int], n_out: int, activation: str, loss: str) -> Sequential:
    """The book's ``SimpleConvNet`` shape: ``Conv2D``, the activation, 2x2 max pooling,
    ``Flatten``, then ``Linear`` and the activation per hidden size, and the output layer
    (as :func:`build_model`). Weights use He initialisation before ReLU-like activations,
    Xavier otherwise.

    Arguments:
        image: ``(channels, height, width)`` of the input images.

    >>> build_cnn((1, 8, 8), 4, 3, 1, [], 10, "relu", "softmax_cross_entropy")
    Sequential(Conv2D(in_channels=1, out_channels=4, kernel_size=(3, 3), stride=(1, 1), \
padding=(1, 1), weight_init='he'), ReLU(), MaxPool2D(pool_size=(2, 2), stride=(2, 2)), \
Flatten(), Linear(in_features=64, out_features=10, weight_init='xavier'))
    """
    C, H, W = image
    init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    oh, ow = H + 2 * padding - kernel_size + 1, W + 2 * padding - kernel_size + 1
    if min(oh, ow) < 2:
        raise UsageError(f"--kernel-size {kernel_size} with --padding {padding} leaves "
                         f"{oh}x{ow} of {H}x{W} images, too small for 2x2 pooling")
    layers: list[Layer] = [Conv2D(C, filters, kernel_size, padding=padding, weight_init=init),
                           ACTIVATIONS[activation](), MaxPool2D(2), Flatten()]
    head = build_model(filters * (oh // 2) * (ow // 2), hidden, n_out, activation, loss)
    return Sequential(*layers, *head.layers)


def resolve_model_settings(args: argparse.Namespace) -> None:
    """Fill in the settings left to their defaults by ``--model`` and ``--dataset`` (epochs,
    schedule, hidden sizes, a cnn's convolution), and refuse options that do not apply.

    ``--model cnn``'s defaults (12 epochs of Adam, lr 0.01 on a cosine schedule, 32 filters
    3x3, 100 hidden) reach 98.6-99.2% test accuracy on the digits over seeds 0-2, in about
    half a minute on a 2-core machine."""
    cnn_only = {"--filters": args.filters, "--kernel-size": args.kernel_size,
                "--padding": args.padding}
    cnn = args.model == "cnn"
    if args.epochs is None:
        args.epochs = 12 if cnn else 20
    if args.schedule is None:
        args.schedule = "cosine" if cnn else "constant"
    if not cnn:
        given = [k for k, v in cnn_only.items() if v is not None]
        if given:
            raise UsageError(f"{given[0]} is an option of --model cnn")
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
            raise UsageError("--gradient numerical is for --model mlp: central differences of "
                             "every weight of a cnn would take hours")
    if args.nesterov and args.optimizer != "momentum":
        raise UsageError(f"--nesterov is an option of --optimizer momentum, not "
                         f"{args.optimizer}")


def build_schedule(args: argparse.Namespace, lr: float, steps_per_epoch: int
                   ) -> float | Schedule:
    """``--lr`` with ``--schedule``, ``--lr-step``, ``--lr-gamma`` and ``--warmup`` (given in
    epochs) as a schedule of the step count, or ``lr`` itself for a constant rate.

    >>> args = build_parser().parse_args(["train", "--schedule", "cosine", "--warmup", "1"])
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


def _load_data(args: argparse.Namespace) -> tuple[Any, Any]:
    one_hot = args.loss in ("sse", "mse")  # squared errors need targets shaped like outputs
    flatten = args.model == "mlp"
    from minifw import datasets

    if args.dataset == "digits":
        return datasets.load_digits(one_hot_label=one_hot, flatten=flatten)
    return datasets.load_mnist(one_hot_label=one_hot, flatten=flatten, cache_dir=args.data_dir,
                               download=not args.no_download)


def _check_size(n_in: int, hidden: Sequence[int], n_out: int, n_samples: int) -> None:
    """Refuse, before allocating anything, a network this machine cannot hold in memory.

    The estimate is a floor: the parameters, their gradients and up to two optimizer moments
    (Adam), plus the activations of the largest batch ``fit`` computes (its accuracy runs the
    whole training set through the network), all float64.
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


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train as ``minifw train`` would, without writing or printing anything.

    Arguments:
        args: the parsed options of ``minifw train``
            (``build_parser().parse_args(["train", ...])``).

    Returns:
        A dict with ``model``, ``params``, ``history``, ``lr``, ``optimizer``, ``seconds`` (of
        training),
        ``train_accuracy``, ``test_accuracy`` and ``sizes`` (train and test samples, inputs,
        classes).

    Raises:
        MemoryError: the network cannot fit in this machine's memory (said before anything is
            allocated), or an allocation failed.
    """
    import numpy as onp

    resolve_model_settings(args)
    (x, t), (x_test, t_test) = _load_data(args)
    n_in, n_out = int(onp.prod(x.shape[1:])), 10  # both data sets hold the digits 0..9
    if args.model == "mlp":
        _check_size(n_in, args.hidden, n_out, max(len(x), len(x_test)))
        model = build_model(n_in, args.hidden, n_out, args.activation, args.loss)
    else:
        model = build_cnn(x.shape[1:], args.filters, args.kernel_size, args.padding,
                          args.hidden, n_out, args.activation, args.loss)
    rng = onp.random.default_rng(args.seed)
    params = model.init(rng)
    validation = x_test, t_test
    if args.early_stopping is not None:  # the test set stays unseen: validate on a held-out part
        held = max(1, round(len(x) / 10))
        if held >= len(x):
            raise UsageError(f"--early-stopping holds out 10% of the training data for "
                             f"validation; {len(x)} samples are too few")
        x, t, validation = x[:-held], t[:-held], (x[-held:], t[-held:])
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    options: dict[str, Any] = {"clip_norm": args.clip_norm}
    if args.weight_decay is not None:
        options["weight_decay"] = args.weight_decay
    if args.nesterov:
        options["nesterov"] = True
    schedule = build_schedule(args, lr, -(-len(x) // args.batch_size))
    optimizer = OPTIMIZERS[args.optimizer](lr=schedule, **options)
    start = time.perf_counter()
    # fit stops with FloatingPointError, saying where, once the loss or a gradient is not
    # finite; numpy's overflow warnings on the way there would only repeat it, less clearly.
    with onp.errstate(all="ignore"):
        history = minifw.fit(model, LOSSES[args.loss](), optimizer, params, x, t,
                             epochs=args.epochs, batch_size=args.batch_size, rng=rng,
                             gradient=args.gradient, validation=validation,
                             progress=not args.quiet, early_stopping=args.early_stopping)
        seconds = time.perf_counter() - start
        accuracies = minifw.accuracy(model, params, x, t, batch_size=1000), minifw.accuracy(
            model, params, x_test, t_test, batch_size=1000)
    return {
        "model": model, "params": params, "history": history, "lr": lr, "seconds": seconds,
        "optimizer": optimizer,
        "train_accuracy": accuracies[0], "test_accuracy": accuracies[1],
        "sizes": (len(x), len(x_test), n_in, n_out),
    }


#: What ``minifw train`` writes into its output folder, and all that folder may hold.
OUTPUTS = ("params.npz", "history.json", "settings.json", "curves.png")


def _output_folder(text: str) -> Path:
    """The real folder ``--out`` names, checked before training so that a bad one costs nothing.

    Its outputs replace the whole folder at once, so it must be new, empty, or hold only the
    outputs of a previous run (none of them write-protected); it is created only after
    training, so that a failed run leaves no folder behind.
    """
    out = Path(os.path.realpath(text))  # a link to a folder: the folder it names is replaced
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {text}: exists and is not a folder")
    here = Path.cwd().resolve()
    if out == here or out in here.parents:
        raise UsageError(f"--out {text}: is the current folder or holds it; name a folder of "
                         "the run's own (e.g. runs/latest)")
    if out.is_dir():
        _check_previous_run(out, text)
    base = next(p for p in out.parents if p.exists())
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"--out {text}: cannot create a folder under {base} "
                         f"({'not a folder' if not base.is_dir() else 'not writable'})")
    return out


def _check_previous_run(out: Path, text: str) -> None:
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OUTPUTS)
    if foreign:
        raise UsageError(f"--out {text}: holds {', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}, which minifw train did not "
                         "write; a run's outputs replace the whole folder, so name an empty or "
                         "new one")
    mode = stat.S_IMODE(out.stat().st_mode)
    if mode & 0o222 == 0 or not os.access(out, os.W_OK):
        raise UsageError(f"--out {text}: the folder is write-protected (mode {mode:04o})")
    for name in OUTPUTS:
        if (out / name).exists() or (out / name).is_symlink():
            try:
                atomic.replaceable(str(out / name), f"--out {text}")
            except (ValueError, OSError) as error:
                raise UsageError(str(error)) from None


def _write_outputs(out: Path, text: str, files: dict[str, Any]) -> None:
    """Write ``files`` (name: bytes, or a callable writing to a path) as the folder ``out``.

    They are written into a new hidden folder beside ``out`` (:mod:`minifw.atomic`), made
    durable, then swapped in for ``out``: the outputs of a run appear together or not at all.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.sweep(str(out.parent))
    fd, staging = atomic.new_folder(str(out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, stat.S_IMODE(out.stat().st_mode) if out.is_dir() else 0o777 & ~umask)
        for name, content in files.items():
            path = Path(staging) / name
            if callable(content):
                content(path)
            else:
                path.write_bytes(content)
            with open(path, "rb") as written:
                os.fsync(written.fileno())
        atomic.sync_folder(staging)
        if out.is_dir():  # again: it may have changed while the network trained
            _check_previous_run(out, text)
        atomic.replace_folder(staging, str(out))
    finally:
        atomic.release(fd)
        shutil.rmtree(staging, ignore_errors=True)  # gone if the swap happened


def _train(args: argparse.Namespace) -> int:
    from minifw.plots import save_figure, training_curves_figure

    out = _output_folder(args.out)
    resolve_model_settings(args)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    if not args.quiet:
        hidden = " ".join(map(str, args.hidden)) or "none"
        conv = (f"conv {args.filters} {args.kernel_size}x{args.kernel_size} padding "
                f"{args.padding}, 2x2 max pooling, " if args.model == "cnn" else "")
        print(f"training {args.model} on {args.dataset}: {conv}hidden {hidden}, "
              f"{args.activation}, {args.loss}, {args.optimizer} lr {lr:g} "
              f"({args.schedule}), {args.epochs} epochs of batches of {args.batch_size}, "
              f"{args.gradient} gradients, seed {args.seed}", flush=True)
    result = train(args)
    n_train, n_test, n_in, n_out = result["sizes"]
    history = result["history"]
    internal = ("run", "command", "quiet", "extra")
    settings = {k: v for k, v in vars(args).items() if k not in internal}
    settings.update(network=args.model, lr=lr, model=repr(result["model"]),
                    optimizer_settings=repr(result["optimizer"]), inputs=n_in, classes=n_out,
                    train_samples=n_train, test_samples=n_test, epochs_run=len(history.loss),
                    best_epoch=history.best_epoch, minifw=minifw.__version__)
    title = (f"{args.dataset}: train accuracy {result['train_accuracy']:.4f}, "
             f"test accuracy {result['test_accuracy']:.4f}")
    validated = "validation" if args.early_stopping is not None else "test"
    figure = training_curves_figure(history, val_label=validated, title=title)
    _write_outputs(out, args.out, {
        "params.npz": lambda path: minifw.save(path, result["params"]),
        "history.json": _json(history.to_dict()),
        "settings.json": _json(settings),
        "curves.png": lambda path: save_figure(figure, path),
    })

    print(f"train accuracy {result['train_accuracy']:.4f}, "
          f"test accuracy {result['test_accuracy']:.4f} "
          f"({n_train} training and {n_test} test samples, {len(history.loss)} "
          f"epoch{'s' if len(history.loss) > 1 else ''} in "
          f"{result['seconds']:.2f} s)")
    if args.early_stopping is not None:
        print(f"early stopping: kept the parameters of epoch {history.best_epoch}, the lowest "
              f"validation loss")
    print(f"wrote {Path(args.out) / 'params.npz'}, history.json, settings.json, curves.png")
    return 0


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


# --- gradcheck --------------------------------------------------------------------------------


def _import_module(name: str) -> Any:
    """Import a dotted module from the current folder (or sys.path), or a ``.py`` file."""
    path = Path(name)
    if name.endswith(".py") or os.sep in name or "/" in name:
        if not path.is_file():
            raise UsageError(f"no such file: {name}")
        module_name = f"_minifw_gradcheck_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot import {name} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        sys.path.insert(0, str(path.resolve().parent))  # so the file can import its neighbours
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.resolve().parent))
        return module
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does; the console script does not
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and name.startswith(error.name):
            raise UsageError(f"cannot import module {name!r} (not found from {os.getcwd()}; "
                             "give a dotted module importable from here or a path to a .py "
                             "file)") from None
        raise


def load_layer(target: str) -> Layer:
    """The layer named by ``MODULE:LAYER``, instantiated if it is a class or a factory.

    Raises:
        UsageError: the target is malformed, cannot be imported, or is not a layer.

    >>> load_layer("minifw.layers:Sigmoid")
    Sigmoid()
    """
    module_name, sep, attribute = target.rpartition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"expected MODULE:LAYER (e.g. my_layers:MyLayer), got {target!r}")
    try:
        module = _import_module(module_name)
    except UsageError:
        raise
    except (Exception, SystemExit) as error:  # the user's module raised (or exited) importing
        raise UsageError(f"importing {module_name!r} raised {type(error).__name__}: "
                         f"{error}") from error
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{module_name!r} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    if isinstance(obj, Layer):
        return obj
    if not callable(obj):
        raise UsageError(f"{target} is {obj!r}, not a minifw.Layer, a Layer class or a factory")
    try:
        layer = obj()
    except (Exception, SystemExit) as error:
        raise UsageError(f"cannot make a layer by calling {target}() with no arguments: "
                         f"{type(error).__name__}: {error}") from error
    if not isinstance(layer, Layer):
        raise UsageError(f"{target}() returned {layer!r}, not a minifw.Layer")
    return layer


def _keep_hypothesis_cache_out_of_the_way() -> None:
    """Point hypothesis's storage (default ``./.hypothesis``) at the user's cache folder.

    A command run in the user's project should not leave a folder there; an explicit
    ``HYPOTHESIS_STORAGE_DIRECTORY`` is respected.
    """
    if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        cache = os.environ.get("XDG_CACHE_HOME")
        base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
        os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(base / "minifw" / "hypothesis")


def _gradcheck(args: argparse.Namespace) -> int:
    layer = load_layer(args.target)
    _keep_hypothesis_cache_out_of_the_way()
    from minifw.testing import check_layer_property

    print(f"checking {layer!r}: {args.examples} examples, {args.mode} mode, {args.dtype}, "
          f"seed {args.seed}", flush=True)
    try:
        report = check_layer_property(layer, mode=args.mode, max_examples=args.examples,
                                      seed=args.seed, in_features=args.in_features,
                                      dtype=args.dtype)
    except Exception as error:
        if args.traceback:
            raise
        raise UsageError(f"the check of {args.target} could not run: {type(error).__name__}: "
                         f"{error} (--traceback shows where)") from error
    print(report)
    return 0 if report.ok else 1


# --- bench ------------------------------------------------------------------------------------


def benchmark_script() -> Path:
    """Where ``minifw bench`` looks for the benchmarks: ``benchmarks/run.py`` of the checkout."""
    return Path(minifw.__file__).resolve().parents[1] / "benchmarks" / "run.py"


def _bench(args: argparse.Namespace) -> int:
    script = benchmark_script()
    if not script.is_file():
        raise UsageError(f"no benchmarks at {script}: 'minifw bench' runs from a source "
                         "checkout of minifw")
    argv = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
    argv += ["--out", args.out] if args.out is not None else []
    return subprocess.run(argv + list(args.extra), check=False).returncode


# --- plot -------------------------------------------------------------------------------------


def _history_for_plot(path: str | None) -> tuple[Any, str]:
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as error:
            raise UsageError(f"cannot read --history {path}: {error.strerror}") from None
        except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, nested too deep
            raise UsageError(f"--history {path} is not JSON: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("loss"), list):
            raise UsageError(f"--history {path} holds no 'loss' list (write it with "
                             "'minifw train')")
        from minifw.plots import check_history

        try:
            curves = check_history(data)
        except ValueError as error:
            raise UsageError(f"--history {path}: {error}") from None
        if not curves["loss"]:
            raise UsageError(f"--history {path} holds no losses: no epoch was recorded")
        return curves, f"training curves from {path}"
    args = build_parser().parse_args(["train", "--quiet"])
    result = train(args)
    title = (f"minifw train (digits, defaults): train accuracy {result['train_accuracy']:.4f}, "
             f"test accuracy {result['test_accuracy']:.4f}")
    return result["history"], title


def _plot(args: argparse.Namespace) -> int:
    from minifw import plots

    if args.name == "all":
        if args.out is not None:
            raise UsageError("--out names one file; with 'all' use --out-dir")
        targets = {name: Path(args.out_dir) / f"{name}.png" for name in PLOT_NAMES}
    else:
        targets = {args.name: Path(args.out or f"{args.name}.png")}
    for path in targets.values():
        try:
            atomic.replaceable(str(path), "plot")
        except (ValueError, OSError) as error:
            raise UsageError(str(error)) from None
    for name, path in targets.items():
        if name == "training_curves":
            history, title = _history_for_plot(args.history)
            fig = plots.training_curves_figure(history, val_label="test", title=title)
        else:
            fig = plots.PLOTS[name]()
        plots.save_figure(fig, path, dpi=args.dpi)
        print(f"wrote {path}")
    return 0


# --- main -------------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``minifw`` command with ``argv`` (default ``sys.argv[1:]``); the exit status.

    >>> main(["plot", "nonsense"])
    2
    """
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command != "bench":
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 2
    args.extra = extra
    try:
        return int(args.run(args))
    except UsageError as error:
        print(f"minifw {args.command}: error: {_one_line(error)}", file=sys.stderr)
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
        # What the library raises for bad data, settings and files: a message, not a bug.
        print(f"minifw: error: {_one_line(error)}", file=sys.stderr)
    except MemoryError as error:
        hint = " (try smaller --hidden sizes)" if args.command == "train" else ""
        print(f"minifw {args.command}: error: out of memory: {_one_line(error)}{hint}",
              file=sys.stderr)
    except KeyboardInterrupt:
        print("minifw: interrupted", file=sys.stderr)
        return 130
    return 2

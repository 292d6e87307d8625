"""The ``minifw`` command: ``train``, ``evaluate``, ``predict``, ``gradcheck``, ``bench``, ``plot``.

``minifw train`` trains a network (fully connected, or ``--model cnn``: the book's
SimpleConvNet) on the 8x8 digits shipped inside minifw (no download) or on MNIST, with the
training aids as options (learning-rate schedules, weight decay, AdamW, Nesterov momentum,
gradient clipping, early stopping on the validation part): it shows the model's summary and a
progress bar, prints the losses and accuracies and writes its run folder
(:mod:`minifw.runfolder`): ``model.npz`` and ``best_model.npz`` (model files,
:mod:`minifw.modelfile`, with the running statistics of a model that keeps any),
``history.json``, ``settings.json`` and ``curves.png``, also when the run is interrupted
(Ctrl-C, exit status 130) or stops on a non-finite loss (exit status 2). A run whose loss ends
above where it began is said to have diverged (exit status 1). ``minifw evaluate`` measures a
saved model on its data set, and ``minifw predict`` gives the digits it sees in pictures or
``.npy`` files. ``minifw gradcheck MODULE:LAYER`` runs the property-based gradient check on a
user's layer. ``minifw bench`` runs the benchmarks of a source checkout, passing its arguments
on, and ``minifw plot`` draws the pictures of :mod:`minifw.plots`.

Bad arguments and errors the library reports (a missing file, a bad setting) print one line
on stderr and exit with status 2, never a traceback. ``gradcheck`` exits with 1 when a
gradient is wrong.

>>> main(["train", "--epochs", "-1"])
2
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import minifw
from minifw import atomic, runfolder
from minifw.experiment import (
    DEFAULT_LR,
    IMAGES,
    Result,
    build_model,
    fit_only,
    measure_result,
    prepare,
    run,
)
from minifw.layers import ACTIVATIONS, Layer
from minifw.losses import LOSSES
from minifw.optim import OPTIMIZERS

__all__ = ["main", "build_parser", "build_model", "train", "load_layer", "benchmark_script",
           "DEFAULT_LR", "PLOT_NAMES", "OUTPUTS", "UsageError"]

#: What ``minifw train`` writes into its run folder.
OUTPUTS = runfolder.OUTPUTS

#: The largest ``--dpi`` of ``minifw plot``: 600 makes the widest picture 7,800 pixels wide.
MAX_DPI = 600

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


def _shape(text: str) -> tuple[int, ...]:
    """``"1,8,8"`` -> ``(1, 8, 8)``."""
    whole = _whole(1)
    return tuple(whole(part.strip()) for part in text.split(","))


def _bounded(low: int, high: int) -> Any:
    whole = _whole(low)

    def parse(text: str) -> int:
        value = whole(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text}")
    return value


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
    ['bench', 'evaluate', 'gradcheck', 'plot', 'predict', 'train']
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
        "SimpleConvNet) and write model.npz (the model as trained), best_model.npz (the "
        "epoch of the lowest validation loss), history.json, "
        "settings.json and curves.png to the output folder, also when the run is "
        "interrupted (Ctrl-C: exit status 130) or stops on a non-finite loss (exit status 2); "
        "a run whose training loss ends above where it began exits with status 1. The "
        "default data set is the 8x8 handwritten digits shipped inside minifw: no download "
        "needed.",
    )
    train.add_argument("--model", dest="network", choices=("mlp", "cnn"), default="mlp",
                       help="mlp (default): fully connected layers (--hidden); cnn: "
                       "convolution, ReLU, 2x2 max pooling, then --hidden fully connected "
                       "layers (the book's SimpleConvNet); settings.json keeps it as "
                       "'network'")
    train.add_argument("--filters", type=_whole(1), default=None, metavar="N",
                       help="cnn: filters of the convolution (default: 30 on mnist, 32 on "
                       "digits)")
    train.add_argument("--kernel-size", type=_whole(1), default=None, metavar="N",
                       help="cnn: the kernel's height and width (default: 5 on mnist, 3 on "
                       "digits, with --padding 0 and 1)")
    train.add_argument("--padding", type=_whole(0), default=None, metavar="N",
                       help="cnn: zeros added on every side of the images")
    train.add_argument("--dataset", choices=("digits", "mnist"), default="digits",
                       help="digits (default): the 8x8 digits shipped with minifw, no "
                       "download; mnist: the 28x28 MNIST files")
    train.add_argument("--data-dir", type=_path, metavar="DIR", default=None,
                       help="the folder holding the MNIST files (else $MINIFW_DATA, else "
                       "~/.cache/minifw/mnist)")
    train.add_argument("--no-download", action="store_true",
                       help="never download missing MNIST files")
    train.add_argument("--hidden", type=_whole(1), nargs="*", default=None, metavar="N",
                       help="sizes of the hidden fully connected layers (default: 64, or 100 "
                       "after a cnn's convolution; none given: none, a linear model for mlp)")
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
                       help="stop once the loss on the validation part (--validation-split "
                       "of the training data, never the test set) has not improved for "
                       "PATIENCE epochs, and keep the best epoch's parameters")
    train.add_argument("--epochs", type=_whole(1), default=None, metavar="N",
                       help="passes over the training data (default: 20, or 12 for cnn)")
    train.add_argument("--batch-size", type=_whole(1), default=32, metavar="N",
                       help="samples per step (default: %(default)s)")
    train.add_argument("--seed", type=_whole(0), default=0,
                       help="seeds the initial weights, the validation split and the "
                       "shuffling (default: %(default)s)")
    train.add_argument("--validation-split", type=_fraction, default=0.1, metavar="F",
                       help="the share of the training data held out to measure each epoch "
                       "and choose the best one (default: %(default)s; 0: none, the best "
                       "epoch is then the lowest training loss)")
    train.add_argument("--gradient", choices=("autograd", "numerical"), default="autograd",
                       help="the gradient source (default: %(default)s; numerical: central "
                       "differences, slow)")
    train.add_argument("--out", type=_path, metavar="DIR", default="runs/latest",
                       help="the output folder: a new one, or one holding only a previous "
                       "run's outputs, which are replaced all together or not at all "
                       "(default: %(default)s)")
    train.add_argument("--quiet", action="store_true",
                       help="no model summary and no progress bar (the bar is also off when "
                       "stderr is not a terminal)")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate", help="measure a saved model on its data set",
        description="Measure a model file (or the model.npz of a run folder) on the test "
        "part of the data set it was trained on: its loss and accuracy.",
    )
    evaluate.add_argument("model", type=_path, metavar="MODEL",
                          help="a model file (model.npz, best_model.npz) or a run folder")
    evaluate.add_argument("--split", choices=("test", "train"), default="test",
                          help="which part of the data set (default: %(default)s; train: "
                          "all the training part, its validation share included)")
    evaluate.add_argument("--dataset", choices=("digits", "mnist"), default=None,
                          help="the data set (default: the one the model was trained on)")
    evaluate.add_argument("--data-dir", type=_path, metavar="DIR", default=None,
                          help="the folder holding the MNIST files")
    evaluate.add_argument("--no-download", action="store_true",
                          help="never download missing MNIST files")
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict", help="the digit a saved model sees in pictures or .npy files",
        description="Print the class a model file (or a run folder's model.npz) gives each "
        "input, with its probability. A picture (PNG, or what Pillow reads) holds one digit: "
        "it is made grey, cropped to the ink, fitted into the frame the training images use "
        "and scaled to [0, 1], ink high. A .npy file holds inputs as the training data were "
        "(pixels in [0, 1]): one of shape (inputs,) or (height, width), or a batch of them.",
    )
    predict.add_argument("model", type=_path, metavar="MODEL",
                         help="a model file (model.npz, best_model.npz) or a run folder")
    predict.add_argument("inputs", type=_path, nargs="+", metavar="FILE",
                         help="pictures (.png, .jpg, ...) or .npy files")
    predict.add_argument("--top", type=_whole(1), default=3, metavar="K",
                         help="how many of the most likely classes to show (default: "
                         "%(default)s)")
    predict.set_defaults(run=_predict)

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
                       help="the input width (default: the layer's in_features, else guessed "
                       "from its weights, else 4; a guess is noted in the report)")
    check.add_argument("--input-shape", type=_shape, default=None, metavar="C,H,W",
                       help="the shape of one input sample, without the batch axis (e.g. "
                       "1,8,8 for images with one channel), for layers of 4-D inputs")
    check.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                       help="the dtype of inputs and parameters (default: %(default)s)")
    check.add_argument("--traceback", action="store_true",
                       help="show the full traceback when the layer raises")
    check.set_defaults(run=_gradcheck)

    bench = commands.add_parser(
        "bench", help="run the benchmarks (benchmarks/run.py)",
        description="Run benchmarks/run.py of a minifw source checkout. Other arguments "
        "(--write, --smoke, --no-torch, --seed N: see 'python benchmarks/run.py --help') are "
        "passed on to it unchanged, and its exit status is this command's (1: a goal missed).",
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
                      help="the file to write, in a folder that exists (default: NAME.png); "
                      "not with 'all'")
    plot.add_argument("--out-dir", type=_path, metavar="DIR", default=".",
                      help="the folder for 'all', each picture as NAME.png (default: the "
                      "current folder); made if its parent exists")
    plot.add_argument("--history", type=_path, metavar="FILE", default=None,
                      help="training_curves: a history.json written by 'minifw train' (else "
                      "a short run on the digits is trained)")
    plot.add_argument("--dpi", type=_bounded(20, MAX_DPI), default=110,
                      help=f"resolution, 20 to {MAX_DPI} (default: %(default)s)")
    plot.set_defaults(run=_plot)
    parser.commands = {"train": train, "evaluate": evaluate, "predict": predict,
                       "gradcheck": check, "bench": bench, "plot": plot}
    return parser


# --- train ------------------------------------------------------------------------------------


def train(args: argparse.Namespace) -> Result:
    """Train as ``minifw train`` would, without writing or printing anything.

    Arguments:
        args: the parsed options of ``minifw train``
            (``build_parser().parse_args(["train", ...])``).

    Returns:
        The :class:`minifw.experiment.Result` (its ``status`` says how the run ended).

    Raises:
        UsageError: a setting the data cannot take, or MNIST files that are missing.
        MemoryError: the network cannot fit in this machine's memory (said before anything is
            allocated), or an allocation failed.
    """
    return run(_prepare(args))


def _prepare(args: argparse.Namespace) -> Any:
    from minifw.datasets import DatasetNotFoundError
    from minifw.experiment import SettingError

    try:
        return prepare(args)
    except SettingError as e:
        raise UsageError(str(e)) from None
    except DatasetNotFoundError as e:
        raise UsageError(_mnist_missing(e, args)) from None


def _mnist_missing(error: Any, args: argparse.Namespace) -> str:
    """What to do about missing MNIST files, in the command line's words (not the API's)."""
    download = ("drop --no-download to download them" if args.no_download else
                "set MINIFW_MNIST_MIRROR to download them from elsewhere")
    return (f"MNIST files missing from {error.folder} ({error.reason}): "
            f"{', '.join(error.missing)}; put them there (gzipped or not), name the folder "
            f"that holds them with --data-dir DIR (or $MINIFW_DATA), or {download} (from "
            f"{error.base_url})")


def _train(args: argparse.Namespace) -> int:
    try:
        out = runfolder.check_out(args.out)
    except runfolder.RunFolderError as e:
        raise UsageError(str(e)) from None
    if args.activation == "step":
        _warn("--activation step has gradient 0 everywhere: the hidden layers get no gradient "
              "and do not learn, only the output layer does (the perceptron's step is not "
              "trained by gradients; sigmoid is its smooth version)")
    setup = _prepare(args)
    if not args.quiet:
        from minifw.summary import summary

        n_val = 0 if setup.validation is None else len(setup.validation[0])
        conv = (f"conv {args.filters} {args.kernel_size}x{args.kernel_size} padding "
                f"{args.padding}, 2x2 max pooling, " if args.network == "cnn" else "")
        stopping = ("" if args.early_stopping is None else
                    f", early stopping after {args.early_stopping} epochs without progress")
        print(f"training {args.network} on {args.dataset}: {conv}{args.loss}, "
              f"{args.optimizer} lr {setup.lr:g} ({args.schedule}), {args.epochs} epochs of "
              f"batches of {args.batch_size}{stopping}, {args.gradient} gradients, seed "
              f"{args.seed}; {len(setup.train[0])} training, {n_val} validation and "
              f"{len(setup.test[0])} test samples")
        print(summary(setup.model, setup.train[0][:1], setup.params), flush=True)
    result = fit_only(setup)
    with _holding_interrupts() as held:  # training is over: what it made is kept
        measure_result(result)
        _write_run(out, args, result)
        status = _report(result, args)
    if held and status != 130:
        print("minifw: interrupted (after the outputs were written)", file=sys.stderr)
        return 130
    return status


def _write_run(out: Path, args: argparse.Namespace, result: Result) -> None:
    """The run folder: model files, history, settings and curves, swapped in at once."""
    from minifw.modelfile import save_model
    from minifw.plots import save_figure, training_curves_figure

    setup, history = result.setup, result.history
    settings = {k: v for k, v in vars(args).items() if k not in ("run", "command", "quiet",
                                                                  "extra")}
    settings.update(lr=setup.lr, model=repr(setup.model),
                    optimizer_settings=repr(setup.optimizer), inputs=setup.inputs,
                    classes=setup.classes, train_samples=len(setup.train[0]),
                    validation_samples=0 if setup.validation is None else len(
                        setup.validation[0]), test_samples=len(setup.test[0]),
                    status=result.status, stopped=result.message, epochs_done=len(history.loss),
                    best_epoch=history.best_epoch, seconds=round(result.seconds, 3),
                    measures=result.measures, minifw=minifw.__version__)
    info = {"dataset": args.dataset, "loss": args.loss, "inputs": setup.inputs,
            "input_shape": list(setup.train[0].shape[1:]),
            "classes": setup.classes, "image": IMAGES[args.dataset],
            "outputs": "logits" if args.loss == "softmax_cross_entropy" else "probabilities",
            "status": result.status, "settings": {k: settings[k] for k in (
                "network", "hidden", "activation", "optimizer", "lr", "epochs", "batch_size",
                "seed", "validation_split", "filters", "kernel_size", "padding", "schedule",
                "weight_decay", "early_stopping")}}
    # with early stopping, fit leaves the parameters of the best epoch (if it finished)
    restored = args.early_stopping is not None and result.status in ("finished", "diverged")
    epoch = history.best_epoch if restored else len(history.loss)
    files: dict[str, Any] = {"model.npz": lambda path: save_model(
        path, setup.model, setup.params, state=setup.state,
        info={**info, "epoch": epoch, "measures": result.measures["final"]})}
    if history.best_params is not None:
        files["best_model.npz"] = lambda path: save_model(
            path, setup.model, history.best_params, state=history.best_state,
            info={**info, "epoch": history.best_epoch, "measures": result.measures["best"]})
    test = result.measures["final"]["test"]
    title = (f"{args.dataset}, {result.status} after {len(history.loss)} of {args.epochs} "
             f"epochs: test accuracy {_number(test['accuracy'])}")
    files["history.json"] = _json(history.to_dict())
    files["settings.json"] = _json(settings)
    files["curves.png"] = lambda path: save_figure(training_curves_figure(history, title=title),
                                                   path)
    runfolder.write(out, args.out, files)


def _report(result: Result, args: argparse.Namespace) -> int:
    """Print how the run ended, what it measures and what it wrote; the exit status."""
    setup, history = result.setup, result.history
    final = result.measures["final"]
    where = f"{len(history.loss)} of {args.epochs} epoch{'s' if args.epochs > 1 else ''}"
    if history.loss:
        line = f"epoch {len(history.loss)}: train loss {history.loss[-1]:.4g}"
        if history.initial_loss is not None:
            line += f" ({history.initial_loss:.4g} before training)"
        if history.val_loss:
            line += f", validation loss {history.val_loss[-1]:.4g}"
        print(line)
    n_val = 0 if setup.validation is None else len(setup.validation[0])
    print(f"train accuracy {_number(final['train']['accuracy'])}, test loss "
          f"{_number(final['test']['loss'])}, test accuracy {_number(final['test']['accuracy'])} "
          f"({len(setup.train[0])} training, {n_val} validation and {len(setup.test[0])} test "
          f"samples; {where} in {result.seconds:.2f} s)")
    if "best" in result.measures and history.best_epoch is not None:
        on = "validation" if history.val_loss else "training"
        best = result.measures["best"]["test"]
        print(f"best epoch {history.best_epoch} (lowest {on} loss "
              f"{history.monitored[history.best_epoch - 1]:.4g}): its test accuracy is "
              f"{_number(best['accuracy'])}, kept in best_model.npz")
    if args.early_stopping is not None and result.status in ("finished", "diverged"):
        print(f"early stopping: kept the parameters of epoch {history.best_epoch}, the lowest "
              "validation loss, in model.npz")
    written = [name for name in OUTPUTS if name != "best_model.npz" or "best" in result.measures]
    print(f"wrote {Path(args.out) / written[0]}, {', '.join(written[1:])}")
    if result.status == "diverged":
        _warn(f"training diverged: the loss on the training data rose from "
              f"{history.initial_loss:.4g} before training to {history.final_loss:.4g} after "
              f"epoch {len(history.loss)}; the "
              f"learning rate {setup.lr:g} is too large for {args.optimizer} (its default is "
              f"{DEFAULT_LR[args.optimizer]:g}): try a smaller --lr")
        return 1
    if result.status == "stopped":
        print(f"minifw: error: {result.message}; the run so far is in {args.out}",
              file=sys.stderr)
        return 2
    if result.status == "interrupted":
        print(f"minifw: interrupted {_after(result.message)}; the run so far is in "
              f"{args.out}", file=sys.stderr)
        return 130
    return 0


def _after(message: str) -> str:
    """Where fit stopped, from its message: ``after epoch 3, batch 2 of 45``."""
    return message.removeprefix("fit interrupted ").split(";")[0] or "before training began"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _warn(message: str) -> None:
    print(f"minifw train: warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def _holding_interrupts() -> Iterator[list[int]]:
    """Within this block a Ctrl-C (SIGINT) is held, not raised, so that a run's outputs are
    written whole; the list it yields is non-empty if one came. Only in the main thread."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    old = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, old)


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


# --- evaluate and predict ---------------------------------------------------------------------


def _load_saved(text: str) -> Any:
    from minifw.modelfile import load_model

    try:
        path = runfolder.model_file(text)
    except runfolder.RunFolderError as e:
        raise UsageError(str(e)) from None
    return path, load_model(path)


def _evaluate(args: argparse.Namespace) -> int:
    from minifw.datasets import DatasetNotFoundError
    from minifw.experiment import evaluate, load_data

    path, saved = _load_saved(args.model)
    dataset = args.dataset or saved.info.get("dataset", "digits")
    loss_name = saved.info.get("loss", "softmax_cross_entropy")
    if dataset not in IMAGES or loss_name not in LOSSES:
        raise UsageError(f"{path}: made for the data set {dataset!r} and the loss "
                         f"{loss_name!r}, which minifw evaluate does not know; give --dataset")
    flatten = len(saved.info.get("input_shape", [0])) == 1  # rows, or images for a cnn
    try:
        train_part, test_part = load_data(dataset, loss_name, args.data_dir, not args.no_download,
                                          flatten=flatten)
    except DatasetNotFoundError as e:
        raise UsageError(_mnist_missing(e, args)) from None
    x, t = test_part if args.split == "test" else train_part
    measures = evaluate(saved.model, LOSSES[loss_name](), saved.params, x, t, state=saved.state)
    epoch = saved.info.get("epoch")
    print(f"{path}: {saved.model!r}" + (f", after epoch {epoch}" if epoch else ""))
    print(f"{dataset} {args.split}: accuracy {_number(measures['accuracy'])}, loss "
          f"{_number(measures['loss'])} ({loss_name}, {len(x)} samples)")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import numpy as onp

    from minifw import modes
    from minifw.functions import softmax

    path, saved = _load_saved(args.model)
    inputs = saved.info.get("inputs") or saved.model.init(onp.random.default_rng(0))["0"][
        "W"].shape[0]
    shape = saved.info.get("input_shape", [inputs])  # (inputs,), or a cnn's (1, H, W)
    for name, x in _read_inputs(args.inputs, int(inputs), saved.info):
        with onp.errstate(all="ignore"), modes.evaluation(saved.state):
            y = onp.asarray(saved.model(saved.params, x.reshape(-1, *shape)))
        if saved.info.get("outputs", "logits") == "logits":
            y = onp.asarray(softmax(y))
        for i, p in enumerate(y):
            top = onp.argsort(-p, kind="stable")[:args.top]
            label = f"{name}[{i}]" if len(y) > 1 else name
            rest = ", ".join(f"{k}: {p[k]:.3f}" for k in top[1:])
            print(f"{label}: {top[0]} (probability {p[top[0]]:.3f}"
                  + (f"; then {rest})" if rest else ")"))
    return 0


def _read_inputs(files: Sequence[str], inputs: int, info: dict[str, Any]
                 ) -> Iterator[tuple[str, Any]]:
    """``(file, batch of inputs)`` for each file: a ``.npy`` as it is, a picture prepared."""
    import numpy as onp

    from minifw.images import digit_input, read_image

    image = info.get("image", {"size": [8, 8], "box": [8, 8]})
    for name in files:
        if not os.path.isfile(name):
            raise UsageError(f"no such file: {name}")
        if name.lower().endswith(".npy"):
            try:
                x = onp.load(name, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise UsageError(f"{name} is not a .npy array of numbers: {e}") from None
            if x.dtype.kind not in "biuf" or x.size == 0 or x.size % inputs:
                raise UsageError(f"{name} holds {x.dtype} values of shape {x.shape}; the model "
                                 f"takes rows of {inputs} numbers")
            x = x.reshape(-1, inputs).astype(onp.float64)
            if not onp.all(onp.isfinite(x)):
                raise UsageError(f"{name} holds NaN or infinite values")
        else:
            x = digit_input(read_image(name), image["size"], image["box"])[None, :]
            if x.shape[1] != inputs:
                raise UsageError(f"{name}: the model takes {inputs} inputs, not pictures of "
                                 f"{image['size']}")
        yield name, x


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
                                      input_shape=args.input_shape, dtype=args.dtype)
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
    result = train(build_parser().parse_args(["train", "--quiet"]))
    final = result.measures["final"]
    title = (f"minifw train (digits, defaults): train accuracy "
             f"{_number(final['train']['accuracy'])}, test accuracy "
             f"{_number(final['test']['accuracy'])}")
    return result.history, title


def _plot(args: argparse.Namespace) -> int:
    from minifw import plots

    if args.name == "all":
        if args.out is not None:
            raise UsageError("--out names one file; with 'all' use --out-dir")
        folder = Path(args.out_dir)
        if not folder.is_dir() and not folder.parent.is_dir():
            raise UsageError(f"--out-dir {args.out_dir}: neither it nor its parent folder "
                             f"{folder.parent} exists")
        targets = {name: folder / f"{name}.png" for name in PLOT_NAMES}
    else:
        targets = {args.name: Path(args.out or f"{args.name}.png")}
        if args.out is not None and not targets[args.name].parent.is_dir():
            raise UsageError(f"--out {args.out}: no folder {targets[args.name].parent} to "
                             "write it into")
    for path in targets.values():
        try:
            atomic.replaceable(str(path), "plot")
        except (ValueError, OSError) as error:
            raise UsageError(str(error)) from None
    if args.name == "all":
        Path(args.out_dir).mkdir(exist_ok=True)
    for name, path in targets.items():
        if name == "training_curves":
            history, title = _history_for_plot(args.history)
            fig = plots.training_curves_figure(history, title=title)
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

    Run as the program (``argv`` ``None``), an interrupted command ignores further Ctrl-Cs on
    its way out, so that its exit status is 130 however often the key is pressed.

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
        if argv is None:  # the program itself, about to exit: a second Ctrl-C changes nothing
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("minifw: interrupted" + (", nothing written" if args.command == "train" else ""),
              file=sys.stderr)
        return 130
    return 2

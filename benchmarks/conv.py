"""The convolutional figures: Conv2D against PyTorch and a loop, and the numerical gradient of a
small CNN against the per-element loop.

    python benchmarks/conv.py            # the full run; prints the table
    python benchmarks/conv.py --quick    # fewer repeats
    python benchmarks/conv.py --out F    # ... and writes the table into the file F

The conventions of ``run.py`` (whose ``Figure``, ``interleaved`` and ``median`` these are):
contenders timed side by side in interleaved blocks, medians, ratios in the direction of the
goal, exit status 1 on a missed goal (not in a smoke run), nothing written unless asked.
``conv_figures(mode, rng, torch)``, ``digits_cnn_figure(mode)`` and
``cnn_numerical_figure(mode, rng)`` are what ``run.py`` runs, beside its own figures.

The peers, written as a user of the book would without minifw:

- **a per-position loop**: the direct convolution that the book's im2col replaces (chapter
  7.4), one NumPy product per output position of each image, forward and backward;
- **PyTorch eager** ``conv2d`` and its backward, on the same number of threads;
- **the book's per-element numerical gradient** (``baselines.loop_numerical_gradient``) over a
  hand-written NumPy CNN (im2col convolution, ReLU, max pooling, affine, softmax
  cross-entropy).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as onp
from baselines import torch_available
from run import (
    MODES,
    Figure,
    Mode,
    against_loop,
    fmt_seconds,
    interleaved,
    loop_excess,
    median,
    threads,
)

import minifw as mf
from minifw.gradcheck import COTANGENT
from minifw.numerical import default_step
from minifw.tree import leaves

#: The issue's convolution: input (32, 8, 16, 16), 16 filters 3x3, padding 1.
CONV_SHAPE = {"full": (32, 8, 16, 16, 16), "quick": (32, 8, 16, 16, 16), "smoke": (2, 2, 6, 6, 3)}


def _loop_arrays(x: onp.ndarray, W: onp.ndarray, padding: int) -> tuple[onp.ndarray, ...]:
    """What both loops start from: the padded input, the filters as rows, the output to fill
    and the zeroed gradients of the padded input and of the filter rows."""
    xp = onp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    W2 = W.reshape(W.shape[0], -1)
    y = onp.empty((x.shape[0], W.shape[0], xp.shape[2] - W.shape[2] + 1,
                   xp.shape[3] - W.shape[3] + 1), dtype=x.dtype)
    return xp, W2, y, onp.zeros_like(xp), onp.zeros_like(W2)


def loop_conv(x: onp.ndarray, W: onp.ndarray, b: onp.ndarray, G: onp.ndarray, padding: int
              ) -> tuple[onp.ndarray, ...]:
    """``(y, gx, gW, gb)`` of a stride-1 convolution and its VJP for the cotangent ``G``, one
    output position of one image at a time: the window's product with every filter."""
    xp, W2, y, gxp, gW = _loop_arrays(x, W, padding)
    (N, C, H, Wd), (kh, kw), (oh, ow) = x.shape, W.shape[2:], y.shape[2:]
    for n in range(N):
        for i in range(oh):
            for j in range(ow):
                window = xp[n, :, i:i + kh, j:j + kw]
                y[n, :, i, j] = W2 @ window.ravel() + b
                g = G[n, :, i, j]
                gW += onp.outer(g, window)
                gxp[n, :, i:i + kh, j:j + kw] += (g @ W2).reshape(C, kh, kw)
    return y, gxp[:, :, padding:padding + H, padding:padding + Wd], gW.reshape(W.shape), G.sum(
        axis=(0, 2, 3))


def batch_loop_conv(x: onp.ndarray, W: onp.ndarray, b: onp.ndarray, G: onp.ndarray,
                    padding: int) -> tuple[onp.ndarray, ...]:
    """:func:`loop_conv` with each output position done for the whole batch at once (a loop
    over positions only): a stronger peer, reported beside the figure."""
    xp, W2, y, gxp, gW = _loop_arrays(x, W, padding)
    (N, C, H, Wd), (kh, kw), (oh, ow) = x.shape, W.shape[2:], y.shape[2:]
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i:i + kh, j:j + kw].reshape(N, -1)
            y[:, :, i, j] = window @ W2.T + b
            g = G[:, :, i, j]
            gW += g.T @ window
            gxp[:, :, i:i + kh, j:j + kw] += (g @ W2).reshape(N, C, kh, kw)
    return y, gxp[:, :, padding:padding + H, padding:padding + Wd], gW.reshape(W.shape), G.sum(
        axis=(0, 2, 3))


def conv_problem(shape: tuple[int, ...], rng: onp.random.Generator, dtype: Any
                 ) -> tuple[mf.Conv2D, dict[str, Any], onp.ndarray]:
    """``(layer, tree, G)``: a 3x3 ``Conv2D`` with padding 1, its parameters and input in one
    tree ``{"x", "W", "b"}`` of ``dtype``, and a cotangent ``G`` of its output."""
    N, C, H, W, F = shape
    layer = mf.Conv2D(C, F, 3, padding=1, weight_init="he")
    params = layer.init(rng)
    tree = {"x": rng.standard_normal((N, C, H, W)), "W": params["W"], "b": rng.random(F)}
    tree = {k: v.astype(dtype) for k, v in tree.items()}
    return layer, tree, rng.standard_normal((N, F, H, W)).astype(dtype)


def conv_figures(mode: Mode, rng: onp.random.Generator, torch: Any,
                 skipped: str = "PyTorch is not installed") -> list[Figure]:
    """``Conv2D`` forward + backward (the gradients of ``x``, ``W`` and ``b`` for a cotangent
    of the output, ``mf.grad`` of ``sum(y * G)``) against PyTorch eager and against the
    per-position loop, in float64 and float32; every contender's gradients are held to
    minifw's first."""
    shape = CONV_SHAPE[mode.name]
    size = f"input {shape[:4]}, {shape[4]} filters 3x3, padding 1"
    figures = []
    for dtype in (onp.float64, onp.float32):
        name = onp.dtype(dtype).name
        layer, tree, G = conv_problem(shape, rng, dtype)
        grad = mf.grad(lambda p: COTANGENT(layer({"W": p["W"], "b": p["b"]}, p["x"]), G))
        ours = grad(tree)
        args = (tree["x"], tree["W"], tree["b"], G, 1)
        _agree(ours, loop_conv(*args)[1:], dtype)
        _agree(ours, batch_loop_conv(*args)[1:], dtype)
        vs_torch = Figure(f"Conv2D forward + backward, {size}, {name}: minifw / PyTorch eager "
                          "conv2d, same thread count", "<= 2.0", "minifw", "PyTorch")
        contenders: dict[str, Callable[[], Any]] = {"minifw": lambda: grad(tree)}
        if torch is None:
            vs_torch.note = "skipped: " + skipped
        else:
            contenders["PyTorch"] = _torch_conv(torch, tree, G, ours, dtype)
        times = interleaved(contenders, mode.rounds, 5)
        vs_torch.minifw_s = median(times["minifw"])
        vs_torch.peer_s = median(times["PyTorch"]) if torch is not None else None
        vs_loop = Figure(f"the same, {name}: per-position loop / minifw", ">= 20", "minifw",
                         "loop")
        slow = interleaved({"minifw": lambda: grad(tree), "loop": lambda: loop_conv(*args),
                            "batch": lambda: batch_loop_conv(*args)}, mode.slow_rounds, 1)
        vs_loop.minifw_s, vs_loop.peer_s = median(slow["minifw"]), median(slow["loop"])
        batch = median(slow["batch"])
        vs_loop.note = (f"the loop does one product per output position of each image; looping "
                        f"over positions only, each done for the whole batch, takes "
                        f"{fmt_seconds(batch)}, {batch / vs_loop.minifw_s:.3g}x minifw")
        figures += [vs_torch, vs_loop]
    return figures


def _torch_conv(torch: Any, tree: dict[str, Any], G: onp.ndarray, ours: dict[str, Any],
                dtype: Any) -> Callable[[], Any]:
    """PyTorch's conv2d forward and backward on the same arrays, checked against ``ours``."""
    leaves_ = [torch.tensor(tree[k], requires_grad=True) for k in ("x", "W", "b")]
    tG = torch.from_numpy(G)

    def run() -> Any:
        y = torch.nn.functional.conv2d(*leaves_, padding=1)
        return torch.autograd.grad(y, leaves_, tG)

    _agree(ours, [g.numpy() for g in run()], dtype)
    return run


def _agree(ours: dict[str, Any], theirs: Any, dtype: Any) -> None:
    """Raise unless another contender's gradients of x, W, b match minifw's to rounding."""
    tol = 1e-10 if onp.dtype(dtype) == onp.float64 else 2e-3
    for key, g in zip(("x", "W", "b"), theirs):
        scale = max(1.0, float(onp.abs(ours[key]).max()))
        if not onp.allclose(ours[key], g, rtol=0, atol=tol * scale):
            raise AssertionError(f"the peers disagree on the gradient of {key}")


# --- the numerical gradient of a small CNN --------------------------------------------------


class BookCNN:
    """``conv (F filters 3x3, padding 1) -> ReLU -> 2x2 max pooling -> affine`` with softmax
    cross-entropy, in NumPy as the book writes it (im2col convolution), on its own copies of
    minifw's parameters (``{"0": {"W", "b"}, "4": {"W", "b"}}``)."""

    def __init__(self, params: dict[str, Any]):
        self.W1, self.b1 = params["0"]["W"].copy(), params["0"]["b"].copy()
        self.W2, self.b2 = params["4"]["W"].copy(), params["4"]["b"].copy()

    def arrays(self) -> list[onp.ndarray]:
        """The parameter arrays, in the order of minifw's leaves."""
        return [self.W1, self.b1, self.W2, self.b2]

    def loss(self, x: onp.ndarray, t: onp.ndarray) -> float:
        """The mean softmax cross-entropy for integer labels ``t``."""
        N, C, H, W = x.shape
        F = self.W1.shape[0]
        xp = onp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        col = onp.empty((N, C, 3, 3, H, W), dtype=x.dtype)
        for i in range(3):
            for j in range(3):
                col[:, :, i, j] = xp[:, :, i:i + H, j:j + W]
        col = col.transpose(0, 4, 5, 1, 2, 3).reshape(N * H * W, -1)
        z = col @ self.W1.reshape(F, -1).T + self.b1
        a = onp.maximum(z, 0).reshape(N, H, W, F).transpose(0, 3, 1, 2)
        pooled = a.reshape(N, F, H // 2, 2, W // 2, 2).max(axis=(3, 5))
        s = pooled.reshape(N, -1) @ self.W2 + self.b2
        s = s - s.max(axis=1, keepdims=True)
        log_p = s - onp.log(onp.exp(s).sum(axis=1, keepdims=True))
        return float(-log_p[onp.arange(N), t].mean())


def small_cnn(filters: int = 4) -> mf.Sequential:
    """The issue's small CNN on 8x8 images: conv 4x3x3 (padding 1), ReLU, 2x2 max pooling,
    a linear layer to 10 classes."""
    return mf.Sequential(mf.Conv2D(1, filters, 3, padding=1, weight_init="he"), mf.ReLU(),
                         mf.MaxPool2D(2), mf.Flatten(), mf.Linear(filters * 16, 10))


def cnn_numerical_figure(mode: Mode, rng: onp.random.Generator) -> tuple[Figure, str]:
    """``mf.grad(f, method="numerical")`` of the small CNN on the embedded digits against the
    per-element loop over :class:`BookCNN`; and how close the two are, in units of the
    rounding bound ``64 eps max(1, |f|) / step``."""
    from minifw.datasets import load_digits

    batch = {"full": 100, "quick": 100, "smoke": 8}[mode.name]
    (x, t), _ = load_digits()
    x = x[:batch].reshape(-1, 1, 8, 8)
    t = t[:batch]
    model = small_cnn()
    params = model.init(rng)
    loss = mf.SoftmaxCrossEntropy()

    def f(p: Any, x: Any, t: Any) -> Any:
        return loss(model(p, x), t)

    book = BookCNN(params)
    arrays = book.arrays()
    h = default_step("float64")
    grad = mf.grad(f, method="numerical")
    fig = Figure("full numerical gradient of a small CNN (conv 4x3x3 padding 1, ReLU, 2x2 max "
                 f"pool, linear 64-10) on {batch} 8x8 digits: per-element loop / minifw",
                 ">= 20", "minifw", "loop")
    values = against_loop(fig, mode, rng, lambda: grad(params, x, t), lambda: book.loss(x, t),
                          arrays, h, mode.loop_elements // 4)
    bound = 64 * onp.finfo(onp.float64).eps * max(1.0, abs(float(f(params, x, t)))) / h
    excess = loop_excess([a for _, a in leaves(grad(params, x, t))], values, arrays, bound)
    return fig, (f"the small CNN's numerical gradient equals the loop's on every element the "
                 f"loop did to within {excess:.2g} of the rounding bound 64 eps max(1, |f|) / "
                 "step")


def digits_cnn_figure(mode: Mode) -> tuple[Figure, str]:
    """``minifw train --model cnn`` with its defaults on the embedded digits (a smoke run: one
    epoch of a tiny one), timed against the issue's minute; and a note with the time per
    epoch and the test accuracy against the goal of 98.5%."""
    from minifw import cli

    argv = ["train", "--model", "cnn", "--quiet"]
    if mode.name == "smoke":
        argv += ["--epochs", "1", "--filters", "2", "--hidden", "8"]
    args = cli.build_parser().parse_args(argv)
    result = cli.train(args)
    setup = result.setup
    epochs, accuracy = len(result.history.loss), result.measures["final"]["test"]["accuracy"]
    accuracy = 0.0 if accuracy is None else accuracy
    fig = Figure(f"digits CNN, `minifw train --model cnn` ({len(setup.train[0])} training "
                 f"images, {epochs} epochs): training time / one minute", "<= 1.0", "minifw",
                 "a minute")
    fig.minifw_s, fig.peer_s = result.seconds, 60.0
    met = "met" if accuracy >= 0.985 else "MISSED"
    fig.note = (f"{result.seconds / epochs:.2f} s per epoch; test accuracy {accuracy:.4f} "
                f"on {len(setup.test[0])} images (goal >= 0.985: {met}); {args.filters} "
                f"filters {args.kernel_size}x{args.kernel_size}, hidden {args.hidden}, "
                f"{args.optimizer} lr {setup.lr:g} ({args.schedule})")
    return fig, f"the digits CNN's test accuracy: {accuracy:.4f} (goal >= 0.985: {met})"


def table(figures: list[Figure]) -> list[str]:
    """The figures as the rows of ``run.py``'s results table."""
    lines = ["| figure | goal | minifw | peer | ratio | result |", "|---|---|---|---|---|---|"]
    for fig in figures:
        ratio = "-" if fig.ratio is None else f"{fig.ratio:.3g}"
        result = "skipped" if fig.passed is None else "pass" if fig.passed else "FAIL"
        lines.append(f"| {fig.name} | {fig.goal} | {fmt_seconds(fig.minifw_s)} | "
                     f"{fmt_seconds(fig.peer_s)} ({fig.peer}) | {ratio} | {result} |")
    return lines + [""] + [f"- {fig.name.split(':')[0]}: {fig.note}" for fig in figures
                           if fig.note]


def main(argv: list[str] | None = None) -> int:
    """Run the convolutional figures; 1 if a goal was missed, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it run?")
    parser.add_argument("--out", default=None, metavar="FILE", help="write the table into FILE")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    parser.add_argument("--seed", type=int, default=0, help="seeds the arrays")
    args = parser.parse_args(argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    torch, note = (None, "not used (--no-torch)") if args.no_torch else torch_available()
    if torch is not None:
        torch.set_num_threads(threads())
    rng = onp.random.default_rng(args.seed)
    figures = conv_figures(mode, rng, torch, note or "PyTorch is not installed")
    digits, accuracy = digits_cnn_figure(mode)
    cnn, agreement = cnn_numerical_figure(mode, rng)
    figures += [digits, cnn]
    lines = [*table(figures), f"- {agreement}", f"- {accuracy}",
             f"- {threads()} threads for NumPy's BLAS and PyTorch; {mode.name} run"]
    print("\n".join(lines))
    if args.out is not None:
        with open(args.out, "w") as out:
            out.write("\n".join(lines) + "\n")
    missed = [fig.name for fig in figures if fig.passed is False]
    return 1 if missed and mode.name != "smoke" else 0


if __name__ == "__main__":
    sys.exit(main())

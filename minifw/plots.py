"""Pictures: activations, finite differences, gradient descent, losses, vanishing gradients.

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure`, drawn off-screen: the
figures are made without ``pyplot``, so no window, no global figure list and no backend
choice are involved (``Figure.savefig`` renders PNG with Agg). The numbers behind each picture
come from a plain function next to it (``activation_curves``, ``finite_difference_errors``,
...), so tests can check the data and not only the pixels. :func:`save_figure` writes a
figure atomically; ``minifw plot NAME --out FILE`` does both.

>>> fig = gradient_descent_figure(lrs=(0.1,), step_num=5)
>>> fig.axes[0].get_title()
'lr = 0.1: x *= +0.80 per step'
"""

from __future__ import annotations

import io
import math
import numbers
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import autograd.numpy as np
import numpy as onp
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from minifw import atomic
from minifw import functions as F
from minifw.divergence import DivergenceWarning
from minifw.gradients import grad, value_and_grad
from minifw.layers import ACTIVATIONS, Linear, Sequential
from minifw.losses import SoftmaxCrossEntropy
from minifw.numerical import gradient_descent

PathArg = str | os.PathLike[str]

EPS = float(onp.finfo(onp.float64).eps)


#: The most pixels a saved picture may have (50 million: about 200 MB of RGBA while drawn).
MAX_PIXELS = 50_000_000


def save_figure(fig: Figure, path: PathArg, *, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` atomically; the format follows the suffix (``.png`` if none).

    Arguments:
        fig: the figure.
        path: the file to write; its folder must exist. Only a regular file (or a new path)
            is replaced (:mod:`minifw.atomic`).
        dpi: resolution in dots per inch.

    Returns:
        The path written.

    Raises:
        ValueError: the folder does not exist, ``path`` is not a file that may be replaced,
            the format is unknown, or the picture would have more than :data:`MAX_PIXELS`
            pixels at this ``dpi`` (the message gives the largest ``dpi`` that fits).

    >>> import tempfile, os
    >>> out = save_figure(activations_figure(), os.path.join(tempfile.mkdtemp(), "a.png"))
    >>> out.read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    path = Path(path)
    width, height = fig.get_size_inches()
    if width * height * dpi * dpi > MAX_PIXELS:
        largest = int((MAX_PIXELS / (width * height)) ** 0.5)
        raise ValueError(f"dpi={dpi} would make a picture of {width * dpi:.0f} x "
                         f"{height * dpi:.0f} pixels, more than {MAX_PIXELS:,}; at most "
                         f"dpi={largest} for this figure")
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {str(path)!r}: no folder {str(folder)!r}")
    target = atomic.replaceable(str(path), "save_figure")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    atomic.write_file(target, lambda fh: fh.write(buffer.getvalue()))
    return path


# --- activations ------------------------------------------------------------------------------


def _softmax_first(x: Any) -> Any:
    """``softmax([x, 0])[0]``: softmax seen along one input (it equals ``sigmoid(x)``)."""
    return F.softmax(np.stack([x, np.zeros_like(x)], axis=-1))[..., 0]


#: One curve per activation, as functions of one array of inputs.
ACTIVATION_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "identity": F.identity,
    "step": F.step,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "softmax": _softmax_first,
}


def activation_curves(x: Any) -> dict[str, tuple[onp.ndarray, onp.ndarray]]:
    """Every activation and its derivative from autograd, at the points ``x``.

    Leaky ReLU is drawn with ``alpha = 0.1`` (0.01 would look like ReLU); softmax, which acts
    on a vector, is drawn as ``softmax([x, 0])[0]``.

    Arguments:
        x: a 1-D array of inputs.

    Returns:
        ``{name: (f(x), f'(x))}`` for every name in :data:`minifw.layers.ACTIVATIONS`.

    >>> y, dy = activation_curves(onp.array([0.0]))["sigmoid"]
    >>> float(y[0]), float(dy[0])
    (0.5, 0.25)
    """
    x = onp.asarray(x, dtype=onp.float64)
    curves = {}
    for name in ACTIVATIONS:
        f = ACTIVATION_FUNCTIONS[name]
        curves[name] = (onp.asarray(f(x)), onp.asarray(grad(lambda z, f=f: np.sum(f(z)))(x)))
    return curves


def activations_figure(x_max: float = 5.0) -> Figure:
    """Every activation (solid) with its derivative from autograd (dashed), one panel each.

    The book draws sigmoid and tanh; here are all seven of :data:`minifw.layers.ACTIVATIONS`.

    Arguments:
        x_max: the inputs span ``[-x_max, x_max]``.

    Returns:
        The figure.

    >>> len(activations_figure().axes)
    8
    """
    x = onp.linspace(-x_max, x_max, 801)  # an odd count puts a point exactly on the kink at 0
    curves = activation_curves(x)
    fig = Figure(figsize=(13, 6), layout="constrained")
    axes = fig.subplots(2, 4).ravel()
    titles = {"leaky_relu": "leaky_relu (alpha = 0.1)", "softmax": "softmax([x, 0])[0]"}
    for ax, (name, (y, dy)) in zip(axes, curves.items()):
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.plot(x, y, color="C0", lw=2, label="f(x)")
        # on top, with markers: where f' is 0 it lies on the axis (and on f, left of a kink)
        ax.plot(x, dy, color="C3", lw=1.5, ls="--", marker="o", ms=3, markevery=50, zorder=3,
                label="f'(x), autograd")
        if not dy.any():
            ax.annotate("f'(x) = 0 everywhere", xy=(2.5, 0.0), xytext=(-0.8, -0.6),
                        color="C3", fontsize=9, arrowprops={"arrowstyle": "->", "color": "C3"})
        ax.set_title(titles.get(name, name))
        ax.set_xlim(-x_max, x_max)
        ax.set_ylim(min(-1.2, float(y.min()) - 0.2), max(1.2, float(y.max()) + 0.2))
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    note = axes[-1]
    note.axis("off")
    note.text(
        0.0, 0.95,
        "Derivatives are autograd's, at 801 points in\n[-5, 5] including 0.\n\n"
        "At a kink autograd picks a value:\n"
        "relu'(0) = 0, leaky_relu'(0) = alpha,\n"
        "step'(x) = 0 everywhere (the jump has no\nderivative), which is why a network of\n"
        "step units cannot learn by gradients.\n\n"
        "sigmoid' peaks at 0.25: a product of\nmany such factors vanishes.\n\n"
        "softmax([x, 0])[0] is sigmoid(x).",
        va="top", fontsize=9, transform=note.transAxes,
    )
    fig.suptitle("activations and their derivatives")
    return fig


# --- finite differences -----------------------------------------------------------------------


def forward_difference(f: Callable[[Any], Any], x: Any, h: Any) -> Any:
    """``(f(x + h) - f(x)) / h``, the book's first, "bad" numerical derivative.

    >>> forward_difference(lambda x: 0.01 * x ** 2 + 0.1 * x, 5.0, 1e-50)
    0.0
    """
    return (f(x + h) - f(x)) / h


def central_difference(f: Callable[[Any], Any], x: Any, h: Any) -> Any:
    """``(f(x + h) - f(x - h)) / (2h)``, as :func:`minifw.numerical.numerical_diff`.

    >>> round(central_difference(lambda x: 0.01 * x ** 2 + 0.1 * x, 5.0, 1e-4), 10)
    0.2
    """
    return (f(x + h) - f(x - h)) / (2 * h)


def finite_difference_errors(
    f: Callable[[Any], Any], dfdx: float, x: float, hs: Any
) -> dict[str, onp.ndarray]:
    """The absolute error of forward and central differences of ``f`` at ``x`` for each step.

    Arguments:
        f: a function of one float that also accepts arrays (elementwise).
        dfdx: the exact derivative at ``x``.
        x: the point.
        hs: the steps.

    Returns:
        ``{"h": hs, "forward": |forward - dfdx|, "central": |central - dfdx|}``.

    >>> e = finite_difference_errors(onp.sin, onp.cos(1.0), 1.0, onp.array([1e-2, 1e-3]))
    >>> bool(e["central"][1] < e["central"][0] / 50)  # O(h**2): 100 times less per decade
    True
    """
    hs = onp.asarray(hs, dtype=onp.float64)
    return {
        "h": hs,
        "forward": onp.abs(forward_difference(f, x, hs) - dfdx),
        "central": onp.abs(central_difference(f, x, hs) - dfdx),
    }


def book_function(x: Any) -> Any:
    """The book's example ``0.01 x**2 + 0.1 x`` (derivative 0.2 at x = 5)."""
    return 0.01 * x**2 + 0.1 * x


def _error_panel(ax: Any, e: dict[str, onp.ndarray], refs: list[tuple[str, Any, str]],
                 title: str) -> None:
    h = e["h"]
    for key, color in (("forward", "C0"), ("central", "C3")):
        err = onp.where(e[key] > 0, e[key], onp.nan)  # an exact result has no place on a log axis
        ax.loglog(h, err, color=color, lw=1.8, label=f"{key} difference")
    for label, values, style in refs:  # on top: where a curve follows its prediction
        ax.loglog(h, values, color="k", ls=style, lw=1, label=label, zorder=3)
    ax.axvline(1e-4, color="0.5", lw=0.8)
    ax.text(1.3e-4, 2e1, "the book's\nh = 1e-4", fontsize=7.5, va="top")
    ax.set_xlim(h.min(), h.max())
    ax.set_ylim(1e-18, 1e2)
    ax.set_xlabel("step h")
    ax.set_ylabel("|numerical - exact derivative|")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc="lower left", fontsize=8)


def finite_differences_figure(h_min: float = 1e-20, h_max: float = 1e-1) -> Figure:
    """The error of forward and central differences against the step ``h``, log-log.

    Left, ``d/dx sin(x)`` at ``x = 1``: the truncation error falls like ``h`` (forward) and
    ``h**2`` (central) as ``h`` shrinks, until the rounding error, about ``eps |f| / h``,
    takes over; below ``eps * x`` the step vanishes in ``x + h == x`` and both give 0.
    Right, the book's ``0.01 x**2 + 0.1 x`` at ``x = 5``: a quadratic, so the central
    difference has no truncation error at all, and the book's warning about ``h = 1e-50``,
    measured: the forward difference is exactly 0.

    Arguments:
        h_min, h_max: the range of steps.

    Returns:
        The figure.

    >>> len(finite_differences_figure().axes)
    2
    """
    hs = onp.logspace(onp.log10(h_min), onp.log10(h_max), 20 * round(onp.log10(h_max / h_min)) + 1)
    fig = Figure(figsize=(13, 5.5), layout="constrained")
    left, right = fig.subplots(1, 2)

    x = 1.0
    e = finite_difference_errors(onp.sin, onp.cos(x), x, hs)
    refs = [
        ("truncation ~ h |f''| / 2 (slope 1)", hs * abs(onp.sin(x)) / 2, "--"),
        ("truncation ~ h**2 |f'''| / 6 (slope 2)", hs**2 * abs(onp.cos(x)) / 6, ":"),
        ("rounding ~ eps |f| / h (slope -1)", EPS * abs(onp.sin(x)) / hs, "-."),
    ]
    _error_panel(left, e, refs, "d/dx sin(x) at x = 1")

    x = 5.0
    e = finite_difference_errors(book_function, 0.2, x, hs)
    refs = [
        ("truncation = h f''/2 = 0.01 h (slope 1)", 0.01 * hs, "--"),
        ("rounding ~ eps |f| / h (slope -1)", EPS * abs(book_function(x)) / hs, "-."),
    ]
    _error_panel(right, e, refs, "d/dx (0.01 x**2 + 0.1 x) at x = 5 (exact: 0.2)")
    at_1e50 = forward_difference(book_function, x, 1e-50)
    right.annotate(
        f"the book's h = 1e-50, measured:\n5.0 + 1e-50 == 5.0 in float64, so the\n"
        f"forward difference is {at_1e50!r}: error 0.2,\nas on this plateau, where every "
        f"h below\neps * x = {EPS * x:.1e} gives 0",
        xy=(1.5e-20, 0.2), xytext=(3e-20, 1e-11), fontsize=8.5,
        bbox={"boxstyle": "round", "fc": "lightyellow", "ec": "0.6"},
        arrowprops={"arrowstyle": "->", "color": "0.3"},
    )
    fig.suptitle("finite-difference error against the step h: truncation (right) meets "
                 "rounding (left)")
    return fig


# --- gradient descent -------------------------------------------------------------------------


def _bowl(x: Any) -> Any:
    return x[0] ** 2 + x[1] ** 2


def gradient_descent_paths(
    lrs: Sequence[float] = (0.01, 0.1, 0.95, 1.02),
    init_x: Sequence[float] = (-3.0, 4.0),
    step_num: int = 20,
) -> dict[float, onp.ndarray]:
    """The points visited by gradient descent on ``x0**2 + x1**2`` for each learning rate.

    Uses :func:`minifw.numerical.gradient_descent` with ``return_path=True``.

    Returns:
        ``{lr: path}``, each path of shape ``(step_num + 1, 2)``, ``init_x`` first.

    >>> gradient_descent_paths(lrs=(0.1,), step_num=2)[0.1].round(6).tolist()
    [[-3.0, 4.0], [-2.4, 3.2], [-1.92, 2.56]]
    """
    with warnings.catch_warnings():  # the rates above 1 diverge on purpose
        warnings.simplefilter("ignore", DivergenceWarning)
        return {lr: gradient_descent(_bowl, onp.array(init_x, dtype=float), lr=lr,
                                     step_num=step_num, return_path=True)[1] for lr in lrs}


def gradient_descent_figure(
    lrs: Sequence[float] = (0.01, 0.1, 0.95, 1.02), step_num: int = 20
) -> Figure:
    """Gradient-descent paths on ``x0**2 + x1**2`` from ``(-3, 4)``, one per learning rate.

    The gradient is ``2x``, so each step multiplies ``x`` by ``1 - 2 lr``: a small rate
    crawls, the book's 0.1 goes straight in, a rate near 1 overshoots to the other side each
    step, and above 1 every step lands farther out. Top: each path on the contours; bottom:
    the distance to the minimum per step, on a log scale.

    Returns:
        The figure.
    """
    paths = gradient_descent_paths(lrs, step_num=step_num)
    fig = Figure(figsize=(3.2 * len(paths) + 0.8, 7.5), layout="constrained")
    keys: list[Any] = [f"p{i}" for i in range(len(paths))]
    axes = fig.subplot_mosaic([keys, ["dist"] * len(keys)], height_ratios=[1, 0.9])
    r = 1.1 * max(5.0, max(float(onp.abs(p).max()) for p in paths.values()))
    g = onp.linspace(-r, r, 201)
    X0, X1 = onp.meshgrid(g, g)
    points = None
    for i, (key, (lr, path)) in enumerate(zip(keys, paths.items())):
        ax = axes[key]
        ax.contour(X0, X1, X0**2 + X1**2, levels=10, colors="0.8", linewidths=0.8)
        # the path, step by step, above its points: a line from each point to the next
        ax.plot(path[:, 0], path[:, 1], "-", color="0.25", lw=0.9, zorder=4)
        points = ax.scatter(path[:, 0], path[:, 1], c=onp.arange(len(path)), cmap="viridis",
                            vmin=0, vmax=step_num, s=22, zorder=3, edgecolors="none")
        ax.plot([path[0, 0]], [path[0, 1]], "ks", ms=7, zorder=5)
        ax.plot([0], [0], "k+", ms=10, mew=1.5, zorder=5)
        ax.set_xlim(-r, r)
        ax.set_ylim(-r, r)
        ax.set_aspect("equal")
        ax.set_xlabel("x0")
        ax.set_title(f"lr = {lr:g}: x *= {1 - 2 * lr:+.2f} per step", fontsize=10)
        ax.text(0.03, 0.03, f"end ({path[-1, 0]:.3g}, {path[-1, 1]:.3g})", fontsize=8,
                transform=ax.transAxes)
        dist = onp.linalg.norm(path, axis=1)
        axes["dist"].semilogy(onp.arange(len(path)), dist, "o-", color=f"C{i}", ms=3,
                              label=f"lr = {lr:g}")
    if points is not None:
        fig.colorbar(points, ax=[axes[k] for k in keys], label="step", shrink=0.9, pad=0.01)
    axes[keys[0]].set_ylabel("x1")
    axes["dist"].set_xlabel("step")
    axes["dist"].set_ylabel("distance to the minimum")
    axes["dist"].set_xticks(range(0, step_num + 1, max(1, step_num // 10)))
    axes["dist"].grid(alpha=0.3, which="both")
    axes["dist"].legend(fontsize=9, ncol=len(keys))
    fig.suptitle(f"gradient descent on x0**2 + x1**2 from (-3, 4): {step_num} steps with the "
                 "numerical gradient (square: start; points coloured by step, joined in order)")
    return fig


# --- one sigmoid neuron: MSE against cross-entropy --------------------------------------------


def neuron_loss_curves(ws: Any, x: float = 1.0, t: float = 1.0) -> dict[str, onp.ndarray]:
    """Loss and gradient of one sigmoid neuron ``y = sigmoid(w * x)`` against its weight.

    Two losses for the target ``t``: the squared error ``0.5 (y - t)**2``
    (:func:`F.sum_squares_error`) and the cross-entropy of the two classes ``(1 - y, y)``
    (:func:`F.cross_entropy_error`). Gradients are autograd's.

    Returns:
        ``{"w", "y", "mse", "cross_entropy", "mse_grad", "cross_entropy_grad"}`` as arrays.

    >>> c = neuron_loss_curves(onp.array([-6.0]))  # very wrong: y = 0.0025, t = 1
    >>> round(float(c["mse_grad"][0]), 4), round(float(c["cross_entropy_grad"][0]), 4)
    (-0.0025, -0.9975)
    """
    ws = onp.asarray(ws, dtype=onp.float64)
    tt = onp.array([1.0 - t, t])

    def y_of(w: Any) -> Any:
        return F.sigmoid(w * x)

    def mse(w: Any) -> Any:
        return F.sum_squares_error(y_of(w), t)

    def cee(w: Any) -> Any:
        y = y_of(w)
        return F.cross_entropy_error(np.stack([1.0 - y, y]), tt)

    out: dict[str, list[float]] = {k: [] for k in ("mse", "mse_grad", "cross_entropy",
                                                   "cross_entropy_grad")}
    for w in ws:
        for name, f in (("mse", mse), ("cross_entropy", cee)):
            value, g = value_and_grad(f)(onp.float64(w))
            out[name].append(float(value))
            out[f"{name}_grad"].append(float(g))
    curves = {k: onp.array(v) for k, v in out.items()}
    return {"w": ws, "y": onp.asarray(y_of(ws)), **curves}


def neuron_loss_figure(w_max: float = 8.0) -> Figure:
    """The loss of one sigmoid neuron under MSE and cross-entropy, and its gradient, against ``w``.

    The neuron sees ``x = 1`` and should output ``t = 1``. Where it is confidently wrong
    (``w`` very negative, ``y`` near 0), the squared error is nearly flat: its gradient
    ``(y - t) y (1 - y)`` carries the vanishing factor ``sigmoid'``, so learning stalls.
    The cross-entropy's gradient is ``y - t``, largest exactly there: the book's argument
    for cross-entropy with sigmoid and softmax outputs.

    Returns:
        The figure.
    """
    c = neuron_loss_curves(onp.linspace(-w_max, w_max, 321))
    w = c["w"]
    fig = Figure(figsize=(13, 5), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(w, c["mse"], color="C0", lw=2, label="squared error 0.5 (y - t)**2")
    left.plot(w, c["cross_entropy"], color="C3", lw=2, label="cross-entropy -log y")
    left.set_ylabel("loss")
    left.set_title("loss of y = sigmoid(w x) for x = 1, t = 1")
    right.plot(w, onp.abs(c["mse_grad"]), color="C0", lw=2, label="|dL/dw|, squared error")
    right.plot(w, onp.abs(c["cross_entropy_grad"]), color="C3", lw=2,
               label="|dL/dw|, cross-entropy")
    right.set_ylabel("|dL/dw| (autograd)")
    right.set_title("gradient magnitude: squared error goes flat where it is most wrong")
    flat = (onp.abs(c["mse_grad"]) < 0.02) & (c["y"] < 0.5)
    for ax in (left, right):
        if flat.any():
            ax.axvspan(w[flat].min(), w[flat].max(), color="C0", alpha=0.1,
                       label="squared error flat: |grad| < 0.02 with y < 0.5")
        ax.set_xlabel("weight w")
        ax.set_xlim(-w_max, w_max)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    return fig


# --- vanishing gradients ----------------------------------------------------------------------


def layer_gradient_norms(
    activation: str = "sigmoid",
    depth: int = 8,
    width: int = 32,
    batch: int = 64,
    seed: int = 0,
) -> onp.ndarray:
    """The norm of ``dL/dW`` for each hidden ``Linear`` of a deep network, input side first.

    The network is ``depth`` blocks of ``Linear(width, width)`` and the activation, then a
    ``Linear(width, 10)`` with softmax cross-entropy, on standard-normal inputs and random
    labels from ``numpy.random.default_rng(seed)``. Each activation gets its recommended
    initialisation (He for ReLU and leaky ReLU, Xavier otherwise), so the difference is the
    activation's derivative: sigmoid's is at most 0.25, and the backward pass multiplies one
    such factor per layer.

    Returns:
        ``depth`` gradient norms (Frobenius).

    >>> n = layer_gradient_norms("sigmoid", depth=4)
    >>> n.shape, bool(n[0] < n[-1])
    ((4,), True)
    """
    rng = onp.random.default_rng(seed)
    init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    layers: list[Any] = []
    for _ in range(depth):
        layers += [Linear(width, width, weight_init=init), ACTIVATIONS[activation]()]
    model = Sequential(*layers, Linear(width, 10))
    params = model.init(rng)
    x = rng.standard_normal((batch, width))
    t = rng.integers(0, 10, batch)
    loss = SoftmaxCrossEntropy()
    grads = grad(lambda p: loss(model(p, x), t))(params)
    return onp.array([onp.linalg.norm(grads[str(2 * i)]["W"]) for i in range(depth)])


def vanishing_gradients_figure(depth: int = 8, seed: int = 0) -> Figure:
    """The gradient norm per layer of a deep sigmoid network against a deep ReLU network.

    Returns:
        The figure.
    """
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    layers = onp.arange(1, depth + 1)
    for name, color in (("sigmoid", "C0"), ("tanh", "C2"), ("relu", "C3")):
        norms = layer_gradient_norms(name, depth=depth, seed=seed)
        ax.semilogy(layers, norms, "o-", color=color, lw=2,
                    label=f"{name}: layer 1 / layer {depth} = {norms[0] / norms[-1]:.1e}")
    ax.set_xticks(layers)
    ax.set_xlabel("hidden layer (1 = nearest the input)")
    ax.set_ylabel("||dL/dW|| (autograd)")
    ax.set_title(f"vanishing gradients: {depth} layers of 32 units, same data, seed {seed}")
    ax.text(0.03, 0.6, "init: Xavier for sigmoid and tanh, He for ReLU;\n"
            "each sigmoid layer scales the gradient by sigmoid' <= 0.25",
            fontsize=8.5, transform=ax.transAxes)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    return fig


# --- training curves --------------------------------------------------------------------------


#: The curves of a :class:`minifw.History`, in the order ``to_dict`` gives them.
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def check_history(history: Any) -> dict[str, Any]:
    """The curves of a :class:`minifw.History` (or of its ``to_dict()``), checked.

    Each of :data:`HISTORY_KEYS` must be missing or a list of finite numbers (accuracies in
    [0, 1]), none longer than ``loss`` (one entry per epoch); ``initial_loss`` must be missing,
    ``None`` or a finite number, and ``best_epoch`` missing, ``None`` or an epoch of ``loss``.
    Other keys are ignored.

    Returns:
        ``{key: list of floats}`` for every key of :data:`HISTORY_KEYS` (``[]`` if missing),
        with ``initial_loss`` (a float or ``None``) and ``best_epoch`` (an int or ``None``).

    Raises:
        TypeError: ``history`` is neither a ``History`` nor a mapping.
        ValueError: a curve is not a list of finite numbers or is longer than ``loss``, or
            ``initial_loss`` or ``best_epoch`` is not what it should be; the message names
            the key and the entry.

    >>> check_history({"loss": [1.0, float("nan")]})
    Traceback (most recent call last):
    ...
    ValueError: history: 'loss'[1] is nan, not a finite number
    """
    h = history if isinstance(history, Mapping) else getattr(history, "to_dict", None)
    if callable(h):
        h = h()
    if not isinstance(h, Mapping):
        raise TypeError(f"history must be a History or a mapping of lists, got "
                        f"{type(history).__name__}")
    curves: dict[str, Any] = {}
    for key in HISTORY_KEYS:
        values = h.get(key, [])
        if not isinstance(values, (list, tuple)):
            raise ValueError(f"history: {key!r} is {values!r:.40}, not a list of numbers")
        for i, v in enumerate(values):
            if not _finite_number(v):
                raise ValueError(f"history: {key!r}[{i}] is {v!r:.40}, not a finite number")
            if key.endswith("accuracy") and not 0 <= float(v) <= 1:
                raise ValueError(f"history: {key!r}[{i}] is {v!r}, not an accuracy in [0, 1]")
        if len(values) > len(curves.get("loss", values)):
            raise ValueError(f"history: {key!r} has {len(values)} entries for "
                             f"{len(curves['loss'])} epochs of 'loss'")
        curves[key] = [float(v) for v in values]
    initial, best = h.get("initial_loss"), h.get("best_epoch")
    if initial is not None and not _finite_number(initial):
        raise ValueError(f"history: 'initial_loss' is {initial!r:.40}, not a finite number")
    epochs = len(curves["loss"])
    if best is not None and not (isinstance(best, int) and not isinstance(best, bool)
                                 and 1 <= best <= epochs):
        raise ValueError(f"history: 'best_epoch' is {best!r:.40}, not an epoch of the "
                         f"{epochs} recorded")
    curves["initial_loss"] = None if initial is None else float(initial)
    curves["best_epoch"] = best
    return curves


def _finite_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, numbers.Real) and math.isfinite(v)


def _wide(values: Sequence[float]) -> bool:
    """Whether positive values span so much (100 to 1) that a log axis shows them better."""
    return bool(values) and min(values) > 0 and max(values) > 100 * min(values)


def training_curves_figure(
    history: Any, *, val_label: str = "validation", title: str | None = None
) -> Figure:
    """Loss and accuracy per epoch from a :class:`minifw.History` (or its ``to_dict()``).

    The loss before training is drawn at epoch 0, and the best epoch as a dotted line; a loss
    that spans more than 100 to 1 (a run that diverged) is drawn on a log axis. The legends
    sit below the axes, where they hide no point.

    Arguments:
        history: a ``History`` or a mapping with ``loss``, ``accuracy``, ``val_loss`` and
            ``val_accuracy`` lists (any may be empty), as :func:`check_history` accepts.
        val_label: what to call the validation data in the legend (e.g. ``"test"``).
        title: the figure's title.

    Returns:
        The figure: loss on the left, accuracy on the right (if measured).

    >>> import minifw as mf
    >>> fig = training_curves_figure(mf.History(loss=[1.0, 0.5], accuracy=[0.6, 0.9]))
    >>> len(fig.axes)
    2
    """
    h = check_history(history)
    epochs = len(h["loss"])
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    first = 0 if h["initial_loss"] is not None else 1
    for ax, key, ylabel in ((left, "loss", "loss"), (right, "accuracy", "accuracy")):
        shown: list[float] = []
        if key == "loss" and h["initial_loss"] is not None:
            ax.plot([0], [h["initial_loss"]], "D", color="C0", ms=5, mfc="white",
                    label="before training")
            shown.append(h["initial_loss"])
        for prefix, label, style in (("", "train", "o-"), ("val_", val_label, "s--")):
            values = h[prefix + key]
            if prefix == "" and key == "loss":
                label = "train (mean over the epoch's batches)"
            if values:
                ax.plot(range(1, len(values) + 1), values, style, ms=4, label=label)
                shown += values
        if h["best_epoch"] is not None and shown:
            ax.axvline(h["best_epoch"], color="0.4", ls=":", lw=1.2,
                       label=f"best epoch ({h['best_epoch']})")
        ax.set_xlabel("epoch")
        ax.set_xlim(first - 0.5, max(epochs, 1) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel + (" (log scale)" if key == "loss" and _wide(shown) else ""))
        ax.grid(alpha=0.3)
        if key == "loss" and _wide(shown):
            ax.set_yscale("log")
            ax.grid(alpha=0.1, which="minor")
        if shown:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8.5,
                      frameon=False)
        else:
            ax.text(0.5, 0.5, f"no {key} recorded", ha="center", transform=ax.transAxes)
    if h["accuracy"] or h["val_accuracy"]:
        low = min(h["accuracy"] + h["val_accuracy"])
        right.set_ylim(max(0.0, low - 0.05 * (1.0 - low) - 0.01), 1.0 + 0.03)
    final = [f"{label} {key} {h[k][-1]:.4f}" for k, label, key in (
        ("accuracy", "train", "accuracy"), ("val_accuracy", val_label, "accuracy")) if h.get(k)]
    fig.suptitle(title or ("training curves" + (": " + ", ".join(final) if final else "")))
    return fig


#: The pictures ``minifw plot NAME`` draws with no input, by name.
PLOTS: dict[str, Callable[[], Figure]] = {
    "activations": activations_figure,
    "finite_differences": finite_differences_figure,
    "gradient_descent": gradient_descent_figure,
    "neuron_loss": neuron_loss_figure,
    "vanishing_gradients": vanishing_gradients_figure,
}

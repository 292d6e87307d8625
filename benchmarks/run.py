"""minifw's benchmark suite: every road a user takes, side by side with what they would use instead.

    python benchmarks/run.py            # the full run, a few minutes; prints the table
    python benchmarks/run.py --write    # ... and writes RESULTS.md and scaling.png here
    python benchmarks/run.py --quick    # fewer repeats, the loop sampled more thinly
    minifw bench [--quick] [--out DIR]  # the same, from a source checkout

Only a full run with ``--write`` replaces the committed ``RESULTS.md`` and ``scaling.png``
beside this file; ``--out DIR`` writes them into ``DIR`` instead (any mode). A missed goal
makes the exit status 1 (a skipped figure, no PyTorch, does not; a smoke run, whose sizes are
not the issues', only checks that everything runs).

The peers: hand-written NumPy backprop and the book's per-element loop (``baselines.py``), and
PyTorch eager with ``torch.autograd.gradcheck`` when PyTorch imports (``pip install
torch==2.13.0``, or the ``bench`` extra); without it their rows say "skipped" and why.

How it measures. Every ratio compares contenders timed in the same process, in interleaved
blocks (a few warm-up calls, then each call timed alone with ``perf_counter``), with the order
of the contenders reversed every round, and divides medians; the training steps, whose ratio
also moves with where the arrays lie in memory, are measured on several fresh allocations and
reported by the median one. NumPy's BLAS and PyTorch run with the same number of threads. The
machine may be shared and noisy: the load average is recorded beside the results.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as onp
from baselines import (
    HandNet,
    HandRule,
    TorchNet,
    loop_numerical_gradient,
    torch_available,
    torch_gradient,
)

import minifw as mf
from minifw.gradcheck import default_tolerances
from minifw.numerical import default_step
from minifw.tree import leaves

HERE = Path(__file__).resolve().parent
SKIPPED = "PyTorch is not installed"  # or why else its peers are skipped (set by main)


@dataclass(frozen=True)
class Mode:
    """How long to measure: the rounds and samples of one kind of run, and the sizes."""

    name: str
    inputs: int  # the big network is inputs-hidden-10, with a batch of `batch`
    hidden: int
    batch: int
    rounds: int  # interleaved rounds for the fast figures
    slow_rounds: int  # rounds for the figures that take a second or more
    loop_elements: int  # elements of the per-element loop timed (then scaled)
    scaling: tuple[int, ...]  # hidden sizes of the scaling curves
    repeats: int  # training steps: measured this many times, each on fresh arrays
    depth: int  # hidden layers of the deep thin network 64-(32 x depth)-10


MODES = {
    "full": Mode("full", 784, 50, 100, 40, 5, 2000, (2, 5, 10, 25, 50, 100), 7, 8),
    "quick": Mode("quick", 784, 50, 100, 12, 3, 600, (5, 20, 50), 3, 8),
    # a check that the suite runs, in seconds: the sizes are not the issues'
    "smoke": Mode("smoke", 30, 8, 10, 2, 1, 40, (2, 4), 1, 2),
}


@dataclass
class Figure:
    """One row of the results table."""

    name: str
    goal: str  # e.g. "<= 1.15"
    contender: str
    peer: str
    minifw_s: float | None = None
    peer_s: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """The figure's ratio in the direction the goal states."""
        if self.minifw_s is None or self.peer_s is None:
            return None
        return self.peer_s / self.minifw_s if self.goal.startswith(">=") else (
            self.minifw_s / self.peer_s)

    @property
    def passed(self) -> bool | None:
        """Whether the ratio meets the goal (``None`` if skipped)."""
        r = self.ratio
        if r is None:
            return None
        op, target = self.goal.split()
        return r <= float(target) if op == "<=" else r >= float(target)


def interleaved(contenders: dict[str, Callable[[], Any]], rounds: int, calls: int,
                warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each contender, timed in interleaved blocks.

    Each round runs every contender in turn (the order reversed every other round): ``warmup``
    untimed calls, then ``calls`` calls timed one by one.

    >>> t = interleaved({"a": lambda: None, "b": lambda: None}, rounds=2, calls=3)
    >>> sorted(t), len(t["a"])
    (['a', 'b'], 6)
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fn = contenders[name]
            for _ in range(warmup):
                fn()
            for _ in range(calls):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
            time.sleep(0.01)  # let another library's spinning worker threads go idle
    return times


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    return float(onp.median(values))


# --- the networks ---------------------------------------------------------------------------


class UserReLU(mf.Layer):
    """A user's own layer, written here as a user would: forward and backward, per sample."""

    per_sample = True

    def forward(self, params: dict[str, Any], x: Any) -> Any:
        return mf.np.maximum(x, 0.0)

    def backward(self, params: dict[str, Any], x: Any, y: Any, g: Any) -> Any:
        return g * (x > 0), {}


def network(widths: list[int], batch: int, rng: onp.random.Generator, activation: str = "relu",
            dtype: Any = onp.float64, user: bool = False) -> tuple[Any, Any, Any, Any, Any]:
    """``(model, params, f, x, t)``: Linear layers of ``widths`` with ``activation`` between
    (``user``: the user's ReLU), ``x`` in [0, 1) like pixels, labels; ``f`` is the README's
    ``lambda p, x, t: loss(model(p, x), t)``."""
    def act() -> mf.Layer:
        return UserReLU() if user else mf.ReLU() if activation == "relu" else mf.Sigmoid()

    layers: list[mf.Layer] = []
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        layers += [act()] if i else []
        layers.append(mf.Linear(n_in, n_out, weight_init="he"))
    model = mf.Sequential(*layers)
    params = {k: {n: a.astype(dtype) for n, a in v.items()} for k, v in model.init(rng).items()}
    x = rng.random((batch, widths[0])).astype(dtype)
    t = rng.integers(0, widths[-1], batch)
    loss = mf.SoftmaxCrossEntropy()
    return model, params, lambda p, x, t: loss(model(p, x), t), x, t


# --- the figures ----------------------------------------------------------------------------


def train_steps(mode: Mode, rng: onp.random.Generator, torch: Any) -> list[Figure]:
    """Gradient + SGD update by ``opt.step(f, params, x, t)`` against hand-written NumPy, on
    every road: the plain lambda, a user's layer in the chain, float32, a deep thin network,
    Adam instead of SGD (against the book's Adam, after the gradient by hand: in a training
    step the gradient's arrays come and go between updates); and against PyTorch eager.

    Each is measured ``mode.repeats`` times on freshly made networks: the ratio of two steps
    of a few hundred microseconds moves by up to 15% with where the arrays lie in memory
    (either contender can lose), so one allocation is one sample; the figure is the
    repetition with the median ratio, and the note gives their range.
    """
    big = [mode.inputs, mode.hidden, 10]
    deep = [64] + [32] * mode.depth + [10]
    size = f"{mode.inputs}-{mode.hidden}-10, batch {mode.batch}"
    roads = [
        ("lambda", f"training step (gradient + SGD update), {size}, the README's lambda: "
                   "minifw / hand-written NumPy backprop", "<= 1.10", big, mode.batch, {}),
        ("user", "the same with a user's layer (its own backward) in the chain / NumPy",
         "<= 1.15", big, mode.batch, {"user": True}),
        ("float32", "the same in float32 / NumPy in float32", "<= 1.15", big, mode.batch,
         {"dtype": onp.float32}),
        ("deep", f"deep thin network 64-(32x{mode.depth})-10, batch 32: minifw / NumPy",
         "<= 1.3", deep, 32, {}),
        ("adam", f"training step with Adam, {mode.inputs}-{2 * mode.hidden}-10, batch "
                 f"{mode.batch}: minifw / hand-written NumPy with the book's Adam",
         "<= 1.15", [mode.inputs, 2 * mode.hidden, 10], mode.batch, {"adam": True}),
    ]
    figures = []
    for key, name, goal, widths, batch, kw in roads:
        reps = [_step_once(widths, batch, rng, kw, None) for _ in range(mode.repeats)]
        figures.append(_median_figure(Figure(name, goal, "minifw", "NumPy"), reps, "NumPy"))
    fig = Figure("the same as the first: minifw / PyTorch eager float64, same thread count",
                 "<= 1.0", "minifw", "PyTorch")
    if torch is None:
        fig.note = "skipped: " + SKIPPED
    else:
        reps = [_step_once(big, mode.batch, rng, {}, torch) for _ in range(mode.repeats)]
        _median_figure(fig, reps, "PyTorch")
    return figures + [fig]


def _median_figure(fig: Figure, reps: list[dict[str, float]], peer: str) -> Figure:
    """``fig`` with the times of the repetition whose minifw / ``peer`` ratio is the median."""
    ranked = sorted(reps, key=lambda r: r["minifw"] / r[peer])
    mid = ranked[len(ranked) // 2]
    fig.minifw_s, fig.peer_s = mid["minifw"], mid[peer]
    lo, hi = (ranked[i]["minifw"] / ranked[i][peer] for i in (0, -1))
    fig.note = f"median of {len(reps)} fresh allocations, whose ratios ranged {lo:.3g}-{hi:.3g}"
    return fig


def _step_once(widths: list[int], batch: int, rng: onp.random.Generator, kw: dict[str, Any],
               torch: Any) -> dict[str, float]:
    """Median seconds per step of minifw and its peer, on newly made arrays."""
    kw = dict(kw)
    adam = kw.pop("adam", False)
    _, params, f, x, t = network(widths, batch, rng, **kw)
    opt = mf.optim.Adam(lr=1e-4) if adam else mf.optim.SGD(lr=0.01)
    contenders: dict[str, Callable[[], Any]] = {"minifw": lambda: opt.step(f, params, x, t)}
    if torch is None:
        hand = HandNet(params)
        if adam:  # the gradient by hand, then the book's Adam on the same arrays
            rule = HandRule("adam", lr=1e-4)
            contenders["NumPy"] = lambda: rule.update(hand.arrays(), hand.gradient(x, t)[1])
        else:
            contenders["NumPy"] = lambda: hand.step(x, t, 0.01)
    else:
        net = TorchNet(torch, params, 0.01)
        tx, tt = torch.from_numpy(x), torch.from_numpy(t)
        contenders["PyTorch"] = lambda: net.step(tx, tt)
    return {k: median(v) for k, v in interleaved(contenders, 4, 12).items()}


def tiny_gradient(mode: Mode, rng: onp.random.Generator, torch: Any) -> Figure:
    """The gradient of a 4-5-3 network on a batch of 8: minifw vs PyTorch eager."""
    fig = Figure("gradient of a tiny network (4-5-3, batch 8): minifw / PyTorch eager float64",
                 "<= 2.0", "minifw", "PyTorch")
    _, params, f, x, t = network([4, 5, 3], 8, rng)
    vg = mf.value_and_grad(f)
    contenders: dict[str, Callable[[], Any]] = {"minifw": lambda: vg(params, x, t)}
    if torch is None:
        fig.note = "skipped: " + SKIPPED
    else:
        g = torch_gradient(torch, params)
        tx, tt = torch.from_numpy(x), torch.from_numpy(t)
        contenders["PyTorch"] = lambda: g(tx, tt)
    times = interleaved(contenders, mode.rounds, 50)
    fig.minifw_s = median(times["minifw"])
    fig.peer_s = median(times["PyTorch"]) if torch is not None else None
    return fig


def numerical_gradients(mode: Mode, rng: onp.random.Generator) -> tuple[list[Figure], str]:
    """The full numerical gradient, ``mf.grad(f, method="numerical")`` vs the book's
    per-element loop over hand-written NumPy, on every road; the two are held to the
    rounding bound on the elements the loop did."""
    big = [mode.inputs, mode.hidden, 10]
    deep = [64] + [32] * mode.depth + [10]
    size = f"{mode.inputs}-{mode.hidden}-10, batch {mode.batch}"
    roads = [
        (f"full numerical gradient, {size}: per-element loop / minifw", ">= 60", big,
         mode.batch, {}),
        ("the same in float32", ">= 60", big, mode.batch, {"dtype": onp.float32}),
        ("the same with a user's layer (its own backward) in the chain", ">= 60", big,
         mode.batch, {"user": True}),
        (f"deep thin network 64-(32x{mode.depth})-10, batch 32, ReLU", ">= 10", deep, 32, {}),
        ("the same with sigmoid", ">= 10", deep, 32, {"activation": "sigmoid"}),
    ]
    figures, worst = [], 0.0
    for name, goal, widths, batch, kw in roads:
        fig, excess = _numerical_once(mode, rng, name, goal, widths, batch, kw)
        figures.append(fig)
        worst = max(worst, excess)
    bound = ("minifw's central differences equal the loop's on every element the loop did "
             f"to within {worst:.2g} of the rounding bound 64 eps max(1, |f|) / step")
    return figures, bound


def against_loop(fig: Figure, mode: Mode, rng: onp.random.Generator,
                 minifw: Callable[[], Any], loss: Callable[[], float], arrays: list[Any],
                 h: float, n: int) -> dict[Any, float]:
    """Time ``minifw`` (one whole numerical gradient) against the per-element loop on up to
    ``n`` random elements of ``arrays``, scaled to all of them, into ``fig``; the loop's
    values by ``(array, index)``."""
    everything = [(k, idx) for k, a in enumerate(arrays) for idx in onp.ndindex(a.shape)]
    picks = rng.choice(len(everything), min(n, len(everything)), replace=False)
    sample = [everything[i] for i in sorted(picks)]
    values: dict[Any, float] = {}
    times = interleaved({
        "minifw": minifw,
        "loop": lambda: values.update(loop_numerical_gradient(loss, arrays, h, sample)),
    }, mode.slow_rounds, 1, warmup=0)
    fig.minifw_s = median(times["minifw"])
    fig.peer_s = median(times["loop"]) * len(everything) / len(sample)
    if len(sample) < len(everything):
        fig.note = (f"loop timed on {len(sample)} random elements of {len(everything)} and "
                    "scaled (every element costs the same two forward passes)")
    return values


def loop_excess(fast: list[Any], values: dict[Any, float], arrays: list[Any],
                bound: float) -> float:
    """The largest difference between ``fast`` and the loop's values, in units of the
    rounding bound ``bound / max(1, |x|)`` of each element."""
    return max(abs(float(fast[k][idx]) - v) / (bound / max(1.0, abs(float(arrays[k][idx]))))
               for (k, idx), v in values.items())


def _numerical_once(mode: Mode, rng: onp.random.Generator, name: str, goal: str,
                    widths: list[int], batch: int, kw: dict[str, Any]) -> tuple[Figure, float]:
    fig = Figure(name, goal, "minifw", "loop")
    _, params, f, x, t = network(widths, batch, rng, **kw)
    hand = HandNet(params, kw.get("activation", "relu"))
    arrays = hand.arrays()
    dtype = kw.get("dtype", onp.float64)
    h = default_step(dtype)
    grad = mf.grad(f, method="numerical")
    values = against_loop(fig, mode, rng, lambda: grad(params, x, t), lambda: hand.loss(x, t),
                          arrays, h, mode.loop_elements)
    bound = 64 * float(onp.finfo(dtype).eps) * max(1.0, abs(float(f(params, x, t)))) / h
    excess = loop_excess([a for _, a in leaves(grad(params, x, t))], values, arrays, bound)
    return fig, excess


def check_grads_figures(mode: Mode, rng: onp.random.Generator) -> list[Figure]:
    """``check_grads`` in both modes against one autograd gradient (and the numerical one)."""
    size = f"{mode.inputs}-{mode.hidden}-10"
    proj = Figure(f"check_grads projection mode / one autograd gradient, {size}", "<= 5",
                  "check", "gradient")
    full = Figure(f"check_grads full mode / (numerical gradient + one autograd gradient), "
                  f"{size}", "<= 1.3", "check", "gradients")
    _, params, f, x, t = network([mode.inputs, mode.hidden, 10], mode.batch, rng)
    grad, numerical = mf.grad(f), mf.grad(f, method="numerical")
    reports = []

    def check(how: str) -> Callable[[], None]:
        return lambda: reports.append(mf.check_grads(f, params, x, t, mode=how))

    fast = interleaved({"projection": check("projection"), "gradient": lambda: grad(params, x, t)},
                       mode.rounds, 5)
    proj.minifw_s, proj.peer_s = median(fast["projection"]), median(fast["gradient"])
    slow = interleaved({"full": check("full"), "numerical": lambda: numerical(params, x, t)},
                       mode.slow_rounds + 2, 2)
    full.minifw_s = median(slow["full"])
    full.peer_s = median(slow["numerical"]) + proj.peer_s
    if not all(r.ok for r in reports):
        full.note = proj.note = "a check FAILED on a correct network"
    kinks = max(sum(row.kinks for row in r.rows) for r in reports if r.mode == "full")
    full.note = full.note or (
        f"the central differences take {fmt_seconds(median(slow['numerical']))} of the full "
        f"check's {fmt_seconds(full.minifw_s)}; it judged {kinks} elements to be on a kink")
    return [proj, full]


def check_layer_figure(mode: Mode, rng: onp.random.Generator, torch: Any) -> Figure:
    """``check_layer`` (full) on tanh(x @ W + b) vs ``torch.autograd.gradcheck``."""
    fig = Figure("check_layer full mode on tanh(x @ W + b), x 8x16, W 16x16: minifw / "
                 "torch.autograd.gradcheck", "<= 0.05", "minifw", "gradcheck")
    layer = mf.Sequential(mf.Linear(16, 16), mf.Tanh())
    params = layer.init(rng)
    x = rng.standard_normal((8, 16))
    contenders: dict[str, Callable[[], Any]] = {
        "minifw": lambda: mf.check_layer(layer, x, params=params)}
    if torch is not None:
        args = [torch.tensor(a, requires_grad=True)
                for a in (x, params["0"]["W"], params["0"]["b"])]
        contenders["gradcheck"] = lambda: torch.autograd.gradcheck(
            lambda x, W, b: torch.tanh(x @ W + b), args)
    else:
        fig.note = "skipped: " + SKIPPED
    times = interleaved(contenders, max(mode.slow_rounds + 2, mode.rounds // 3), 2, warmup=1)
    fig.minifw_s = median(times["minifw"])
    fig.peer_s = median(times["gradcheck"]) if torch is not None else None
    return fig


# --- scaling --------------------------------------------------------------------------------


def scaling(mode: Mode, rng: onp.random.Generator) -> list[dict[str, float]]:
    """Times against the parameter count of ``inputs-H-10`` networks, for each hidden size H."""
    points = []
    for hidden in mode.scaling:
        _, params, f, x, t = network([mode.inputs, hidden, 10], mode.batch, rng)
        hand = HandNet(params)
        arrays = hand.arrays()
        n = sum(a.size for a in arrays)
        everything = [(k, idx) for k, a in enumerate(arrays) for idx in onp.ndindex(a.shape)]
        picks = rng.choice(n, min(n, mode.loop_elements // 4), replace=False)
        sample = [everything[i] for i in sorted(picks)]
        h = default_step("float64")
        numerical = mf.grad(f, method="numerical")
        timed = interleaved({
            "loop": lambda: loop_numerical_gradient(lambda: hand.loss(x, t), arrays, h, sample),
            "numerical": lambda: numerical(params, x, t),
            "full": lambda: mf.check_grads(f, params, x, t),
            "projection": lambda: mf.check_grads(f, params, x, t, mode="projection"),
        }, max(1, mode.slow_rounds - 2), 1, warmup=0)
        point = {k: median(v) for k, v in timed.items()}
        point["loop"] *= n / len(sample)  # every element costs the same two forward passes
        points.append({"params": n, **point})
    return points


def plot(points: list[dict[str, float]], path: Path) -> None:
    """Draw the scaling curves (log-log) into ``path``."""
    import matplotlib.pyplot as plt

    fig = scaling_figure(points)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scaling_figure(points: list[dict[str, float]]) -> Any:
    """The scaling curves, log-log, each network's parameter count a label of the x axis."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [p["params"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.loglog(n, [p["loop"] for p in points], "o--", label="per-element loop (extrapolated)")
    left.loglog(n, [p["numerical"] for p in points], "o-", label="minifw, stacked")
    left.set(title="full numerical gradient", xlabel="parameters", ylabel="seconds")
    right.loglog(n, [p["full"] for p in points], "o-", label="check_grads, full")
    right.loglog(n, [p["numerical"] for p in points], ":", color="gray",
                 label="numerical gradient alone")
    right.loglog(n, [p["projection"] for p in points], "o-", label="check_grads, projection")
    right.set(title="gradient check", xlabel="parameters", ylabel="seconds")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        # the networks' sizes span two decades or less: one label per network, not per decade
        ax.set_xticks(n, [_count(v) for v in n])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.legend()
    fig.suptitle("784-H-10 networks, batch 100, float64" if points and n[0] > 1000 else
                 "scaling (smoke sizes)")
    fig.tight_layout()
    return fig


def _count(n: float) -> str:
    """A parameter count in a few characters: ``1.6k``, ``39.8k``, ``850``.

    >>> _count(1600), _count(39760), _count(850)
    ('1.6k', '39.8k', '850')
    """
    return f"{n / 1000:.3g}k" if n >= 1000 else f"{n:.0f}"


# --- the report -----------------------------------------------------------------------------


def environment(torch: Any, torch_note: str) -> list[str]:
    """Lines describing the machine, the versions and the thread counts."""
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info
                     if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        blas = ", ".join(f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)"
                         for p in pools) or blas
    except ImportError:
        pass
    lines = [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- machine: {cpu}, {os.cpu_count()} logical cores, {platform.platform()}",
        f"- Python {platform.python_version()}, NumPy {onp.__version__} (BLAS: {blas}), "
        f"autograd {version('autograd')}, minifw {mf.__version__}",
    ]
    if torch is not None:
        lines.append(f"- PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    else:
        lines.append(f"- PyTorch: {torch_note}; its figures are skipped")
    return lines


def threads() -> int:
    """The number of threads NumPy's BLAS uses: as threadpoolctl reads it, else as the
    environment sets it (``OPENBLAS_NUM_THREADS`` and the like, which OpenBLAS obeys), else
    the cores."""
    try:
        from threadpoolctl import threadpool_info

        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name, "").strip().isdigit() and int(os.environ[name]) > 0:
            return int(os.environ[name])
    return os.cpu_count() or 1


def fmt_seconds(s: float | None) -> str:
    """``s`` in a readable unit."""
    if s is None:
        return "-"
    return f"{s * 1e6:.0f} us" if s < 1e-3 else f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def print_verdicts(figures: list[Figure]) -> None:
    """Print a line per figure: its ratio, its goal, the verdict and its name."""
    for fig in figures:
        ratio = "-" if fig.ratio is None else f"{fig.ratio:.3g}"
        verdict = "skipped" if fig.passed is None else "pass" if fig.passed else "FAIL"
        print(f"{ratio:>8}  {fig.goal:<8} {verdict:<7} {fig.name}")


def report(mode: Mode, figures: list[Figure], checks: list[str], env: list[str],
           load: tuple[str, str], argv: list[str], plot_name: str) -> str:
    """The text of RESULTS.md."""
    lines = [
        "# minifw benchmark results",
        "",
        f"Written by `{' '.join(['python benchmarks/run.py', *argv])}` ({mode.name} run).",
        "Ratios compare medians of contenders timed side by side in one process, in interleaved",
        "blocks; float64 unless a row says otherwise.",
        "",
    ]
    if mode.name != "full":
        lines += [f"**{mode.name.title()} run: fewer repeats"
                  + (", reduced sizes, not the issues' figures" if mode.name == "smoke" else "")
                  + ".**", ""]
    lines += ["| figure | goal | minifw | peer | ratio | result |", "|---|---|---|---|---|---|"]
    for fig in figures:
        ratio = "-" if fig.ratio is None else f"{fig.ratio:.3g}"
        result = "skipped" if fig.passed is None else "pass" if fig.passed else "FAIL"
        lines.append(f"| {fig.name} | {fig.goal} | {fmt_seconds(fig.minifw_s)} | "
                     f"{fmt_seconds(fig.peer_s)} ({fig.peer}) | {ratio} | {result} |")
    notes = [f"- {fig.name.split(':')[0]}: {fig.note}" for fig in figures if fig.note]
    lines += ["", "## Notes", "", *notes, *[f"- {c}" for c in checks], "",
              "## Machine", "", *env,
              f"- load average (1 min) at the start and the end: {load[0]}, {load[1]}", "",
              "## Scaling", "", f"![scaling curves]({plot_name})", "",
              "![the checker on built-in and user layers, against size](checker_scaling.png)",
              ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; 1 if a goal was missed, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does the suite run?")
    parser.add_argument("--write", action="store_true",
                        help=f"write RESULTS.md and scaling.png into {HERE} (a full run only)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write RESULTS.md and scaling.png into DIR instead")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peers")
    parser.add_argument("--seed", type=int, default=0, help="seeds networks and data")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    if args.write and mode.name != "full":
        parser.error("--write replaces the committed results: only a full run may (use --out)")
    out = HERE if args.write else Path(args.out) if args.out else None
    torch, torch_note = (None, "not used (--no-torch)") if args.no_torch else torch_available()
    global SKIPPED
    SKIPPED = torch_note
    if torch is not None:
        torch.set_num_threads(threads())
    rng = onp.random.default_rng(args.seed)
    load_start = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"

    def say(what: str) -> None:
        print(f"[{mode.name}] {what}", flush=True)

    say("training steps")
    figures = train_steps(mode, rng, torch)
    say("tiny network")
    figures.append(tiny_gradient(mode, rng, torch))
    say("numerical gradients")
    numerical, bound_note = numerical_gradients(mode, rng)
    figures += numerical
    say("check_grads")
    figures += check_grads_figures(mode, rng)
    say("check_layer")
    figures.append(check_layer_figure(mode, rng, torch))
    say("convolution")
    import conv  # imports this module's names itself: a cycle if imported at the top

    figures += conv.conv_figures(mode, rng, torch, torch_note)
    say("digits CNN")
    cnn, cnn_note = conv.digits_cnn_figure(mode)
    figures.append(cnn)
    say("numerical gradient of a small CNN")
    cnn_numerical, cnn_bound = conv.cnn_numerical_figure(mode, rng)
    figures.append(cnn_numerical)
    say("fit with Adam")
    import fitting  # imports this module's names itself, as conv does

    figures.append(fitting.fit_figure(mode))
    say("optimizer updates")
    import optimizers  # imports this module's names itself, as conv does

    figures += optimizers.update_figures(mode, rng)
    say("import minifw")
    import startup  # imports this module's names itself, as conv does

    figures.append(startup.import_figure(mode))
    say("saving and loading parameters")
    import files  # imports this module's names itself, as conv does

    figures += files.file_figures(mode, rng)
    say("the checker on a user's layer")
    import checker  # imports this module's names itself, as conv does

    checked = checker.points(mode, rng, torch)
    figures += checker.figures(checked, torch_note)
    say("scaling")
    points = scaling(mode, rng)
    load_end = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"
    h, rtol, atol = default_tolerances("float64", 1.0)
    checks = [bound_note, cnn_bound, cnn_note,
              f"gradient checks use h = {h:.3g}, rtol = {rtol:.3g}, atol = {atol:.3g} "
              "(minifw.gradcheck.default_tolerances)"]
    text = report(mode, figures, checks, environment(torch, torch_note), (load_start, load_end),
                  argv, "scaling.png")
    print_verdicts(figures)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "RESULTS.md").write_text(text)
        plot(points, out / "scaling.png")
        checker.plot(checked, out / "checker_scaling.png")
        say(f"wrote {out / 'RESULTS.md'}, {out / 'scaling.png'} and "
            f"{out / 'checker_scaling.png'}")
    else:
        with tempfile.TemporaryDirectory() as scratch:  # the plots must draw, even unsaved
            plot(points, Path(scratch) / "scaling.png")
            checker.plot(checked, Path(scratch) / "checker_scaling.png")
        say("not written (--write for the committed results, --out DIR elsewhere)")
    missed = [fig.name for fig in figures if fig.passed is False]
    if missed:
        say(f"{len(missed)} goal(s) missed")
    return 1 if missed and mode.name != "smoke" else 0


if __name__ == "__main__":
    sys.exit(main())

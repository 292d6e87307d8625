"""minifw's benchmark suite: every figure of issue 4 against its peers, side by side.

    python benchmarks/run.py            # the full run, about a minute
    python benchmarks/run.py --quick    # about 15 seconds: fewer repeats, the loop sampled
    minifw bench [--quick] [--out DIR]  # the same, from a source checkout

Writes ``RESULTS.md`` (the table: goal, measured medians, ratio, pass or fail; the machine,
the versions, the date) and ``scaling.png`` (numerical-gradient time and check time against
the parameter count) into ``--out`` (default: this folder). The peers: hand-written NumPy
backprop and the book's per-element loop (``baselines.py``), and PyTorch eager in float64
with ``torch.autograd.gradcheck`` when PyTorch imports (``pip install torch==2.13.0``, or the
``bench`` extra); without it their rows say "skipped" and why.

How it measures. Every ratio compares contenders timed in the same process, in interleaved
blocks (a few warm-up calls, then each call timed alone with ``perf_counter``), with the order
of the contenders reversed every round, and divides medians; the training step, whose ratio
also moves with where its arrays lie in memory, is measured on several fresh allocations and
reported by the median one. NumPy's BLAS and PyTorch run
with the same number of threads. The machine may be shared and noisy: the load average is
recorded beside the results.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as onp
from baselines import (
    HandNet,
    TorchNet,
    loop_numerical_gradient,
    torch_available,
    torch_gradient,
)
from minifw.fast_numerical import fused_central_differences

import minifw as mf
from minifw.gradcheck import default_tolerances
from minifw.numerical import default_step

HERE = Path(__file__).resolve().parent
SKIPPED = "PyTorch is not installed"  # or why else its peers are skipped (set by main)


@dataclass(frozen=True)
class Mode:
    """How long to measure: sizes, rounds and the scaling grid of one kind of run."""

    name: str
    inputs: int  # the big network is inputs-hidden-10, with a batch of `batch`
    hidden: int
    batch: int
    rounds: int  # interleaved rounds for the fast figures
    slow_rounds: int  # rounds for the figures that take a second or more
    loop_elements: int | None  # elements of the per-element loop (None: all of them)
    scaling: tuple[int, ...]  # hidden sizes of the scaling curves
    loop_scaling_elements: int  # loop elements timed per scaling point (then extrapolated)
    repeats: int  # training step: measured this many times, each on freshly allocated arrays


MODES = {
    # the loop is timed on a random sample of elements and scaled (each element costs the same
    # two forward passes): all 39,760 take 10 s on a quiet machine, and minutes on a busy one
    "full": Mode("full", 784, 50, 100, 60, 5, 8000, (2, 5, 10, 25, 50, 100), 400, 9),
    "quick": Mode("quick", 784, 50, 100, 16, 3, 1500, (5, 20, 50), 200, 2),
    # a check that the suite runs, in seconds: the sizes are not the issue's
    "smoke": Mode("smoke", 30, 8, 10, 2, 1, 40, (2, 4), 20, 1),
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
            time.sleep(0.02)  # let another library's spinning worker threads go idle
    return times


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    return float(onp.median(values))


# --- the networks ---------------------------------------------------------------------------


def two_layer(inputs: int, hidden: int, outputs: int, batch: int, rng: onp.random.Generator,
              activation: str = "relu") -> tuple[Any, Any, Any, Any, Any]:
    """``(model, params, f, x, t)``: ``inputs-hidden-outputs`` with ``x`` in [0, 1), labels."""
    act = mf.ReLU() if activation == "relu" else mf.Sigmoid()
    model = mf.Sequential(mf.Linear(inputs, hidden, weight_init="he"), act,
                          mf.Linear(hidden, outputs))
    params = model.init(rng)
    x = rng.random((batch, inputs))  # like pixel intensities
    t = rng.integers(0, outputs, batch)
    return model, params, mf.Objective(model, mf.SoftmaxCrossEntropy()), x, t


# --- the figures ----------------------------------------------------------------------------


def train_step(mode: Mode, rng: onp.random.Generator, torch: Any) -> list[Figure]:
    """Gradient + SGD update, 784-50-10, batch 100: minifw vs hand NumPy and PyTorch eager.

    Measured ``mode.repeats`` times, each on a freshly made network: the ratio of two steps
    of a few hundred microseconds moves by up to 15% with where the arrays happen to lie in
    memory (cache sets, pages; either contender can be the one that loses), so one
    allocation is one sample; the figure is the repetition with the median ratio and the
    note gives their range.
    """
    size = f"{mode.inputs}-{mode.hidden}-10, batch {mode.batch}"
    hand_fig = Figure(f"training step (gradient + SGD update), {size}: minifw / hand-written "
                      "NumPy backprop", "<= 1.15", "minifw", "NumPy")
    torch_fig = Figure("the same: minifw / PyTorch eager float64, same thread count", "<= 1.0",
                       "minifw", "PyTorch")
    reps = [_train_step_once(mode, rng, torch) for _ in range(mode.repeats)]
    m = {k: median([r[k] for r in reps]) for k in reps[0]}
    # each repetition's contenders ran side by side: the figure is the repetition with the
    # median ratio (not the ratio of medians, which may pair a fast allocation with a slow one)
    mid = _median_repetition(reps, "NumPy")
    hand_fig.minifw_s, hand_fig.peer_s = mid["minifw"], mid["NumPy"]
    ratios = sorted(r["minifw"] / r["NumPy"] for r in reps)
    gradient_ratio = m["minifw gradient"] / m["NumPy gradient"]
    hand_fig.note = (
        f"minifw's step is `opt.step(f, params, x, t)` (what `fit` runs; SGD's change comes "
        "straight from the backward pass seeded with -lr); the median of "
        f"{len(reps)} repetitions on fresh arrays, whose ratios ranged "
        f"{ratios[0]:.3g}-{ratios[-1]:.3g}; the same step as two calls, `value_and_grad` then "
        f"`update`: {fmt_seconds(m['minifw two calls'])} (ratio "
        f"{m['minifw two calls'] / m['NumPy again']:.3g}); the halves of a step timed alone: "
        f"gradient {fmt_seconds(m['minifw gradient'])} (minifw.value_and_grad of an Objective) vs "
        f"{fmt_seconds(m['NumPy gradient'])} (ratio {gradient_ratio:.3g}); SGD update "
        f"{fmt_seconds(m['minifw update'])} (minifw.optim.SGD.update, which "
        f"checks every new value before writing any) vs {fmt_seconds(m['NumPy update'])} "
        "(`W -= lr * dW`)")
    if torch is not None:
        mid = _median_repetition(reps, "PyTorch")
        torch_fig.minifw_s, torch_fig.peer_s = mid["minifw"], mid["PyTorch"]
    else:
        torch_fig.minifw_s = m["minifw"]
        torch_fig.note = "skipped: " + SKIPPED
    return [hand_fig, torch_fig]


def _median_repetition(reps: list[dict[str, float]], peer: str) -> dict[str, float]:
    """The repetition whose minifw / ``peer`` ratio is the median (the upper one of two)."""
    return sorted(reps, key=lambda r: r["minifw"] / r[peer])[len(reps) // 2]


def _train_step_once(mode: Mode, rng: onp.random.Generator, torch: Any) -> dict[str, float]:
    """Median seconds per call of the training step's contenders and halves, on new arrays."""
    _, params, f, x, t = two_layer(mode.inputs, mode.hidden, 10, mode.batch, rng)
    lr = 0.01
    hand = HandNet(params)
    vg = mf.value_and_grad(f)
    opt = mf.optim.SGD(lr=lr)

    def two_calls() -> None:
        _, grads = vg(params, x, t)
        opt.update(params, grads)

    # the two halves of a step, timed alone, say where a difference comes from
    grads = vg(params, x, t)[1]
    hand_grads = hand.gradient(x, t)[1]

    def hand_update() -> None:
        for p, g in zip(hand.arrays(), hand_grads):
            p -= lr * g

    # the figure's contenders side by side; then, in a run of their own, what explains it.
    # Six more contenders between one block of steps and the next evict each step's arrays
    # and code from the caches, which a training loop does not do: with them, the minifw /
    # NumPy ratios of fresh allocations ranged 0.89-1.16; without, 1.03-1.09.
    rounds = max(1, mode.rounds // mode.repeats)
    contenders: dict[str, Callable[[], Any]] = {
        "minifw": lambda: opt.step(f, params, x, t), "NumPy": lambda: hand.step(x, t, lr)}
    if torch is not None:
        net = TorchNet(torch, params, lr)
        tx, tt = torch.from_numpy(x), torch.from_numpy(t)
        contenders["PyTorch"] = lambda: net.step(tx, tt)
    times = interleaved(contenders, rounds, 10)
    times.update(interleaved({
        "minifw two calls": two_calls, "NumPy again": lambda: hand.step(x, t, lr),
        "minifw gradient": lambda: vg(params, x, t), "NumPy gradient": lambda: hand.gradient(x, t),
        "minifw update": lambda: opt.update(params, grads), "NumPy update": hand_update},
        rounds, 10))
    return {k: median(v) for k, v in times.items()}


def tiny_gradient(mode: Mode, rng: onp.random.Generator, torch: Any) -> Figure:
    """The gradient of a 4-5-3 network on a batch of 8: minifw vs PyTorch eager."""
    fig = Figure("gradient of a tiny network (4-5-3, batch 8): minifw / PyTorch eager float64",
                 "<= 2.0", "minifw", "PyTorch")
    _, params, f, x, t = two_layer(4, 5, 3, 8, rng)
    vg = mf.value_and_grad(f)
    if torch is None:
        fig.note = "skipped: " + SKIPPED
        times = interleaved({"minifw": lambda: vg(params, x, t)}, mode.rounds, 50)
        fig.minifw_s = median(times["minifw"])
        return fig
    g = torch_gradient(torch, params)
    tx, tt = torch.from_numpy(x), torch.from_numpy(t)
    times = interleaved({"minifw": lambda: vg(params, x, t), "PyTorch": lambda: g(tx, tt)},
                        mode.rounds, 50)
    fig.minifw_s, fig.peer_s = median(times["minifw"]), median(times["PyTorch"])
    return fig


def numerical_gradient(mode: Mode, rng: onp.random.Generator) -> tuple[Figure, str]:
    """The full numerical gradient: the per-element loop vs minifw's stacked engine.

    Also holds the two to the rounding bound, on the elements the loop did.
    """
    size = f"{mode.inputs}-{mode.hidden}-10"
    fig = Figure(f"full numerical gradient of the {size} network: per-element loop / minifw",
                 ">= 50", "minifw", "loop")
    _, params, f, x, t = two_layer(mode.inputs, mode.hidden, 10, mode.batch, rng)
    hand = HandNet(params)
    arrays = hand.arrays()
    h = default_step("float64")
    everything = [(n, idx) for n, a in enumerate(arrays) for idx in onp.ndindex(a.shape)]
    if mode.loop_elements is None or mode.loop_elements >= len(everything):
        sample = everything
    else:
        picks = rng.choice(len(everything), mode.loop_elements, replace=False)
        sample = [everything[i] for i in sorted(picks)]
    grad = mf.grad(f, method="numerical")
    loop_values: dict[Any, float] = {}

    def loop() -> None:
        loop_values.update(loop_numerical_gradient(lambda: hand.loss(x, t), arrays, h, sample))

    times = interleaved({"minifw": lambda: grad(params, x, t), "loop": loop},
                        mode.slow_rounds, 1, warmup=0)
    fig.minifw_s = median(times["minifw"])
    fig.peer_s = median(times["loop"]) * len(everything) / len(sample)
    if len(sample) < len(everything):
        fig.note = (f"loop timed on {len(sample)} random elements of {len(everything)} and "
                    "scaled (every element costs the same two forward passes)")
    # the rounding bound of minifw.fast_numerical, element by element
    fast = grad(params, x, t)
    fast_arrays = [fast["0"]["W"], fast["0"]["b"], fast["2"]["W"], fast["2"]["b"]]
    f0 = abs(float(f(params, x, t)))
    eps = float(onp.finfo(onp.float64).eps)
    worst = 0.0
    for (n, idx), value in loop_values.items():
        step = h * max(1.0, abs(float(arrays[n][idx])))
        bound = 64 * eps * max(1.0, f0) / step
        worst = max(worst, abs(fast_arrays[n][idx] - value) / bound)
    check = (f"minifw's stacked central differences equal the loop's on {len(loop_values)} "
             f"elements to within {worst:.2g} of the rounding bound 64 eps max(1, |f|) / step")
    return fig, check


def check_grads_figures(mode: Mode, rng: onp.random.Generator) -> list[Figure]:
    """``check_grads`` in both modes against one autograd gradient (and the numerical one)."""
    size = f"{mode.inputs}-{mode.hidden}-10"
    proj = Figure(f"check_grads projection mode / one autograd gradient, {size}", "<= 5",
                  "check", "gradient")
    full = Figure(f"check_grads full mode / (numerical gradient + one autograd gradient), "
                  f"{size}", "<= 1.3", "check", "gradients")
    _, params, f, x, t = two_layer(mode.inputs, mode.hidden, 10, mode.batch, rng)
    grad, numerical = mf.grad(f), mf.grad(f, method="numerical")
    reports = []

    def check(how: str) -> Callable[[], None]:
        return lambda: reports.append(mf.check_grads(f, params, x, t, mode=how))

    fast = interleaved({"projection": check("projection"), "gradient": lambda: grad(params, x, t)},
                       mode.rounds, 5)
    proj.minifw_s, proj.peer_s = median(fast["projection"]), median(fast["gradient"])
    slow = interleaved({"full": check("full"), "numerical": lambda: numerical(params, x, t)},
                       mode.slow_rounds, 1)
    full.minifw_s = median(slow["full"])
    full.peer_s = median(slow["numerical"]) + proj.peer_s
    if not all(r.ok for r in reports):
        full.note = proj.note = "a check FAILED on a correct network"
    kinks = max(sum(row.kinks for row in r.rows) for r in reports if r.mode == "full")
    full.note = full.note or (
        f"the central differences take {fmt_seconds(median(slow['numerical']))} of the full "
        f"check's {fmt_seconds(full.minifw_s)}, the rest is the checker's own work per "
        f"element; it judged {kinks} elements to be on a ReLU kink")
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
    # a few ms per round: enough rounds that a burst of noise on the shared machine is outvoted
    times = interleaved(contenders, max(mode.slow_rounds + 2, mode.rounds // 3), 2, warmup=1)
    fig.minifw_s = median(times["minifw"])
    fig.peer_s = median(times["gradcheck"]) if torch is not None else None
    return fig


# --- scaling --------------------------------------------------------------------------------


def scaling(mode: Mode, rng: onp.random.Generator) -> list[dict[str, float]]:
    """Times against the parameter count of ``inputs-H-10`` networks, for each hidden size H."""
    points = []
    for hidden in mode.scaling:
        _, params, f, x, t = two_layer(mode.inputs, hidden, 10, mode.batch, rng)
        hand = HandNet(params)
        arrays = hand.arrays()
        n = sum(a.size for a in arrays)
        picks = rng.choice(n, min(n, mode.loop_scaling_elements), replace=False)
        everything = [(k, idx) for k, a in enumerate(arrays) for idx in onp.ndindex(a.shape)]
        sample = [everything[i] for i in sorted(picks)]
        h = default_step("float64")
        timed = interleaved({
            "loop": lambda: loop_numerical_gradient(lambda: hand.loss(x, t), arrays, h, sample),
            "numerical": lambda: fused_central_differences(f, params, (x, t), h),
            "full": lambda: mf.check_grads(f, params, x, t),
            "projection": lambda: mf.check_grads(f, params, x, t, mode="projection"),
        }, max(1, mode.slow_rounds - 2), 1, warmup=0)
        point = {k: median(v) for k, v in timed.items()}
        point["loop"] *= n / len(sample)  # every element costs the same two forward passes
        points.append({"params": n, **point})
    return points


def plot(points: list[dict[str, float]], path: Path) -> None:
    """Draw the scaling curves (log-log) into ``path``."""
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
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no crowded labels
        ax.legend()
    fig.suptitle("784-H-10 networks, batch 100, float64" if points and n[0] > 1000 else
                 "scaling (smoke sizes)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    """The number of threads NumPy's BLAS uses (the cores, if it cannot be read)."""
    try:
        from threadpoolctl import threadpool_info

        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        return counts[0] if counts else os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def fmt_seconds(s: float | None) -> str:
    """``s`` in a readable unit."""
    if s is None:
        return "-"
    return f"{s * 1e6:.0f} us" if s < 1e-3 else f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def report(mode: Mode, figures: list[Figure], checks: list[str], env: list[str],
           load: tuple[str, str], argv: list[str], plot_name: str) -> str:
    """The text of RESULTS.md."""
    lines = [
        "# minifw benchmark results",
        "",
        f"Written by `{' '.join(['python benchmarks/run.py', *argv])}` ({mode.name} run).",
        "Ratios compare medians of contenders timed side by side in one process, in interleaved",
        "blocks; float64 throughout.",
        "",
    ]
    if mode.name == "smoke":
        lines += ["**Smoke run: reduced sizes, not the issue's figures.**", ""]
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
              "## Scaling", "", f"![scaling curves]({plot_name})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; returns 0 (the results say pass or fail, the exit status does not)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does the suite run?")
    parser.add_argument("--out", default=str(HERE), metavar="DIR",
                        help="folder for RESULTS.md and scaling.png (default: %(default)s)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peers")
    parser.add_argument("--seed", type=int, default=0, help="seeds networks and data")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch, torch_note = (None, "not used (--no-torch)") if args.no_torch else torch_available()
    global SKIPPED
    SKIPPED = torch_note
    if torch is not None:
        torch.set_num_threads(threads())
    rng = onp.random.default_rng(args.seed)
    load_start = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"

    def say(what: str) -> None:
        print(f"[{mode.name}] {what}", flush=True)

    say("training step")
    figures = train_step(mode, rng, torch)
    say("tiny network")
    figures.append(tiny_gradient(mode, rng, torch))
    say("numerical gradient")
    numerical, bound_note = numerical_gradient(mode, rng)
    figures.append(numerical)
    say("check_grads")
    figures += check_grads_figures(mode, rng)
    say("check_layer")
    figures.append(check_layer_figure(mode, rng, torch))
    say("scaling")
    points = scaling(mode, rng)
    plot(points, out / "scaling.png")
    load_end = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"
    h, rtol, atol = default_tolerances("float64", 1.0)
    checks = [bound_note,
              f"gradient checks use h = {h:.3g}, rtol = {rtol:.3g}, atol = {atol:.3g} "
              "(minifw.gradcheck.default_tolerances)"]
    text = report(mode, figures, checks, environment(torch, torch_note), (load_start, load_end),
                  argv, "scaling.png")
    (out / "RESULTS.md").write_text(text)
    for fig in figures:
        ratio = "-" if fig.ratio is None else f"{fig.ratio:.3g}"
        verdict = "skipped" if fig.passed is None else "pass" if fig.passed else "FAIL"
        print(f"{ratio:>8}  {fig.goal:<8} {verdict:<7} {fig.name}")
    say(f"wrote {out / 'RESULTS.md'} and {out / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

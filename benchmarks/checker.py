"""The gradient checker on a user's own layer against the same maths built in, by size.

``tanh(x @ W + b)`` three ways: minifw's ``Linear`` and ``Tanh`` in a ``Sequential``; a
``Layer`` subclass whose forward pass is written with ``minifw.np`` (autograd traces it); and
an ``mf.primitive`` with hand-written VJPs, the user's case the checker exists for. Each is
checked by ``check_layer`` in full mode, beside ``torch.autograd.gradcheck`` in its fast mode
on the same function, at sizes from ``x`` 8x16 with ``W`` 16x16 to ``x`` 64x128 with ``W``
128x128.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as onp
from run import Figure, Mode, interleaved, median

import minifw as mf

np = mf.np

SIZES = {"full": ((8, 16), (16, 32), (32, 64), (64, 128)), "quick": ((8, 16), (32, 64)),
         "smoke": ((4, 8),)}


class UserTanh(mf.Layer):
    """``tanh(x @ W + b)`` written by a user with minifw.np: autograd traces it."""

    def __init__(self, n: int):
        self.n = n

    def init(self, rng: onp.random.Generator) -> dict[str, Any]:
        return {"W": rng.standard_normal((self.n, self.n)) / self.n ** 0.5,
                "b": onp.zeros(self.n)}

    def forward(self, params: dict[str, Any], x: Any) -> Any:
        return np.tanh(x @ params["W"] + params["b"])


@mf.primitive
def tanh_affine(x: Any, W: Any, b: Any) -> Any:
    """``tanh(x @ W + b)`` as one autograd primitive, its VJPs by hand."""
    return onp.tanh(x @ W + b)


def _local(ans: Any, g: Any) -> Any:
    return g * (1 - ans ** 2)


mf.defvjp(tanh_affine,
          lambda ans, x, W, b: lambda g: _local(ans, g) @ W.T,
          lambda ans, x, W, b: lambda g: x.T @ _local(ans, g),
          lambda ans, x, W, b: lambda g: _local(ans, g).sum(axis=0))


class PrimitiveTanh(UserTanh):
    """The same layer through the user's primitive."""

    def forward(self, params: dict[str, Any], x: Any) -> Any:
        return tanh_affine(x, params["W"], params["b"])


def points(mode: Mode, rng: onp.random.Generator, torch: Any) -> list[dict[str, float]]:
    """Seconds of each check at each size (``"torch"`` missing without PyTorch)."""
    out = []
    for batch, n in SIZES.get(mode.name, SIZES["quick"]):
        x = rng.standard_normal((batch, n))
        built = mf.Sequential(mf.Linear(n, n), mf.Tanh())
        params = built.init(rng)
        own = {"W": params["0"]["W"], "b": params["0"]["b"]}
        contenders: dict[str, Callable[[], Any]] = {
            "built-in": lambda built=built, x=x, p=params: mf.check_layer(built, x, params=p),
            "Layer": lambda n=n, x=x, p=own: mf.check_layer(UserTanh(n), x, params=p),
            "primitive": lambda n=n, x=x, p=own: mf.check_layer(PrimitiveTanh(n), x, params=p),
        }
        if torch is not None:
            args = [torch.tensor(a, requires_grad=True) for a in (x, own["W"], own["b"])]
            contenders["torch"] = lambda args=args: torch.autograd.gradcheck(
                lambda x, W, b: torch.tanh(x @ W + b), args, fast_mode=True)
        times = interleaved(contenders, max(1, mode.slow_rounds - 3), 1, warmup=0)
        out.append({"batch": batch, "n": n, "params": n * n + n,
                    **{k: median(v) for k, v in times.items()}})
    return out


def figures(found: list[dict[str, float]], torch_note: str) -> list[Figure]:
    """At each size: a user's layer (both forms) / the built-in; beyond 32x64, the user's
    primitive / torch gradcheck's fast mode (skipped, saying ``torch_note``, without it)."""
    out = []
    for p in found:
        size = f"x {p['batch']}x{p['n']}, W {p['n']}x{p['n']}"
        for form, what in (("Layer", "a Layer in minifw.np"), ("primitive", "an mf.primitive")):
            fig = Figure(f"check_layer full mode on tanh(x @ W + b), {size}, as {what}: minifw "
                         "/ the same maths built in", "<= 2", form, "built-in")
            fig.minifw_s, fig.peer_s = p[form], p["built-in"]
            out.append(fig)
        if p["batch"] * p["n"] > 32 * 64:
            fig = Figure(f"the same as an mf.primitive, {size}: minifw / torch.autograd.gradcheck"
                         " fast mode", "<= 1.0", "primitive", "torch")
            fig.minifw_s, fig.peer_s = p["primitive"], p.get("torch")
            fig.note = "" if "torch" in p else "skipped: " + torch_note
            out.append(fig)
    return out


def plot(found: list[dict[str, float]], path: Path) -> None:
    """The checker's time against the parameter count, log-log, one curve per contender."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    n = [p["params"] for p in found]
    for key, label in (("built-in", "minifw, built-in layers"), ("Layer", "minifw, Layer in "
                       "minifw.np"), ("primitive", "minifw, mf.primitive with its VJPs"),
                       ("torch", "torch gradcheck, fast mode")):
        if all(key in p for p in found):
            ax.loglog(n, [p[key] for p in found], "o-", label=label)
    ax.set(title="check_layer full mode on tanh(x @ W + b)", xlabel="parameters of W and b",
           ylabel="seconds")
    ax.set_xticks(n, [f"{p['batch']}x{p['n']}" for p in found])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

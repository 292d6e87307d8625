"""The peers minifw is measured against: hand-written NumPy, the per-element loop, PyTorch.

Each baseline is what a competent user would write without minifw: the book's two-layer
network with forward and backward passes by hand ("Deep Learning from Scratch", ch. 5), the
book's numerical gradient loop (ch. 4) over that network's plain NumPy loss, and PyTorch eager
in float64. They share minifw's parameters (copied), so every contender computes the same
numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as onp

Params = dict[str, Any]  # minifw's {"0": {"W", "b"}, "2": {"W", "b"}} of a two-layer network


class HandNet:
    """``Linear -> act -> ... -> Linear -> softmax cross-entropy`` with hand-written forward
    and backward passes ("Deep Learning from Scratch", ch. 5), on its own copies of the
    parameters, in their dtype.

    Arguments:
        params: minifw parameters of ``Sequential(Linear, act, Linear, ..., Linear)``, keyed
            "0", "2", ... (copied).
        activation: ``"relu"`` or ``"sigmoid"``.
    """

    def __init__(self, params: Params, activation: str = "relu"):
        keys = sorted(params, key=int)
        self.Ws = [params[k]["W"].copy() for k in keys]
        self.bs = [params[k]["b"].copy() for k in keys]
        self.activation = activation

    def _hidden(self, z: onp.ndarray) -> onp.ndarray:
        if self.activation == "relu":
            return onp.maximum(z, 0.0)
        return 1.0 / (1.0 + onp.exp(-z))

    def _forward(self, x: onp.ndarray) -> tuple[list[onp.ndarray], list[onp.ndarray]]:
        inputs, zs = [x], []
        for W, b in zip(self.Ws, self.bs):
            zs.append(inputs[-1] @ W + b)
            inputs.append(self._hidden(zs[-1]))
        return inputs[:-1], zs

    def loss(self, x: onp.ndarray, t: onp.ndarray) -> float:
        """The mean softmax cross-entropy for integer labels ``t``."""
        z = self._forward(x)[1][-1]
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - onp.log(onp.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[onp.arange(len(t)), t].mean())

    def gradient(self, x: onp.ndarray, t: onp.ndarray) -> tuple[float, list[onp.ndarray]]:
        """``(loss, [dW1, db1, dW2, db2, ...])`` by backpropagation."""
        batch = len(t)
        rows = onp.arange(batch)
        inputs, zs = self._forward(x)
        e = onp.exp(zs[-1] - zs[-1].max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        loss = -onp.log(p[rows, t]).mean()
        dz = p
        dz[rows, t] -= 1.0
        dz /= batch
        grads: list[onp.ndarray] = []
        for k in range(len(self.Ws) - 1, -1, -1):
            grads[:0] = [inputs[k].T @ dz, dz.sum(axis=0)]
            if k:
                dh = dz @ self.Ws[k].T
                h = inputs[k]
                dz = dh * (zs[k - 1] > 0) if self.activation == "relu" else dh * h * (1.0 - h)
        return float(loss), grads

    def step(self, x: onp.ndarray, t: onp.ndarray, lr: float) -> float:
        """One training step: the gradient, then ``W -= lr * dW`` for every array."""
        loss, grads = self.gradient(x, t)
        for p, g in zip(self.arrays(), grads):
            p -= lr * g
        return loss

    def arrays(self) -> list[onp.ndarray]:
        """The parameter arrays, in the order of minifw's leaves (0.W, 0.b, 2.W, 2.b, ...)."""
        return [a for pair in zip(self.Ws, self.bs) for a in pair]


class HandRule:
    """An optimizer's rule as the book writes it (``common/optimizer.py``): state updated in
    place, no checks. ``kind``: ``"sgd"``, ``"momentum"``, ``"adagrad"``, ``"rmsprop"`` or
    ``"adam"``, with minifw's default hyperparameters; ``update(arrays, grads)`` changes
    ``arrays`` in place.
    """

    def __init__(self, kind: str, lr: float = 0.001):
        self.kind, self.lr, self.t = kind, lr, 0
        self.state: dict[int, dict[str, onp.ndarray]] = {}

    def update(self, arrays: list[onp.ndarray], grads: list[onp.ndarray]) -> None:
        """One step for every pair."""
        lr, kind = self.lr, self.kind
        self.t += 1
        lr_t = lr * (1 - 0.999 ** self.t) ** 0.5 / (1 - 0.9 ** self.t)
        for i, (p, g) in enumerate(zip(arrays, grads)):
            s = self.state.setdefault(i, {})
            if kind == "sgd":
                p -= lr * g
            elif kind == "momentum":
                v = s.setdefault("v", onp.zeros_like(p))
                v *= 0.9
                v -= lr * g
                p += v
            elif kind in ("adagrad", "rmsprop"):
                h = s.setdefault("h", onp.zeros_like(p))
                if kind == "rmsprop":
                    h *= 0.99
                    h += 0.01 * g * g
                else:
                    h += g * g
                p -= lr * g / (onp.sqrt(h) + 1e-7)
            else:
                m = s.setdefault("m", onp.zeros_like(p))
                v = s.setdefault("v", onp.zeros_like(p))
                m += 0.1 * (g - m)
                v += 0.001 * (g ** 2 - v)
                p -= lr_t * m / (onp.sqrt(v) + 1e-8)


def loop_numerical_gradient(loss: Callable[[], float], arrays: list[onp.ndarray], h: float,
                            elements: list[tuple[int, tuple[int, ...]]] | None = None
                            ) -> dict[tuple[int, tuple[int, ...]], float]:
    """The book's numerical gradient: each element moved by ``+-s`` in place, ``loss()`` twice.

    The step is minifw's: ``s = h * max(1, |w|)``, and the quotient divides by the step
    actually taken, so the values are comparable with ``minifw.grad(f, "numerical")``.

    Arguments:
        loss: the loss of the current contents of ``arrays`` (it reads them).
        arrays: the parameter arrays, perturbed in place and restored.
        h: the step.
        elements: ``(array number, index)`` pairs to do (default: every element).

    Returns:
        The central difference of each element, by ``(array number, index)``.
    """
    if elements is None:
        elements = [(n, idx) for n, a in enumerate(arrays) for idx in onp.ndindex(a.shape)]
    out = {}
    for n, idx in elements:
        a = arrays[n]
        w = a[idx]
        s = h * max(1.0, abs(float(w)))
        up, down = w + s, w - s
        try:
            a[idx] = up
            f_up = loss()
            a[idx] = down
            f_down = loss()
        finally:
            a[idx] = w
        out[(n, idx)] = (f_up - f_down) / (float(up) - float(down))
    return out


def torch_available() -> tuple[Any, str]:
    """``(torch, "")`` if PyTorch imports, else ``(None, why not)``."""
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any failure to import means: skip the peer
        return None, f"PyTorch is not importable ({type(e).__name__}: {e})"
    return torch, ""


class TorchNet:
    """The same two-layer network in PyTorch eager, float64, trained with ``torch.optim.SGD``."""

    def __init__(self, torch: Any, params: Params, lr: float):
        self.torch = torch
        nn = torch.nn
        self.model = nn.Sequential(nn.Linear(*params["0"]["W"].shape), nn.ReLU(),
                                   nn.Linear(*params["2"]["W"].shape)).double()
        with torch.no_grad():
            for layer, key in ((self.model[0], "0"), (self.model[2], "2")):
                layer.weight.copy_(torch.from_numpy(params[key]["W"].T.copy()))
                layer.bias.copy_(torch.from_numpy(params[key]["b"].copy()))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)

    def step(self, x: Any, t: Any) -> Any:
        """One training step: zero the gradients, loss, backward, SGD update."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(x), t)
        loss.backward()
        self.opt.step()
        return loss


def torch_gradient(torch: Any, params: Params) -> Callable[[Any, Any], Any]:
    """``g(x, t) -> (loss, grads)`` of the two-layer ReLU network, functional PyTorch eager."""
    leaves = [torch.tensor(params[k][n], requires_grad=True) for k in ("0", "2") for n in "Wb"]
    W1, b1, W2, b2 = leaves
    F = torch.nn.functional

    def g(x: Any, t: Any) -> Any:
        loss = F.cross_entropy(torch.relu(x @ W1 + b1) @ W2 + b2, t)
        return loss, torch.autograd.grad(loss, leaves)

    return g

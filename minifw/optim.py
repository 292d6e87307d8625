"""Optimizers: ``opt.update(params, grads)`` changes the arrays of ``params`` in place.

One base, :class:`Optimizer`, checks the gradients (structure, shapes, finiteness) before
anything changes, keeps state per dotted parameter path, and hands each array to ``_rule``;
each optimizer is its rule, a few lines. Refused gradients leave ``params`` and the state as
they were.

>>> import numpy as onp
>>> params = {"w": onp.array([1.0, 2.0])}
>>> SGD(lr=0.5).update(params, {"w": onp.array([2.0, 2.0])})
>>> params["w"]
array([0., 1.])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as onp

from minifw.functions import NonFiniteError, all_finite
from minifw.gradients import METHODS, gradient
from minifw.tree import Tree, zip_like


def _real(value: Any) -> bool:
    # Python and NumPy real numbers (numpy.float32(0.1) included), but not True/False
    return isinstance(value, (int, float, onp.integer, onp.floating)) and not isinstance(
        value, (bool, onp.bool_))


def _squares_finite(*arrays: Any) -> bool:
    """Whether the sum of the squares of all elements is finite (one dot product each)."""
    total = 0.0
    for a in arrays:
        a = a if type(a) is onp.ndarray else onp.asarray(a)
        total += float(onp.vdot(a, a)) if a.dtype.kind == "f" else math.inf
    return math.isfinite(total)


def _new_values(ps: list[onp.ndarray], deltas: list[Any]) -> list[onp.ndarray]:
    """``p + delta`` for each pair, into ``delta`` itself when it is an array of the same shape
    and dtype (the rules' arrays are fresh: no copy)."""
    return [onp.add(p, d, out=d) if type(d) is onp.ndarray and d.shape == p.shape
            and d.dtype == p.dtype else p + d  # a 0-d parameter's step is a scalar
            for p, d in zip(ps, deltas)]


def gradient_then_update(optimizer: Any, f: Callable[..., Any], params: Tree, *args: Any,
                         method: str = "autograd") -> Any:
    """``value_and_grad(f, method)(params, *args)``, then ``optimizer.update(params, grads)``.

    The training step of any object with ``update(params, grads)`` (what
    :meth:`Optimizer.step` does without a shorter road); a value that is not finite raises
    :class:`~minifw.functions.NonFiniteError` before ``update`` is called. Returns the value.

    >>> import numpy as onp
    >>> p = {"w": onp.array([3.0])}
    >>> float(gradient_then_update(SGD(lr=0.5), lambda p: (p["w"] ** 2).sum(), p)), p["w"]
    (9.0, array([0.]))
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    value, grads = gradient(f, method, None, params, args, refuse=False)  # update checks them
    if not onp.isfinite(value):
        raise NonFiniteError(f"the loss is {value}")
    optimizer.update(params, grads)
    return value


def _positive(name: str, value: float) -> float:
    if not (_real(value) and onp.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _fraction(name: str, value: float) -> float:
    if not (_real(value) and 0 <= value < 1):
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)


class Optimizer:
    """Base of the optimizers: validation, per-path state, and the in-place update.

    Subclasses define ``_rule(state, g) -> delta``; ``state`` is this path's dict, and
    ``delta`` an array of its own (it is overwritten), never one the state keeps.
    """

    def __init__(self, lr: float):
        self.lr = _positive("lr", lr)
        self.state: dict[str, dict[str, Any]] = {}
        self.iterations = 0

    def update(self, params: Tree, grads: Tree) -> None:
        """Apply one step to every array of ``params`` (in place) from ``grads``.

        Arguments:
            params: the parameter tree; its arrays are changed in place.
            grads: gradients with exactly the structure and shapes of ``params``.

        Raises ``ValueError`` if the structure or a shape is wrong,
        :class:`~minifw.functions.NonFiniteError` (a ``ValueError``) if a value is NaN or
        infinite or the step would make a parameter or the optimizer's state overflow, and
        ``TypeError`` for arrays that are not real numbers. Then nothing has changed, neither
        ``params`` nor the state: every new value is computed and checked before the first is
        written.
        """
        triples = zip_like(params, grads, "gradients")
        states, deltas = {}, []
        with onp.errstate(over="ignore", invalid="ignore"):  # overflow is refused below
            for path, p, g in triples:
                g = g if type(g) is onp.ndarray else onp.asarray(g)
                if type(p) is not onp.ndarray and not isinstance(p, onp.ndarray) or (
                        p.dtype.kind != "f" or not p.flags.writeable):
                    raise TypeError(
                        f"parameter {path!r} must be a writeable float ndarray to update in "
                        f"place, got {type(p).__name__} {getattr(p, 'dtype', '')}")
                if g.dtype.kind not in "biuf":
                    raise TypeError(f"gradient at {path!r} must be a real numeric array, got "
                                    f"dtype {g.dtype}")
                state = self.state.get(path)
                state = dict(state) if state else {}  # the rules rebind, never mutate
                deltas.append(self._rule(state, g if g.dtype == p.dtype else g.astype(p.dtype)))
                if state:
                    states[path] = state
            ps = [p for _, p, _ in triples]
            kept = [v for state in states.values() for v in state.values()]
            if _squares_finite(*ps, *deltas, *kept):
                # every |value| is below 1.4e154, so each p + delta is finite: write in place
                self._take(states)
                for p, d in zip(ps, deltas):
                    p += d
                return
            values = _new_values(ps, deltas)
        if all_finite(*values, *kept):
            self._take(states)
            for p, new in zip(ps, values):
                onp.copyto(p, new)
            return
        for (path, p, g), new in zip(triples, values):  # the diagnosis
            state = states.get(path, {})
            if not (all_finite(new) and all(map(all_finite, state.values()))):
                self._refuse(path, p, g, new, state)

    def step(self, f: Callable[..., Any], params: Tree, *args: Any,
             method: str = "autograd") -> Any:
        """One training step: the gradient of ``f(params, *args)``, then :meth:`update`.

        The same as ``value, grads = value_and_grad(f, method)(params, *args)`` followed by
        ``self.update(params, grads)``, with the same errors, and nothing changed when one is
        raised; a value that is not finite raises :class:`~minifw.functions.NonFiniteError`
        before anything changes. Returns the value.

        >>> import numpy as onp, minifw as mf
        >>> f = lambda p, x: ((p["w"] - x) ** 2).sum()
        >>> p = {"w": onp.array([1.0, 2.0])}
        >>> float(SGD(lr=0.25).step(f, p, onp.zeros(2))), p["w"]
        (5.0, array([0.5, 1. ]))
        """
        return gradient_then_update(self, f, params, *args, method=method)

    def _take(self, states: dict[str, dict[str, Any]]) -> None:
        self.iterations += 1
        self.state.update(states)

    def _refuse(self, path: str, p: onp.ndarray, g: onp.ndarray, new: onp.ndarray,
                state: dict[str, Any]) -> None:
        # a NaN or inf in p, g or the state made the new value or the state non-finite
        if not onp.isfinite(g).all():
            raise NonFiniteError(f"gradient at {path!r} is not finite: "
                                 f"{onp.asarray(g).ravel()[:5]}")
        if not onp.isfinite(p).all():
            raise NonFiniteError(f"parameter {path!r} is not finite before the step: "
                                 f"{p.ravel()[~onp.isfinite(p.ravel())][:5]}")
        bad = [k for k, v in state.items() if not onp.isfinite(v).all()]
        if bad or not onp.isfinite(new).all():
            what = f"its state {bad[0]!r}" if bad else "the parameter"
            big = float(onp.abs(onp.asarray(g)).max()) if onp.size(g) else 0.0
            raise NonFiniteError(
                f"{type(self).__name__}: the step for {path!r} overflows {what} in {p.dtype} "
                f"(largest |gradient| {big:.3g}); lower the learning rate or scale the loss down"
            )

    def _rule(self, state: dict[str, Any], g: onp.ndarray) -> onp.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        hidden = ("state", "iterations")
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in hidden)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent: ``W -= lr * g``.

    >>> import numpy as onp
    >>> p = {"w": onp.array([1.0])}; SGD(lr=0.1).update(p, {"w": onp.array([1.0])}); p["w"]
    array([0.9])
    """

    def __init__(self, lr: float = 0.01):
        super().__init__(lr)

    def _rule(self, state: dict[str, Any], g: onp.ndarray) -> onp.ndarray:
        return -self.lr * g


class Momentum(Optimizer):
    """Momentum (Polyak 1964; the book's form): ``v = momentum * v - lr * g; W += v``."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9):
        super().__init__(lr)
        self.momentum = _fraction("momentum", momentum)

    def _rule(self, state: dict[str, Any], g: onp.ndarray) -> onp.ndarray:
        state["v"] = self.momentum * state.get("v", 0.0) - self.lr * g
        return state["v"].copy()


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011): ``h += g * g; W -= lr * g / (sqrt(h) + 1e-7)``."""

    def __init__(self, lr: float = 0.01):
        super().__init__(lr)

    def _rule(self, state: dict[str, Any], g: onp.ndarray) -> onp.ndarray:
        state["h"] = state.get("h", 0.0) + g * g
        return -self.lr * g / (onp.sqrt(state["h"]) + 1e-7)


class RMSProp(Optimizer):
    """RMSProp (Tieleman and Hinton 2012): ``h = d*h + (1-d)*g*g; W -= lr*g/(sqrt(h)+1e-7)``."""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99):
        super().__init__(lr)
        self.decay_rate = _fraction("decay_rate", decay_rate)

    def _rule(self, state: dict[str, Any], g: onp.ndarray) -> onp.ndarray:
        d = self.decay_rate
        state["h"] = d * state.get("h", 0.0) + (1 - d) * g * g
        return -self.lr * g / (onp.sqrt(state["h"]) + 1e-7)


class Adam(Optimizer):
    """Adam (Kingma and Ba 2015, Algorithm 1): bias-corrected moments, ``eps = 1e-8``.

    ``m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;``
    ``W -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1**t)``,
    ``v_hat = v / (1 - b2**t)``, ``t`` the step number from 1.

    >>> import numpy as onp
    >>> p = {"w": onp.array([1.0])}; Adam(lr=0.1).update(p, {"w": onp.array([5.0])}); p["w"]
    array([0.9])
    """

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__(lr)
        self.beta1 = _fraction("beta1", beta1)
        self.beta2 = _fraction("beta2", beta2)
        self.eps = _positive("eps", eps)

    def _rule(self, state: dict[str, Any], g: onp.ndarray) -> onp.ndarray:
        # t counts this path's own steps: a path first seen late starts its bias correction at 1
        state["t"] = t = state.get("t", 0) + 1
        b1, b2 = self.beta1, self.beta2
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        m_hat = state["m"] / (1 - b1**t)
        v_hat = state["v"] / (1 - b2**t)
        return -self.lr * m_hat / (onp.sqrt(v_hat) + self.eps)


#: The optimizers by name, for the command line.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "momentum": Momentum, "adagrad": AdaGrad, "rmsprop": RMSProp, "adam": Adam,
}

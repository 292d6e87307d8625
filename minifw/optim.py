"""Optimizers: ``opt.update(params, grads)`` changes the arrays of ``params`` in place.

One base, :class:`Optimizer`, checks the gradients (structure, shapes, finiteness) before
anything changes, keeps state per dotted parameter path, and hands each array to ``_rule``;
each optimizer is its rule, a few lines. Refused gradients leave ``params`` and the state as
they were.

Every optimizer also takes, in its base:

- ``lr``: a number, or a schedule, a function of the step count (``opt.iterations``, from
  0) returning the learning rate: :class:`StepDecay`, :class:`CosineDecay`,
  :class:`WarmUp`, or any ``Callable[[int], float]``.
- ``weight_decay``: L2 regularisation. *Coupled* for SGD, Momentum, AdaGrad and RMSProp
  (``weight_decay * W`` is added to the gradient before the rule, as the book's
  ``weight_decay_lambda``); *decoupled* for Adam (AdamW, Loshchilov and Hutter 2019:
  ``W -= lr * weight_decay * W`` beside the Adam step, not through its moments).
- ``clip_norm``: gradients rescaled, all together, so that their global L2 norm (over every
  array) is at most ``clip_norm`` (Pascanu et al. 2013), before weight decay and the rule.

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
from minifw.tree import Tree, leaves, zip_like


def _real(value: Any) -> bool:
    # Python and NumPy real numbers (numpy.float32(0.1) included), but not True/False
    return isinstance(value, (int, float, onp.integer, onp.floating)) and not isinstance(
        value, (bool, onp.bool_))


def _squares_finite(*arrays: Any) -> bool:
    """Whether the sum of the squares of all float elements is finite (one dot product per
    array; integers are finite; anything else counts as not)."""
    total = 0.0
    for a in arrays:
        a = a if type(a) is onp.ndarray else onp.asarray(a)
        kind = a.dtype.kind
        total += float(onp.vdot(a, a)) if kind == "f" else 0.0 if kind in "biu" else math.inf
    return math.isfinite(total)


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


def _non_negative(name: str, value: float) -> float:
    if not (_real(value) and onp.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _steps(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, onp.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number of steps >= 1, got {value!r}")
    return int(value)


#: A learning-rate schedule: the learning rate of step ``t`` (0 for the first step).
Schedule = Callable[[int], float]


class StepDecay:
    """``lr * gamma ** (t // step_size)``: the rate multiplied by ``gamma`` every
    ``step_size`` steps (PyTorch's ``StepLR``, counted in steps).

    >>> [StepDecay(0.1, step_size=2, gamma=0.5)(t) for t in range(5)]
    [0.1, 0.1, 0.05, 0.05, 0.025]
    """

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1):
        self.lr = _positive("StepDecay: lr", lr)
        self.step_size = _steps("StepDecay: step_size", step_size)
        self.gamma = _positive("StepDecay: gamma", gamma)

    def __call__(self, t: int) -> float:
        return self.lr * self.gamma ** (t // self.step_size)

    def __repr__(self) -> str:
        return f"StepDecay(lr={self.lr!r}, step_size={self.step_size}, gamma={self.gamma!r})"


class CosineDecay:
    """Cosine annealing from ``lr`` at step 0 to ``min_lr`` at ``total_steps`` (and after):
    ``min_lr + (lr - min_lr) (1 + cos(pi t / total_steps)) / 2`` (Loshchilov and Hutter
    2017, without restarts).

    >>> [round(CosineDecay(1.0, total_steps=4)(t), 3) for t in range(6)]
    [1.0, 0.854, 0.5, 0.146, 0.0, 0.0]
    """

    def __init__(self, lr: float, total_steps: int, min_lr: float = 0.0):
        self.lr = _positive("CosineDecay: lr", lr)
        self.total_steps = _steps("CosineDecay: total_steps", total_steps)
        self.min_lr = _non_negative("CosineDecay: min_lr", min_lr)
        if self.min_lr > self.lr:
            raise ValueError(f"CosineDecay: min_lr {min_lr!r} is above lr {lr!r}")

    def __call__(self, t: int) -> float:
        done = min(t, self.total_steps) / self.total_steps
        return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * done)) / 2

    def __repr__(self) -> str:
        return (f"CosineDecay(lr={self.lr!r}, total_steps={self.total_steps}, "
                f"min_lr={self.min_lr!r})")


class WarmUp:
    """A linear warm-up over the first ``steps`` steps: ``after(t) * (t + 1) / steps``, then
    ``after(t)`` (Goyal et al. 2017); ``after`` is a rate or another schedule.

    >>> [round(WarmUp(0.1, steps=4)(t), 6) for t in range(5)]
    [0.025, 0.05, 0.075, 0.1, 0.1]
    """

    def __init__(self, after: float | Schedule, steps: int):
        self.after: Schedule = after if callable(after) else _Constant(
            _positive("WarmUp: lr", after))
        self.steps = _steps("WarmUp: steps", steps)

    def __call__(self, t: int) -> float:
        rate = self.after(t)
        return rate * (t + 1) / self.steps if t < self.steps else rate

    def __repr__(self) -> str:
        return f"WarmUp({self.after!r}, steps={self.steps})"


class _Constant:
    def __init__(self, lr: float):
        self.lr = lr

    def __call__(self, t: int) -> float:
        return self.lr

    def __repr__(self) -> str:
        return repr(self.lr)


def global_norm(grads: Tree) -> float:
    """The L2 norm of all the arrays of ``grads`` together.

    >>> global_norm({"a": onp.array([3.0]), "b": {"c": onp.array([4.0])}})
    5.0
    """
    return math.sqrt(sum(float(onp.vdot(a, a)) for _, a in leaves(grads)))


def _fraction(name: str, value: float) -> float:
    if not (_real(value) and 0 <= value < 1):
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)


class _StepState(dict):  # type: ignore[type-arg]
    """A path's state during one step: a copy the rule rebinds to new arrays, which it takes
    from ``spare``, the arrays its state held two steps ago (no one else holds them).

    Reusing them matters: a large array made anew every step while the last one is still
    held gets fresh pages from the system each time, which cost more than the rule. For the
    same reason the rule's temporaries are ``scratch`` arrays, the path's own, reused step
    after step and never part of the state (an Adam training step of 784-100-10, batch 100:
    2285 us with fresh temporaries, 1635 us with these, the same bits).
    """

    __slots__ = ("spare", "pool")
    spare: dict[str, Any]
    pool: dict[str, Any]

    def new(self, name: str, like: onp.ndarray) -> onp.ndarray:
        """An array shaped like ``like`` for the entry ``name``, its old contents undefined."""
        a = self.spare.pop(name, None)
        if type(a) is onp.ndarray and a.shape == like.shape and a.dtype == like.dtype:
            return a
        return onp.empty_like(like)

    def scratch(self, name: str, like: onp.ndarray) -> onp.ndarray:
        """A temporary array shaped like ``like``, for this step only, its contents undefined."""
        a = self.pool.get(name)
        if type(a) is onp.ndarray and a.shape == like.shape and a.dtype == like.dtype:
            return a
        a = self.pool[name] = onp.empty_like(like)
        return a


class Optimizer:
    """Base of the optimizers: validation, per-path state, and the in-place update.

    Subclasses define ``_rule(state, g, lr) -> delta``; ``state`` is this path's dict, a copy
    that the rule rebinds (to new arrays, ``state.new(name, like)``: the kept state is never
    changed in place, so a refused step leaves it as it was), ``lr`` this step's learning
    rate, and ``delta`` the change of the parameter (it may be one of the state's new arrays).
    The arrays of ``opt.state`` are the optimizer's own: two steps later they are reused for
    new values, so copy what you keep. The rules' temporaries are up to two scratch arrays per
    parameter array (``state.scratch(name, like)``), kept between steps: memory for speed.
    ``decoupled = True`` applies ``weight_decay`` beside the rule (AdamW) instead of adding it
    to the gradient.

    Arguments:
        lr: the learning rate, or a schedule ``lr(t)`` of the step count ``t`` (from 0).
        weight_decay: the L2 coefficient (see the module: coupled or decoupled), ``>= 0``.
        clip_norm: the largest global L2 norm of the gradients (``None``: no clipping).
    """

    decoupled = False

    def __init__(self, lr: float | Schedule, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        self.lr: float | Schedule = lr if callable(lr) else _positive("lr", lr)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        self.clip_norm = None if clip_norm is None else _positive("clip_norm", clip_norm)
        self.state: dict[str, dict[str, Any]] = {}
        self.iterations = 0
        self._spare: dict[str, dict[str, Any]] = {}  # see _StepState
        self._scratch: dict[str, dict[str, Any]] = {}  # the rules' temporaries, per path

    def learning_rate(self) -> float:
        """The learning rate of the next step (the schedule at ``iterations``).

        >>> Momentum(lr=WarmUp(0.1, steps=2)).learning_rate()
        0.05
        """
        if not callable(self.lr):
            return self.lr
        lr = self.lr(self.iterations)
        if not (_real(lr) and onp.isfinite(lr) and lr >= 0):
            raise ValueError(f"the schedule {self.lr!r} gives the learning rate {lr!r} at step "
                             f"{self.iterations}; it must be a finite number >= 0")
        return float(lr)

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
        lr, decay = self.learning_rate(), self.weight_decay
        scale = 1.0
        if self.clip_norm is not None:
            with onp.errstate(over="ignore", invalid="ignore"):
                norm = global_norm(grads)
            # a non-finite norm leaves the gradients as they are, for the refusal below
            scale = self.clip_norm / norm if math.isfinite(norm) and norm > self.clip_norm else 1.0
        states, deltas, squares = {}, [], 0.0
        own, rule, coupled = self.state, self._rule, decay and not self.decoupled
        with onp.errstate(over="ignore", invalid="ignore"):  # overflow is refused below
            for path, p, g in triples:
                g = g if type(g) is onp.ndarray else onp.asarray(g)
                if not isinstance(p, onp.ndarray) or p.dtype.kind != "f" or (
                        not p.flags.writeable):
                    raise TypeError(
                        f"parameter {path!r} must be a writeable float ndarray to update in "
                        f"place, got {type(p).__name__} {getattr(p, 'dtype', '')}")
                dtype = p.dtype
                if g.dtype != dtype:
                    if g.dtype.kind not in "biuf":
                        raise TypeError(f"gradient at {path!r} must be a real numeric array, "
                                        f"got dtype {g.dtype}")
                    g = g.astype(dtype)
                state = _StepState(own.get(path) or ())  # the rules rebind, never mutate
                state.spare = self._spare.pop(path, {})
                state.pool = self._scratch.setdefault(path, {})
                if scale != 1.0:
                    g = g * dtype.type(scale)
                if coupled:
                    g = g + dtype.type(decay) * p
                delta = rule(state, g, lr)
                if decay and self.decoupled:
                    delta -= dtype.type(lr * decay) * p
                deltas.append(delta)
                squares += float(onp.vdot(p, p)) + float(onp.vdot(delta, delta))
                if state:
                    states[path] = state
            ps = [p for _, p, _ in triples]
            seen = {id(d) for d in deltas}  # a rule may return an array its state keeps
            kept = [v for state in states.values() for v in state.values() if id(v) not in seen]
            if math.isfinite(squares) and (not kept or _squares_finite(*kept)):
                # every |value| is below 1.4e154, so each p + delta is finite: write in place
                self._take(states)
                for p, d in zip(ps, deltas):
                    p += d
                return
            values = [p + d for p, d in zip(ps, deltas)]  # rare: a value to look at
        if all_finite(*values, *kept):
            self._take(states)
            for p, new in zip(ps, values):
                onp.copyto(p, new)
            return
        for (path, p, g), new in zip(triples, values):  # the diagnosis
            kept_here: dict[str, Any] = states.get(path) or {}
            if not (all_finite(new) and all(map(all_finite, kept_here.values()))):
                self._refuse(path, p, g, new, kept_here)

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

    def _take(self, states: dict[str, _StepState]) -> None:
        self.iterations += 1
        for path, state in states.items():
            old = self.state.get(path, {})
            self._spare[path] = {k: v for k, v in old.items() if v is not state.get(k)}
            self.state[path] = dict(state)

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

    def _rule(self, state: _StepState, g: onp.ndarray, lr: float) -> onp.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        hidden = ("state", "iterations", "_spare", "_scratch")
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in hidden)
        return f"{type(self).__name__}({args})"


def _scaled_step(state: _StepState, g: onp.ndarray, h: onp.ndarray, lr: float,
                 eps: float) -> onp.ndarray:
    """``-lr * g / (sqrt(h) + eps)``, AdaGrad's and RMSProp's step, in two scratch arrays."""
    denominator = onp.sqrt(h, out=state.scratch("tmp", g))
    denominator += eps
    step = onp.multiply(g, -lr, out=state.scratch("step", g))
    step /= denominator
    return step


def _times(state: _StepState, a: Any, c: float, like: onp.ndarray) -> Any:
    """``c * a`` in the path's scratch array ``"tmp"`` (a new array if ``a`` is not an array
    of the step's shape and dtype: the same values either way)."""
    if type(a) is onp.ndarray and a.dtype == like.dtype and a.shape == like.shape:
        return onp.multiply(a, c, out=state.scratch("tmp", like))
    return c * a


class SGD(Optimizer):
    """Stochastic gradient descent: ``W -= lr * g``; ``weight_decay`` is coupled (L2 added to
    ``g``), ``clip_norm`` and a schedule for ``lr`` as every optimizer (see the module).

    >>> import numpy as onp
    >>> p = {"w": onp.array([1.0])}; SGD(lr=0.1).update(p, {"w": onp.array([1.0])}); p["w"]
    array([0.9])
    >>> SGD(lr=0.1, weight_decay=0.5).update(p, {"w": onp.array([0.0])}); p["w"]
    array([0.855])
    """

    def __init__(self, lr: float | Schedule = 0.01, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(lr, weight_decay, clip_norm)

    def _rule(self, state: _StepState, g: onp.ndarray, lr: float) -> onp.ndarray:
        return onp.multiply(g, -lr, out=state.scratch("step", g))


class Momentum(Optimizer):
    """Momentum (Polyak 1964; the book's form): ``v = momentum * v - lr * g; W += v``.

    With ``nesterov=True``, Nesterov's accelerated gradient in the form of Sutskever et al.
    (2013) and PyTorch: the same ``v``, then ``W += momentum * v - lr * g``, the step taken
    from the point momentum leads to. ``weight_decay`` is coupled (L2 added to ``g``).

    >>> import numpy as onp
    >>> p = {"w": onp.array([1.0])}
    >>> Momentum(lr=0.1, momentum=0.5, nesterov=True).update(p, {"w": onp.array([1.0])})
    >>> p["w"]  # v = -0.1; W += 0.5 * v - 0.1
    array([0.85])
    """

    def __init__(self, lr: float | Schedule = 0.01, momentum: float = 0.9,
                 nesterov: bool = False, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(lr, weight_decay, clip_norm)
        self.momentum = _fraction("momentum", momentum)
        if not isinstance(nesterov, (bool, onp.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        self.nesterov = bool(nesterov)

    def _rule(self, state: _StepState, g: onp.ndarray, lr: float) -> onp.ndarray:
        old = state.get("v")
        v = onp.multiply(g, lr, out=state.new("v", g))
        kept = 0.0 if old is None else _times(state, old, self.momentum, g)
        state["v"] = v = onp.subtract(kept, v, out=v)
        if not self.nesterov:
            return v
        step = onp.multiply(v, self.momentum, out=state.scratch("step", g))
        step -= onp.multiply(g, lr, out=state.scratch("tmp", g))
        return step


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011): ``h += g * g; W -= lr * g / (sqrt(h) + 1e-7)``;
    ``weight_decay`` is coupled (L2 added to ``g``)."""

    def __init__(self, lr: float | Schedule = 0.01, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(lr, weight_decay, clip_norm)

    def _rule(self, state: _StepState, g: onp.ndarray, lr: float) -> onp.ndarray:
        h = onp.multiply(g, g, out=state.new("h", g))
        if "h" in state:
            h += state["h"]
        state["h"] = h
        return _scaled_step(state, g, h, lr, 1e-7)


class RMSProp(Optimizer):
    """RMSProp (Tieleman and Hinton 2012): ``h = d*h + (1-d)*g*g; W -= lr*g/(sqrt(h)+1e-7)``;
    ``weight_decay`` is coupled (L2 added to ``g``)."""

    def __init__(self, lr: float | Schedule = 0.01, decay_rate: float = 0.99,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(lr, weight_decay, clip_norm)
        self.decay_rate = _fraction("decay_rate", decay_rate)

    def _rule(self, state: _StepState, g: onp.ndarray, lr: float) -> onp.ndarray:
        h = onp.multiply(g, 1 - self.decay_rate, out=state.new("h", g))  # (1 - d) g^2 + d h
        h *= g
        if "h" in state:
            h += _times(state, state["h"], self.decay_rate, g)
        state["h"] = h
        return _scaled_step(state, g, h, lr, 1e-7)


class Adam(Optimizer):
    """Adam (Kingma and Ba 2015, Algorithm 1): bias-corrected moments, ``eps = 1e-8``.

    ``m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;``
    ``W -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1**t)``,
    ``v_hat = v / (1 - b2**t)``, ``t`` the step number from 1.

    ``weight_decay`` is *decoupled* (AdamW, Loshchilov and Hutter 2019):
    ``W -= lr * weight_decay * W`` beside the step, not added to ``g`` (where Adam's scaling
    would undo it for parameters with large gradients).

    >>> import numpy as onp
    >>> p = {"w": onp.array([1.0])}; Adam(lr=0.1).update(p, {"w": onp.array([5.0])}); p["w"]
    array([0.9])
    """

    decoupled = True

    def __init__(self, lr: float | Schedule = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(lr, weight_decay, clip_norm)
        self.beta1 = _fraction("beta1", beta1)
        self.beta2 = _fraction("beta2", beta2)
        self.eps = _positive("eps", eps)

    def _rule(self, state: _StepState, g: onp.ndarray, lr: float) -> onp.ndarray:
        # t counts this path's own steps: a path first seen late starts its bias correction at 1
        state["t"] = t = state.get("t", 0) + 1
        b1, b2 = self.beta1, self.beta2
        m = onp.multiply(g, 1 - b1, out=state.new("m", g))  # (1 - b) g + b m
        v = onp.multiply(g, 1 - b2, out=state.new("v", g))  # (1 - b) g^2 + b v
        v *= g
        if "m" in state:
            m += _times(state, state["m"], b1, g)
            v += _times(state, state["v"], b2, g)
        state["m"], state["v"] = m, v
        # -lr m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
        denominator = onp.divide(v, 1 - b2**t, out=state.scratch("tmp", g))
        onp.sqrt(denominator, out=denominator)
        denominator += self.eps
        step = onp.divide(m, 1 - b1**t, out=state.scratch("step", g))
        step *= -lr
        step /= denominator
        return step


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter 2019), ``weight_decay=0.01``
    by default as in PyTorch: exactly ``Adam(..., weight_decay=...)``.

    >>> import numpy as onp
    >>> p = {"w": onp.array([1.0])}; AdamW(lr=0.1).update(p, {"w": onp.array([5.0])}); p["w"]
    array([0.899])
    """

    def __init__(self, lr: float | Schedule = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01, clip_norm: float | None = None):
        super().__init__(lr, beta1, beta2, eps, weight_decay, clip_norm)


#: The optimizers by name, for the command line.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "momentum": Momentum, "adagrad": AdaGrad, "rmsprop": RMSProp, "adam": Adam,
    "adamw": AdamW,
}

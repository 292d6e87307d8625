"""A zoo of custom layers with ground truth: autograd primitives with hand-written VJPs.

Each case is one op (a NumPy forward pass and its VJPs, the way a learner writes a layer for
the book's chapter 5 or CS231n), a way to draw its inputs, and whether its VJPs are right.
The wrong ones carry the bugs that slip through: a missing factor or transpose, a sign, a
term left out, a bug in a small region beside a kink or at one smooth point, a relative
error of 1e-3. The inputs include values exactly at and within 1e-7 of kinks, ties in pooling
windows and sorts, and kinks packed at the offsets a checker might use. Every case runs in
float64 and in float32.

``cases()`` lists them; ``scalar(case, dtype)`` gives the function a checker checks,
``sum(op(*inputs) * G)`` with a fixed cotangent ``G``, and its inputs. ``tests/test_zoo.py``
holds minifw's checker to them; ``benchmarks/zoo.py`` counts its verdicts beside
``torch.autograd.gradcheck``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as onp
from numpy.lib.stride_tricks import sliding_window_view

import minifw as mf

H = 6.0554544523933395e-06  # minifw's default first step, eps**(1/3)


@dataclass(frozen=True)
class Case:
    name: str
    op: Callable[..., Any]  # an autograd primitive
    inputs: Callable[[onp.random.Generator], list[onp.ndarray]]
    correct: bool
    forward: Callable[..., Any]
    vjps: tuple[Any, ...]  # per argument: (g, ans, *args) -> gradient, or None


def op(name: str, forward: Callable[..., Any], *vjps: Any) -> tuple[Any, Callable, tuple]:
    """An autograd primitive from a forward pass and one VJP per argument."""
    prim = mf.primitive(forward)
    prim.__name__ = name

    def maker(k: int) -> Any:
        if vjps[k] is None:
            return None
        return lambda ans, *args: lambda g: vjps[k](g, ans, *args)

    mf.defvjp(prim, *[maker(k) for k in range(len(vjps))])
    return prim, forward, vjps


# --- the ops: forward passes and VJPs, right and wrong ----------------------------------------

def _affine(x, W, b):
    return x @ W + b


AFFINE = (_affine, lambda g, y, x, W, b: g @ W.T, lambda g, y, x, W, b: x.T @ g,
          lambda g, y, x, W, b: g.sum(0))
AFFINE_BUGS = {
    "dW transposed": (AFFINE[1], lambda g, y, x, W, b: (x.T @ g).T, AFFINE[3]),
    "db a mean": (AFFINE[1], AFFINE[2], lambda g, y, x, W, b: g.mean(0)),
    "dx off by 1e-3": (lambda g, y, x, W, b: 1.001 * (g @ W.T), AFFINE[2], AFFINE[3]),
    "dW off by 1e-3": (AFFINE[1], lambda g, y, x, W, b: 1.001 * (x.T @ g), AFFINE[3]),
}


def _sigmoid(x):
    return 1 / (1 + onp.exp(-x))


def _softmax(x):
    e = onp.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _norm(x, eps):
    mu = x.mean(0)
    var = ((x - mu) ** 2).mean(0)
    return (x - mu) / onp.sqrt(var + eps)


def _norm_vjp(g, y, x, eps, mean_term=True, var_term=True):
    n = x.shape[0]
    inv = 1 / onp.sqrt(((x - x.mean(0)) ** 2).mean(0) + eps)
    out = g * inv
    if mean_term:
        out = out - (g * inv).sum(0) / n
    if var_term:
        out = out - y * (g * y).sum(0) * inv / n
    return out


def _layer_norm(x):
    return _norm(x.T, 1e-5).T


def _layer_norm_vjp(g, y, x, var_term=True):
    return _norm_vjp(g.T, y.T, x.T, 1e-5, var_term=var_term).T


def _steep_layer_norm(x):
    return _norm(x.T, 1e-12).T


def _pool_windows(x):
    n, c, hh, ww = x.shape
    return x.reshape(n, c, hh // 2, 2, ww // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, hh // 2, ww // 2, 4)


def _unpool(cells, shape):
    n, c, hh, ww = shape
    return cells.reshape(n, c, hh // 2, ww // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def _maxpool(x):
    return _pool_windows(x).max(-1)


def _maxpool_vjp(g, y, x, everywhere=False):
    w = _pool_windows(x)
    if everywhere:
        mask = onp.ones_like(w)
    else:  # the first maximum of each window takes the gradient
        mask = onp.zeros_like(w)
        onp.put_along_axis(mask, w.argmax(-1)[..., None], 1.0, -1)
    return _unpool(mask * g[..., None], x.shape)


def _avgpool(x):
    return _pool_windows(x).mean(-1)


def _avgpool_vjp(g, y, x, scale=0.25):
    return _unpool(onp.repeat(g[..., None] * scale, 4, -1), x.shape)


def _conv(x, W, stride):
    p = sliding_window_view(x, W.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    return onp.einsum("nchwkl,fckl->nfhw", p, W)


def _conv_dW(g, y, x, W, stride):
    p = sliding_window_view(x, W.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    return onp.einsum("nchwkl,nfhw->fckl", p, g)


def _conv_dx(g, y, x, W, stride, flip=False):
    dx = onp.zeros_like(x)
    cols = onp.einsum("nfhw,fckl->nchwkl", g, W[..., ::-1, ::-1] if flip else W)
    oh, ow = g.shape[2:]
    for k in range(W.shape[2]):
        for j in range(W.shape[3]):
            dx[:, :, k:k + stride * oh:stride, j:j + stride * ow:stride] += cols[..., k, j]
    return dx


def _topk(x):
    return -onp.sort(-x, axis=-1)[..., :2]


def _topk_vjp(g, y, x, ascending=False):
    order = onp.argsort(x if ascending else -x, axis=-1, kind="stable")[..., :2]
    dx = onp.zeros_like(x)
    onp.put_along_axis(dx, order, g, -1)
    return dx


def _sort_vjp(g, y, x):
    dx = onp.zeros_like(x)
    onp.put_along_axis(dx, onp.argsort(x, axis=-1, kind="stable"), g, -1)
    return dx


def _attention(q, k, v):
    return _softmax(q @ k.T) @ v


def _attention_vjps(missing_transpose=False):
    def parts(g, y, q, k, v):
        a = _softmax(q @ k.T)
        da = g @ v.T
        ds = a * (da - (da * a).sum(-1, keepdims=True))
        return a, ds

    def dq(g, y, q, k, v):
        return parts(g, y, q, k, v)[1] @ k

    def dk(g, y, q, k, v):
        ds = parts(g, y, q, k, v)[1]
        return ds @ q if missing_transpose else ds.T @ q

    def dv(g, y, q, k, v):
        return parts(g, y, q, k, v)[0].T @ g

    return dq, dk, dv


def _residual(x, W):
    return x + onp.tanh(x @ W)


def _residual_vjps(skip=True):
    def dx(g, y, x, W):
        t = 1 - onp.tanh(x @ W) ** 2
        return (g if skip else 0) + (g * t) @ W.T

    def dW(g, y, x, W):
        return x.T @ (g * (1 - onp.tanh(x @ W) ** 2))

    return dx, dW


def _embed(E, idx):
    return E[idx]


def _embed_vjp(g, y, E, idx, accumulate=True):
    dE = onp.zeros_like(E)
    if accumulate:
        onp.add.at(dE, idx, g)
    else:
        dE[idx] = g
    return dE


def _ce(z, labels):
    p = _softmax(z)
    return -onp.log(p[onp.arange(len(labels)), labels]).mean()


def _ce_vjp(g, y, z, labels, softmax=True):
    p = _softmax(z) if softmax else onp.exp(z)
    p[onp.arange(len(labels)), labels] -= 1
    return g * p / len(labels)


def _hinge(y, t):
    return onp.maximum(0, 1 - y * t).sum()


def _hinge_vjp(g, out, y, t, sign=-1.0):
    return g * sign * t * (1 - y * t > 0)


# --- inputs ----------------------------------------------------------------------------------

def normal(*shape: int) -> Callable[[onp.random.Generator], onp.ndarray]:
    return lambda rng: rng.standard_normal(shape)


def with_values(shape: tuple[int, ...], values: list[float]) -> Callable[..., onp.ndarray]:
    """Normal values with ``values`` written over the first elements: kinks, ties, offsets."""
    def draw(rng: onp.random.Generator) -> onp.ndarray:
        x = rng.standard_normal(shape)
        flat = x.reshape(-1)
        flat[:len(values)] = values
        return x
    return draw


def ties(shape: tuple[int, ...]) -> Callable[[onp.random.Generator], onp.ndarray]:
    """Small whole numbers: many exact ties in every window and row."""
    return lambda rng: rng.integers(-2, 3, shape).astype(onp.float64)


def near(shape: tuple[int, ...], at: float, within: float) -> Callable[..., onp.ndarray]:
    """Values within ``within`` of ``at`` (on both sides) and exactly at it."""
    def draw(rng: onp.random.Generator) -> onp.ndarray:
        x = at + within * rng.uniform(-1, 1, shape)
        x.reshape(-1)[0] = at
        return x
    return draw


def labels(n: int, k: int) -> Callable[[onp.random.Generator], onp.ndarray]:
    return lambda rng: rng.integers(0, k, n)


def mask(*shape: int) -> Callable[[onp.random.Generator], onp.ndarray]:
    return lambda rng: rng.random(shape) < 0.6


def const(value: Any) -> Callable[[onp.random.Generator], Any]:
    return lambda rng: onp.array(value)


def _draws(*makers: Callable[..., Any]) -> Callable[[onp.random.Generator], list[Any]]:
    return lambda rng: [m(rng) for m in makers]


KINK_VALUES = [0.0, 1e-7, -1e-7, 1e-9, -1e-12]
PACKED = [0.0, H / 2, -H / 2, 2 * H, -2 * H, 8 * H, -8 * H, 32 * H, -32 * H]


def _elementwise(name: str, forward: Callable, good: Callable, bugs: dict[str, Callable],
                 inputs: dict[str, Callable]) -> list[Case]:
    """An elementwise op: right on every input kind, and each bug on the first input kind."""
    out = []
    prim, fwd, vjps = op(name, forward, lambda g, y, x: good(g, y, x))
    for kind, draw in inputs.items():
        out.append(Case(f"{name}, {kind}", prim, _draws(draw), True, fwd, vjps))
    first = next(iter(inputs.values()))
    for bug, vjp in bugs.items():
        prim, fwd, vjps = op(f"{name} ({bug})", forward, lambda g, y, x, vjp=vjp: vjp(g, y, x))
        out.append(Case(f"{name}: {bug}", prim, _draws(bugs_inputs.get((name, bug), first)),
                        False, fwd, vjps))
    return out


bugs_inputs: dict[tuple[str, str], Callable] = {
    ("relu", "mask x > 1e-6"): near((3, 4), 5e-7, 4.9e-7),
    ("sigmoid", "wrong only at 0"): with_values((3, 4), [0.0, 0.0]),
    ("abs", "gradient 1 at 0 and below"): with_values((3, 4), [0.0, -0.5]),
}


def _multi(name: str, forward: Callable, good: tuple, bugs: dict[str, tuple],
           inputs: dict[str, Callable[[onp.random.Generator], list[Any]]]) -> list[Case]:
    out = []
    prim, fwd, vjps = op(name, forward, *good)
    for kind, draw in inputs.items():
        out.append(Case(f"{name}, {kind}", prim, draw, True, fwd, vjps))
    first = next(iter(inputs.values()))
    for bug, vjps_bad in bugs.items():
        prim, fwd, vjps = op(f"{name} ({bug})", forward, *vjps_bad)
        out.append(Case(f"{name}: {bug}", prim, first, False, fwd, vjps))
    return out


def cases() -> list[Case]:
    """Every case of the zoo (float64 inputs; :func:`scalar` casts)."""
    relu_good = lambda g, y, x: g * (x > 0)  # noqa: E731
    sig = _sigmoid
    zoo: list[Case] = []
    zoo += _elementwise("relu", lambda x: onp.maximum(x, 0), relu_good, {
        "mask x > 1e-6": lambda g, y, x: g * (x > 1e-6),
        "leaks below 0": lambda g, y, x: g * onp.where(x > 0, 1.0, 0.01),
    }, {"random": normal(3, 4), "at and beside 0": with_values((3, 4), KINK_VALUES),
        "within 1e-7 of 0": near((3, 4), 0.0, 1e-7)})
    zoo += _elementwise("leaky relu", lambda x: onp.where(x > 0, x, 0.1 * x),
                        lambda g, y, x: g * onp.where(x > 0, 1.0, 0.1), {
        "no alpha below 0": lambda g, y, x: g * (x > 0),
    }, {"random": normal(3, 4), "at and beside 0": with_values((3, 4), KINK_VALUES)})
    zoo += _elementwise("sigmoid", sig, lambda g, y, x: g * y * (1 - y), {
        "wrong only at 0": lambda g, y, x: g * onp.where(x == 0, 0.5, y * (1 - y)),
        "sign flipped": lambda g, y, x: -g * y * (1 - y),
    }, {"random": normal(3, 4), "at 0": with_values((3, 4), [0.0, 0.0])})
    zoo += _elementwise("steep sigmoid", lambda x: sig(x / 1e-4),
                        lambda g, y, x: g * y * (1 - y) / 1e-4, {
        "missing 1/1e-4": lambda g, y, x: g * y * (1 - y),
    }, {"near 0": lambda rng: 1e-4 * rng.standard_normal((3, 4))})
    zoo += _elementwise("tanh", onp.tanh, lambda g, y, x: g * (1 - y * y), {
        "1 - y, not 1 - y^2": lambda g, y, x: g * (1 - y),
    }, {"random": normal(3, 4)})
    zoo += _elementwise("abs", onp.abs, lambda g, y, x: g * onp.sign(x), {
        "gradient 1 at 0 and below": lambda g, y, x: g * onp.where(x > 0, 1.0, 1.0),
    }, {"random": normal(3, 4), "at and beside 0": with_values((3, 4), KINK_VALUES)})
    zoo += _elementwise("huber", lambda x: onp.where(onp.abs(x) < 1, 0.5 * x * x,
                                                     onp.abs(x) - 0.5),
                        lambda g, y, x: g * onp.clip(x, -1, 1), {
        "no clip": lambda g, y, x: g * x,
    }, {"random, wide": lambda rng: 3 * rng.standard_normal((3, 4)),
        "at +-1": with_values((3, 4), [1.0, -1.0, 1 + 1e-8])})
    zoo += _elementwise("clip", lambda x: onp.clip(x, -1, 1),
                        lambda g, y, x: g * (onp.abs(x) < 1), {
        "passes everything": lambda g, y, x: g * onp.ones_like(x),
    }, {"random, wide": lambda rng: 2 * rng.standard_normal((3, 4)),
        "at +-1": with_values((3, 4), [1.0, -1.0, 1 - 1e-9])})
    zoo += _elementwise("square", onp.square, lambda g, y, x: 2 * g * x, {
        "off by one element": lambda g, y, x: 2 * g * x + (onp.arange(x.size).reshape(
            x.shape) == 3) * g,
    }, {"random": normal(3, 4)})
    zoo += _elementwise("exp", onp.exp, lambda g, y, x: g * y, {
        "off by 1e-3": lambda g, y, x: 1.001 * g * y,
    }, {"random": normal(3, 4)})
    zoo += _elementwise("sort", lambda x: onp.sort(x, axis=-1), _sort_vjp, {
        "routes by the wrong order": lambda g, y, x: _sort_vjp(g, y, -x),
    }, {"random": normal(3, 4), "kinks packed at a checker's offsets": lambda rng: onp.array(
        PACKED + [0.0, H, -H]).reshape(3, 4), "ties": ties((3, 4))})
    zoo += _elementwise("softmax", _softmax,
                        lambda g, y, x: y * (g - (g * y).sum(-1, keepdims=True)), {
        "missing the sum term": lambda g, y, x: y * g,
    }, {"random": normal(3, 4)})
    zoo += _elementwise("batch norm", lambda x: _norm(x, 1e-5),
                        lambda g, y, x: _norm_vjp(g, y, x, 1e-5), {
        "missing the mean term": lambda g, y, x: _norm_vjp(g, y, x, 1e-5, mean_term=False),
        "missing the variance term": lambda g, y, x: _norm_vjp(g, y, x, 1e-5, var_term=False),
    }, {"random": normal(5, 3)})
    zoo += _elementwise("layer norm", _layer_norm, _layer_norm_vjp, {
        "missing the variance term": lambda g, y, x: _layer_norm_vjp(g, y, x, var_term=False),
    }, {"random": normal(3, 5)})
    zoo += _elementwise("layer norm, eps 1e-12", _steep_layer_norm,
                        lambda g, y, x: _norm_vjp(g.T, y.T, x.T, 1e-12).T, {},
                        {"inputs near 1e-4": lambda rng: 1e-4 * rng.standard_normal((3, 5))})
    zoo += _elementwise("max pool 2x2", _maxpool, _maxpool_vjp, {
        "routes to all four cells": lambda g, y, x: _maxpool_vjp(g, y, x, everywhere=True),
    }, {"random": normal(2, 2, 4, 4), "ties": ties((2, 2, 4, 4))})
    zoo += _elementwise("avg pool 2x2", _avgpool, _avgpool_vjp, {
        "missing 1/4": lambda g, y, x: _avgpool_vjp(g, y, x, scale=1.0),
    }, {"random": normal(2, 2, 4, 4)})
    zoo += _elementwise("top-2", _topk, _topk_vjp, {
        "routes to the two smallest": lambda g, y, x: _topk_vjp(g, y, x, ascending=True),
    }, {"random": normal(3, 5), "ties": ties((3, 5))})

    zoo += _multi("affine", *AFFINE[:1], AFFINE[1:], AFFINE_BUGS, {
        "random": _draws(normal(4, 4), normal(4, 4), normal(4)),
        "inputs at 0": _draws(with_values((4, 4), [0.0] * 8), normal(4, 4), normal(4))})
    for stride in (1, 2):
        def conv(x, W, s=stride):
            return _conv(x, W, s)

        zoo += _multi(f"conv 3x3 stride {stride}", conv, (
            lambda g, y, x, W, s=stride: _conv_dx(g, y, x, W, s),
            lambda g, y, x, W, s=stride: _conv_dW(g, y, x, W, s)), {
            "dx with the filter flipped": (
                lambda g, y, x, W, s=stride: _conv_dx(g, y, x, W, s, flip=True),
                                 lambda g, y, x, W, s=stride: _conv_dW(g, y, x, W, s)),
            "dW of the flipped filter": (
                lambda g, y, x, W, s=stride: _conv_dx(g, y, x, W, s),
                lambda g, y, x, W, s=stride: _conv_dW(g, y, x, W, s)[..., ::-1, ::-1]),
        }, {"random": _draws(normal(2, 2, 6, 6), normal(3, 2, 3, 3))})
    zoo += _multi("attention", _attention, _attention_vjps(), {
        "dK missing a transpose": _attention_vjps(missing_transpose=True)},
        {"random": _draws(normal(4, 4), normal(4, 4), normal(4, 4))})
    zoo += _multi("residual tanh", _residual, _residual_vjps(), {
        "missing the skip gradient": _residual_vjps(skip=False)},
        {"random": _draws(normal(3, 4), lambda rng: 0.5 * rng.standard_normal((4, 4)))})
    zoo += _multi("dropout (mask given)", lambda x, m: x * m / 0.6,
                  (lambda g, y, x, m: g * m / 0.6, None), {
                      "missing 1/keep": (lambda g, y, x, m: g * m, None)},
                  {"random": _draws(normal(3, 4), mask(3, 4))})
    zoo += _multi("embedding", _embed, (_embed_vjp, None), {
        "overwrites repeated rows": (lambda g, y, E, i: _embed_vjp(g, y, E, i, False), None)},
        {"random": _draws(normal(5, 3), lambda rng: onp.array([0, 2, 2, 4, 0, 1]))})
    zoo += _multi("cross entropy (labels)", _ce, (_ce_vjp, None), {
        "exp instead of softmax": (lambda g, y, z, t: _ce_vjp(g, y, z, t, softmax=False),
                                   None)},
        {"random": _draws(normal(4, 3), labels(4, 3)),
         "ties in the logits": _draws(ties((4, 3)), labels(4, 3))})
    zoo += _multi("hinge", _hinge, (_hinge_vjp, None), {
        "sign flipped": (lambda g, o, y, t: _hinge_vjp(g, o, y, t, sign=1.0), None)},
        {"random": _draws(normal(3, 4), lambda rng: rng.choice([-1, 1], (3, 4))),
         "at the margin": _draws(lambda rng: onp.ones((3, 4)) * onp.array([1.0, -1.0, 0.5, 2.0]),
                                 lambda rng: onp.ones((3, 4), int) * onp.array([1, -1, 1, 1]))})
    return zoo


def scalar(case: Case, dtype: Any, seed: int = 0) -> tuple[Callable[..., Any], dict[str, Any]]:
    """``f(tree) = sum(op(*tree) * G)`` and the tree of inputs (floats cast to ``dtype``)."""
    rng = onp.random.default_rng(seed)
    args = [onp.asarray(a) for a in case.inputs(rng)]
    args = [a.astype(dtype) if a.dtype.kind == "f" else a for a in args]
    y = case.forward(*args)
    G = rng.standard_normal(onp.shape(y)).astype(dtype)
    names = [f"arg{k}" for k in range(len(args))]

    def f(tree: dict[str, Any]) -> Any:
        return mf.np.sum(case.op(*[tree[n] for n in names]) * G)

    return f, dict(zip(names, args))

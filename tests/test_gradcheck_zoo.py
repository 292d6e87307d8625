"""The checker's power: deliberately wrong VJPs fail in both modes, naming the right path."""

import numpy as onp
import pytest

import minifw as mf
from minifw import np


def _layer(forward):
    return type("Custom", (mf.Layer,), {"forward": lambda self, p, x: forward(p, x)})()


# --- the zoo: each a primitive with a hand-written VJP that is wrong in one way -----------------

@mf.primitive
def tanh_sign_bug(x):
    return onp.tanh(x)


# wrong sign on part of the domain: the VJP is negated for x < 0
mf.defvjp(tanh_sign_bug, lambda ans, x: lambda g: g * (1 - ans**2) * onp.where(x < 0, -1, 1))


@mf.primitive
def sigmoid_missing_factor(x):
    return 1 / (1 + onp.exp(-x))


# a missing factor: d sigmoid = s (1 - s), written as s
mf.defvjp(sigmoid_missing_factor, lambda ans, x: lambda g: g * ans)


@mf.primitive
def matmul_transposed(x, W):
    return x @ W


# a transposed matrix: g @ W where g @ W.T is right (shapes agree for a square W)
mf.defvjp(matmul_transposed, lambda ans, x, W: lambda g: g @ W,
          lambda ans, x, W: lambda g: x.T @ g)


@mf.primitive
def affine_bias_bug(x, W, b):
    return x @ W + b


# a bug in one parameter's VJP only: the bias gradient counts the batch twice
mf.defvjp(affine_bias_bug, lambda ans, x, W, b: lambda g: g @ W.T,
          lambda ans, x, W, b: lambda g: x.T @ g,
          lambda ans, x, W, b: lambda g: 2 * g.sum(axis=0))


@mf.primitive
def square_off_by_one(x):
    return x**2


def _off_by_one(ans, x):
    def vjp(g):
        right = 2 * x * g
        return onp.concatenate([right[..., 1:2], right[..., 1:]], axis=-1)  # index 0 reads 1
    return vjp


mf.defvjp(square_off_by_one, _off_by_one)


class Dense(mf.Layer):
    """A user's dense layer over a given affine primitive."""

    def __init__(self, n, op):
        self.n, self.op = n, op

    def init(self, rng):
        return {"W": rng.standard_normal((self.n, self.n)), "b": rng.standard_normal(self.n)}

    def forward(self, p, x):
        return self.op(x, p["W"], p["b"])


ZOO = {
    "wrong sign on part of the domain": (_layer(lambda p, x: tanh_sign_bug(x)), {"x"}),
    "missing factor": (_layer(lambda p, x: sigmoid_missing_factor(x)), {"x"}),
    "transposed matrix": (Dense(4, lambda x, W, b: matmul_transposed(x, W) + b), {"x"}),
    "bug in one parameter's VJP": (Dense(4, affine_bias_bug), {"b"}),
    "off-by-one element": (_layer(lambda p, x: square_off_by_one(x)), {"x"}),
}


@pytest.mark.parametrize("mode", mf.gradcheck.MODES)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_wrong_vjp_fails_naming_the_path(name, mode):
    layer, wrong = ZOO[name]
    x = onp.random.default_rng(5).standard_normal((3, 4))
    report = mf.check_layer(layer, x, mode=mode, rng=0)
    assert not report.ok
    assert {r.path for r in report.rows if not r.ok} == wrong, str(report)
    # how it knows: f is differentiable there (D- = D+) and autograd says otherwise
    assert "the gradient is wrong" in str(report) and "D- = " in str(report)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_wrong_vjp_fails_the_property_check(name):
    layer, _ = ZOO[name]
    assert not mf.testing.check_layer_property(layer, max_examples=20, in_features=4).ok


@pytest.mark.parametrize("name", sorted(ZOO))
def test_wrong_vjp_fails_in_float32(name):
    layer, wrong = ZOO[name]
    x = onp.random.default_rng(6).standard_normal((3, 4)).astype(onp.float32)
    params = {k: v.astype(onp.float32) for k, v in layer.init(onp.random.default_rng(0)).items()}
    report = mf.check_layer(layer, x, params, mode="full")
    assert report.dtype == "float32"
    assert {r.path for r in report.rows if not r.ok} == wrong, str(report)


def test_the_fixed_versions_pass():
    fixed = _layer(lambda p, x: np.tanh(x) + 1 / (1 + np.exp(-x)) + x**2)
    for mode in mf.gradcheck.MODES:
        assert mf.check_layer(fixed, onp.linspace(-2, 2, 12).reshape(3, 4), mode=mode).ok


def test_assert_grads_close_raises_with_the_table():
    def f(x):
        return np.sum(sigmoid_missing_factor(x))

    with pytest.raises(AssertionError) as info:
        mf.assert_grads_close(f, onp.array([0.5, -1.0]))
    assert "FAIL" in str(info.value) and "path" in str(info.value)
    mf.assert_grads_close(lambda x: np.sum(np.tanh(x)), onp.array([0.5, -1.0]))

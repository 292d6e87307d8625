"""BatchNorm and Dropout in each mode: their values by definition, their gradients against the
checker (both check modes, both dtypes, drawn shapes and values), a wrong backward pass planted
in each caught (batch norm without its mean term too), and the three gradient sources
agreeing in a training step."""

import contextlib

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from image_helpers import DTYPES, cast, images, plant, scaled

import minifw as mf
from minifw import gradcheck
from minifw.layers import dropout, norm
from minifw.tree import leaves

RNG = onp.random.default_rng


def _moments(x):
    axes = (0, *range(2, x.ndim))
    shape = [1, x.shape[1]] + [1] * (x.ndim - 2)
    return x.mean(axis=axes).reshape(shape), x.var(axis=axes).reshape(shape), shape


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2, 5)])
def test_batch_norm_by_the_batch_and_by_the_running_statistics(shape):
    rng = RNG(0)
    x = rng.standard_normal(shape) * 3 + 1
    layer = mf.BatchNorm(3, eps=1e-5)
    params = {"gamma": rng.standard_normal(3), "beta": rng.standard_normal(3)}
    mean, var, s = _moments(x)
    g, b = params["gamma"].reshape(s), params["beta"].reshape(s)
    onp.testing.assert_allclose(layer(params, x), g * (x - mean) / onp.sqrt(var + 1e-5) + b,
                                rtol=1e-12, atol=1e-12)
    state = {"mean": rng.standard_normal(3), "var": rng.random(3) + 0.5}
    with mf.evaluation(state):
        y = layer(params, x)
    want = g * (x - state["mean"].reshape(s)) / onp.sqrt(state["var"].reshape(s) + 1e-5) + b
    onp.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


@st.composite
def batch_norm_cases(draw, dtype):
    """``(BatchNorm, x)``: 2-D ``(N, F)`` or 4-D ``(N, C, H, W)`` inputs, batches of 2-4."""
    C = draw(st.integers(1, 3))
    tail = draw(st.sampled_from([(), (1, 2), (2, 2)]))
    x = draw(images((draw(st.integers(2, 4)), C, *tail), dtype))
    return mf.BatchNorm(C), x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
@pytest.mark.parametrize("where", ["no block", "training", "evaluation"])
@given(case=st.data(), seed=st.integers(0, 2**16))
def test_batch_norm_passes_the_checker(where, mode, dtype, case, seed):
    layer, x = case.draw(batch_norm_cases(dtype))
    rng = RNG(seed)
    C = layer.num_features
    params = cast({"gamma": rng.standard_normal(C), "beta": rng.standard_normal(C)}, dtype)
    state = {"mean": rng.standard_normal(C), "var": rng.random(C) + 0.1}
    block = {"no block": contextlib.nullcontext, "training": lambda: mf.training(rng, state),
             "evaluation": lambda: mf.evaluation(state)}[where]
    with block():
        report = mf.check_layer(layer, x, params, mode=mode, rng=seed)
    assert report.ok, str(report)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
@given(data=st.data(), rate=st.sampled_from([0.1, 0.5, 0.9]), seed=st.integers(0, 2**16))
def test_dropout_in_training_passes_the_checker(mode, dtype, data, rate, seed):
    shape = data.draw(st.sampled_from([(3, 4), (2, 2, 3, 3)]))
    x = data.draw(images(shape, dtype))
    with mf.training(RNG(seed)):
        report = mf.check_layer(mf.Dropout(rate), x, mode=mode, rng=seed)
    assert report.ok, str(report)


def test_dropout_draws_one_mask_per_block_from_its_generator():
    layer, x = mf.Dropout(0.25), onp.ones((400, 50))
    onp.testing.assert_array_equal(layer({}, x), x)  # no block: the identity
    with mf.evaluation():
        assert layer({}, x) is x
    with mf.training(RNG(7)):
        first, again = layer({}, x), layer({}, 2 * x)
    assert set(onp.unique(first)) == {0.0, 1 / 0.75}
    assert abs((first == 0).mean() - 0.25) < 0.01
    onp.testing.assert_array_equal(again, 2 * first)  # the same mask within the block
    with mf.training(RNG(7)):
        onp.testing.assert_array_equal(layer({}, x), first)  # the generator decides it all
    with mf.training(RNG(8)):
        assert not onp.array_equal(layer({}, x), first)
    with mf.training(RNG(0)):
        assert layer({}, x.astype(onp.float32)).dtype == onp.float32
        with pytest.raises(ValueError, match="same training block"):
            layer({}, onp.ones((3, 50)))


# --- planted bugs ----------------------------------------------------------------------------


def _missing_mean_term(g, y, x, gamma, beta, needs, eps, spatial):
    # the classic slip: dx as if the batch mean did not depend on x
    axes = norm._axes(spatial)
    x_hat, inv_std = norm._standardised(x, eps, spatial)
    sum_gx = (g * x_hat).sum(axis=axes, keepdims=True)
    gx = norm._per_channel(gamma, spatial) * inv_std * (g - x_hat * sum_gx / (x.size // gamma.size))
    return gx, sum_gx.reshape(gamma.shape), g.sum(axis=axes).reshape(beta.shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
@pytest.mark.parametrize("bug", ["1e-3 too big", "no mean term", "eval 1e-3 too big",
                                 "dropout 1e-3 too big"])
def test_a_wrong_backward_is_caught(bug, mode, dtype, monkeypatch):
    if bug == "no mean term":
        monkeypatch.setattr(norm.BATCH_NORM, "backward", _missing_mean_term)
    else:
        op = {"1e-3 too big": norm.BATCH_NORM, "eval 1e-3 too big": norm.NORMALISE,
              "dropout 1e-3 too big": dropout.DROPOUT}[bug]
        plant(monkeypatch, op, lambda right: scaled(right, 1e-3))
    rng = RNG(2)
    x = rng.standard_normal((3, 2, 2, 2)).astype(dtype)
    params = cast({"gamma": rng.standard_normal(2) + 1, "beta": rng.standard_normal(2)}, dtype)
    layer = mf.BatchNorm(2)
    if bug.startswith("dropout"):
        layer, params = mf.Dropout(0.5), {}
    state = {"mean": rng.standard_normal(2), "var": rng.random(2) + 0.5}
    with mf.evaluation(state) if bug.startswith("eval") else mf.training(rng, state):
        report = mf.check_layer(layer, x, params, mode=mode, rng=0)
    assert not report.ok, str(report)


# --- a training step: three sources --------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_three_sources_agree_in_a_training_step(dtype):
    model = mf.Sequential(mf.Conv2D(1, 2, 3, padding=1), mf.BatchNorm(2), mf.ReLU(),
                          mf.MaxPool2D(2), mf.Flatten(), mf.Dropout(0.3),
                          mf.Linear(8, 3, weight_init="xavier"))  # the init the test was made on
    rng = RNG(5)
    params = cast(model.init(rng), dtype)
    x, t = rng.standard_normal((4, 1, 4, 4)).astype(dtype), onp.array([0, 2, 1, 1])

    def f(p, x, t):
        return mf.SoftmaxCrossEntropy()(model(p, x), t)

    with mf.training(RNG(6), model.init_state()) as run:
        a, r, n = (mf.grad(f, method=m)(params, x, t) for m in ("autograd", "trace",
                                                               "numerical"))
        report = mf.check_grads(f, params, x, t)
    assert report.ok, str(report)
    tol = 1e-12 if dtype == onp.float64 else 2e-5
    for (path, ga), (_, gr), (_, gn) in zip(leaves(a), leaves(r), leaves(n)):
        scale = max(1.0, float(onp.abs(gr).max()))
        assert onp.abs(ga - gr).max() <= tol * scale, path
        assert onp.abs(ga - gn).max() <= (1e-6 if dtype == onp.float64 else 3e-2) * scale, path
    assert sorted(run.state) == ["1"]


# --- errors ----------------------------------------------------------------------------------


def test_bad_inputs_settings_and_states_are_named():
    layer = mf.BatchNorm(3)
    params = layer.init(RNG(0))
    with pytest.raises(ValueError, match=r"\(N, 3\) or \(N, 3, H, W\), got shape \(2, 4\)"):
        layer(params, onp.ones((2, 4)))
    with pytest.raises(ValueError, match="empty batch"):
        layer(params, onp.ones((0, 3)))
    with mf.evaluation(layer.init_state()):
        assert layer(params, onp.ones((0, 3))).shape == (0, 3)  # by the running statistics
    with pytest.raises(ValueError, match="gamma"):
        layer({"gamma": onp.ones(2), "beta": onp.ones(3)}, onp.ones((2, 3)))
    with mf.evaluation({}), pytest.raises(ValueError, match="no entry in the evaluation state"):
        layer(params, onp.ones((2, 3)))
    with mf.evaluation({"mean": onp.zeros(2), "var": onp.ones(2)}), pytest.raises(
            ValueError, match="running statistics"):
        layer(params, onp.ones((2, 3)))
    for bad in (lambda: mf.BatchNorm(0), lambda: mf.BatchNorm(3, momentum=1.5),
                lambda: mf.BatchNorm(3, eps=0.0), lambda: mf.Dropout(1.0),
                lambda: mf.Dropout(-0.1)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(TypeError):
        mf.Dropout("0.5")

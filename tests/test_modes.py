"""minifw.modes: training and evaluation blocks, the state they read and return, the paths a
Sequential keeps, and what a block costs when none is active (nothing)."""

import numpy as onp
import pytest

import minifw as mf
from minifw import modes
from minifw.layers import sequential

RNG = onp.random.default_rng


def _model():
    inner = mf.Sequential(mf.Linear(4, 4), mf.BatchNorm(4), mf.Dropout(0.5))
    return mf.Sequential(mf.Linear(3, 4), mf.BatchNorm(4), inner, mf.Dropout(0.5),
                         mf.Linear(4, 2))


def test_init_state_is_keyed_like_params():
    model = _model()
    state = model.init_state()
    assert list(state) == ["1", "2"] and list(state["2"]) == ["1"]
    onp.testing.assert_array_equal(state["2"]["1"]["var"], onp.ones(4))
    assert mf.Linear(2, 3).init_state() == {} and mf.Dropout().init_state() == {}


def test_a_training_block_returns_new_running_statistics_and_changes_nothing():
    model = _model()
    params, state = model.init(RNG(0)), model.init_state()
    before = {k: v.copy() for k, v in state["1"].items()}
    x = RNG(1).standard_normal((16, 3)) * 2 + 1
    with mf.training(RNG(2), state) as run:
        model(params, x)
        model(params, x + 100.0)  # a later evaluation in the block does not count
    new = run.state
    onp.testing.assert_array_equal(state["1"]["mean"], before["mean"])  # the caller's: as it was
    z = x @ params["0"]["W"] + params["0"]["b"]
    onp.testing.assert_allclose(new["1"]["mean"], 0.1 * z.mean(axis=0), rtol=1e-12)
    onp.testing.assert_allclose(new["1"]["var"], 0.9 + 0.1 * z.var(axis=0), rtol=1e-12)
    assert sorted(new["2"]) == ["1"]  # the inner Sequential's BatchNorm, at path 2.1
    with mf.training(RNG(2), new) as run2:
        model(params, x)
    onp.testing.assert_allclose(run2.state["1"]["mean"], 0.19 * z.mean(axis=0), rtol=1e-12)


def test_evaluation_uses_the_state_and_no_dropout():
    model = _model()
    params = model.init(RNG(0))
    x = RNG(1).standard_normal((6, 3))
    with mf.training(RNG(2), model.init_state()) as run:
        trained = model(params, x)
    with mf.evaluation(run.state):
        a = model(params, x)
        b = model(params, x[:1])  # sample by sample: no batch statistics
    onp.testing.assert_allclose(b, a[:1], rtol=1e-12)
    assert not onp.allclose(a, trained)
    plain = model(params, x)  # outside any block: batch statistics, no dropout
    with mf.evaluation(run.state):
        assert not onp.allclose(model(params, x), plain)


def test_each_call_site_draws_its_own_mask_and_keeps_it_in_the_block():
    layer = mf.Dropout(0.5)
    model = mf.Sequential(layer, layer)  # one layer object at two places: two masks
    x = onp.ones((50, 40))
    with mf.training(RNG(0)) as run:
        y = model({}, x)
        assert sorted(run.masks) == ["0", "1"]
        m0, m1 = run.masks["0"], run.masks["1"]
        onp.testing.assert_array_equal(y, m0 * m1)
        onp.testing.assert_array_equal(model({}, x), y)
        # the numerical gradient evaluates f many times, with these very masks
        g = mf.grad(lambda w: mf.np.sum(model({}, x * w)), method="numerical")(onp.ones(40))
    onp.testing.assert_allclose(g, (m0 * m1).sum(axis=0), rtol=1e-8)


def test_paths_are_kept_only_while_a_block_is_active(monkeypatch):
    seen = []

    class Where(mf.Layer):
        ops_only = True

        def forward(self, params, x):
            m = modes.active()
            seen.append(None if m is None else m.where())
            return x

    model = mf.Sequential(mf.Linear(2, 2), mf.Sequential(Where(), mf.ReLU(), Where()))
    params = model.init(RNG(0))
    x = onp.ones((3, 2))
    model(params, x)
    mf.grad(lambda p: mf.np.sum(model(p, x)))(params)
    with mf.training(RNG(0)):
        model(params, x)
        mf.grad(lambda p: mf.np.sum(model(p, x)))(params)  # the fused road keeps them too
    with mf.evaluation():
        model(params, x)
    assert seen == [None] * 4 + ["1.0", "1.2"] * 3
    # the fused road (one op for the whole chain) is taken with and without a block
    runs = []
    right = sequential._run
    monkeypatch.setattr(sequential, "_run", lambda *a: runs.append(a[-1]) or right(*a))
    mf.grad(lambda p: mf.np.sum(model(p, x)))(params)
    with mf.training(RNG(0)) as run:
        mf.grad(lambda p: mf.np.sum(model(p, x)))(params)
    assert runs == [None, None, run, run]  # the model, then its inner Sequential


def test_blocks_refuse_bad_arguments_and_nesting():
    with pytest.raises(TypeError, match="Generator"):
        with mf.training(0):
            pass
    with pytest.raises(TypeError, match="state must be a dict"):
        with mf.evaluation([1.0]):
            pass
    with mf.training(RNG(0)), pytest.raises(RuntimeError, match="do not nest"):
        with mf.evaluation():
            pass
    assert modes.active() is None


def test_a_batch_norm_called_alone_keeps_its_state_at_the_root():
    layer = mf.BatchNorm(2)
    x = RNG(0).standard_normal((8, 2))
    with mf.training(RNG(0), layer.init_state()) as run:
        layer(layer.init(RNG(0)), x)
    onp.testing.assert_allclose(run.state["mean"], 0.1 * x.mean(axis=0))


def test_state_is_saved_and_loaded_beside_the_params(tmp_path):
    model = _model()
    params = model.init(RNG(0))
    with mf.training(RNG(1), model.init_state()) as run:
        model(params, RNG(2).standard_normal((5, 3)))
    mf.save(tmp_path / "run.npz", {"params": params, "state": run.state})
    back = mf.load(tmp_path / "run.npz")
    onp.testing.assert_array_equal(back["state"]["2"]["1"]["mean"], run.state["2"]["1"]["mean"])
    x = RNG(3).standard_normal((4, 3))
    with mf.evaluation(back["state"]):
        y = model(back["params"], x)
    with mf.evaluation(run.state):
        onp.testing.assert_array_equal(y, model(params, x))

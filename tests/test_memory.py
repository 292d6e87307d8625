"""No reference cycles on the paths a training loop runs every step.

Arrays held by a reference cycle live until the garbage collector's next run: a cycle that
holds a step's gradients keeps dozens of gradients alive at once, and the memory churn this
causes made every training step a third slower (a recursive closure in ``tree.zip_like`` did
exactly that). Each test runs the path with the collector off and then asks it how many
unreachable objects it finds: the answer must be 0 (for ``load``, none of minifw's own: the
standard library's header parser leaves some).
"""

from __future__ import annotations

import gc

import numpy as onp
import pytest

import minifw as mf
from minifw.optim import OPTIMIZERS


@pytest.fixture
def no_collector():
    gc.collect()
    gc.disable()
    try:
        yield
        assert gc.collect() == 0, "the calls left objects that only the collector frees"
    finally:
        gc.enable()


def _net():
    rng = onp.random.default_rng(0)
    model = mf.Sequential(mf.Linear(4, 8), mf.ReLU(), mf.Linear(8, 3))
    x, t = rng.standard_normal((5, 4)), onp.array([0, 1, 2, 1, 0])
    return model, model.init(rng), x, t


def _plain(model):
    return lambda p, x, t: mf.SoftmaxCrossEntropy()(model(p, x), t)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("method", ["autograd", "numerical"])
def test_gradient_and_update_steps(optimizer, method, no_collector):
    model, params, x, t = _net()
    f = _plain(model)
    vg, opt = mf.value_and_grad(f, method=method), OPTIMIZERS[optimizer]()
    for _ in range(3):
        _, grads = vg(params, x, t)
        opt.update(params, grads)
        opt.step(f, params, x, t, method=method)


def test_fit(no_collector):
    model, params, x, t = _net()
    mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.SGD(lr=0.1), params, x, t, epochs=2,
           batch_size=2, rng=onp.random.default_rng(1))


@pytest.mark.parametrize("mode", ["full", "projection"])
def test_check_grads(mode, no_collector):
    model, params, x, t = _net()
    assert mf.check_grads(_plain(model), params, x, t, mode=mode).ok


def test_refused_update(no_collector):
    _, params, _, _ = _net()
    grads = {k: {n: onp.full_like(a, onp.nan) for n, a in v.items()} for k, v in params.items()}
    with pytest.raises(ValueError, match="finite"):
        mf.optim.SGD().update(params, grads)


def test_save(tmp_path, no_collector):
    _, params, _, _ = _net()
    params["empty"] = {}
    mf.save(tmp_path / "params.npz", params)


def test_load_makes_no_cycles_of_its_own(tmp_path):
    # numpy's .npy header parser (ast.literal_eval) leaves cycles of its own closures: only
    # minifw's functions are held to it here
    _, params, _, _ = _net()
    params["empty"] = {}
    mf.save(tmp_path / "params.npz", params)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        loaded = mf.load(tmp_path / "params.npz")
        gc.collect()
        ours = [o for o in gc.garbage
                if callable(o) and getattr(o, "__module__", "").startswith("minifw")]
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()
    assert list(loaded) == list(params) and loaded["empty"] == {}
    assert not ours, ours

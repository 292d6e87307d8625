"""Every correct combination passes: every activation x every loss, random shapes and values
(with values exactly at and beside kinks), both modes, float64 and float32."""

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minifw as mf
from minifw import testing
from minifw.layers import ACTIVATIONS
from minifw.losses import LOSSES


def _params_and_input(problem):
    """Differentiate in the parameters and in the input, so kinks at the input count too."""
    tree = {"net": problem["params"], "x": problem["x"]}

    def f(tree, t):
        return problem["f"](tree["net"], tree["x"], t)

    return f, tree


@pytest.mark.parametrize("mode", mf.gradcheck.MODES)
@given(problem=testing.problems())
def test_correct_networks_pass(problem, mode):
    f, tree = _params_and_input(problem)
    report = mf.check_grads(f, tree, problem["t"], mode=mode, rng=0)
    assert report.ok, str(report)


@pytest.mark.parametrize("mode", mf.gradcheck.MODES)
@given(problem=testing.problems(dtype=onp.float32))
def test_correct_float32_networks_pass(problem, mode):
    f, tree = _params_and_input(problem)
    report = mf.check_grads(f, tree, problem["t"], mode=mode, rng=0)
    assert report.dtype == "float32"
    assert report.ok, str(report)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("mode", mf.gradcheck.MODES)
@given(data=st.data())
def test_every_activation_with_every_loss(activation, loss, mode, data):
    """The full grid, each cell a property: act -> Linear -> act -> Linear [-> softmax] -> loss."""
    act = ACTIVATIONS[activation]
    layers = [act(), mf.Linear(3, 4), act(), mf.Linear(4, 3)]
    if loss == "cross_entropy":
        layers.append(mf.Softmax())
    model, loss_fn = mf.Sequential(*layers), LOSSES[loss]()
    params = model.init(onp.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
    batch = data.draw(st.integers(1, 4))
    x = data.draw(testing.arrays((batch, 3)))
    if loss in ("cross_entropy", "softmax_cross_entropy"):
        t = data.draw(st.lists(st.integers(0, 2), min_size=batch, max_size=batch).map(onp.array))
    else:
        t = data.draw(testing.arrays((batch, 3)))
    report = mf.check_grads(lambda p, t: loss_fn(model(p["net"], p["x"]), t),
                            {"net": params, "x": x}, t, mode=mode, rng=1)
    # a correct network never fails; where the drawn values (0 and 1e-9 side by side) put
    # several kinks within rounding's reach of an element, the checker may instead say that
    # it cannot decide, and why (docs/gradcheck.md); no row may say "wrong"
    assert all(row.ok or row.undecided and not row.failures and "undecided" in row.verdict
               for row in report.rows), str(report)


@pytest.mark.parametrize("mode", mf.gradcheck.MODES)
@given(layer=testing.activations(), x=testing.arrays(max_dims=3))
def test_activation_layers_pass_at_kinks(layer, x, mode):
    report = mf.check_layer(layer, x, mode=mode, rng=2)
    assert report.ok, str(report)


@pytest.mark.parametrize("mode", mf.gradcheck.MODES)
@given(x=st.lists(st.sampled_from(testing.KINK_VALUES), min_size=1, max_size=6).map(onp.array))
def test_inputs_exactly_at_and_beside_kinks(x, mode):
    for layer in (mf.ReLU(), mf.LeakyReLU(0.1), mf.Step()):
        report = mf.check_layer(layer, x[None, :], mode=mode, rng=3)
        assert report.ok, str(report)


def test_relu_network_with_batch_of_100_passes_where_naive_check_fails():
    """The issue's case: 64-32-10 ReLU network, batch 100; naive h=1e-4 errors exceed 1.

    Initialised as it was then (Xavier), so that the case stays the issue's own."""
    rng = onp.random.default_rng(0)
    model = mf.Sequential(mf.Linear(64, 32, weight_init="xavier"), mf.ReLU(),
                          mf.Linear(32, 10, weight_init="xavier"))
    params = model.init(rng)
    x, t = rng.standard_normal((100, 64)), rng.integers(0, 10, 100)

    def f(p, x, t):
        return mf.SoftmaxCrossEntropy()(model(p, x), t)

    a = mf.grad(f)(params, x, t)["0"]["W"]
    n = mf.numerical.numerical_gradient(lambda p: f(p, x, t), params)["0"]["W"]
    naive = onp.abs(a - n) / onp.maximum(onp.abs(a), onp.abs(n))
    assert naive.max() > 1  # the naive check would fail this correct network
    for h in (None, 1e-4):  # the checker's own step, and the book's
        for mode in mf.gradcheck.MODES:
            report = mf.check_grads(f, params, x, t, mode=mode, h=h, rng=0)
            assert report.ok, str(report)


def test_kinks_are_counted():
    x = onp.array([[0.0, 0.0, 1.0, -1.0]])
    report = mf.check_layer(mf.ReLU(), x)
    assert report.ok and report.rows[0].kinks == 2 and report.kinks == 2

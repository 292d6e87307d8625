"""Layers: Linear (shapes, initialisations, forward, hand-written VJPs), activations, Sequential."""

import autograd
import numpy as onp
import pytest

import minifw as mf
from minifw import functions as F


def rng(seed=0):
    return onp.random.default_rng(seed)


# --- Linear: parameters -----------------------------------------------------------------------


def test_linear_params_shapes_and_dtypes():
    params = mf.Linear(3, 5).init(rng())
    assert sorted(params) == ["W", "b"]
    assert params["W"].shape == (3, 5) and params["b"].shape == (5,)
    assert params["W"].dtype == onp.float64 and params["b"].dtype == onp.float64
    assert onp.all(params["b"] == 0)


# Sample standard deviation of N normal draws has relative standard error 1 / sqrt(2N):
# N = 400 * 500 = 2e5 gives 1.6e-3, so 1% is a 6-sigma bound; the mean's standard error is
# std / sqrt(N) = std * 2.2e-3, so |mean| < 0.015 std is 6.7 sigma.
@pytest.mark.parametrize("init, std", [
    ("book", 0.01),
    ("xavier", 1 / onp.sqrt(400)),
    ("he", onp.sqrt(2 / 400)),
    (0.3, 0.3),
])
def test_weight_init_standard_deviation(init, std):
    W = mf.Linear(400, 500, weight_init=init).init(rng(1))["W"]
    assert W.std() == pytest.approx(std, rel=0.01)
    assert abs(W.mean()) < 0.015 * std


@pytest.mark.parametrize("init, scale", [
    ("book", 0.01), ("xavier", 1 / onp.sqrt(3)), ("he", onp.sqrt(2 / 3)),
])
def test_weight_init_is_scale_times_standard_normal_from_the_generator(init, scale):
    # the book's W = 0.01 * randn(in, out), with randn the given Generator's standard_normal
    W = mf.Linear(3, 2, weight_init=init).init(rng(5))["W"]
    onp.testing.assert_allclose(W, scale * rng(5).standard_normal((3, 2)), rtol=1e-15)


def test_default_init_is_he_as_the_command_line_uses_before_relu():
    W = mf.Linear(400, 500).init(rng(1))["W"]
    assert W.std() == pytest.approx(onp.sqrt(2 / 400), rel=0.01)
    assert mf.Linear(400, 500).weight_init == "he"


def test_init_is_deterministic_by_seed_and_uses_the_generator():
    layer = mf.Linear(4, 3)
    a, b = layer.init(rng(7)), layer.init(rng(7))
    assert a["W"].tobytes() == b["W"].tobytes()
    assert not onp.array_equal(layer.init(rng(8))["W"], a["W"])
    # the generator is consumed: two draws from one generator differ
    g = rng(7)
    first, second = layer.init(g)["W"], layer.init(g)["W"]
    assert first.tobytes() == a["W"].tobytes()
    assert not onp.array_equal(first, second)


def test_init_leaves_global_numpy_random_alone():
    state = onp.random.get_state()
    mf.Sequential(mf.Linear(3, 4), mf.ReLU(), mf.Linear(4, 2)).init(rng(0))
    after = onp.random.get_state()
    assert state[0] == after[0] and onp.array_equal(state[1], after[1]) and state[2:] == after[2:]


@pytest.mark.parametrize("args", [(0, 3), (3, 0), (-1, 2), (2.5, 3), (True, 3)])
def test_linear_refuses_bad_widths(args):
    with pytest.raises(ValueError, match="features"):
        mf.Linear(*args)


def test_linear_refuses_unknown_init():
    with pytest.raises(ValueError, match="weight_init.*glorot"):
        mf.Linear(2, 3, weight_init="glorot")


# --- Linear: forward and gradients ------------------------------------------------------------


def test_linear_forward_is_x_at_W_plus_b():
    layer = mf.Linear(3, 2)
    params = {"W": onp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), "b": onp.array([0.5, -1.0])}
    x = onp.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    # by hand: row 0 = [1 - 5, 2 - 6] + b; row 1 = [2 + 3, 4 + 4] + b
    assert layer(params, x).tolist() == [[-3.5, -5.0], [5.5, 7.0]]
    assert layer(params, x[0]).tolist() == [-3.5, -5.0]  # one sample, 1-D


def test_linear_accepts_integer_inputs():
    layer = mf.Linear(2, 1)
    params = {"W": onp.array([[0.5], [0.25]]), "b": onp.array([0.0])}
    assert layer(params, onp.array([[1, 2]])).tolist() == [[1.0]]


def test_linear_acts_on_last_axis_with_leading_axes():
    layer = mf.Linear(3, 4)
    params = layer.init(rng(2))
    x = rng(3).standard_normal((2, 5, 3))
    y = layer(params, x)
    assert y.shape == (2, 5, 4)
    for i in range(2):
        for j in range(5):
            expected = onp.einsum("k,kl->l", x[i, j], params["W"]) + params["b"]
            onp.testing.assert_allclose(y[i, j], expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("x_shape", [(3,), (4, 3), (2, 5, 3)])
def test_linear_gradients_match_closed_forms(x_shape):
    # f = sum(G * (x @ W + b)): df/dW = sum over rows of x^T G, df/db = sum of G, df/dx = G W^T
    layer = mf.Linear(3, 2)
    params = layer.init(rng(4))
    params["b"] = rng(5).standard_normal(2)
    x = rng(6).standard_normal(x_shape)
    G = rng(7).standard_normal(x_shape[:-1] + (2,))

    def f(p, x):
        return (G * layer(p, x)).sum()

    gp = autograd.grad(f, 0)(params, x)
    gx = autograd.grad(f, 1)(params, x)
    xr, Gr = x.reshape(-1, 3), G.reshape(-1, 2)
    # the same sums in another order: rel 1e-12
    onp.testing.assert_allclose(gp["W"], onp.einsum("ri,rj->ij", xr, Gr), rtol=1e-12)
    onp.testing.assert_allclose(gp["b"], Gr.sum(axis=0), rtol=1e-12)
    onp.testing.assert_allclose(gx, onp.einsum("...j,ij->...i", G, params["W"]), rtol=1e-12)
    assert gp["W"].shape == (3, 2) and gp["b"].shape == (2,) and gx.shape == x_shape


def test_wrong_input_width_names_the_widths():
    layer = mf.Linear(3, 2)
    params = layer.init(rng())
    with pytest.raises(ValueError, match=r"3.*\(2, 4\)"):
        layer(params, onp.ones((2, 4)))
    with pytest.raises(ValueError, match=r"3.*\(\)"):
        layer(params, 1.0)


def test_wrong_parameter_shapes_are_named():
    layer = mf.Linear(3, 2)
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        layer({"W": onp.ones((2, 3)), "b": onp.zeros(2)}, onp.ones((1, 3)))


# --- activation layers ------------------------------------------------------------------------

ACTS = [
    (mf.Identity(), F.identity),
    (mf.Step(), F.step),
    (mf.Sigmoid(), F.sigmoid),
    (mf.Tanh(), F.tanh),
    (mf.ReLU(), F.relu),
    (mf.LeakyReLU(), F.leaky_relu),
    (mf.LeakyReLU(alpha=0.2), lambda x: F.leaky_relu(x, 0.2)),
    (mf.Softmax(), F.softmax),
]


@pytest.mark.parametrize("layer, f", ACTS, ids=lambda v: repr(v) if isinstance(v, mf.Layer) else "")
def test_activation_layers_are_their_functions_with_no_params(layer, f):
    x = rng(8).standard_normal((2, 3, 4)) * 3
    assert layer.init(rng()) == {}
    y = layer({}, x)
    assert y.shape == x.shape
    assert onp.array_equal(y, f(x))


def test_leaky_relu_layer_uses_alpha():
    assert mf.LeakyReLU(alpha=0.25)({}, onp.array([-4.0, 4.0])).tolist() == [-1.0, 4.0]
    assert mf.LeakyReLU()({}, onp.array([-100.0])).tolist() == [-1.0]


# --- Layer base and Sequential ----------------------------------------------------------------


def test_sequential_keys_by_position_without_paramless_layers():
    model = mf.Sequential(mf.Linear(2, 3), mf.ReLU(), mf.Linear(3, 1))
    params = model.init(rng())
    assert list(params) == ["0", "2"]
    assert params["0"]["W"].shape == (2, 3) and params["2"]["W"].shape == (3, 1)
    assert mf.Sequential(mf.ReLU(), mf.Softmax()).init(rng()) == {}


def test_sequential_forward_is_the_composition():
    l0, l2 = mf.Linear(2, 3), mf.Linear(3, 2)
    model = mf.Sequential(l0, mf.Tanh(), l2, mf.Softmax())
    params = model.init(rng(9))
    x = rng(10).standard_normal((4, 2))
    expected = F.softmax(F.tanh(x @ params["0"]["W"] + params["0"]["b"]) @ params["2"]["W"]
                         + params["2"]["b"])
    onp.testing.assert_allclose(model(params, x), expected, rtol=1e-13)


def test_sequential_accepts_empty_dicts_for_paramless_layers():
    model = mf.Sequential(mf.Linear(2, 2), mf.ReLU())
    params = model.init(rng())
    x = onp.ones((1, 2))
    assert onp.array_equal(model(params, x), model({**params, "1": {}}, x))


def test_sequential_acts_on_last_axis_with_leading_axes():
    model = mf.Sequential(mf.Linear(3, 4), mf.Sigmoid(), mf.Linear(4, 2))
    params = model.init(rng(11))
    x = rng(12).standard_normal((2, 5, 3))
    y = model(params, x)
    assert y.shape == (2, 5, 2)
    onp.testing.assert_allclose(y[1, 3], model(params, x[1, 3]), rtol=1e-13)


def test_sequential_init_draws_layers_in_order_from_one_generator():
    a, b = mf.Linear(2, 3), mf.Linear(3, 2)
    params = mf.Sequential(a, mf.ReLU(), b).init(rng(5))
    g = rng(5)
    assert onp.array_equal(params["0"]["W"], a.init(g)["W"])
    assert onp.array_equal(params["2"]["W"], b.init(g)["W"])


def test_sequential_refuses_non_layers():
    with pytest.raises(TypeError, match="item 1"):
        mf.Sequential(mf.ReLU(), lambda p, x: x)


class Scale(mf.Layer):
    """A custom layer with one parameter, written as a user would."""

    def __init__(self, n):
        self.n = n

    def init(self, rng):
        return {"s": rng.uniform(1, 2, self.n)}

    def forward(self, params, x):
        return x * params["s"]


def test_custom_layer_in_sequential_with_autograd():
    model = mf.Sequential(Scale(3), mf.ReLU(), mf.Linear(3, 1))
    params = model.init(rng(13))
    assert sorted(params) == ["0", "2"] and params["0"]["s"].shape == (3,)
    x = onp.array([[1.0, 2.0, 3.0]])  # all positive: ReLU passes everything
    g = mf.grad(lambda p: model(p, x).sum())(params)
    onp.testing.assert_allclose(g["0"]["s"], x[0] * params["2"]["W"][:, 0], rtol=1e-13)


def test_layer_base_defaults():
    class NoForward(mf.Layer):
        pass

    assert NoForward().init(rng()) == {}
    with pytest.raises(NotImplementedError, match="NoForward"):
        NoForward()({}, 1.0)

"""Seed functions (minifw.functions): the book's numbers, stability, shapes, derivatives, errors.

Derivatives are checked against closed forms written here with plain NumPy, an oracle that
shares no code with the hand-written VJPs in minifw.functions.
"""

import warnings

import autograd
import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minifw import functions as F
from minifw import testing

# The book's two example outputs (ch. 4.2): the correct class is 2.
Y_GOOD = onp.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
Y_BAD = onp.array([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0])
T_ONE_HOT = onp.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])

# The literals below are the seed document's; 0.0975 is not a binary float, and the loss sums
# ten rounded squares, so "equal" means within a few ulps: rel 1e-12.
EXACT = 1e-12

# Overflow, invalid operations and division by zero raise; underflow to 0 (exp(-2000)) is the
# intended, harmless result of a stable formula.
STRICT = {"over": "raise", "invalid": "raise", "divide": "raise", "under": "ignore"}


# --- the seed's numbers -----------------------------------------------------------------------


def test_sum_squares_error_seed_numbers():
    assert float(F.sum_squares_error(Y_GOOD, T_ONE_HOT)) == pytest.approx(0.0975, rel=EXACT)
    assert float(F.sum_squares_error(Y_BAD, T_ONE_HOT)) == pytest.approx(0.5975, rel=EXACT)


def test_sum_squares_error_batch_is_mean_over_samples():
    y = onp.stack([Y_GOOD, Y_BAD])
    t = onp.stack([T_ONE_HOT, T_ONE_HOT])
    assert float(F.sum_squares_error(y, t)) == pytest.approx((0.0975 + 0.5975) / 2, rel=EXACT)


@pytest.mark.parametrize("t", [T_ONE_HOT, 2, onp.int64(2), onp.array(2)],
                         ids=["one-hot", "int", "np-int", "0-d"])
def test_cross_entropy_error_seed_numbers(t):
    assert float(F.cross_entropy_error(Y_GOOD, t)) == pytest.approx(0.510825457099338, rel=EXACT)
    assert float(F.cross_entropy_error(Y_BAD, t)) == pytest.approx(2.302584092994546, rel=EXACT)


@pytest.mark.parametrize("t", [onp.stack([T_ONE_HOT, T_ONE_HOT]), onp.array([2, 2])],
                         ids=["one-hot", "labels"])
def test_cross_entropy_error_batch_is_mean_over_samples(t):
    y = onp.stack([Y_GOOD, Y_BAD])
    expected = (0.510825457099338 + 2.302584092994546) / 2
    assert float(F.cross_entropy_error(y, t)) == pytest.approx(expected, rel=EXACT)


def test_cross_entropy_uses_the_books_delta():
    # y = 0 at the target: -log(0 + 1e-7), finite, not inf
    assert float(F.cross_entropy_error(onp.array([1.0, 0.0]), 1)) == pytest.approx(
        -onp.log(1e-7), rel=EXACT)


def test_mean_squared_error_is_mean_over_all_elements():
    # sum of squared differences for Y_GOOD is 2 * 0.0975 = 0.195, over 10 elements
    assert float(F.mean_squared_error(Y_GOOD, T_ONE_HOT)) == pytest.approx(0.0195, rel=EXACT)
    y = onp.array([[1.0, 2.0], [3.0, 4.0]])
    t = onp.zeros((2, 2))
    assert float(F.mean_squared_error(y, t)) == pytest.approx(30.0 / 4, rel=EXACT)


# --- activations: values and stability --------------------------------------------------------


def test_sigmoid_no_overflow_at_1000():
    x = onp.array([-1000.0, -800.0, 0.0, 800.0, 1000.0])
    # overflow would raise twice over: as a NumPy FloatingPointError and as a warning
    with onp.errstate(**STRICT), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.sigmoid(x)
        g = autograd.elementwise_grad(F.sigmoid)(x)
    assert onp.array_equal(y, [0.0, 0.0, 0.5, 1.0, 1.0])
    assert onp.all(onp.isfinite(g)) and g[2] == 0.25


@pytest.mark.parametrize("x", [-40.0, -20.0, -3.0, -1e-3, 0.0, 1e-3, 3.0, 20.0, 40.0])
def test_sigmoid_matches_logistic_in_relative_terms(x):
    # Oracle: exp(x) / (1 + exp(x)) has no cancellation for x <= 0 and 1 / (1 + exp(-x)) none
    # for x >= 0: both are correct to a few ulps there, so rel 1e-14 (about 50 ulps).
    oracle = onp.exp(x) / (1 + onp.exp(x)) if x <= 0 else 1 / (1 + onp.exp(-x))
    assert float(F.sigmoid(x)) == pytest.approx(oracle, rel=1e-14, abs=0)


def test_softmax_stable_at_1e3():
    x = onp.array([1000.0, 1000.0, 999.0, -1000.0])
    with onp.errstate(**STRICT):
        y = F.softmax(x)
    e = onp.exp(x - 1000.0)
    onp.testing.assert_allclose(y, e / e.sum(), rtol=1e-14, atol=0)
    assert float(y.sum()) == pytest.approx(1.0, rel=1e-15)


def test_softmax_acts_on_last_axis_with_leading_axes():
    rng = onp.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4)) * 5
    y = F.softmax(x)
    assert y.shape == x.shape
    for i in range(2):
        for j in range(3):
            e = onp.exp(x[i, j] - x[i, j].max())
            onp.testing.assert_allclose(y[i, j], e / e.sum(), rtol=1e-14, atol=0)


@given(x=testing.arrays(max_dims=3, min_value=-1e3, max_value=1e3))
def test_softmax_rows_sum_to_one_and_are_positive(x):
    with onp.errstate(**STRICT):
        y = F.softmax(x)
    assert onp.all(y >= 0) and onp.all(y <= 1)
    # each row is a sum of at most 4 terms in [0, 1]: a few ulps of 1
    onp.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=0, atol=4e-16 * x.shape[-1])


def test_softmax_of_a_scalar_is_refused():
    with pytest.raises(ValueError, match="scalar"):
        F.softmax(3.0)


def test_step_returns_floats():
    y = F.step(onp.array([-2, 0, 3]))
    assert y.dtype == onp.float64
    assert y.tolist() == [0.0, 0.0, 1.0]
    assert F.step(onp.array([1.5], dtype=onp.float32)).dtype == onp.float32


def test_identity_returns_float_array():
    y = F.identity([1, 2])
    assert y.dtype == onp.float64 and y.tolist() == [1.0, 2.0]


def test_relu_and_leaky_relu_values():
    x = onp.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    assert F.relu(x).tolist() == [0.0, 0.0, 0.0, 0.5, 2.0]
    assert F.leaky_relu(x).tolist() == pytest.approx([-0.02, -0.005, 0.0, 0.5, 2.0], rel=EXACT)
    assert F.leaky_relu(x, alpha=0.2).tolist() == pytest.approx([-0.4, -0.1, 0.0, 0.5, 2.0],
                                                                rel=EXACT)


def test_non_numeric_input_is_refused():
    with pytest.raises(TypeError, match="numeric"):
        F.relu(onp.array(["a"]))


# --- derivatives: autograd through the seed functions vs closed forms --------------------------

# Points at least 0.1 from 0, where ReLU, leaky ReLU and step have their kink.
X = onp.array([-30.0, -3.0, -1.0, -0.1, 0.1, 0.7, 3.0, 30.0])


def _sig(x):
    return onp.where(x <= 0, onp.exp(x) / (1 + onp.exp(x)), 1 / (1 + onp.exp(-onp.abs(x))))


CLOSED_FORMS = {
    "identity": (F.identity, lambda x: onp.ones_like(x)),
    "step": (F.step, lambda x: onp.zeros_like(x)),
    "sigmoid": (F.sigmoid, lambda x: _sig(x) * _sig(-x)),
    "tanh": (F.tanh, lambda x: 1 / onp.cosh(x) ** 2),
    "relu": (F.relu, lambda x: (x > 0).astype(float)),
    "leaky_relu": (F.leaky_relu, lambda x: onp.where(x > 0, 1.0, 0.01)),
    "leaky_relu_0.3": (lambda x: F.leaky_relu(x, alpha=0.3),
                       lambda x: onp.where(x > 0, 1.0, 0.3)),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_elementwise_derivative_matches_closed_form(name):
    f, df = CLOSED_FORMS[name]
    g = autograd.elementwise_grad(f)(X)
    # the same quantity by two formulas, each a few roundings: rel 1e-13
    onp.testing.assert_allclose(g, df(X), rtol=1e-13, atol=0)


def test_kink_conventions():
    # at 0: ReLU takes the left derivative 0, leaky ReLU alpha, step 0
    x = onp.array([0.0])
    assert autograd.elementwise_grad(F.relu)(x).tolist() == [0.0]
    assert autograd.elementwise_grad(lambda v: F.leaky_relu(v, 0.3))(x).tolist() == [0.3]
    assert autograd.elementwise_grad(F.step)(x).tolist() == [0.0]


def test_step_gradient_is_zero_everywhere():
    x = onp.linspace(-3, 3, 13)
    assert onp.all(autograd.elementwise_grad(F.step)(x) == 0)
    assert onp.all(autograd.grad(lambda v: F.step(v).sum() * 5)(x) == 0)


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 4)])
def test_softmax_jacobian_matches_closed_form(shape):
    rng = onp.random.default_rng(1)
    x = rng.standard_normal(shape) * 3
    J = autograd.jacobian(F.softmax)(x)  # shape + shape
    y = onp.exp(x - x.max(-1, keepdims=True))
    y /= y.sum(-1, keepdims=True)
    rows = y.reshape(-1, shape[-1])
    J = J.reshape(rows.shape[0], shape[-1], rows.shape[0], shape[-1])
    for r, p in enumerate(rows):
        expected = onp.diag(p) - onp.outer(p, p)
        onp.testing.assert_allclose(J[r, :, r, :], expected, rtol=1e-12, atol=1e-16)
        # rows of different samples do not interact
        others = onp.delete(J[r], r, axis=1)
        assert onp.all(others == 0)


def _softmax_np(x):
    e = onp.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("batched", [False, True])
def test_loss_gradients_match_closed_forms(batched):
    rng = onp.random.default_rng(2)
    n = 3 if batched else 1
    shape = (n, 4) if batched else (4,)
    y = rng.uniform(0.05, 1.0, shape)
    t_real = rng.standard_normal(shape)
    labels = rng.integers(0, 4, n)
    t_hot = onp.eye(4)[labels].reshape(shape)
    t_lab = labels if batched else labels[0]
    cases = [
        (F.sum_squares_error, y, t_real, (y - t_real) / n),
        (F.mean_squared_error, y, t_real, 2 * (y - t_real) / y.size),
        (F.cross_entropy_error, y, t_hot, -t_hot / (y + 1e-7) / n),
        (F.cross_entropy_error, y, t_lab, -t_hot / (y + 1e-7) / n),
        (F.softmax_cross_entropy, y, t_hot, (_softmax_np(y) - t_hot) / n),
        (F.softmax_cross_entropy, y, t_lab, (_softmax_np(y) - t_hot) / n),
    ]
    for f, yy, t, expected in cases:
        g = autograd.grad(f)(yy, t)
        onp.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-15, err_msg=f.__name__)


def test_softmax_cross_entropy_gradient_for_soft_targets_and_wrt_targets():
    # soft targets whose rows do not sum to 1: d/dx = softmax(x) * sum(t) - t;
    # d/dt = -log_softmax(x) (both over the batch of 2)
    x = onp.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]])
    t = onp.array([[0.2, 0.3, 0.9], [0.0, 1.0, 0.5]])
    p = _softmax_np(x)
    gx = autograd.grad(F.softmax_cross_entropy, 0)(x, t)
    gt = autograd.grad(F.softmax_cross_entropy, 1)(x, t)
    onp.testing.assert_allclose(gx, (p * t.sum(-1, keepdims=True) - t) / 2, rtol=1e-12)
    onp.testing.assert_allclose(gt, -onp.log(p) / 2, rtol=1e-12)


def test_softmax_cross_entropy_is_stable_for_large_logits():
    x = onp.array([[1000.0, -1000.0], [1e3, 1e3]])
    with onp.errstate(**STRICT):
        value = float(F.softmax_cross_entropy(x, onp.array([1, 0])))
        g = autograd.grad(F.softmax_cross_entropy)(x, onp.array([1, 0]))
    # sample 0: -log_softmax = 2000; sample 1: log 2
    assert value == pytest.approx((2000.0 + onp.log(2)) / 2, rel=EXACT)
    onp.testing.assert_allclose(g, [[0.5, -0.5], [-0.25, 0.25]], rtol=1e-15)


@given(x=testing.arrays((3, 4), min_value=-5, max_value=5),
       labels=st.lists(st.integers(0, 3), min_size=3, max_size=3))
def test_softmax_cross_entropy_equals_cross_entropy_of_softmax(x, labels):
    labels = onp.array(labels)
    p = _softmax_np(x)
    fused = float(F.softmax_cross_entropy(x, labels))
    plain = float(F.cross_entropy_error(F.softmax(x), labels))
    exact = float(-onp.log(p[onp.arange(3), labels]).mean())
    # the fused loss has no delta: equal to the exact value up to rounding of log-sum-exp
    assert fused == pytest.approx(exact, rel=1e-12, abs=1e-14)
    # the plain one adds 1e-7 inside the log: it is lower by at most mean(1e-7 / p)
    bound = float((1e-7 / p[onp.arange(3), labels]).mean())
    assert 0 <= exact - plain <= bound * (1 + 1e-6) + 1e-14


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("f", [F.cross_entropy_error, F.softmax_cross_entropy])
def test_labels_out_of_range_are_refused_naming_them(f):
    y = onp.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"\[0, 3\).*5"):
        f(y, onp.array([0, 5]))
    with pytest.raises(ValueError, match=r"-1"):
        f(y, onp.array([-1, 0]))
    with pytest.raises(ValueError, match=r"\[0, 10\).*10"):
        f(Y_GOOD, 10)


@pytest.mark.parametrize("f", [F.cross_entropy_error, F.softmax_cross_entropy])
def test_non_integer_labels_are_refused(f):
    y = onp.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="integers.*1.5"):
        f(y, onp.array([0, 1.5]))
    with pytest.raises(ValueError, match="integers"):
        f(y, onp.array([True, False]))
    with pytest.raises(ValueError, match="integers"):
        f(y, onp.array([0.0, onp.nan]))


@pytest.mark.parametrize("f", [F.cross_entropy_error, F.softmax_cross_entropy])
def test_labels_of_wrong_shape_are_refused_naming_shapes(f):
    y = onp.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\).*\(2,\)"):
        f(y, onp.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        f(y, onp.eye(2))


@pytest.mark.parametrize("f", [F.sum_squares_error, F.mean_squared_error])
def test_y_t_shape_mismatch_is_refused_naming_shapes(f):
    with pytest.raises(ValueError, match=r"\(10,\).*\(9,\)"):
        f(Y_GOOD, T_ONE_HOT[:9])
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        f(onp.zeros((2, 3)), onp.zeros((3, 2)))


@pytest.mark.parametrize("f", [F.sum_squares_error, F.mean_squared_error,
                               F.cross_entropy_error, F.softmax_cross_entropy])
def test_empty_batch_is_refused(f):
    with pytest.raises(ValueError, match="empty"):
        f(onp.zeros((0, 3)), onp.zeros((0, 3)))


@pytest.mark.parametrize("arrays, expected", [
    ((onp.ones(3), onp.zeros((2, 2))), True),
    ((onp.full(4, 1e300), onp.array([-1e308])), True),  # squares overflow: looked at exactly
    ((onp.ones(3), onp.array([1.0, onp.nan])), False),
    ((onp.array([onp.inf], dtype=onp.float32),), False),
    ((onp.array([1e30], dtype=onp.float32), onp.array([2, 3]), 7, True), True),
    ((onp.array([1 + 2j]),), True),
    ((onp.array([1 + 1j * onp.inf]), onp.ones(2)), False),
    ((onp.zeros(0),), True),
    ((), True),
])
def test_all_finite(arrays, expected):
    assert F.all_finite(*arrays) is expected

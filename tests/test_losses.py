"""Losses as objects: each one is its seed function, with the seed's numbers and errors."""

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minifw as mf
from minifw import functions as F
from minifw import testing

Y_GOOD = onp.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
Y_BAD = onp.array([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0])
T = onp.eye(10)[2]


def test_seed_numbers_through_the_objects():
    sse, cee = mf.SumSquaresError(), mf.CrossEntropyError()
    # the seed's literals, a few ulps apart from the computed floats
    assert float(sse(Y_GOOD, T)) == pytest.approx(0.0975, rel=1e-12)
    assert float(sse(Y_BAD, T)) == pytest.approx(0.5975, rel=1e-12)
    for t in (T, 2):
        assert float(cee(Y_GOOD, t)) == pytest.approx(0.510825457099338, rel=1e-12)
        assert float(cee(Y_BAD, t)) == pytest.approx(2.302584092994546, rel=1e-12)
    y, labels = onp.stack([Y_GOOD, Y_BAD]), onp.array([2, 2])
    mean = (0.510825457099338 + 2.302584092994546) / 2
    assert float(cee(y, labels)) == pytest.approx(mean, rel=1e-12)
    assert float(cee(y, onp.eye(10)[labels])) == pytest.approx(mean, rel=1e-12)
    assert float(sse(y, onp.eye(10)[labels])) == pytest.approx((0.0975 + 0.5975) / 2, rel=1e-12)


@st.composite
def _probabilities(draw, n, classes):
    logits = draw(testing.arrays((n, classes)))
    return F.softmax(logits)


@given(data=st.data())
def test_loss_objects_equal_seed_functions(data):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 5))
    y = data.draw(testing.arrays((n, c)))
    t = data.draw(testing.arrays((n, c)))
    p = data.draw(_probabilities(n, c))
    labels = onp.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    hot = onp.eye(c)[labels]
    assert mf.SumSquaresError()(y, t) == F.sum_squares_error(y, t)
    assert mf.MeanSquaredError()(y, t) == F.mean_squared_error(y, t)
    assert mf.CrossEntropyError()(p, labels) == F.cross_entropy_error(p, labels)
    assert mf.SoftmaxCrossEntropy()(y, labels) == F.softmax_cross_entropy(y, labels)
    # labels and one-hot give the same loss; the same sum, so equal to rounding (rel 1e-14)
    assert float(mf.CrossEntropyError()(p, labels)) == pytest.approx(
        float(mf.CrossEntropyError()(p, hot)), rel=1e-14, abs=1e-300)
    assert float(mf.SoftmaxCrossEntropy()(y, labels)) == pytest.approx(
        float(mf.SoftmaxCrossEntropy()(y, hot)), rel=1e-14, abs=1e-300)


@given(y=testing.arrays((3, 4)), t=testing.arrays((3, 4)))
def test_batch_losses_are_means_over_samples(y, t):
    # independent oracle: per-sample formulas from the contract, then the mean
    per_sample = [0.5 * ((y[i] - t[i]) ** 2).sum() for i in range(3)]
    assert float(mf.SumSquaresError()(y, t)) == pytest.approx(onp.mean(per_sample),
                                                              rel=1e-12, abs=1e-15)
    assert float(mf.MeanSquaredError()(y, t)) == pytest.approx(((y - t) ** 2).mean(),
                                                               rel=1e-12, abs=1e-15)


def test_softmax_cross_entropy_of_uniform_logits_is_log_classes():
    assert float(mf.SoftmaxCrossEntropy()(onp.zeros((2, 4)), onp.array([0, 3]))) == \
        pytest.approx(onp.log(4), rel=1e-14)
    assert float(mf.SoftmaxCrossEntropy()(onp.zeros(5), 1)) == pytest.approx(onp.log(5),
                                                                              rel=1e-14)


@pytest.mark.parametrize("loss", [mf.CrossEntropyError(), mf.SoftmaxCrossEntropy()], ids=repr)
def test_label_errors_name_values_and_shapes(loss):
    y = onp.full((2, 4), 0.25)
    with pytest.raises(ValueError, match=r"\[0, 4\).*\[4\]"):
        loss(y, onp.array([0, 4]))
    with pytest.raises(ValueError, match=r"integers.*0\.5"):
        loss(y, onp.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"\(1,\).*\(2, 4\).*\(2,\)"):
        loss(y, onp.array([1]))


@pytest.mark.parametrize("loss", [mf.SumSquaresError(), mf.MeanSquaredError()], ids=repr)
def test_shape_mismatch_is_refused(loss):
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(2,\)"):
        loss(onp.zeros((2, 4)), onp.array([0, 1]))


def test_loss_base_requires_forward_and_repr():
    class Mine(mf.Loss):
        pass

    with pytest.raises(NotImplementedError, match="Mine"):
        Mine()(1.0, 1.0)
    assert repr(mf.SumSquaresError()) == "SumSquaresError()"


@pytest.mark.parametrize("dtype, small, large", [(onp.float64, 1e153, 1e155),
                                                 (onp.float32, 1e18, 1e20)])
def test_softmax_cross_entropy_of_logits_either_side_of_the_square_overflow(dtype, small, large):
    # below |x| ~ sqrt(float max) the labelled path skips errstate (x - max(x) cannot
    # overflow); above it the guarded path runs: both give the exact value, and its gradient,
    # without a warning (the suite turns warnings into errors)
    for m in (small, large):
        y = onp.array([[m, -m], [0.0, 1.0]], dtype=dtype)
        t = onp.array([1, 1])
        value, g = mf.value_and_grad(lambda p: F.softmax_cross_entropy(p, t))(y)
        assert value.dtype == dtype and float(value) == pytest.approx(m, rel=1e-6)  # (2m + ~0.31)/2
        onp.testing.assert_allclose(g[0], [0.5, -0.5], rtol=1e-6)
    with pytest.raises(mf.NonFiniteError, match="overflows"):
        F.softmax_cross_entropy(onp.array([[1e308, -1e308]], dtype=onp.float64), [1])
    with pytest.raises(mf.NonFiniteError, match="NaN or infinite"):
        F.softmax_cross_entropy(onp.array([[onp.inf, 0.0]]), [1])

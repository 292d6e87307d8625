"""Fuzzing the losses: the seed functions ``F.*_error``/``F.softmax_cross_entropy`` and the loss
objects ``mf.SumSquaresError()`` and friends.

What "correct" means here (decided for issue 6):

- A loss is a sum over a batch: one NaN anywhere makes the whole value NaN and says nothing of
  where it came from. So NaN or infinite ``y`` or ``t`` is **refused** with
  ``minifw.functions.NonFiniteError`` (a ``ValueError``) naming the argument and the first bad
  element. ``fit`` turns that into a ``FloatingPointError`` with the epoch and batch.
- Finite inputs whose loss exceeds float64 (``y = 1e200`` squared) are refused the same way,
  naming the overflow; every finite loss is returned, accurate to a few ulps of a float64
  reference (huge logits included: ``softmax_cross_entropy`` is a log-sum-exp).
- ``cross_entropy_error`` takes probabilities: ``y + 1e-7 <= 0``, where the log is undefined,
  is refused with a message pointing to ``softmax_cross_entropy`` for logits.
- Empty batches, ``y``/``t`` of different shapes, and labels of the wrong shape are refused
  naming the shapes; labels outside ``[0, classes)``, fractional, NaN or boolean are refused
  naming the labels.
- Integers and booleans are float64; lists as arrays; object, string, complex and datetime
  arrays are refused; awkward layouts give bit-identical results.
"""

from __future__ import annotations

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minifw as mf
from minifw import functions as F

from .harness import (
    EXTREME,
    awkward,
    call,
    intbool,
    label_vectors,
    non_real,
    nonfinite,
    plain,
    record,
    refused,
    returned,
    spiked,
)

LOSSES = {
    "F.sum_squares_error": (F.sum_squares_error, "real"),
    "F.mean_squared_error": (F.mean_squared_error, "real"),
    "F.cross_entropy_error": (F.cross_entropy_error, "prob"),
    "F.softmax_cross_entropy": (F.softmax_cross_entropy, "logit"),
    "mf.SumSquaresError": (mf.SumSquaresError(), "real"),
    "mf.MeanSquaredError": (mf.MeanSquaredError(), "real"),
    "mf.CrossEntropyError": (mf.CrossEntropyError(), "prob"),
    "mf.SoftmaxCrossEntropy": (mf.SoftmaxCrossEntropy(), "logit"),
}
CLASSIFIERS = [k for k, (_, kind) in LOSSES.items() if kind != "real"]

every = pytest.mark.parametrize("name", list(LOSSES))
classifiers = pytest.mark.parametrize("name", CLASSIFIERS)


def _one_hot(y: onp.ndarray, t) -> onp.ndarray:
    t = onp.asarray(t)
    if t.shape == y.shape:
        return t.astype(onp.float64)
    return onp.eye(y.shape[-1])[t.astype(onp.int64)]


def reference(name: str, y, t) -> float:
    """The loss by the book's formulas in float64 (inf or NaN where it overflows); the squared
    errors in long double, rounded to float64 at the end, so that a sum that overflows on the
    way to a representable loss does not count as overflow (x86's long double reaches 1e4932)."""
    kind = LOSSES[name][1]
    y = onp.asarray(y).astype(onp.longdouble if kind == "real" else onp.float64)
    n = 1 if y.ndim <= 1 else y.shape[0]
    with onp.errstate(all="ignore"):
        if kind == "real":
            t = onp.asarray(t).astype(onp.longdouble)
            d2 = (y - t) ** 2
            sse = "sum_squares" in name or "SumSquares" in name
            return float(0.5 * d2.sum() / n if sse else d2.mean())
        t = _one_hot(y, t)
        if kind == "prob":
            return float(-(t * onp.log(y + 1e-7)).sum() / n)
        m = y.max(axis=-1, keepdims=True)
        log_sm = (y - m) - onp.log(onp.exp(y - m).sum(axis=-1, keepdims=True))
        return float(-onp.where(t != 0, t * log_sm, 0.0).sum() / n)  # longdouble -> float64


@st.composite
def pairs(draw, name: str, y_elements=None, batched=None, shape=None):
    """A valid ``(y, t)`` for the loss ``name``: shapes (C,) or (N, C) unless ``shape`` is
    given; labels or one-hot."""
    kind = LOSSES[name][1]
    if shape is None:
        batched = draw(st.booleans()) if batched is None else batched
        n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        shape = (n, c) if batched else (c,)
    c = shape[-1]
    if y_elements is None:
        y_elements = st.floats(0, 1) if kind == "prob" else plain()
    y = draw(hnp.arrays(onp.float64, shape, elements=y_elements))
    if kind == "real":
        return y, draw(hnp.arrays(onp.float64, shape, elements=plain()))
    labels = draw(hnp.arrays(onp.int64, shape[:-1], elements=st.integers(0, c - 1)))
    return y, (labels if draw(st.booleans()) else onp.eye(c)[labels].reshape(shape))


def _check(name: str, y, t, value) -> None:
    expected = reference(name, y, t)
    assert onp.isfinite(expected), f"{name} returned {value} where the loss overflows"
    assert onp.ndim(value) == 0 and onp.isfinite(value)
    assert float(value) == pytest.approx(expected, rel=1e-12, abs=1e-300)


@every
@given(data=st.data())
def test_nan_or_inf_in_y_or_t_is_refused_naming_it(name, data):
    record(name, "nonfinite")
    fn, kind = LOSSES[name]
    y, t = data.draw(pairs(name))
    if data.draw(st.booleans()) or t.shape != y.shape:
        y = data.draw(spiked(st.just(y), (onp.nan, onp.inf, -onp.inf)))
        what = "y"
    else:
        t = data.draw(spiked(st.just(t.astype(onp.float64)), (onp.nan, onp.inf, -onp.inf)))
        what = "t"
    e = refused(call(fn, y, t), "nan", "infinite")
    if not (kind == "prob" and what == "y" and onp.isneginf(y).any()):
        assert f"{what} contains" in str(e)


@every
@given(data=st.data())
def test_huge_and_tiny_values_give_the_loss_or_name_the_overflow(name, data):
    record(name, "extreme")
    fn, kind = LOSSES[name]
    elements = st.one_of(st.sampled_from(EXTREME), plain())
    y, t = data.draw(pairs(name, y_elements=elements))
    y = data.draw(spiked(st.just(y), EXTREME))
    if kind == "real" and data.draw(st.booleans()):
        t = data.draw(spiked(st.just(t), EXTREME))
    out = call(fn, y, t)
    if kind == "prob" and onp.any(y + 1e-7 <= 0):
        refused(out, "probabilities")
    elif not onp.isfinite(reference(name, y, t)):
        refused(out, "overflow")
    elif abs(reference(name, y, t)) * 2 * y.size > onp.finfo(onp.float64).max and out.error:
        refused(out, "overflow")  # within 2 y.size of the limit a partial sum may overflow
    else:
        _check(name, y, t, returned(out))


@every
@given(data=st.data())
def test_empty_batches_are_refused(name, data):
    record(name, "empty")
    fn, kind = LOSSES[name]
    n, c = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))
    shape = data.draw(st.sampled_from([(0, c), (n, 0), (0,)]))
    y = onp.zeros(shape)
    t = onp.zeros(shape) if kind == "real" or data.draw(st.booleans()) else (
        onp.zeros(shape[:-1], dtype=int))
    refused(call(fn, y, t), "empty", "label")


@every
@given(data=st.data())
def test_mismatched_shapes_are_refused_naming_both(name, data):
    record(name, "shape")
    fn, kind = LOSSES[name]
    y = data.draw(hnp.arrays(onp.float64, hnp.array_shapes(max_dims=3, max_side=4),
                             elements=st.floats(0, 1)))
    t_shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4).filter(
        lambda s: s != y.shape and (kind == "real" or s != y.shape[:-1])))
    t = onp.zeros(t_shape, dtype=data.draw(st.sampled_from([onp.float64, onp.int64])))
    e = refused(call(fn, y, t), "shape")
    assert str(y.shape) in str(e) and str(t.shape) in str(e)


@every
@given(data=st.data())
def test_higher_ranks_are_batches_along_axis_0(name, data):
    record(name, "shape")
    fn, _ = LOSSES[name]
    shape = data.draw(hnp.array_shapes(min_dims=3, max_dims=4, max_side=3))
    y, t = data.draw(pairs(name, y_elements=st.floats(0, 1), shape=shape))
    _check(name, y, t, returned(call(fn, y, t)))


@every
@given(data=st.data())
def test_integer_and_boolean_inputs_are_float64(name, data):
    record(name, "intbool")
    fn, kind = LOSSES[name]
    y, t = data.draw(pairs(name))
    y = data.draw(intbool(shape=y.shape, small=True))
    if kind == "prob":
        y = onp.abs(y.astype(onp.int64)).astype(y.dtype) if y.dtype.kind == "i" else y
    if kind == "real" or t.shape == y.shape:
        t = data.draw(intbool(shape=t.shape, small=True))
    out = returned(call(fn, y, t))
    _check(name, y, t, out)


@every
@given(data=st.data())
def test_non_real_arrays_are_refused(name, data):
    record(name, "object")
    fn, kind = LOSSES[name]
    y, t = data.draw(pairs(name))
    if data.draw(st.booleans()):
        y = data.draw(non_real(shape=y.shape))
    else:
        t = data.draw(non_real(shape=t.shape))
    refused(call(fn, y, t), "dtype", "numeric", "real", "integer")


@every
@given(data=st.data())
def test_lists_and_scalars_are_arrays(name, data):
    record(name, "pylist")
    fn, kind = LOSSES[name]
    y, t = data.draw(pairs(name))
    t_list = t.tolist() if t.ndim else int(t)
    value = returned(call(fn, y.tolist(), t_list))
    assert float(value) == float(fn(y, t))


@every
@given(data=st.data())
def test_awkward_layouts_give_the_contiguous_result(name, data):
    record(name, "layout")
    fn, kind = LOSSES[name]
    y, t = data.draw(pairs(name))
    value = returned(call(fn, data.draw(awkward(y)), data.draw(awkward(t))))
    # NumPy may sum another memory layout in another order: equal to the last ulps
    assert float(value) == pytest.approx(float(fn(y.copy(), t.copy())), rel=1e-14, abs=1e-300)


@classifiers
@given(data=st.data())
def test_labels_out_of_range_fractional_nan_or_bool_are_refused(name, data):
    record(name, "labels")
    fn, kind = LOSSES[name]
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    y = onp.full((n, c), 1.0 / c)
    labels = data.draw(label_vectors(n, c))
    refused(call(fn, y, labels), "label")


@classifiers
@given(label=st.one_of(st.integers(-5, -1), st.integers(4, 2**40)), c=st.integers(1, 4))
def test_a_single_label_out_of_range_is_refused(name, label, c):
    record(name, "labels")
    fn, kind = LOSSES[name]
    label = label if label < 0 or label >= c else c
    refused(call(fn, onp.full(c, 1.0 / c), label), "label")


@pytest.mark.parametrize("name", ["F.cross_entropy_error", "mf.CrossEntropyError"])
@given(y=spiked(hnp.arrays(onp.float64, st.tuples(st.integers(1, 3), st.integers(1, 3)),
                           elements=st.floats(0, 1)), (-0.5, -1.0, -1e-7, -3e5)))
def test_cross_entropy_refuses_what_cannot_be_probabilities(name, y):
    record(name, "extreme")
    refused(call(LOSSES[name][0], y, onp.zeros(y.shape)), "probabilities")


@every
@given(y=nonfinite(shape=(2, 3)))
def test_nonfinite_targets_in_float32_are_refused(name, y):
    record(name, "nonfinite")
    fn, kind = LOSSES[name]
    t = onp.zeros((2, 3), dtype=onp.float32)
    refused(call(fn, t + 0.5, y), "nan", "infinite")

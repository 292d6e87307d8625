"""Fuzzing the activations: the seed functions ``F.*`` and the activation layers.

What "correct" means here (decided for issue 6):

- Activations are elementwise functions (softmax: per row of the last axis) and follow IEEE
  arithmetic. **NaN in gives NaN out at exactly the same positions** and nowhere else: that is
  not a silent NaN, it is the caller's own NaN, where they put it (NumPy, PyTorch and autograd
  do the same; refusing would make a NaN in one unused element of a batch fatal). ``step`` too:
  ``step(nan)`` is NaN, not 0.0. Infinities give the limits: ``sigmoid(inf) = 1``,
  ``sigmoid(-inf) = 0``, ``tanh(+-inf) = +-1``, ``relu(inf) = inf``, ``relu(-inf) = 0``,
  ``leaky_relu(-inf, 0) = 0``.
- Huge and tiny finite inputs give finite, accurate outputs with no overflow warning:
  ``sigmoid(1e300) = 1.0``, ``sigmoid(-1e300) = 0.0``, ``sigmoid(1e-300) = 0.5``.
- softmax: a row holding NaN is NaN throughout (the NaN's own row only); a row holding ``+inf``
  shares the probability equally among its ``+inf`` entries (the limit); ``-inf`` entries get
  probability 0 (the masking idiom), but a row that is ``-inf`` throughout has no softmax and
  is refused with ``ValueError``. Any finite row, however large, sums to 1.
- Empty arrays give empty results of the same shape (a zero-size batch is a batch of nothing);
  softmax over an empty last axis, or of a scalar, is refused.
- Integers and booleans are computed in float64; lists and scalars as arrays; object, string,
  complex and datetime arrays are refused with ``TypeError`` naming the dtype.
- Non-contiguous, Fortran-ordered, broadcast and read-only inputs give bit-identical results to
  a contiguous copy, and are never written to.
"""

from __future__ import annotations

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minifw as mf
from minifw import functions as F

from .harness import arrays as float_arrays
from .harness import (
    awkward_arrays,
    bad_numbers,
    call,
    empty,
    extreme,
    intbool,
    non_real,
    nonfinite,
    pylists,
    record,
    refused,
    returned,
    scalars,
    shapes,
)


def _ref_sigmoid(x: onp.ndarray) -> onp.ndarray:
    with onp.errstate(all="ignore"):
        pos = 1.0 / (1.0 + onp.exp(-x))
        neg = onp.exp(x) / (1.0 + onp.exp(x))
    return onp.where(x >= 0, pos, neg)


def _ref_leaky(alpha: float):
    def ref(x: onp.ndarray) -> onp.ndarray:
        with onp.errstate(all="ignore"):
            neg = alpha * x if alpha != 0 else onp.zeros_like(x)
        return onp.where(onp.isnan(x), x, onp.where(x > 0, x, neg))
    return ref


def _ref_step(x: onp.ndarray) -> onp.ndarray:
    return onp.where(onp.isnan(x), x, (x > 0).astype(x.dtype))


def _layer(cls, **kw):
    layer = cls(**kw)
    return lambda x: layer({}, x)


#: name -> (function, reference on a float array of the same dtype)
ELEMENTWISE = {
    "F.identity": (F.identity, lambda x: x),
    "F.step": (F.step, _ref_step),
    "F.sigmoid": (F.sigmoid, _ref_sigmoid),
    "F.tanh": (F.tanh, onp.tanh),
    "F.relu": (F.relu, lambda x: onp.maximum(x, 0.0)),
    "F.leaky_relu": (F.leaky_relu, _ref_leaky(0.01)),
    "mf.Identity": (_layer(mf.Identity), lambda x: x),
    "mf.Step": (_layer(mf.Step), _ref_step),
    "mf.Sigmoid": (_layer(mf.Sigmoid), _ref_sigmoid),
    "mf.Tanh": (_layer(mf.Tanh), onp.tanh),
    "mf.ReLU": (_layer(mf.ReLU), lambda x: onp.maximum(x, 0.0)),
    "mf.LeakyReLU": (_layer(mf.LeakyReLU, alpha=0.0), _ref_leaky(0.0)),
}
SOFTMAX = {"F.softmax": F.softmax, "mf.Softmax": _layer(mf.Softmax)}
ALL = {**{k: v[0] for k, v in ELEMENTWISE.items()}, **SOFTMAX}


def _float(x) -> onp.ndarray:
    x = onp.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(onp.float64)


def _check_elementwise(name: str, x, y) -> None:
    fn, ref = ELEMENTWISE[name]
    xf = _float(x)
    expected = ref(xf)
    y = onp.asarray(y)
    assert y.shape == xf.shape and y.dtype == xf.dtype, (y.shape, y.dtype, xf.shape, xf.dtype)
    assert onp.array_equal(onp.isnan(y), onp.isnan(xf)), f"{name}: NaN where the input had none"
    fin = onp.finfo(xf.dtype)
    onp.testing.assert_allclose(y, expected, rtol=8 * fin.eps, atol=fin.tiny, equal_nan=True,
                                err_msg=name)


def _ref_softmax(x: onp.ndarray) -> onp.ndarray | None:
    """Softmax per the decisions above; None if some row is -inf throughout (refused)."""
    x = onp.asarray(x, dtype=onp.float64)
    rows = x.reshape(-1, x.shape[-1])
    out = onp.empty_like(rows)
    for i, r in enumerate(rows):
        if onp.isnan(r).any():
            out[i] = onp.nan
        elif onp.isposinf(r).any():
            out[i] = onp.isposinf(r) / onp.isposinf(r).sum()
        elif onp.isneginf(r).all():
            return None
        else:
            with onp.errstate(all="ignore"):
                e = onp.exp(r - r.max())
            out[i] = e / e.sum()
    return out.reshape(x.shape)


def _check_softmax(x, y) -> None:
    xf = _float(x)
    expected = _ref_softmax(xf)
    assert expected is not None
    y = onp.asarray(y)
    assert y.shape == xf.shape and y.dtype == xf.dtype
    fin = onp.finfo(xf.dtype)
    onp.testing.assert_allclose(y, expected, rtol=64 * fin.eps, atol=fin.tiny, equal_nan=True)
    rows = ~onp.isnan(y).any(axis=-1)
    onp.testing.assert_allclose(y.sum(axis=-1)[rows], 1.0, rtol=64 * fin.eps)


def _check(name: str, x, y) -> None:
    if name in SOFTMAX:
        _check_softmax(x, y)
    else:
        _check_elementwise(name, x, y)


elementwise = pytest.mark.parametrize("name", list(ELEMENTWISE))
every = pytest.mark.parametrize("name", list(ALL))
softmaxes = pytest.mark.parametrize("name", list(SOFTMAX))


@elementwise
@given(x=nonfinite())
def test_nan_propagates_in_place_and_infinities_give_limits(name, x):
    record(name, "nonfinite")
    _check_elementwise(name, x, returned(call(ELEMENTWISE[name][0], x)))


@softmaxes
@given(x=nonfinite(min_dims=1, max_dims=3))
def test_softmax_nan_rows_stay_nan_inf_takes_the_mass_all_minus_inf_refused(name, x):
    record(name, "nonfinite")
    out = call(SOFTMAX[name], x)
    if _ref_softmax(x) is None:
        refused(out, "-inf")
    else:
        _check_softmax(x, returned(out))


@every
@given(x=extreme())
def test_huge_and_tiny_inputs_give_finite_accurate_outputs(name, x):
    record(name, "extreme")
    y = returned(call(ALL[name], x))
    _check(name, x, y)
    assert onp.all(onp.isfinite(y)), f"{name}: finite inputs gave {y}"


@every
@given(x=empty(min_dims=1, max_dims=3))
def test_empty_inputs_give_empty_outputs(name, x):
    record(name, "empty")
    out = call(ALL[name], x)
    if name in SOFTMAX and x.shape[-1] == 0:
        refused(out, "empty", "axis")
    else:
        y = returned(out)
        assert y.shape == x.shape and y.dtype == x.dtype


@every
@given(x=float_arrays(min_dims=0, max_dims=5, max_side=3))
def test_any_rank_is_accepted_and_scalars_refused_only_by_softmax(name, x):
    record(name, "shape")
    out = call(ALL[name], x)
    if name in SOFTMAX and x.ndim == 0:
        refused(out, "scalar", "axis")
    else:
        _check(name, x, returned(out))


@every
@given(x=intbool())
def test_integers_and_booleans_are_computed_in_float64(name, x):
    record(name, "intbool")
    y = returned(call(ALL[name], x))
    assert y.dtype == onp.float64
    _check(name, x, y)


@every
@given(x=non_real())
def test_object_string_complex_and_datetime_arrays_are_refused(name, x):
    record(name, "object")
    refused(call(ALL[name], x), "dtype", "numeric", "real")


@every
@given(x=st.one_of(pylists(), scalars()))
def test_lists_and_scalars_are_arrays(name, x):
    record(name, "pylist")
    out = call(ALL[name], x)
    if name in SOFTMAX and onp.ndim(x) == 0:
        refused(out, "scalar", "axis")
        return
    y = returned(out)
    expected = ALL[name](_float(onp.asarray(x)))
    assert onp.array_equal(y, expected, equal_nan=True) and onp.shape(y) == onp.shape(expected)


@every
@given(x=awkward_arrays())
def test_awkward_layouts_give_the_contiguous_result(name, x):
    record(name, "layout")
    y = returned(call(ALL[name], x))
    expected = ALL[name](onp.ascontiguousarray(x).copy())
    assert y.tobytes() == onp.ascontiguousarray(expected).tobytes()


@given(alpha=bad_numbers(positive=False), x=float_arrays())
def test_leaky_relu_refuses_a_slope_that_is_not_a_finite_real(alpha, x):
    record("F.leaky_relu", "settings")
    refused(call(F.leaky_relu, x, alpha), "alpha")


@given(alpha=st.one_of(st.floats(-2, 2).map(onp.float32), st.integers(0, 1).map(onp.int64),
                       st.floats(0, 1)), x=float_arrays(shape=shapes(max_dims=2)))
def test_leaky_relu_takes_numpy_scalars_as_the_slope(alpha, x):
    record("F.leaky_relu", "settings")
    y = returned(call(F.leaky_relu, x, alpha))
    onp.testing.assert_allclose(y, _ref_leaky(float(alpha))(x), rtol=1e-15)

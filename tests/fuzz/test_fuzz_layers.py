"""Fuzzing the layers with parameters: ``mf.Linear`` and ``mf.Sequential`` (the activation layers
are fuzzed with their seed functions in ``test_fuzz_functions.py``).

What "correct" means here (decided for issue 6):

- A layer is a function of ``(params, x)``: NaN and infinities in ``x`` propagate as IEEE
  arithmetic says (the result equals ``x @ W + b`` computed by NumPy, NaN in the same places),
  and finite inputs so large that ``x @ W`` overflows give ``inf``. Refusing is the loss's job
  (it names the non-finite output) and ``fit``'s (it names the epoch and batch). NumPy's own
  ``RuntimeWarning`` for ``inf * 0`` or overflow inside the matrix product is allowed here and
  only here: the value is IEEE's.
- Wrong input widths, scalars, parameters of the wrong shapes, and parameter dicts without
  ``W`` and ``b`` (or not dicts at all) are refused naming what was expected and what came.
- Integer, boolean and list inputs are float64; object, string, complex and datetime inputs are
  refused; awkward layouts give the contiguous result; zero-size batches give zero-size outputs.
- ``Linear(in_features, out_features, weight_init)`` refuses sizes that are not whole numbers
  ``>= 1`` and a ``weight_init`` that is neither a known name nor a finite standard deviation
  ``>= 0`` (negative, ``True``, NaN); ``LeakyReLU(alpha)`` a slope that is not a finite real.
"""

from __future__ import annotations

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minifw as mf

from .harness import arrays as float_arrays
from .harness import (
    awkward,
    bad_numbers,
    call,
    call_ieee,
    empty,
    extreme,
    intbool,
    non_real,
    nonfinite,
    plain,
    pylists,
    record,
    refused,
    returned,
)


@st.composite
def linear_problem(draw, x_strategy=None, batch_dims=(1,)):
    """A ``Linear(n, m)``, its params, and an ``x`` of shape ``(*batch, n)``."""
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    layer = mf.Linear(n, m)
    params = layer.init(onp.random.default_rng(draw(st.integers(0, 2**16))))
    lead = draw(st.lists(st.integers(1, 3), min_size=batch_dims[0], max_size=batch_dims[-1]))
    shape = (*lead, n)
    x = draw(x_strategy(shape) if x_strategy else float_arrays(shape))
    return layer, params, x


def reference(params, x):
    with onp.errstate(all="ignore"):
        return onp.asarray(x, dtype=onp.float64) @ params["W"] + params["b"]


_ieee = call_ieee  # NumPy's floating-point RuntimeWarnings pass: the IEEE value stands


def _model(layer):
    return mf.Sequential(mf.Tanh(), layer, mf.Identity())


LAYERS = ["mf.Linear", "mf.Sequential"]
both = pytest.mark.parametrize("name", LAYERS)


def run(name, layer, params, x):
    if name == "mf.Linear":
        return call(layer, params, x)
    return call(_model(layer), {"1": params}, x)


def expected(name, params, x):
    x = onp.asarray(x, dtype=onp.float64)
    return reference(params, onp.tanh(x) if name == "mf.Sequential" else x)


def _assert_like_numpy(name, problem, rtol):
    """The layer (alone or in a model) gives NumPy's x @ W + b, NaNs in the same places."""
    layer, params, x = problem
    fn = layer if name == "mf.Linear" else _model(layer)
    p = params if name == "mf.Linear" else {"1": params}
    y = returned(_ieee(fn, p, x))
    want = expected(name, params, x)
    assert onp.array_equal(onp.isnan(y), onp.isnan(want))
    onp.testing.assert_allclose(y, want, rtol=rtol, atol=1e-300)


@both
@given(problem=linear_problem(lambda s: nonfinite(s, dtype=onp.float64)))
def test_nan_and_inf_propagate_as_ieee_says(name, problem):
    record(name, "nonfinite")
    _assert_like_numpy(name, problem, rtol=1e-13)


@both
@given(problem=linear_problem(lambda s: extreme(s)))
def test_huge_and_tiny_inputs_give_numpys_values(name, problem):
    record(name, "extreme")
    _assert_like_numpy(name, problem, rtol=1e-12)


@both
@given(n=st.integers(1, 4), m=st.integers(1, 4))
def test_zero_size_batches_give_zero_size_outputs(name, n, m):
    record(name, "empty")
    layer = mf.Linear(n, m)
    params = layer.init(onp.random.default_rng(0))
    y = returned(run(name, layer, params, onp.zeros((0, n))))
    assert y.shape == (0, m)


@both
@given(x=empty(min_dims=1, max_dims=3, zero_axis=-1))
def test_an_input_with_no_features_is_refused(name, x):
    record(name, "empty")
    layer = mf.Linear(3, 2)
    refused(run(name, layer, layer.init(onp.random.default_rng(0)), x), "last axis", "shape")


@both
@given(problem=linear_problem(batch_dims=(0, 3)), extra=st.integers(-3, 3).filter(bool))
def test_wrong_widths_and_scalars_are_refused_naming_the_shape(name, problem, extra):
    record(name, "shape")
    layer, params, x = problem
    bad = onp.zeros(x.shape[:-1] + (x.shape[-1] + extra,)) if x.shape[-1] + extra > 0 else (
        onp.float64(1.0))
    e = refused(run(name, layer, params, bad), "last axis")
    assert str(onp.shape(bad)) in str(e)


@both
@given(problem=linear_problem(batch_dims=(0, 3)))
def test_leading_axes_are_batches(name, problem):
    record(name, "shape")
    layer, params, x = problem
    onp.testing.assert_allclose(returned(run(name, layer, params, x)),
                                expected(name, params, x), rtol=1e-13, atol=1e-300)


@both
@given(problem=linear_problem(), which=st.sampled_from(["W", "b"]), data=st.data())
def test_parameters_of_the_wrong_shape_are_refused_naming_both(name, problem, which, data):
    record(name, "shape")
    layer, params, x = problem
    good = params[which].shape
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=5).filter(
        lambda s: s != good))
    bad = {**params, which: onp.zeros(shape)}
    e = refused(run(name, layer, bad, x), "expects")
    assert str(shape) in str(e)


@both
@given(problem=linear_problem(), params=st.sampled_from(
    [{}, {"W": onp.zeros((1, 1))}, {"b": onp.zeros(1)}, None, [onp.zeros((1, 1)), onp.zeros(1)],
     onp.zeros(3), "W", {"w": onp.zeros((1, 1)), "B": onp.zeros(1)}]))
def test_parameter_dicts_without_W_and_b_are_refused(name, problem, params):
    record(name, "structure")
    layer, _, x = problem
    if name == "mf.Linear":
        out = call(layer, params, x)
    else:
        out = call(_model(layer), params if not isinstance(params, dict) else {"1": params}, x)
    refused(out, "expects", "params must be")


@both
@given(problem=linear_problem(lambda s: intbool(s, small=True)))
def test_integer_and_boolean_inputs_are_float64(name, problem):
    record(name, "intbool")
    layer, params, x = problem
    y = returned(run(name, layer, params, x))
    assert y.dtype == onp.float64
    onp.testing.assert_allclose(y, expected(name, params, x), rtol=1e-13, atol=1e-300)


@both
@given(problem=linear_problem(lambda s: non_real(s)))
def test_non_real_inputs_are_refused(name, problem):
    record(name, "object")
    layer, params, x = problem
    refused(run(name, layer, params, x), "dtype", "real", "numeric")


@both
@given(problem=linear_problem(lambda s: pylists(s, elements=plain())))
def test_list_inputs_are_arrays(name, problem):
    record(name, "pylist")
    layer, params, x = problem
    y = returned(run(name, layer, params, x))
    assert onp.array_equal(y, run(name, layer, params, onp.asarray(x)).value)


@both
@given(problem=linear_problem(batch_dims=(1, 2)), data=st.data())
def test_awkward_inputs_and_params_give_the_contiguous_result(name, problem, data):
    record(name, "layout")
    layer, params, x = problem
    odd = {k: data.draw(awkward(v)) for k, v in params.items()}
    y = returned(run(name, layer, odd, data.draw(awkward(x))))
    onp.testing.assert_allclose(y, expected(name, params, x), rtol=1e-13, atol=1e-300)


SIZES = [0, -1, 2.5, True, "3", None, onp.nan, onp.float64(2.0), [2]]
INITS = [-0.1, -1, True, False, onp.nan, onp.inf, "glorot", None, [0.1], 1j, "HE"]


@given(which=st.sampled_from(["in_features", "out_features", "weight_init"]), data=st.data())
def test_linear_refuses_nonsensical_settings_by_name(which, data):
    record("mf.Linear", "settings")
    value = data.draw(st.sampled_from(INITS if which == "weight_init" else SIZES))
    kwargs = {"in_features": 2, "out_features": 3, which: value}
    refused(call(mf.Linear, **kwargs), which)


@given(n=st.integers(1, 5).map(onp.int64), std=st.one_of(
    st.floats(0, 10), st.sampled_from(["book", "xavier", "he"]), st.floats(0, 1).map(onp.float32),
    st.integers(0, 3)))
def test_linear_takes_numpy_sizes_and_any_finite_std(n, std):
    record("mf.Linear", "settings")
    layer = returned(call(mf.Linear, n, n, std))
    W = layer.init(onp.random.default_rng(0))["W"]
    assert W.shape == (n, n) and onp.all(onp.isfinite(W))


@given(layers=st.lists(st.sampled_from([mf.Linear, mf.ReLU, 3, None, "relu", mf.ReLU()]),
                       min_size=1, max_size=4).filter(lambda ls: any(
                           not isinstance(v, mf.Layer) for v in ls)))
def test_sequential_refuses_what_is_not_a_layer(layers):
    record("mf.Sequential", "settings")
    refused(call(mf.Sequential, *layers), "not a minifw.layer")


@given(alpha=bad_numbers(positive=False))
def test_leaky_relu_layer_refuses_a_bad_slope(alpha):
    record("mf.LeakyReLU", "settings")
    refused(call(mf.LeakyReLU, alpha), "alpha")

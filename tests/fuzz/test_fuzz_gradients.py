"""Fuzzing ``mf.grad`` and ``mf.value_and_grad``, all three gradient sources, with the scalar
``f`` written two ways: a plain ``lambda p, x, t: loss(model(p, x), t)`` of built-in layers,
and the same with a layer of the user's own (its own backward pass) in the chain.

What "correct" means here (decided for issue 6):

- Gradients are finite and have exactly the structure of ``params``; the sources agree to
  central-difference accuracy (autograd and trace to rounding).
- NaN or infinite parameters or data reach the loss, which refuses them by name
  (``NonFiniteError``, a ``ValueError``); so does an overflow (a weight of 1e300). The
  numerical source refuses a non-finite parameter before ``f`` ever sees it. One exception,
  by IEEE's rules: an infinite weight that a saturating activation absorbs (``tanh(inf) = 1``)
  leaves a finite loss, and autograd's finite gradient of it stands (an optimizer then
  refuses to step from the non-finite parameter).
- ``f`` that is not scalar, inputs of the wrong width and parameter dicts of the wrong
  structure are refused naming the shapes or keys; ``method`` and (numerical) ``h`` are checked.
- Integer and boolean arguments ``x``/``t`` are float64; the caller's arrays are never changed,
  whatever their layout (read-only and non-contiguous parameters included).
"""

from __future__ import annotations

import warnings

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minifw as mf

from .harness import (
    EXTREME,
    all_finite,
    awkward,
    bad_numbers,
    call,
    call_ieee,
    empty,
    intbool,
    non_real,
    plain,
    record,
    refused,
    returned,
    spiked,
)
from .harness import arrays as float_arrays

MODEL = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), mf.Linear(4, 2))
LOSS = mf.SoftmaxCrossEntropy()


def plain_f(p, x, t):
    return LOSS(MODEL(p, x), t)


class UserTanh(mf.Layer):
    """A layer of the user's own, with its own backward pass (one op under autograd)."""

    per_sample = True

    def forward(self, params, x):
        return mf.np.tanh(x)

    def backward(self, params, x, y, g):
        return g * (1 - y * y), {}


USER_MODEL = mf.Sequential(mf.Linear(3, 4), UserTanh(), mf.Linear(4, 2))


def user_f(p, x, t):
    return LOSS(USER_MODEL(p, x), t)


FS = {"lambda": plain_f, "user layer": user_f}
ENTRIES = {"mf.grad": mf.grad, "mf.value_and_grad": mf.value_and_grad}
cases = pytest.mark.parametrize("entry, method, kind", [
    (e, m, k) for e in ENTRIES for m in ("autograd", "trace", "numerical") for k in FS])


def _grads(entry, out):
    return out[1] if entry == "mf.value_and_grad" else out


def _structure(tree):
    if isinstance(tree, dict):
        return {k: _structure(v) for k, v in tree.items()}
    return (onp.shape(tree), onp.asarray(tree).dtype.kind)


def _params(seed):
    return MODEL.init(onp.random.default_rng(seed))


@st.composite
def problems(draw, n=None):
    n = draw(st.integers(1, 4)) if n is None else n
    params = _params(draw(st.integers(0, 2**16)))
    x = draw(float_arrays((n, 3)))
    t = onp.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    return params, x, t


def _run(entry, method, kind, params, *args, **kw):
    g = ENTRIES[entry](FS[kind], method=method, **kw)
    return call(g, params, *args)


def _check(entry, method, params, x, t, out):
    grads = _grads(entry, returned(out))
    assert _structure(grads) == _structure(params)
    assert all_finite(grads)
    exact = mf.grad(plain_f)(params, x, t)
    for (k, a), (_, b) in zip(_flat(grads), _flat(exact)):
        onp.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8, err_msg=k)


def _flat(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _flat(v, prefix + k + ".")
        else:
            yield prefix + k, v


@cases
@given(problem=problems(), where=st.sampled_from(["W", "x"]), data=st.data())
def test_nan_or_inf_in_params_or_data_is_refused_by_name(entry, method, kind, problem, where,
                                                          data):
    record(entry, "nonfinite")
    params, x, t = problem
    bad = (onp.nan, onp.inf, -onp.inf)
    if where == "W":
        params["0"]["W"] = data.draw(spiked(st.just(params["0"]["W"]), bad))
    else:
        x = data.draw(spiked(st.just(x), (onp.nan,) if method != "numerical" else bad))
    out = call_ieee(ENTRIES[entry](FS[kind], method=method), params, x, t)
    if out.error is None and (where == "x" or method != "numerical"):
        # an infinite weight or input that tanh saturates (tanh(inf) = 1) leaves a finite
        # loss; a finite gradient of it is right. Central differences cannot step from inf.
        assert all_finite(_grads(entry, out.value)), _grads(entry, out.value)
    else:
        refused(out, "nan or infinite", "not finite")


@pytest.mark.parametrize("kind", list(FS))
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_an_infinite_input_saturated_by_tanh_gives_no_silent_nan(entry, kind):
    record(entry, "nonfinite")
    params, x, t = _params(0), onp.array([[onp.inf, 0.0, 0.0]]), onp.array([0])
    out = call_ieee(ENTRIES[entry](FS[kind]), params, x, t)
    if out.error is None:
        assert all_finite(_grads(entry, out.value)), _grads(entry, out.value)
    else:
        refused(out, "nan or infinite", "not finite")


@cases
@given(problem=problems(), data=st.data())
def test_huge_or_tiny_weights_give_finite_gradients_or_a_clear_error(entry, method, kind,
                                                                    problem, data):
    record(entry, "extreme")
    params, x, t = problem
    # autograd's backward pass overflows silently from weights near the float max: that gap
    # is shown by test_a_weight_near_the_float_max_gives_no_silent_inf_gradient
    values = EXTREME if method == "numerical" else tuple(v for v in EXTREME if abs(v) < 1e300)
    params["2"]["W"] = data.draw(spiked(st.just(params["2"]["W"]), values))
    g = ENTRIES[entry](FS[kind], method=method)
    out = call_ieee(g, params, x, t)  # the layers' matmul may overflow: IEEE's inf, then refused
    if out.error is not None:
        refused(out, "overflow", "nan or infinite", "not finite")
    else:
        grads = _grads(entry, out.value)
        assert _structure(grads) == _structure(params) and all_finite(grads)


@pytest.mark.parametrize("kind", list(FS))
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_a_weight_near_the_float_max_gives_no_silent_inf_gradient(entry, kind):
    record(entry, "extreme")
    params, x, t = _params(0), onp.array([[-2.0, 0.0, 0.0]]), onp.array([0])
    params["2"]["W"][0, 0] = 1.7976931348623157e308
    out = call_ieee(ENTRIES[entry](FS[kind]), params, x, t)
    if out.error is None:
        assert all_finite(_grads(entry, out.value)), _grads(entry, out.value)
    else:
        refused(out, "overflow", "nan or infinite", "not finite")


@pytest.mark.parametrize("method", ["autograd", "numerical"])
@pytest.mark.parametrize("entry", list(ENTRIES))
@given(params=st.one_of(empty(), st.just({}), st.builds(lambda a: {"w": a, "v": {}}, empty())))
def test_empty_params_give_empty_gradients(entry, method, params):
    record(entry, "empty")

    def f(p):
        return sum(mf.np.sum(mf.np.sin(a)) for a in _leaf_list(p)) + 1.0

    out = returned(call(_independent(ENTRIES[entry](f, method=method)), params))
    assert _structure(_grads(entry, out)) == _structure(params)


def _independent(g):
    """``g`` without autograd's UserWarning for an ``f`` that ignores its params (the answer,
    zeros or ``{}``, is right; the note is autograd's, for a user who forgot something)."""
    def quiet(*args):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Output seems independent of input")
            return g(*args)
    return quiet


def _leaf_list(p):
    if isinstance(p, dict) or hasattr(p, "items"):
        return [a for v in p.values() for a in _leaf_list(v)]
    return [p]


@cases
@given(problem=problems())
def test_a_zero_size_batch_is_refused(entry, method, kind, problem):
    record(entry, "empty")
    params, x, t = problem
    refused(_run(entry, method, kind, params, x[:0], t[:0]), "empty")


@cases
@given(problem=problems(), width=st.integers(1, 6).filter(lambda w: w != 3))
def test_inputs_of_the_wrong_width_are_refused(entry, method, kind, problem, width):
    record(entry, "shape")
    params, x, t = problem
    refused(_run(entry, method, kind, params, onp.zeros((len(x), width)), t), "last axis")


@pytest.mark.parametrize("method", ["autograd", "numerical"])
@pytest.mark.parametrize("entry", list(ENTRIES))
@given(p=float_arrays(max_dims=2), out=st.sampled_from(["vector", "matrix", "empty"]))
def test_a_function_that_is_not_scalar_is_refused(entry, method, p, out):
    record(entry, "shape")

    def f(w):
        return {"vector": w.ravel() * 2.0, "matrix": mf.np.outer(w, w),
                "empty": w.ravel()[:0]}[out]

    if onp.size(f(p)) == 1:
        return
    refused(call(ENTRIES[entry](f, method=method), p), "scalar")


@cases
@given(problem=problems(), bad=st.sampled_from(["missing", "extra-layer"]))
def test_params_of_the_wrong_structure_are_refused(entry, method, kind, problem, bad):
    record(entry, "structure")
    params, x, t = problem
    if bad == "missing":
        params = {"0": params["0"]}
    else:
        params = {"0": params["0"], "2": {"W": params["2"]["W"]}}
    refused(_run(entry, method, kind, params, x, t), "expects", "params")


@pytest.mark.parametrize("entry, method, kind", [
    (e, m, k) for e in ENTRIES for m in ("autograd", "trace", "numerical") for k in FS])
def test_a_list_where_a_layer_dict_belongs_is_refused(entry, method, kind):
    record(entry, "structure")
    params = _params(0)
    params = {"0": params["0"], "2": [params["2"]["W"], params["2"]["b"]]}
    out = _run(entry, method, kind, params, onp.zeros((2, 3)), onp.array([0, 1]))
    refused(out, "expects", "params")


@cases
@given(problem=problems(), data=st.data())
def test_integer_and_boolean_data_are_float64(entry, method, kind, problem, data):
    record(entry, "intbool")
    params, x, t = problem
    xi = data.draw(intbool(x.shape, small=True))
    _check(entry, method, params, xi.astype(onp.float64), t,
           _run(entry, method, kind, params, xi, t.astype(onp.uint8)))


@pytest.mark.parametrize("w", [onp.array([1, -2]), onp.array([True, False]),
                               onp.array([3], dtype=onp.uint8)], ids=str)
@pytest.mark.parametrize("square", [True, False])
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_integer_params_get_the_same_answer_from_both_sources(entry, square, w):
    record(entry, "intbool")

    def f(p):
        return mf.np.sum(p ** 2) if square else mf.np.sum(mf.np.sin(p))

    a = _grads(entry, returned(call(ENTRIES[entry](f, method="autograd"), w)))
    n = _grads(entry, returned(call(ENTRIES[entry](f, method="numerical"), w)))
    assert a.dtype == n.dtype == onp.float64
    onp.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-8)


@cases
@given(problem=problems(), data=st.data(), where=st.sampled_from(["x", "t"]))
def test_non_real_data_is_refused(entry, method, kind, problem, data, where):
    record(entry, "object")
    params, x, t = problem
    if where == "x":
        x = data.draw(non_real(x.shape))
    else:
        t = data.draw(non_real(t.shape))
    refused(_run(entry, method, kind, params, x, t), "dtype", "real", "numeric", "integer")


@cases
@given(problem=problems())
def test_list_data_are_arrays(entry, method, kind, problem):
    record(entry, "pylist")
    params, x, t = problem
    _check(entry, method, params, x, t,
           _run(entry, method, kind, params, x.tolist(), t.tolist()))


@cases
@given(problem=problems(), data=st.data())
def test_awkward_params_and_data_are_left_alone_and_give_the_same_gradients(
        entry, method, kind, problem, data):
    record(entry, "layout")
    params, x, t = problem
    odd = {k: {n: data.draw(awkward(a)) for n, a in v.items()} for k, v in params.items()}
    _check(entry, method, params, x, t,
           _run(entry, method, kind, odd, data.draw(awkward(x)), data.draw(awkward(t))))


@pytest.mark.parametrize("entry", list(ENTRIES))
@given(method=st.sampled_from(["Autograd", "numeric", "", None, 1, "central"]))
def test_an_unknown_method_is_refused(entry, method):
    record(entry, "settings")
    refused(call(ENTRIES[entry], plain_f, method=method), "method")


@pytest.mark.parametrize("entry", list(ENTRIES))
@given(h=bad_numbers().filter(lambda h: h is not None), problem=problems())
def test_a_nonsensical_numerical_step_is_refused(entry, h, problem):
    record(entry, "settings")
    params, x, t = problem
    refused(_run(entry, "numerical", "lambda", params, x, t, h=h), "h must", "h ")


@pytest.mark.parametrize("h", [True, 0, -1e-3, onp.nan, onp.inf, "0.1"], ids=repr)
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_a_nonsensical_numerical_step_is_refused_with_a_user_layer_too(entry, h):
    record(entry, "settings")
    params, x, t = _params(0), onp.zeros((2, 3)), onp.array([0, 1])
    refused(_run(entry, "numerical", "user layer", params, x, t, h=h), "h must", "h ")


@pytest.mark.parametrize("method", ["autograd", "numerical"])
@pytest.mark.parametrize("entry", list(ENTRIES))
@given(p=float_arrays(max_dims=1), value=st.sampled_from([None, "1.0", [1.0, 2.0], 1j]))
def test_a_function_returning_nonsense_is_refused(entry, method, p, value):
    record(entry, "settings")
    g = _independent(ENTRIES[entry](lambda w: value, method=method))
    refused(call(g, p), "scalar", "real number")


@pytest.mark.parametrize("method", ["autograd", "numerical"])
@pytest.mark.parametrize("entry", list(ENTRIES))
@given(p=st.one_of(plain(), st.lists(plain(), min_size=1, max_size=3).map(onp.array)))
def test_python_and_numpy_scalars_as_params(entry, method, p):
    record(entry, "pylist")

    def f(w):
        return mf.np.sum(mf.np.sin(w))

    out = _grads(entry, returned(call(ENTRIES[entry](f, method=method), p)))
    onp.testing.assert_allclose(out, onp.cos(p), rtol=1e-6, atol=1e-8)

"""Fuzzing numerical differentiation: ``N.numerical_diff``, ``N.numerical_gradient`` and
``N.gradient_descent``.

What "correct" means here (decided for issue 6):

- These are the book's plain central differences with ``h = 1e-4``, and stay so: for every
  input they accept, the result is exactly the book's quotient (``numerical_gradient`` divides
  by the step actually taken, ``(x + h) - (x - h)``), checked here against an independent
  implementation.
- They cannot differentiate at NaN or infinity, nor where ``h`` is lost in the rounding of
  ``x`` (``x + h == x - h``: ``|x| > ~1e12`` for ``h = 1e-4``; the alternative, a step relative
  to ``|x|``, is what ``minifw.grad(method="numerical")`` and the checker do, and the error
  says so). Both are refused with ``ValueError`` naming the element, never the 0/0 NaN and
  ``RuntimeWarning`` of the plain formula. So is an ``f`` that is not finite beside ``x``.
- ``gradient_descent`` that diverges shows it, as the book's ``lr=10`` example does: it
  returns the point it reached with a ``DivergenceWarning`` naming the learning rate (stopping
  early where ``x`` outgrows ``h``), and raises ``ValueError`` naming the step and the learning
  rate only when ``x`` or ``f`` leaves float64. Nonsensical ``lr``, ``step_num`` and ``h`` are
  refused by name.
- Integers and booleans are computed in float64 (never truncated); lists and scalars are
  arrays; object, string, complex and datetime arrays are refused; empty arrays give empty
  gradients; dict trees keep their structure. The caller's arrays are never changed, however
  they are laid out (a writeable float array is perturbed in place and restored bit for bit).
"""

from __future__ import annotations

import warnings

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minifw import numerical as N
from minifw.divergence import DivergenceWarning

from .harness import (
    EXTREME,
    awkward_arrays,
    bad_numbers,
    call,
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
    scalars,
    shapes,
)
from .harness import arrays as float_arrays

H = 1e-4


def f_sin(x):
    return onp.sum(onp.sin(x))


def f_square(x):
    with onp.errstate(over="ignore"):  # a user's f that overflows quietly to inf
        return onp.sum(onp.asarray(x, dtype=onp.float64) ** 2)


def f_tree(tree):
    return sum(onp.sum(onp.sin(a)) for a in _leaves(tree))


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield onp.asarray(tree)


def reference_gradient(f, x, h=H):
    """The book's loop, on a float copy: the quotient over the step actually taken."""
    x = onp.array(x, dtype=onp.result_type(onp.asarray(x).dtype, onp.float64)
                  if onp.asarray(x).dtype.kind != "f" else onp.asarray(x).dtype)
    g = onp.zeros_like(x)
    for idx in onp.ndindex(x.shape):
        x0 = x[idx]
        up, down = x0 + x.dtype.type(h), x0 - x.dtype.type(h)
        if up == down:
            return None
        xu, xd = x.copy(), x.copy()
        xu[idx], xd[idx] = up, down
        with onp.errstate(all="ignore"):
            g[idx] = (f(xu) - f(xd)) / (float(up) - float(down))
    return g


def _same(a, b):
    a, b = onp.asarray(a), onp.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    assert a.tobytes() == b.tobytes(), (a, b)


# --- numerical_gradient -----------------------------------------------------------------------


@given(x=nonfinite(), f=st.sampled_from([f_sin, f_square]))
def test_gradient_at_nan_or_inf_is_refused_naming_the_element(x, f):
    record("N.numerical_gradient", "nonfinite")
    refused(call(N.numerical_gradient, f, x), "nan or infinite")


@given(x=extreme(), f=st.sampled_from([f_sin, f_square]))
def test_gradient_at_huge_or_tiny_x_is_the_quotient_or_a_clear_error(x, f):
    record("N.numerical_gradient", "extreme")
    out = call(N.numerical_gradient, f, x)
    expected = reference_gradient(f, x)
    if expected is None:
        refused(out, "resolution", "not finite")
    elif not (onp.all(onp.isfinite(expected)) and onp.isfinite(f(x))):
        refused(out, "not finite", "overflow")
    else:
        _same(returned(out), expected)


@pytest.mark.parametrize("x0", [2.5e12, 1e13, 1e15, 1e300, -1e13])
def test_the_step_lost_in_rounding_is_named_not_a_nan(x0):
    record("N.numerical_gradient", "extreme")
    e = refused(call(N.numerical_gradient, f_sin, onp.array([0.5, x0])), "resolution")
    assert "x[1]" in str(e) and "h=0.0001" in str(e) and "method='numerical'" in str(e)


@given(x=st.one_of(empty(), st.just({}), st.builds(lambda a: {"w": a, "v": {}}, empty())))
def test_empty_arrays_and_trees_give_empty_gradients(x):
    record("N.numerical_gradient", "empty")
    g = returned(call(N.numerical_gradient, f_tree, x))
    if isinstance(x, dict):
        assert g.keys() == x.keys() and all(onp.size(v) == 0 for v in _leaves(g))
    else:
        assert g.shape == x.shape and g.dtype == onp.float64


@given(x=float_arrays(min_dims=0, max_dims=4, max_side=3))
def test_any_rank_is_accepted(x):
    record("N.numerical_gradient", "shape")
    _same(returned(call(N.numerical_gradient, f_sin, x)), reference_gradient(f_sin, x))


@given(x=float_arrays(max_dims=2), out=st.sampled_from([lambda x: x, lambda x: onp.stack([x, x]),
                                                        lambda x: onp.zeros(0)]))
def test_a_function_that_is_not_scalar_is_refused_naming_its_shape(x, out):
    record("N.numerical_gradient", "shape")
    f = out
    if onp.size(f(x)) == 1:
        return
    e = refused(call(N.numerical_gradient, f, x), "scalar")
    assert str(onp.shape(f(x))) in str(e)


@given(x=intbool())
def test_integers_and_booleans_are_float64_never_truncated(x):
    record("N.numerical_gradient", "intbool")
    out = call(N.numerical_gradient, f_sin, x)
    expected = reference_gradient(f_sin, x.astype(onp.float64))
    if expected is None:  # 2**40 and up: h is below the resolution of float64 there
        refused(out, "resolution")
    else:
        _same(returned(out), expected)


@given(x=st.one_of(non_real(), st.builds(lambda a: {"w": a}, non_real())))
def test_non_real_arrays_are_refused(x):
    record("N.numerical_gradient", "object")
    refused(call(N.numerical_gradient, f_tree, x), "dtype", "numeric")


@given(x=st.one_of(pylists(max_dims=2), scalars()))
def test_lists_and_scalars_are_arrays(x):
    record("N.numerical_gradient", "pylist")
    g = returned(call(N.numerical_gradient, f_sin, x))
    a = onp.asarray(x)
    _same(g, reference_gradient(f_sin, a if a.dtype.kind == "f" else a.astype(onp.float64)))


@given(x=awkward_arrays())
def test_awkward_layouts_are_restored_and_give_the_contiguous_result(x):
    record("N.numerical_gradient", "layout")
    g = returned(call(N.numerical_gradient, f_sin, x))  # call() checks x is untouched
    # f's own sum may round differently over another memory layout: ulps, not bits
    onp.testing.assert_allclose(g, reference_gradient(f_sin, onp.ascontiguousarray(x)),
                                rtol=1e-12, atol=1e-9)


@given(bad=st.sampled_from([
    {1: onp.zeros(2)}, {"w": [onp.zeros(2), onp.zeros(3)]}, {"w": None}, {"w": {"v": "text"}},
    [onp.zeros(2), onp.zeros(3)], {"w": onp.zeros(2), 0.5: onp.ones(1)},
]))
def test_trees_of_the_wrong_structure_are_refused(bad):
    record("N.numerical_gradient", "structure")
    refused(call(N.numerical_gradient, f_tree, bad), "keys", "numeric", "ragged", "dtype")


@given(h=bad_numbers(), x=float_arrays(max_dims=1))
def test_nonsensical_steps_are_refused(h, x):
    record("N.numerical_gradient", "settings")
    refused(call(N.numerical_gradient, f_sin, x, h), "h ", "h=", "h must")


# --- numerical_diff ---------------------------------------------------------------------------


@given(x=st.one_of(st.sampled_from([onp.nan, onp.inf, -onp.inf]), nonfinite(max_dims=1)))
def test_diff_at_nan_or_inf_is_refused(x):
    record("N.numerical_diff", "nonfinite")
    refused(call(N.numerical_diff, onp.sin, x), "nan", "infinite")


def _quiet(fn):
    def f(x):
        with onp.errstate(all="ignore"):  # a user's f that overflows quietly to inf
            return fn(x)
    return f


@given(x=st.one_of(st.sampled_from(EXTREME), st.floats(-1e15, 1e15)),
       f=st.sampled_from([onp.sin, _quiet(onp.square), _quiet(onp.exp)]))
def test_diff_at_huge_or_tiny_x_is_the_book_formula_or_a_clear_error(x, f):
    record("N.numerical_diff", "extreme")
    out = call(N.numerical_diff, f, x)
    if x + H == x - H:
        refused(out, "resolution")
        return
    with onp.errstate(all="ignore"):
        expected = (f(x + H) - f(x - H)) / (2 * H)
    if not onp.isfinite(expected):
        refused(out, "nan", "infinite")
    else:
        assert returned(out) == expected


@given(x=st.one_of(empty(max_dims=2), st.just([])))
def test_diff_of_an_empty_array_is_empty(x):
    record("N.numerical_diff", "empty")
    d = returned(call(N.numerical_diff, onp.sin, x))
    assert onp.shape(d) == onp.shape(x)


@given(x=float_arrays(min_dims=0, max_dims=3, max_side=3))
def test_diff_is_elementwise_for_arrays_of_any_rank(x):
    record("N.numerical_diff", "shape")
    _same(returned(call(N.numerical_diff, onp.sin, x)),
          (onp.sin(x + H) - onp.sin(x - H)) / (2 * H))


@given(x=st.one_of(st.integers(-3, 3).map(onp.int64), intbool(max_dims=1, small=True)))
def test_diff_at_integers_is_float(x):
    record("N.numerical_diff", "intbool")
    d = returned(call(N.numerical_diff, onp.sin, x))
    xf = onp.asarray(x, dtype=onp.float64)
    onp.testing.assert_array_equal(d, (onp.sin(xf + H) - onp.sin(xf - H)) / (2 * H))


@given(x=st.one_of(non_real(max_dims=1), st.sampled_from(["1.0", None, 1j, {"x": 1.0}])))
def test_diff_at_non_numbers_is_refused(x):
    record("N.numerical_diff", "object")
    refused(call(N.numerical_diff, onp.sin, x), "dtype", "numeric", "number", "real")


@given(x=st.one_of(plain(), st.integers(-3, 3), pylists(max_dims=1)))
def test_diff_at_python_numbers_and_lists(x):
    record("N.numerical_diff", "pylist")
    d = returned(call(N.numerical_diff, onp.sin, x))
    xf = x if isinstance(x, (int, float)) else onp.asarray(x, dtype=onp.float64)
    onp.testing.assert_array_equal(d, (onp.sin(xf + H) - onp.sin(xf - H)) / (2 * H))


@given(x=awkward_arrays(max_dims=2))
def test_diff_at_awkward_arrays(x):
    record("N.numerical_diff", "layout")
    d = returned(call(N.numerical_diff, onp.sin, x))
    onp.testing.assert_array_equal(d, (onp.sin(x + H) - onp.sin(x - H)) / (2 * H))


@given(h=bad_numbers(), x=plain())
def test_diff_refuses_nonsensical_steps(h, x):
    record("N.numerical_diff", "settings")
    refused(call(N.numerical_diff, onp.sin, x, h), "h ", "h must")


@given(x=plain(), value=st.sampled_from([None, "1", [1, "a"], onp.nan, onp.inf, 1j]))
def test_diff_of_a_function_returning_nonsense_is_refused(x, value):
    record("N.numerical_diff", "settings")
    refused(call(N.numerical_diff, lambda _: value, x), "f(x + h)", "f(x - h)", "2h")


# --- gradient_descent -------------------------------------------------------------------------


def gd(init, lr=0.1, step_num=10, f=f_square):
    return N.gradient_descent(f, init, lr=lr, step_num=step_num)


def _descent_and_warnings(init, lr, step_num):
    """``gd``'s end point and the divergence warnings it gave (any other warning raises)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DivergenceWarning)
        end = gd(init, lr, step_num)
    return end, [w.message for w in caught]


@given(x=nonfinite(max_dims=2))
def test_descent_from_nan_or_inf_is_refused(x):
    record("N.gradient_descent", "nonfinite")
    refused(call(gd, x), "nan", "infinite")


@given(x=extreme(max_dims=2), f=st.sampled_from([f_sin, f_square]))
def test_descent_from_huge_or_tiny_points_ends_finite_or_says_why(x, f):
    record("N.gradient_descent", "extreme")
    out = call(gd, x, 0.1, 3, f)
    if out.error is not None:
        refused(out, "step", "resolution", "not finite", "diverged")
    else:
        assert onp.all(onp.isfinite(out.value))


@given(lr=st.floats(1.5, 1e12), x=float_arrays(shape=shapes(max_dims=1)).filter(
    lambda a: onp.abs(a).max() > 0.1))
def test_descent_with_a_rate_that_diverges_warns_naming_lr_or_stops_naming_step_and_lr(lr, x):
    record("N.gradient_descent", "settings")
    out = call(_descent_and_warnings, x, lr, 2000)
    if out.error is None:
        # the point reached shows the divergence, and the warning names the rate
        end, caught = out.value
        assert onp.abs(end).max() > 1e10 * onp.abs(x).max(), end
        assert [type(w) for w in caught] == [DivergenceWarning], caught
        assert f"lr={lr:g}" in str(caught[0]) and "larger h" not in str(caught[0])
    else:
        e = refused(out, "lr")
        assert "step" in str(e) and "larger h" not in str(e)


@given(x=empty(max_dims=2))
def test_descent_from_an_empty_point(x):
    record("N.gradient_descent", "empty")
    assert returned(call(gd, x)).shape == x.shape


@given(x=intbool(max_dims=2, small=True))
def test_descent_from_integers_runs_in_float64(x):
    record("N.gradient_descent", "intbool")
    end = returned(call(gd, x))
    assert end.dtype == onp.float64
    _same(end, gd(x.astype(onp.float64)))


@given(x=non_real(max_dims=2))
def test_descent_from_non_numbers_is_refused(x):
    record("N.gradient_descent", "object")
    refused(call(gd, x), "dtype", "numeric")


@given(x=st.one_of(pylists(max_dims=2), scalars()))
def test_descent_from_lists_and_scalars(x):
    record("N.gradient_descent", "pylist")
    a = onp.asarray(x)
    _same(returned(call(gd, x)), gd(a if a.dtype.kind == "f" else a.astype(onp.float64)))


@given(x=awkward_arrays(max_dims=2))
def test_descent_from_awkward_arrays_leaves_them_alone(x):
    record("N.gradient_descent", "layout")
    onp.testing.assert_allclose(returned(call(gd, x)), gd(onp.ascontiguousarray(x).copy()),
                                rtol=1e-12, atol=1e-9)


@given(x=st.one_of(st.just({"w": onp.ones(2)}), float_arrays(min_dims=0, max_dims=4)))
def test_descent_takes_arrays_of_any_rank_but_not_dicts(x):
    record("N.gradient_descent", "shape")
    out = call(gd, x, 0.1, 2)
    if isinstance(x, dict):
        refused(out, "dict")
    else:
        assert returned(out).shape == x.shape


@given(setting=st.one_of(st.tuples(st.just("lr"), bad_numbers()),
                         st.tuples(st.just("step_num"), st.sampled_from(
                             [-1, 2.5, True, "3", None, onp.nan, [3]]))))
def test_descent_refuses_nonsensical_settings_by_name(setting):
    record("N.gradient_descent", "settings")
    name, value = setting
    refused(call(N.gradient_descent, f_square, onp.ones(2), **{name: value}), name)

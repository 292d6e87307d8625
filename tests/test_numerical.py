"""Numerical differentiation (minifw.numerical) against analytic derivatives.

Error budget of the central difference with step h on float64 (eps = 2.2e-16):
truncation h**2 * |f'''| / 6 (zero for quadratics), plus rounding about k * eps * |f| / h, where
k counts the roundings in one evaluation of f. Each tolerance below is that sum, stated.
"""

import math

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minifw import numerical as N
from minifw import testing

EPS = onp.finfo(onp.float64).eps


# --- numerical_diff ---------------------------------------------------------------------------


@pytest.mark.parametrize("x, slope", [(5.0, 0.2), (10.0, 0.3)])
def test_numerical_diff_books_example(x, slope):
    # f = 0.01 x^2 + 0.1 x: quadratic, no truncation; rounding 10 * eps * |f| / h <= 5e-11
    def f(v):
        return 0.01 * v**2 + 0.1 * v

    assert N.numerical_diff(f, x) == pytest.approx(slope, abs=1e-10)


@pytest.mark.parametrize("x", [-2.0, -0.3, 0.0, 1.0, 2.5])
def test_numerical_diff_of_sine(x):
    # truncation h^2 |cos| / 6 <= 1.7e-9; rounding a few eps / h ~ 1e-11
    assert N.numerical_diff(math.sin, x) == pytest.approx(math.cos(x), abs=2e-9)


def test_numerical_diff_is_the_central_difference():
    # for x^3 the central difference is exactly 3 x^2 + h^2 (the forward one: 3x^2 + 3xh + h^2)
    assert N.numerical_diff(lambda v: v**3, 1.0, h=1e-2) == pytest.approx(3.0001, abs=1e-12)
    assert N.numerical_diff(lambda v: v**3, 2.0, h=0.5) == pytest.approx(12.25, abs=1e-12)


# --- numerical_gradient -----------------------------------------------------------------------


def _f_sin(x):
    return onp.sum(onp.sin(x)) + 0.5 * onp.sum(x**2)


@given(x=testing.arrays(max_dims=3, max_side=3))
def test_numerical_gradient_matches_analytic(x):
    before = x.tobytes()
    g = N.numerical_gradient(_f_sin, x)
    assert g.shape == x.shape and g.dtype == onp.float64
    # truncation h^2 |f'''| / 6 = 1.7e-9 |cos| ; rounding: f sums up to 27 terms of size <= 5.5,
    # about 27 * eps * 150 / h = 9e-9 at worst. 2e-8 covers both.
    onp.testing.assert_allclose(g, onp.cos(x) + x, rtol=0, atol=2e-8)
    assert x.tobytes() == before


def test_numerical_gradient_of_the_books_function():
    g = N.numerical_gradient(lambda x: x[0] ** 2 + x[1] ** 2, onp.array([3.0, 4.0]))
    # quadratic: only rounding, 4 * eps * 25 / 1e-4 = 2e-10
    onp.testing.assert_allclose(g, [6.0, 8.0], rtol=0, atol=1e-9)
    g = N.numerical_gradient(lambda x: x[0] ** 2 + x[1] ** 2, onp.array([0.0, 2.0]))
    onp.testing.assert_allclose(g, [0.0, 4.0], rtol=0, atol=1e-9)


def test_numerical_gradient_of_a_nested_dict():
    W = onp.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    b = onp.array([0.5, -1.5, 2.0])
    params = {"layer": {"W": W, "deeper": {"b": b}}, "c": onp.array(2.0)}

    def f(p):
        return (p["layer"]["W"] ** 2).sum() + (p["layer"]["deeper"]["b"] ** 3).sum() + p["c"] * 7

    g = N.numerical_gradient(f, params)
    assert list(g) == ["layer", "c"] and list(g["layer"]) == ["W", "deeper"]
    assert list(g["layer"]["deeper"]) == ["b"]
    # W: quadratic, rounding only; b: cubic, truncation h^2 = 1e-8 exactly (the x^3 term)
    onp.testing.assert_allclose(g["layer"]["W"], 2 * W, rtol=0, atol=1e-9)
    onp.testing.assert_allclose(g["layer"]["deeper"]["b"], 3 * b**2, rtol=0, atol=2e-8)
    assert g["c"].shape == () and float(g["c"]) == pytest.approx(7.0, abs=1e-9)


def test_integer_arrays_are_differentiated_in_float64():
    x = onp.array([1, 2, 3])
    seen = []

    def f(v):
        seen.append(v.dtype)
        return (v**2).sum() / 2

    g = N.numerical_gradient(f, x)
    assert g.dtype == onp.float64
    assert all(d == onp.float64 for d in seen)
    # truncated to integers, x + 1e-4 would be x and the gradient 0
    onp.testing.assert_allclose(g, [1.0, 2.0, 3.0], rtol=0, atol=1e-9)
    assert x.dtype == onp.int64 and x.tolist() == [1, 2, 3]


def test_integer_arrays_in_a_dict():
    params = {"w": onp.array([2, -1]), "v": onp.array([0.5])}
    g = N.numerical_gradient(lambda p: (p["w"] ** 2).sum() + (p["w"] * p["v"]).sum(), params)
    onp.testing.assert_allclose(g["w"], [4.5, -1.5], rtol=0, atol=1e-9)
    onp.testing.assert_allclose(g["v"], [1.0], rtol=0, atol=1e-9)
    assert params["w"].tolist() == [2, -1] and params["w"].dtype.kind == "i"


def test_caller_array_is_bit_identical_afterwards():
    # values whose bits a sloppy restore would change: -0.0, a subnormal, 0.1 (x + h - h != x)
    x = onp.array([[-0.0, 5e-324, 0.1], [1e10, -3.3, 7.0]])
    before = x.tobytes()
    N.numerical_gradient(lambda v: (v * 1e-3).sum(), x)
    assert x.tobytes() == before
    assert onp.signbit(x[0, 0])


def test_caller_array_is_restored_when_f_raises():
    x = onp.array([1.0, 2.0, 3.0])
    before = x.tobytes()
    calls = []

    def f(v):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("boom")
        return v.sum()

    with pytest.raises(RuntimeError, match="boom"):
        N.numerical_gradient(f, x)
    assert x.tobytes() == before


def test_read_only_arrays_are_fine_and_unchanged():
    x = onp.array([1.0, -2.0])
    x.flags.writeable = False
    g = N.numerical_gradient(lambda v: (v**2).sum(), x)
    onp.testing.assert_allclose(g, [2.0, -4.0], rtol=0, atol=1e-9)
    assert x.tolist() == [1.0, -2.0] and not x.flags.writeable


def test_lists_are_accepted():
    g = N.numerical_gradient(lambda v: (v**2).sum(), [1.0, 2.0])
    onp.testing.assert_allclose(g, [2.0, 4.0], rtol=0, atol=1e-9)


def test_books_closure_style_works():
    # the book: f = lambda w: net.loss(x, t), closing over the very array it differentiates
    W = onp.array([[0.5, -1.0], [2.0, 0.25]])
    x = onp.array([1.0, 2.0])

    def f(_):
        return ((x @ W) ** 2).sum()

    g = N.numerical_gradient(f, W)
    expected = 2 * onp.outer(x, x @ W)
    onp.testing.assert_allclose(g, expected, rtol=0, atol=1e-8)  # quadratic; |f| ~ 10
    assert W.tolist() == [[0.5, -1.0], [2.0, 0.25]]


@given(data=st.data())
def test_quadratic_form_gradient_property(data):
    n = data.draw(st.integers(1, 5))
    A = data.draw(testing.arrays((n, n), min_value=-2, max_value=2))
    A = A + A.T
    x = data.draw(testing.arrays((n,), min_value=-3, max_value=3))
    before = x.tobytes()
    g = N.numerical_gradient(lambda v: 0.5 * v @ A @ v, x)
    # quadratic: no truncation; |f| <= 0.5 * 25 * 4 * 9 = 450 with about 2n^2 roundings,
    # 50 * eps * 450 / 1e-4 = 5e-8
    onp.testing.assert_allclose(g, A @ x, rtol=0, atol=5e-8)
    assert x.tobytes() == before


def test_non_scalar_function_is_refused():
    with pytest.raises(ValueError, match=r"scalar.*\(2,\)"):
        N.numerical_gradient(lambda v: v * 2, onp.array([1.0, 2.0]))


# --- gradient_descent -------------------------------------------------------------------------


def _f2(x):
    return x[0] ** 2 + x[1] ** 2


# f is quadratic: the central difference has no truncation error, and rounding is
# 4 * eps * |f| / h = 4 * 2.2e-16 * 25 / 1e-4 = 2.2e-10 per step
GD_TOL = 1e-9


def test_gradient_descent_one_and_two_steps():
    init = onp.array([-3.0, 4.0])
    x1 = N.gradient_descent(_f2, init, lr=0.1, step_num=1)
    x2 = N.gradient_descent(_f2, init, lr=0.1, step_num=2)
    onp.testing.assert_allclose(x1, [-2.4, 3.2], rtol=0, atol=GD_TOL)
    onp.testing.assert_allclose(x2, [-1.92, 2.56], rtol=0, atol=GD_TOL)
    assert init.tolist() == [-3.0, 4.0]


def test_gradient_descent_returns_the_path():
    init = onp.array([-3.0, 4.0])
    x, path = N.gradient_descent(_f2, init, lr=0.1, step_num=2, return_path=True)
    assert path.shape == (3, 2)
    assert path[0].tolist() == [-3.0, 4.0]
    onp.testing.assert_allclose(path[1:], [[-2.4, 3.2], [-1.92, 2.56]], rtol=0, atol=GD_TOL)
    assert onp.array_equal(path[-1], x)
    assert init.tolist() == [-3.0, 4.0]


def test_gradient_descent_default_100_steps():
    # x_k = (1 - 2 lr)^k x_0 exactly; rounding errors shrink with |f| along the way
    init = [-3.0, 4.0]
    x = N.gradient_descent(_f2, init, lr=0.1)
    onp.testing.assert_allclose(x, onp.array(init) * 0.8**100, rtol=1e-6)
    assert init == [-3.0, 4.0]


def test_gradient_descent_with_integer_start_is_not_truncated():
    init = onp.array([-3, 4])
    x = N.gradient_descent(_f2, init, lr=0.1, step_num=1)
    onp.testing.assert_allclose(x, [-2.4, 3.2], rtol=0, atol=GD_TOL)
    assert init.tolist() == [-3, 4]


def test_gradient_descent_zero_steps_returns_a_copy():
    init = onp.array([-3.0, 4.0])
    x = N.gradient_descent(_f2, init, lr=0.1, step_num=0)
    assert x.tolist() == [-3.0, 4.0]
    x[0] = 99.0
    assert init.tolist() == [-3.0, 4.0]


@pytest.mark.parametrize("step_num", [-1, 1.5, "3", True])
def test_gradient_descent_refuses_bad_step_num(step_num):
    with pytest.raises(ValueError, match="step_num"):
        N.gradient_descent(_f2, [-3.0, 4.0], step_num=step_num)


def test_default_step_is_cube_root_of_eps():
    assert N.default_step(onp.float64) == pytest.approx(EPS ** (1 / 3), rel=1e-12)
    assert N.default_step(onp.float32) == pytest.approx(
        onp.finfo(onp.float32).eps ** (1 / 3), rel=1e-6)

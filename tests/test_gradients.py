"""grad and value_and_grad: two gradient sources, one structure, against closed forms."""

import numpy as onp
import pytest

import minifw as mf
from minifw.tree import leaves

METHODS = ["autograd", "numerical"]


def _structure(tree):
    """Keys, shapes and the leaf/dict distinction of a tree, for exact comparison."""
    if isinstance(tree, dict):
        return {k: _structure(v) for k, v in tree.items()}
    return ("leaf", onp.shape(tree))


def _params():
    rng = onp.random.default_rng(0)
    return {
        "0": {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)},
        "1": {"deep": {"s": onp.array(0.7)}},
    }


X = onp.array([[1.0, -2.0, 0.5], [0.3, 0.0, 2.0], [-1.0, 1.0, 1.0], [0.2, 0.4, -0.6]])


def f(p, x):
    z = x @ p["0"]["W"] + p["0"]["b"]
    return (z**2).sum() * p["1"]["deep"]["s"]


def closed_form(p, x):
    z = x @ p["0"]["W"] + p["0"]["b"]
    s = p["1"]["deep"]["s"]
    return {
        "0": {"W": 2 * s * x.T @ z, "b": 2 * s * z.sum(axis=0)},
        "1": {"deep": {"s": onp.array((z**2).sum())}},
    }


def _close(a, b, rtol, atol):
    for k in b:
        if isinstance(b[k], dict):
            _close(a[k], b[k], rtol, atol)
        else:
            onp.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


# autograd: the same algebra in another order, rel 1e-12. numerical: f is quadratic in W and b
# and linear in s, so no truncation error; rounding is a few eps |f| / h with h = eps^(1/3)
# = 6e-6 and |f| = 8: 3 * 2.2e-16 * 8 / 6e-6 = 1e-9 absolute (measured: 2.3e-10).
TOL = {"autograd": (1e-12, 0.0), "numerical": (0.0, 1e-9)}


@pytest.mark.parametrize("method", METHODS)
def test_grad_matches_closed_form_with_params_structure(method):
    p = _params()
    g = mf.grad(f, method=method)(p, X)
    assert _structure(g) == _structure(p)
    _close(g, closed_form(p, X), *TOL[method])


@pytest.mark.parametrize("method", METHODS)
def test_value_and_grad_agrees_with_grad_and_f(method):
    p = _params()
    value, g = mf.value_and_grad(f, method=method)(p, X)
    assert float(value) == pytest.approx(float(f(p, X)), rel=1e-15)
    assert _structure(g) == _structure(p)
    _close(g, mf.grad(f, method=method)(p, X), 0.0, 0.0)


def test_the_two_methods_agree():
    p = _params()
    ga = mf.grad(f)(p, X)
    gn = mf.grad(f, method="numerical")(p, X)
    _close(gn, ga, 0.0, 1e-9)  # the numerical budget above


@pytest.mark.parametrize("method", METHODS)
def test_empty_subtrees_keep_their_place(method):
    p = {"0": {"w": onp.array([1.0, 2.0])}, "1": {}}
    g = mf.grad(lambda p: (p["0"]["w"] ** 2).sum(), method=method)(p)
    assert _structure(g) == _structure(p)


@pytest.mark.parametrize("method", METHODS)
def test_bare_array_params(method):
    x = onp.array([1.0, -2.0, 3.0])
    g = mf.grad(lambda w: (w**2).sum(), method=method)(x)
    assert isinstance(g, onp.ndarray) and g.shape == (3,)
    onp.testing.assert_allclose(g, 2 * x, rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_params_unchanged(method):
    p = _params()
    before = {k: v.tobytes() for k, v in leaves(p)}
    mf.grad(f, method=method)(p, X)
    assert {k: v.tobytes() for k, v in leaves(p)} == before


def test_numerical_params_unchanged_when_f_raises():
    p = _params()
    before = {k: v.tobytes() for k, v in leaves(p)}
    calls = []

    def g(p, x):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("boom")
        return f(p, x)

    with pytest.raises(RuntimeError, match="boom"):
        mf.grad(g, method="numerical")(p, X)
    assert {k: v.tobytes() for k, v in leaves(p)} == before


@pytest.mark.parametrize("method", METHODS)
def test_non_scalar_f_is_refused(method):
    p = {"w": onp.array([1.0, 2.0])}
    with pytest.raises(ValueError, match=r"scalar.*\(2,\)"):
        mf.grad(lambda p: p["w"] * 2, method=method)(p)
    with pytest.raises(ValueError, match=r"scalar.*\(2,\)"):
        mf.value_and_grad(lambda p: p["w"] * 2, method=method)(p)


@pytest.mark.parametrize("method", METHODS)
def test_one_element_array_counts_as_scalar(method):
    g = mf.grad(lambda w: (w**2).sum(keepdims=True), method=method)(onp.array([3.0]))
    onp.testing.assert_allclose(g, [6.0], rtol=0, atol=1e-9)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method.*finite"):
        mf.grad(f, method="finite")
    with pytest.raises(ValueError, match="method"):
        mf.value_and_grad(f, method="finite")


def test_numerical_step_h_is_used():
    # the central difference of x^3 with step s is exactly 3 x^2 + s^2; for |x| <= 1 the
    # documented step is h itself
    x = onp.array([0.5, -1.0])
    g = mf.grad(lambda w: (w**3).sum(), method="numerical", h=1e-2)(x)
    onp.testing.assert_allclose(g, 3 * x**2 + 1e-4, rtol=0, atol=1e-12)


def test_numerical_with_integer_params_is_float64():
    g = mf.grad(lambda w: (w**2).sum() / 2, method="numerical")(onp.array([1, 2]))
    assert g.dtype == onp.float64
    onp.testing.assert_allclose(g, [1.0, 2.0], rtol=0, atol=1e-9)


def test_extra_args_are_passed_through_and_not_differentiated():
    def loss(p, x, t):
        return ((x @ p["W"] - t) ** 2).sum()

    p = {"W": onp.array([[1.0], [2.0]])}
    x, t = onp.array([[1.0, 1.0]]), onp.array([[1.0]])
    for method in METHODS:
        g = mf.grad(loss, method=method)(p, x, t)
        assert list(g) == ["W"]
        # residual 3 - 1 = 2: dL/dW = 2 * 2 * x^T
        onp.testing.assert_allclose(g["W"], [[4.0], [4.0]], rtol=0, atol=1e-9)


def test_reexports_for_custom_layers():
    import autograd.numpy as anp

    assert mf.np is anp

    @mf.primitive
    def cube(x):
        return x**3

    mf.defvjp(cube, lambda ans, x: lambda g: g * 3 * x**2)
    g = mf.grad(lambda w: cube(w).sum())(onp.array([2.0]))
    assert g.tolist() == [12.0]


def test_in_place_numpy_in_differentiable_code_gets_the_fix_in_the_error():
    class BookReLU(mf.Layer):  # the book's forward, as printed
        def forward(self, params, x):
            out = x.copy()
            out[x <= 0] = 0
            return out

    model = mf.Sequential(mf.Linear(2, 2), BookReLU())
    params = model.init(onp.random.default_rng(0))
    with pytest.raises(AttributeError, match=r"np.where\(x > 0, x, 0.0\)"):
        mf.grad(lambda p: mf.SumSquaresError()(model(p, onp.ones((1, 2))), onp.zeros((1, 2))))(
            params)


@pytest.mark.parametrize("method", ["autograd", "trace", "numerical"])
def test_python_ints_as_params_and_as_the_value_of_f(method):
    # issue 15: grad(f)(3) raised autograd's "Can't differentiate w.r.t. type int" (the
    # numerical method gave 6.0), and an f returning the int 3 raised "Can't find vector space".
    # Central differences of x**2 have no truncation error, only rounding of about
    # eps * 9 / h = 4e-10 with h = eps**(1/3) * 3: 1e-8 of 6 covers it.
    assert float(mf.grad(lambda x: x * x, method=method)(3)) == pytest.approx(6.0, rel=1e-8)
    value, g = mf.value_and_grad(lambda p: 3, method=method)({"w": 2, "v": onp.ones(2)})
    assert value == 3 and float(g["w"]) == 0.0 and g["v"].tolist() == [0.0, 0.0]


def test_reverse_pass_of_a_parameter_itself_a_diamond_and_a_constant():
    # f's value the parameter itself; a parameter reaching the value along two paths that
    # meet again (the edge count of the node where they meet); a value not traced at all
    w = onp.array(0.7)
    assert float(mf.grad(lambda p: p)(w)) == 1.0
    both = mf.grad(lambda p: (mf.np.sin(p["w"]) * mf.np.cos(p["w"])).sum() ** 2)(
        {"w": onp.array([0.3, -1.2])})["w"]
    s, c = onp.sin([0.3, -1.2]), onp.cos([0.3, -1.2])
    onp.testing.assert_allclose(both, 2 * (s * c).sum() * (c * c - s * s), rtol=1e-14)
    assert mf.grad(lambda p: 3.0)({"w": onp.ones(2)})["w"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("x", [3, 3.0, onp.float64(3.0), onp.array(3.0), onp.float32(3.0),
                               onp.array([3.0]), onp.array([1, 2])], ids=repr)
def test_the_three_sources_give_the_same_type_shape_and_dtype(x):
    # a scalar parameter's gradient is a 0-d array from every source (autograd alone would
    # give a float or a NumPy scalar), in the parameter's float dtype
    got = [mf.grad(lambda p: mf.np.sum(p ** 2), method=m)(x)
           for m in ("autograd", "trace", "numerical")]
    want = onp.asarray(2.0 * onp.asarray(x, dtype=onp.result_type(onp.asarray(x), 1.0)))
    for g in got:
        assert type(g) is onp.ndarray and g.shape == want.shape and g.dtype == want.dtype
        onp.testing.assert_allclose(g, want, rtol=1e-6)

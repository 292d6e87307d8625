"""The checker's contract: nothing changed, reports that say what was used and found, modes,
tolerances from the dtype, clear errors, and the one-line property for users' layers."""

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minifw as mf
from minifw import np, testing
from minifw.gradcheck import default_tolerances


def _snapshot(tree):
    if isinstance(tree, dict):
        return {k: _snapshot(v) for k, v in tree.items()}
    return (tree.dtype, tree.shape, tree.tobytes(), tree.flags.writeable)


def _model_and_f():
    model = mf.Sequential(mf.Linear(3, 4), mf.ReLU(), mf.Linear(4, 2))
    t = onp.array([0, 1])

    def f(p, x):
        return mf.SoftmaxCrossEntropy()(model(p, x), t)

    return model, f


# --- nothing changed --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", mf.gradcheck.MODES)
@given(x=testing.arrays((2, 3)), seed=st.integers(0, 2**32 - 1))
def test_params_and_inputs_are_bit_identical_afterwards(x, seed, mode):
    model, f = _model_and_f()
    params = model.init(onp.random.default_rng(seed))
    before_p, before_x = _snapshot(params), _snapshot(x)
    mf.check_grads(f, params, x, mode=mode, rng=0)
    assert _snapshot(params) == before_p and _snapshot(x) == before_x


@pytest.mark.parametrize("mode", mf.gradcheck.MODES)
@pytest.mark.parametrize("when", [0.0, 0.01, 0.5, 1.0])
def test_nothing_changes_when_f_raises_midway(mode, when):
    """f raises on its n-th call, from the first (autograd) to the last of a clean check."""
    model, f = _model_and_f()
    params = model.init(onp.random.default_rng(0))
    x = onp.random.default_rng(1).standard_normal((2, 3))
    before_p, before_x = _snapshot(params), _snapshot(x)
    calls = []

    def counted(p, x):
        calls.append(1)
        return f(p, x)

    mf.check_grads(counted, params, x, mode=mode, rng=0)
    fail_at, calls[:] = max(1, round(when * len(calls))), []

    def flaky(p, x):
        calls.append(1)
        if len(calls) == fail_at:
            raise RuntimeError("f failed midway")
        return f(p, x)

    with pytest.raises(RuntimeError, match="midway"):
        mf.check_grads(flaky, params, x, mode=mode, rng=0)
    assert _snapshot(params) == before_p and _snapshot(x) == before_x


def test_check_layer_leaves_x_and_params_bit_identical_also_read_only_and_float32():
    layer = mf.Linear(3, 2)
    params = {k: v.astype(onp.float32) for k, v in layer.init(onp.random.default_rng(0)).items()}
    x = onp.random.default_rng(1).standard_normal((4, 3)).astype(onp.float32)
    for a in (x, *params.values()):
        a.flags.writeable = False
    before_p, before_x = _snapshot(params), _snapshot(x)
    report = mf.check_layer(layer, x, params)
    assert report.ok and report.dtype == "float32"
    assert _snapshot(params) == before_p and _snapshot(x) == before_x


def test_integer_inputs_are_checked_in_float64_not_truncated():
    x = onp.array([[1, -2, 3]])
    before = _snapshot(x)
    report = mf.check_layer(mf.Tanh(), x)
    assert report.ok and report.dtype == "float64"
    # tanh' at 1 is 0.42, nowhere near an integer: a truncated step would give 0 or garbage
    assert _snapshot(x) == before


def test_integer_params_are_held_constant_and_the_report_says_so():
    # indices into an embedding are not a differentiable input: perturbing them as floats
    # would count their jumps as kinks
    table, idx = onp.arange(12.0).reshape(4, 3), onp.array([2, 0, 2])
    report = mf.check_grads(lambda p: np.sum(np.sin(p["table"][p["idx"]])),
                            {"table": table, "idx": idx})
    rows = {r.path: r for r in report.rows}
    assert report.ok and rows["table"].checked == 12 and idx.dtype.kind == "i"
    assert "not differentiated" in rows["idx"].skipped and "not differentiated" in str(report)


# --- the report -------------------------------------------------------------------------------

def test_report_has_a_row_per_path_and_the_input_and_states_tolerances():
    report = mf.check_layer(mf.Linear(3, 2), onp.ones((2, 3)))
    assert [r.path for r in report.rows] == ["x", "W", "b"]
    h, rtol, atol = default_tolerances("float64", 1.0)
    assert report.h == h and report.rtol == rtol
    text = str(report)
    assert f"h={h:.3g}" in text and f"rtol={rtol:.3g}" in text and "atol=" in text
    for r in report.rows:
        assert r.ok and r.checked == onp.prod(r.shape) and r.kinks == 0
        assert r.path in text


def test_the_worst_element_is_the_wrong_one():
    @mf.primitive
    def cube(x):
        return x**3

    def wrong_at_index_4(ans, x):
        def vjp(g):
            right = 3 * x**2 * g
            return onp.where(onp.arange(x.size).reshape(x.shape) == 4, 2 * right, right)
        return vjp

    mf.defvjp(cube, wrong_at_index_4)
    x = onp.linspace(0.5, 2.0, 6).reshape(2, 3)
    report = mf.check_grads(lambda x: np.sum(cube(x)), x)
    row = report.rows[0]
    assert not row.ok and row.failures == 1 and row.index == (1, 1)
    assert row.autograd == pytest.approx(2 * 3 * x[1, 1] ** 2)
    assert row.numerical == pytest.approx(3 * x[1, 1] ** 2, rel=1e-6)
    assert report.max_rel_error == pytest.approx(0.5, rel=1e-6)


def test_a_step_too_big_for_a_steep_function_is_shrunk_by_the_sweep():
    # exp(10 x) with h = 0.05: the first central difference is off by 4% (truncation), the
    # sweep shrinks the step until two steps agree, and passes the correct gradient...
    f = lambda x: np.sum(np.exp(10 * x))  # noqa: E731
    report = mf.check_grads(f, onp.array([1.0]), h=0.05)
    assert report.ok
    assert report.rows[0].numerical == pytest.approx(10 * onp.exp(10.0), rel=1e-6)

    # ...and fails a gradient wrong by 1%, as small as the first step's truncation error
    @mf.primitive
    def exp10(x):
        return onp.exp(10 * x)

    mf.defvjp(exp10, lambda ans, x: lambda g: 1.01 * 10 * ans * g)
    bad = mf.check_grads(lambda x: np.sum(exp10(x)), onp.array([1.0]), h=0.05)
    assert not bad.ok and "wrong" in bad.rows[0].verdict


def test_float32_is_checked_in_float64_where_rounding_would_hide_a_small_error():
    # in float32, f = sum(sin x) + 1e4 rounds to 1e-3 absolute: central differences in
    # float32 could not see a 1e-4 relative error; on float64 copies they do
    @mf.primitive
    def sine(x):
        return onp.sin(x)

    mf.defvjp(sine, lambda ans, x: lambda g: (1 + 1e-4) * onp.cos(x) * g)
    x = onp.array([1.0, 2.0], onp.float32)
    good = mf.check_grads(lambda x: np.sum(np.sin(x)) + 1e4, x)
    bad = mf.check_grads(lambda x: np.sum(sine(x)) + 1e4, x)
    assert good.ok and good.checked_in == "float64" and good.dtype == "float32"
    assert not bad.ok and bad.checked_in == "float64"


def test_default_tolerances_follow_the_dtype():
    h64, rtol64, atol64 = default_tolerances(onp.float64)
    h32, rtol32, atol32 = default_tolerances(onp.float32)
    assert h64 == pytest.approx(onp.finfo(onp.float64).eps ** (1 / 3))
    assert h32 == pytest.approx(onp.finfo(onp.float32).eps ** (1 / 3))
    assert rtol64 < 1e-6 < rtol32 < 0.05 and atol64 < atol32
    # the rounding part of atol scales with |f|
    assert default_tolerances(onp.float64, 1e3)[2] == pytest.approx(1e3 * atol64)


# --- modes ------------------------------------------------------------------------------------

def test_projection_is_reproducible_and_its_cost_does_not_grow_with_size():
    calls = []

    def f(w):
        calls.append(1)
        return np.sum(np.tanh(w))

    r1 = mf.check_grads(f, onp.linspace(-1, 1, 10), mode="projection", rng=3)
    small = len(calls)
    calls.clear()
    r2 = mf.check_grads(f, onp.linspace(-1, 1, 1000), mode="projection", rng=3)
    assert r1.ok and r2.ok and len(calls) == small
    assert str(mf.check_grads(f, onp.linspace(-1, 1, 10), mode="projection", rng=3)) == str(r1)


def test_projection_is_per_array_so_a_small_wrong_array_is_not_drowned():
    @mf.primitive
    def scale(b):
        return 2 * b

    mf.defvjp(scale, lambda ans, b: lambda g: 2.2 * g)  # 10% off, in a 2-element array

    def f(p):
        return np.sum(np.sin(p["big"])) + np.sum(scale(p["small"]))

    params = {"big": onp.linspace(-1, 1, 5000), "small": onp.array([0.3, -0.2])}
    report = mf.check_grads(f, params, mode="projection", rng=0)
    assert {r.path for r in report.rows if not r.ok} == {"small"}


def test_a_generator_or_a_seed_gives_the_same_directions():
    f = lambda w: np.sum(w**3)  # noqa: E731
    w = onp.linspace(-1, 1, 7)
    by_seed = mf.check_grads(f, w, mode="projection", rng=5)
    by_gen = mf.check_grads(f, w, mode="projection", rng=onp.random.default_rng(5))
    assert str(by_seed) == str(by_gen)


# --- errors -----------------------------------------------------------------------------------

def test_bad_calls_raise_clear_errors():
    w = onp.ones(3)
    with pytest.raises(ValueError, match="mode"):
        mf.check_grads(lambda w: np.sum(w), w, mode="fast")
    with pytest.raises(ValueError, match=r"scalar.*\(3,\)"):
        mf.check_grads(lambda w: w * 2, w)
    with pytest.raises(ValueError, match="nan"):
        mf.check_grads(lambda w: np.sum(w) * onp.nan, w)
    with pytest.raises(TypeError, match="params must be a dict"):
        mf.check_layer(mf.Tanh(), w, params=[1])
    with pytest.raises(ValueError, match="named 'x'"):
        mf.check_layer(mf.Tanh(), w, params={"x": w})


# --- the one-line property for users' layers --------------------------------------------------

class Swish(mf.Layer):
    """A user's layer written with minifw.np only."""

    def forward(self, params, x):
        return x / (1 + np.exp(-x))


test_swish_gradients = testing.gradient_property(Swish())
test_linear_gradients = testing.gradient_property(lambda: mf.Linear(3, 2))


@given(net=testing.networks(in_features=3))
def test_strategies_build_working_networks(net):
    params = net.init(onp.random.default_rng(0))
    y = net(params, onp.ones((2, 3)))
    assert y.ndim == 2 and y.shape[0] == 2 and onp.isfinite(y).all()


@given(x=testing.arrays(max_dims=3, max_side=4))
def test_arrays_are_bounded(x):
    assert 1 <= x.ndim <= 3 and max(x.shape) <= 4 and onp.all(onp.abs(x) <= 3)


@pytest.mark.parametrize("tuple_input", [False, True])
def test_check_layer_never_hands_the_layer_the_callers_arrays(tuple_input):
    # issue 15, item 12: the layer's first call got the caller's params, and then its x
    def scribble(a):
        a = getattr(a, "_value", a)
        if isinstance(a, onp.ndarray) and a.flags.writeable:
            a.flat[0] = 99.0  # a layer that scribbles on its params and inputs

    class Mutating(mf.Layer):
        def init(self, rng):
            return {"w": onp.ones(2)}

        def forward(self, params, x):
            scribble(params["w"])
            for a in x if tuple_input else (x,):
                scribble(a)
            return (x[0] + x[1] if tuple_input else x) * params["w"]

    params = {"w": onp.ones(2)}
    x = (onp.ones((3, 2)), onp.ones((3, 2))) if tuple_input else onp.ones((3, 2))
    mf.check_layer(Mutating(), x, params)
    assert params["w"].tolist() == [1.0, 1.0]
    assert all((a == 1.0).all() for a in (x if tuple_input else (x,)))


def test_check_layer_runs_a_chain_of_layers_on_the_stacked_engine_not_the_loop():
    """The scalar check_layer differentiates ends in its cotangent loss, so the layer's calls
    are re-run on stacked rows: the layer's forward runs a few times whatever the size, not
    twice per element as in the loop (a regression once cost 20x on an 8x16 layer)."""
    class Counted(mf.Layer):
        per_sample = True

        def __init__(self, seen):
            self.seen = seen

        def forward(self, params, x):
            self.seen.append(1)
            return np.tanh(x)

        def backward(self, params, x, y, g):
            return g * (1 - y ** 2), {}

    counts = []
    for n in (4, 32):
        seen = []
        model = mf.Sequential(mf.Linear(n, n), Counted(seen))
        assert mf.check_layer(model, onp.random.default_rng(0).standard_normal((3, n))).ok
        counts.append(len(seen))
    assert counts[0] == counts[1] < 2 * 4 * 4

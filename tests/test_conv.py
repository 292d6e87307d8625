"""Conv2D, MaxPool2D, AvgPool2D and Flatten: their values against direct loops, their gradients
against the checker (both modes, both dtypes, drawn geometries, ties and kinks included), a
wrong backward pass planted in each caught, and the three gradient sources agreeing."""

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from image_helpers import DTYPES, cast, conv_cases, plant, pool_cases, scaled

import minifw as mf
from minifw import gradcheck
from minifw.layers import conv, pooling, reshape
from minifw.tree import leaves

RNG = onp.random.default_rng


def direct_conv(x, W, b, stride, padding):
    """The convolution by its definition: every output element a sum over its window."""
    (sh, sw), (ph, pw) = stride, padding
    xp = onp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    F, _, kh, kw = W.shape
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    y = onp.zeros((x.shape[0], F, oh, ow))
    for n, f, i, j in onp.ndindex(y.shape):
        y[n, f, i, j] = (xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw] * W[f]).sum() + b[f]
    return y


def direct_pool(x, pool, stride, reduce):
    (ph, pw), (sh, sw) = pool, stride
    oh, ow = (x.shape[2] - ph) // sh + 1, (x.shape[3] - pw) // sw + 1
    y = onp.zeros(x.shape[:2] + (oh, ow))
    for n, c, i, j in onp.ndindex(y.shape):
        y[n, c, i, j] = reduce(x[n, c, i * sh:i * sh + ph, j * sw:j * sw + pw])
    return y


@given(case=conv_cases(onp.float64), seed=st.integers(0, 2**16))
def test_conv2d_computes_the_definition(case, seed):
    layer, x = case
    params = layer.init(RNG(seed))
    params["b"] = RNG(seed).standard_normal(params["b"].shape)
    want = direct_conv(x, params["W"], params["b"], layer.stride, layer.padding)
    onp.testing.assert_allclose(layer(params, x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("C, H, W, kernel, stride, padding", [
    (2, 3, 4, 3, 1, 3),  # padding beyond the kernel: outputs of padding alone
    (1, 5, 7, (2, 3), (3, 2), (2, 0)),  # strides beyond the kernel, uneven padding
    (3, 1, 1, 1, 3, 2),  # a 1x1 kernel on a 1x1 image: the flat layout's corners
    (2, 6, 5, (5, 1), (2, 1), (2, 0)),
])
def test_conv2d_layout_corners_compute_the_definition(C, H, W, kernel, stride, padding):
    # the flat layout shares padding between neighbouring channels and rows: geometries the
    # drawn cases do not reach (paddings above 1, strides above the kernel)
    layer = mf.Conv2D(C, 2, kernel, stride=stride, padding=padding)
    params = {"W": RNG(0).standard_normal((2, C, *layer.kernel_size)),
              "b": RNG(1).standard_normal(2)}
    x = RNG(2).standard_normal((2, C, H, W))
    want = direct_conv(x, params["W"], params["b"], layer.stride, layer.padding)
    onp.testing.assert_allclose(layer(params, x), want, rtol=1e-12, atol=1e-12)
    assert mf.check_layer(layer, x, params, rng=0).ok


@pytest.mark.parametrize("cls, reduce", [(mf.MaxPool2D, onp.max), (mf.AvgPool2D, onp.mean)])
@given(data=st.data())
def test_pooling_computes_the_definition(cls, reduce, data):
    layer, x = data.draw(pool_cases(cls, onp.float64))
    want = direct_pool(x, layer.pool_size, layer.stride, reduce)
    onp.testing.assert_allclose(layer({}, x), want, rtol=1e-14, atol=1e-15)


def test_flatten_and_the_shapes_of_a_small_cnn():
    model = mf.Sequential(mf.Conv2D(1, 4, 3, padding=1), mf.ReLU(), mf.MaxPool2D(2),
                          mf.Flatten(), mf.Linear(64, 10))
    params = model.init(RNG(0))
    assert {p: a.shape for p, a in leaves(params)} == {
        "0.W": (4, 1, 3, 3), "0.b": (4,), "4.W": (64, 10), "4.b": (10,)}
    assert model(params, onp.ones((5, 1, 8, 8))).shape == (5, 10)
    x = RNG(1).standard_normal((2, 3, 4, 5))
    onp.testing.assert_array_equal(mf.Flatten()({}, x), x.reshape(2, 60))
    assert mf.Flatten()({}, onp.ones((0, 3, 2))).shape == (0, 6)


@pytest.mark.parametrize("weight_init, std", [("he", onp.sqrt(2 / 27)), ("xavier", 1 / 27 ** .5),
                                              (0.5, 0.5)])
def test_conv2d_weight_init_over_its_fan_in(weight_init, std):
    W = mf.Conv2D(3, 200, 3, weight_init=weight_init).init(RNG(0))["W"]
    assert W.shape == (200, 3, 3, 3)
    assert abs(W.std() / std - 1) < 0.05


# --- the checker, on drawn layers and inputs -------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
@given(case=st.data(), seed=st.integers(0, 2**16))
def test_conv2d_passes_the_checker(dtype, mode, case, seed):
    layer, x = case.draw(conv_cases(dtype))
    params = cast(layer.init(RNG(seed)), dtype)
    report = mf.check_layer(layer, x, params, mode=mode, rng=seed)
    assert report.ok, str(report)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
@pytest.mark.parametrize("cls", [mf.MaxPool2D, mf.AvgPool2D])
@given(case=st.data())
def test_pooling_passes_the_checker_with_ties(cls, mode, dtype, case):
    layer, x = case.draw(pool_cases(cls, dtype))
    report = mf.check_layer(layer, x, mode=mode, rng=0)
    assert report.ok, str(report)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
def test_flatten_passes_the_checker(dtype, mode):
    x = RNG(0).standard_normal((3, 2, 2, 3)).astype(dtype)
    assert mf.check_layer(mf.Flatten(), x, mode=mode).ok


def test_max_pooling_routes_each_window_to_one_maximum():
    x = onp.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 2.0], [0.0, 5.0, 5.0]]]])
    g = mf.grad(lambda x: mf.np.sum(mf.MaxPool2D(2, stride=1)({}, x)))(x)
    # windows: [1 1; 1 1] (first), [1 0; 1 2], [1 1; 0 5], [1 2; 5 5] (first 5)
    onp.testing.assert_array_equal(g[0, 0], [[1, 0, 0], [0, 0, 1], [0, 2, 0]])
    # the ties are kinks: the checker passes them, and counts them
    report = mf.check_layer(mf.MaxPool2D(2, stride=1), x)
    assert report.ok and report.rows[0].kinks >= 4, str(report)


# --- planted bugs ----------------------------------------------------------------------------


# each op's backward checked through the layer that uses it (small: a failing check explains
# every wrong element against the trace)
LAYERS = {
    conv.PAD: lambda: mf.Conv2D(1, 2, 2, padding=1),
    conv.CONV: lambda: mf.Conv2D(1, 2, 2, padding=1),
    pooling.MAX_POOL: lambda: mf.MaxPool2D(2),
    pooling.AVG_POOL: lambda: mf.AvgPool2D(2, stride=1),
    reshape.FLATTEN: mf.Flatten,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
@pytest.mark.parametrize("op", list(LAYERS), ids=lambda op: op.name)
def test_a_backward_off_by_1e_3_is_caught(op, mode, dtype, monkeypatch):
    plant(monkeypatch, op, lambda right: scaled(right, 1e-3))
    layer = LAYERS[op]()
    x = RNG(3).standard_normal((2, 1, 3, 3)).astype(dtype)
    report = mf.check_layer(layer, x, cast(layer.init(RNG(0)), dtype), mode=mode, rng=0)
    assert not report.ok, str(report)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
@pytest.mark.parametrize("which", [0, 1, 2], ids=["x", "W", "b"])
def test_a_bug_in_one_gradient_of_the_conv_is_caught(which, mode, dtype, monkeypatch):
    # col2im (towards x), the filters' and the bias's gradients: each wrong alone is caught
    right = conv.CONV.backward

    def wrong(*args, **kwargs):
        out = list(right(*args, **kwargs))
        out[which] = out[which] * (1 + 1e-3)
        return tuple(out)

    monkeypatch.setattr(conv.CONV, "backward", wrong)
    layer = mf.Conv2D(2, 2, 3, stride=(1, 2), padding=1)
    x = RNG(3).standard_normal((2, 2, 4, 5)).astype(dtype)
    report = mf.check_layer(layer, x, cast(layer.init(RNG(0)), dtype), mode=mode, rng=0)
    assert not report.ok, str(report)
    assert {r.path for r in report.rows if not r.ok} == {("x", "W", "b")[which]}, str(report)


def _problem(dtype):
    rng = RNG(3)
    model = mf.Sequential(mf.Conv2D(1, 2, 3, padding=1), mf.Tanh(), mf.MaxPool2D(2),
                          mf.Flatten(), mf.Linear(2, 2))
    return model, cast(model.init(rng), dtype), rng.standard_normal((2, 1, 2, 2)).astype(dtype)


def test_a_small_bug_is_caught_in_a_model_as_a_user_writes_it(monkeypatch):
    # the Sequential's own reverse loop runs the ops' backward passes: the bug shows there too
    plant(monkeypatch, conv.CONV, lambda right: scaled(right, 1e-3))
    model, params, x = _problem(onp.float64)
    t = onp.array([0, 1])
    report = mf.check_grads(lambda p, x, t: mf.SoftmaxCrossEntropy()(model(p, x), t), params,
                            x, t)
    assert not report.ok and {r.path for r in report.rows if not r.ok} == {"0.W", "0.b"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bug", ["input", "weights"])
def test_a_missing_transpose_in_the_conv_backward_is_caught(bug, dtype, monkeypatch):
    # the kernel's height and width swapped: the shapes fit (a 3x3 kernel), the values do not
    right = conv.CONV.backward

    def wrong(g, y, flat, W, b, needs, **options):
        gflat, gW, gb = right(g, y, flat, W.swapaxes(-1, -2) if bug == "input" else W, b,
                              needs, **options)
        return (gflat, gW.swapaxes(-1, -2) if bug == "weights" else gW, gb)

    monkeypatch.setattr(conv.CONV, "backward", wrong)
    model, params, x = _problem(dtype)
    assert not mf.check_layer(model, x, params).ok


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
def test_max_pooling_routing_to_every_tied_cell_is_caught(mode, dtype, monkeypatch):
    def to_all(g, y, x, pool, stride):
        gx = onp.zeros_like(x)
        for w in pooling._windows(x.shape, pool, stride):
            gx[w] += onp.where(x[w] == y, g, 0)
        return gx

    monkeypatch.setattr(pooling.MAX_POOL, "vjps", (to_all,))
    # a tie that holds wherever z moves: each pixel of z fills two cells of a window, so the
    # maximum moves with z, smoothly, and its gradient must reach z once, not twice
    G = RNG(0).standard_normal((2, 3, 1, 2)).astype(dtype)

    def f(z):
        # axis=3, not -1: autograd's VJP of repeat is wrong for a negative axis (1.9.1)
        return gradcheck.COTANGENT(mf.MaxPool2D(2)({}, mf.np.repeat(z, 2, axis=3)), G)

    z = RNG(1).standard_normal((2, 3, 2, 2)).astype(dtype)
    assert not mf.check_grads(f, z, mode=mode, rng=0).ok


# --- three sources -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool, width", [(mf.MaxPool2D(2), 12),
                                         (mf.AvgPool2D((2, 1), stride=1), 48)], ids=repr)
def test_the_three_sources_agree_on_a_cnn(pool, width, dtype):
    # conv output (3, 5, 4): (5 + 2 - 3) + 1 rows, (6 + 2 - 2) // 2 + 1 columns
    model = mf.Sequential(mf.Conv2D(2, 3, (3, 2), stride=(1, 2), padding=1), mf.ReLU(), pool,
                          mf.Flatten(), mf.Linear(width, 3, weight_init="xavier"))  # as made on
    rng = RNG(4)
    params = cast(model.init(rng), dtype)
    x = rng.standard_normal((4, 2, 5, 6)).astype(dtype)
    t = onp.array([0, 2, 1, 1])

    def f(p, x, t):
        return mf.SoftmaxCrossEntropy()(model(p, x), t)

    a, r, n = (mf.grad(f, method=m)(params, x, t) for m in ("autograd", "trace", "numerical"))
    tol = 1e-12 if dtype == onp.float64 else 2e-5
    for (path, ga), (_, gr), (_, gn) in zip(leaves(a), leaves(r), leaves(n)):
        assert ga.dtype == dtype, path
        scale = max(1.0, float(onp.abs(gr).max()))
        assert onp.abs(ga - gr).max() <= tol * scale, path
        assert onp.abs(ga - gn).max() <= (1e-6 if dtype == onp.float64 else 3e-2) * scale, path
    assert mf.check_grads(f, params, x, t).ok


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make, x, words", [
    (lambda: mf.Conv2D(3, 2, 3), onp.ones((2, 1, 5, 5)), "(N, 3, H, W)"),
    (lambda: mf.Conv2D(1, 2, 3), onp.ones((2, 1, 2, 5)), "(2, 1, 2, 5)"),
    (lambda: mf.Conv2D(1, 2, 3), onp.ones((1, 5, 5)), "(1, 5, 5)"),
    (lambda: mf.MaxPool2D(3), onp.ones((2, 1, 2, 5)), "at least (3, 3)"),
    (lambda: mf.AvgPool2D(2), onp.ones((4, 4)), "(4, 4)"),
    (lambda: mf.Flatten(), onp.float64(1.0), "batch axis"),
])
def test_bad_inputs_are_named(make, x, words):
    layer = make()
    with pytest.raises(ValueError) as e:
        layer(layer.init(RNG(0)), x)
    assert words in str(e.value)


def test_bad_params_and_settings_are_named():
    layer = mf.Conv2D(1, 2, 3)
    with pytest.raises(ValueError, match=r"expects W \(2, 1, 3, 3\) and b \(2,\), got W "):
        layer({"W": onp.ones((2, 1, 2, 2)), "b": onp.ones(2)}, onp.ones((1, 1, 4, 4)))
    with pytest.raises(TypeError, match="expects params"):
        layer({"W": onp.ones((2, 1, 3, 3))}, onp.ones((1, 1, 4, 4)))
    for bad in (lambda: mf.Conv2D(1, 2, 0), lambda: mf.Conv2D(1, 2, 3, stride=(1, 0)),
                lambda: mf.Conv2D(1, 2, 3, padding=-1), lambda: mf.MaxPool2D((2, 2, 2)),
                lambda: mf.AvgPool2D(2, stride=1.5), lambda: mf.Conv2D(0, 2, 3),
                lambda: mf.Conv2D(1, 2, True)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="weight_init"):
        mf.Conv2D(1, 2, 3, weight_init="nope")

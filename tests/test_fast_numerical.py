"""The stacked central differences equal the per-element loop to within its rounding error.

The bound, stated in minifw.fast_numerical: for every element,
``|fast - loop| <= 64 eps max(1, |f|) / step``, the rounding error of a central difference of
a function of size ``|f|`` (the checker's ``atol``). The loop here is
``minifw.numerical.central_differences`` over the plain function, element by element.
"""

import itertools

import numpy as onp
import pytest

import minifw as mf
from minifw import fast_numerical
from minifw.fast_numerical import fused_central_differences, fused_probe
from minifw.numerical import central_differences, evaluate_at
from minifw.objective import Dot, LayerObjective, Objective
from minifw.tree import leaves

EPS = float(onp.finfo(onp.float64).eps)

HIDDEN = {
    "identity": mf.Identity, "sigmoid": mf.Sigmoid, "tanh": mf.Tanh, "relu": mf.ReLU,
    "leaky_relu": lambda: mf.LeakyReLU(0.2), "step": mf.Step, "softmax": mf.Softmax,
}
LOSSES = {
    "sce labels": (mf.SoftmaxCrossEntropy, "labels"), "sce soft": (mf.SoftmaxCrossEntropy, "soft"),
    "ce labels": (mf.CrossEntropyError, "labels"), "ce one-hot": (mf.CrossEntropyError, "one-hot"),
    "sse": (mf.SumSquaresError, "real"), "mse": (mf.MeanSquaredError, "real"),
    "dot": (Dot, "real"),
}


def random_case(rng, hidden, loss_name, depth, batch):
    loss_cls, targets = LOSSES[loss_name]
    sizes = [int(n) for n in rng.integers(1, 7, depth + 1)]
    sizes[-1] = max(sizes[-1], 2)
    layers = []
    for i in range(depth):
        layers.append(mf.Linear(sizes[i], sizes[i + 1]))
        if i < depth - 1:
            layers.append(HIDDEN[hidden]())
    if loss_cls is mf.CrossEntropyError:
        layers.append(mf.Softmax())
    model = mf.Sequential(*layers)
    params = model.init(rng)
    x = rng.standard_normal((batch, sizes[0])) * 2
    classes = sizes[-1]
    t = {"labels": lambda: rng.integers(0, classes, batch),
         "soft": lambda: rng.dirichlet(onp.ones(classes), batch),
         "one-hot": lambda: onp.eye(classes)[rng.integers(0, classes, batch)],
         "real": lambda: rng.standard_normal((batch, classes))}[targets]()
    return Objective(model, loss_cls()), params, x, t


def assert_within_bound(fast, loop, f0, h, tree):
    """Element by element: |fast - loop| <= 64 eps max(1, |f|) / step (step relative)."""
    worst = 0.0
    for (path, a), (_, b), (_, w) in zip(leaves(fast), leaves(loop), leaves(tree)):
        assert onp.shape(a) == onp.shape(b), path
        step = h * onp.maximum(1.0, onp.abs(w))
        bound = 64 * EPS * max(1.0, abs(f0)) / step
        ratio = onp.abs(a - b) / bound
        assert ratio.max(initial=0.0) <= 1.0, (path, a, b)
        worst = max(worst, float(ratio.max(initial=0.0)))
    return worst


@pytest.mark.parametrize("hidden, loss_name",
                         list(itertools.product(HIDDEN, LOSSES)))
def test_equal_to_the_loop_on_random_networks(hidden, loss_name):
    rng = onp.random.default_rng(abs(hash((hidden, loss_name))) % 2**32)
    for depth, batch in ((1, 3), (2, 5), (3, 7), (2, 1)):
        f, params, x, t = random_case(rng, hidden, loss_name, depth, batch)
        for h in (6.06e-6, 1e-4):
            fast = f._fused_central_differences(params, x, t, h=h)
            assert fast is not None
            loop = central_differences(lambda p: f(p, x, t), params, h, relative=True)
            assert_within_bound(fast, loop, float(f(params, x, t)), h, params)


def test_the_absolute_step_of_the_book():
    rng = onp.random.default_rng(0)
    f, params, x, t = random_case(rng, "sigmoid", "sce labels", 2, 4)
    fast = f._fused_central_differences(params, x, t, h=1e-4, relative=False)
    loop = central_differences(lambda p: f(p, x, t), params, 1e-4, relative=False)
    bound = 64 * EPS * max(1.0, abs(float(f(params, x, t)))) / 1e-4
    for (path, a), (_, b) in zip(leaves(fast), leaves(loop)):
        assert onp.abs(a - b).max() <= bound, path


def test_the_estimate_is_far_inside_the_bound():
    # the bound has a margin of 64: the measured differences use a few percent of it
    rng = onp.random.default_rng(1)
    f, params, x, t = random_case(rng, "tanh", "sce labels", 2, 8)
    h = 6.06e-6
    fast = f._fused_central_differences(params, x, t, h=h)
    loop = central_differences(lambda p: f(p, x, t), params, h, relative=True)
    assert assert_within_bound(fast, loop, float(f(params, x, t)), h, params) < 0.25


def wide_network(rng, hidden="relu", inputs=300, batch=60, zero_columns=()):
    model = mf.Sequential(mf.Linear(inputs, 7, weight_init="he"), HIDDEN[hidden](),
                          mf.Linear(7, 4))
    params = model.init(rng)
    x = rng.random((batch, inputs))
    x[:, list(zero_columns)] = 0.0
    return Objective(model, mf.SoftmaxCrossEntropy()), params, x, rng.integers(0, 4, batch)


@pytest.mark.parametrize("hidden", ["relu", "sigmoid"])
def test_a_wide_layer_in_several_calls_per_column(hidden, monkeypatch):
    # the column-by-column path of a big layer, with the chunk small enough to split columns
    monkeypatch.setattr(fast_numerical, "SMALL_ELEMENTS", 1 << 12)
    rng = onp.random.default_rng(2)
    f, params, x, t = wide_network(rng, hidden, zero_columns=(0, 5, 77))
    h = 6.06e-6
    fast = f._fused_central_differences(params, x, t, h=h)
    loop = central_differences(lambda p: f(p, x, t), params, h, relative=True)
    assert_within_bound(fast, loop, float(f(params, x, t)), h, params)
    # an input that is 0 in every sample moves nothing: exactly 0, as in the loop
    assert not fast["0"]["W"][[0, 5, 77]].any() and not loop["0"]["W"][[0, 5, 77]].any()


def test_chunking_does_not_change_the_result(monkeypatch):
    rng = onp.random.default_rng(3)
    f, params, x, t = wide_network(rng, "tanh", inputs=50, batch=20)
    h = 6.06e-6
    default = f._fused_central_differences(params, x, t, h=h)
    monkeypatch.setattr(fast_numerical, "CHUNK_ELEMENTS", 1 << 9)
    monkeypatch.setattr(fast_numerical, "SMALL_ELEMENTS", 1 << 7)
    small = f._fused_central_differences(params, x, t, h=h)
    for (path, a), (_, b) in zip(leaves(default), leaves(small)):
        onp.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=path)


def test_relu_samples_that_stay_off_are_skipped_and_change_nothing():
    rng = onp.random.default_rng(4)
    model = mf.Sequential(mf.Linear(5, 6), mf.ReLU(), mf.Linear(6, 3))
    params = model.init(rng)
    params["0"]["b"][:] = -3.0  # most units off for most samples
    x = rng.standard_normal((40, 5))
    t = rng.integers(0, 3, 40)
    f = Objective(model, mf.SoftmaxCrossEntropy())
    h = 6.06e-6
    fast = f._fused_central_differences(params, x, t, h=h)
    loop = central_differences(lambda p: f(p, x, t), params, h, relative=True)
    assert_within_bound(fast, loop, float(f(params, x, t)), h, params)


def test_the_input_differentiated_row_by_row():
    rng = onp.random.default_rng(5)
    layer = mf.Sequential(mf.Linear(6, 5), mf.Sigmoid(), mf.Linear(5, 4), mf.Softmax())
    params, x = layer.init(rng), rng.standard_normal((3, 6))
    f = LayerObjective(layer, rng.standard_normal((3, 4)))
    tree = {"x": x, **params}
    h = 6.06e-6
    fast = f._fused_central_differences(tree, h=h)
    loop = central_differences(f, tree, h, relative=True)
    assert_within_bound(fast, loop, float(f(tree)), h, tree)


def test_the_caller_arrays_are_left_alone():
    rng = onp.random.default_rng(6)
    f, params, x, t = random_case(rng, "relu", "sce labels", 2, 5)
    copies = [a.copy() for _, a in leaves(params)] + [x.copy(), t.copy()]
    f._fused_central_differences(params, x, t, h=1e-5)
    for before, (_, after) in zip(copies, leaves(params)):
        assert onp.array_equal(before, after)
    assert onp.array_equal(copies[-2], x) and onp.array_equal(copies[-1], t)


def test_a_plain_function_gets_the_loop():
    def f(p, c):
        return c * (p["w"] ** 3).sum()

    params = {"w": onp.array([1.0, -2.0])}
    got = fused_central_differences(f, params, (2.0,), 1e-5)
    want = central_differences(lambda p: f(p, 2.0), params, 1e-5, relative=True)
    assert onp.array_equal(got["w"], want["w"])


def outcome(fn):
    """What ``fn()`` returns, or the type of what it raises."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - the comparison is the test
        return type(e)


@pytest.mark.parametrize("W00", [1e308, 1e200, onp.inf, onp.nan])
def test_what_is_not_finite_is_left_to_the_loop(W00):
    model = mf.Sequential(mf.Linear(2, 2))
    params = {"0": {"W": onp.array([[W00, 0.0], [0.0, 1.0]]), "b": onp.zeros(2)}}
    x, t = onp.array([[1.0, 1.0]]), onp.array([[0.0, 0.0]])
    f = Objective(model, mf.SumSquaresError())
    assert f._fused_central_differences(params, x, t, h=1e-5) is None
    assert f._fused_value_and_grad(params, x, t) is None
    plain = lambda p, x, t: f(p, x, t)  # noqa: E731 - no structure: the generic path
    loop = outcome(lambda: mf.grad(plain, method="numerical", h=1e-5)(params, x, t))
    fast = outcome(lambda: mf.grad(f, method="numerical", h=1e-5)(params, x, t))
    if isinstance(loop, type):
        assert fast is loop
    else:
        onp.testing.assert_array_equal(fast["0"]["W"], loop["0"]["W"])


@pytest.mark.parametrize("hidden", ["relu", "tanh", "softmax"])
def test_the_probe_equals_evaluate_at(hidden):
    rng = onp.random.default_rng(7)
    f, params, x, t = random_case(rng, hidden, "sce labels", 3, 6)
    probe = fused_probe(f, params, (x, t))
    assert probe is not None
    fun = lambda p: f(p, x, t)  # noqa: E731
    scale = max(1.0, abs(float(fun(params))))
    for _, leaf in leaves(params):
        assert probe.knows(leaf)
        index = tuple(int(rng.integers(n)) for n in leaf.shape)
        for moved in (leaf[index] + 1e-3, leaf[index] - 0.5):
            want = evaluate_at(fun, params, leaf, index, moved)
            assert abs(probe.at(leaf, index, moved) - want) <= 16 * EPS * scale
        # along a direction (for a matrix also given as an outer product v w^T); the line
        # moves by the nominal s u, the loop to the rounded leaf + s u: eps |leaf| apart
        u = rng.standard_normal(leaf.shape)
        lines = [probe.line(leaf, u)]
        if leaf.ndim == 2:
            v, w = rng.standard_normal(leaf.shape[0]), rng.standard_normal(leaf.shape[1])
            u = onp.outer(v, w)
            lines = [probe.line(leaf, u), probe.line(leaf, u, (v, w))]
        for s in (1e-3, -0.5):
            want = evaluate_at(fun, params, leaf, Ellipsis, leaf + s * u)
            for line in lines:
                assert abs(line(s) - want) <= 16 * EPS * scale
    assert not probe.knows(x)
    assert fused_probe(lambda p: p.sum(), params, ()) is None


def test_check_grads_full_mode_takes_the_stacked_path(monkeypatch):
    rng = onp.random.default_rng(8)
    f, params, x, t = random_case(rng, "relu", "sce labels", 2, 5)

    def no_loop(*args, **kwargs):
        raise AssertionError("the loop ran")

    monkeypatch.setattr(fast_numerical, "central_differences", no_loop)
    assert mf.check_grads(f, params, x, t).ok

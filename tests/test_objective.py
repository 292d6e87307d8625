"""minifw.Objective: the fused paths equal the generic ones, pass the checker, and fall back.

The generic path is ``loss(model(params, x), t)`` differentiated by autograd through the
layers' own primitives; the fused path is one forward pass and one hand-written backward pass.
Both must give the same value and gradients (to rounding), and the fused VJP must pass
``check_grads`` (where it runs as an autograd primitive) and fail it when it is wrong.
"""

import gc
import itertools
import weakref

import numpy as onp
import pytest

import minifw as mf
from minifw import objective
from minifw.objective import Dot, LayerObjective, Objective
from minifw.tree import leaves

ACTIVATIONS = [mf.Identity, mf.Sigmoid, mf.Tanh, mf.ReLU, lambda: mf.LeakyReLU(0.1), mf.Step]
LOSSES = [mf.SoftmaxCrossEntropy, mf.CrossEntropyError, mf.SumSquaresError,
          mf.MeanSquaredError, Dot]


def network(act, loss, rng, depth=2, batch=6, labels=True, softmax_out=False):
    """A random ``Sequential`` for ``loss``, its params, ``x`` and targets ``t``."""
    sizes = [int(n) for n in rng.integers(2, 6, depth + 1)]
    layers = []
    for i in range(depth):
        layers.append(mf.Linear(sizes[i], sizes[i + 1]))
        if i < depth - 1:
            layers.append(act())
    if softmax_out or loss is mf.CrossEntropyError:
        layers.append(mf.Softmax())
    model = mf.Sequential(*layers)
    params = model.init(rng)
    x = rng.standard_normal((batch, sizes[0]))
    classes = sizes[-1]
    if loss in (mf.SoftmaxCrossEntropy, mf.CrossEntropyError) and labels:
        t = rng.integers(0, classes, batch)
    elif loss in (mf.SoftmaxCrossEntropy, mf.CrossEntropyError):
        t = rng.dirichlet(onp.ones(classes), batch)  # soft targets
    else:
        t = rng.standard_normal((batch, classes))
    return model, params, x, t


def assert_trees_close(a, b, rtol=1e-12, atol=1e-14):
    la, lb = list(leaves(a)), list(leaves(b))
    assert [p for p, _ in la] == [p for p, _ in lb]
    for (path, u), (_, v) in zip(la, lb):
        assert onp.shape(u) == onp.shape(v), path
        onp.testing.assert_allclose(u, v, rtol=rtol, atol=atol, err_msg=path)


def generic(model, loss):
    return lambda p, x, t: loss(model(p, x), t)


@pytest.mark.parametrize("act, loss, labels",
                         list(itertools.product(ACTIVATIONS, LOSSES, [True, False])))
def test_fused_value_and_grad_equal_the_generic_ones(act, loss, labels):
    rng = onp.random.default_rng(3)
    model, params, x, t = network(act, loss, rng, depth=3, labels=labels)
    f = Objective(model, loss())
    fused = f._fused_value_and_grad(params, x, t)
    assert fused is not None, "the fused path should cover this call"
    value, grads = mf.value_and_grad(f)(params, x, t)
    value0, grads0 = mf.value_and_grad(generic(model, loss()))(params, x, t)
    assert value == pytest.approx(value0, rel=1e-13, abs=1e-15)
    assert_trees_close(grads, grads0)
    assert float(f(params, x, t)) == float(loss()(model(params, x), t))  # the same function


@pytest.mark.parametrize("act, loss", list(itertools.product(ACTIVATIONS, LOSSES)))
def test_the_fused_vjp_passes_the_gradient_checker(act, loss):
    rng = onp.random.default_rng(5)
    model, params, x, t = network(act, loss, rng, depth=2)
    f = Objective(model, loss())
    report = mf.check_grads(f, params, x, t)
    assert report.ok, str(report)
    assert mf.check_grads(f, params, x, t, mode="projection", rng=1).ok


def test_the_fused_primitive_composes_with_other_operations():
    rng = onp.random.default_rng(0)
    model, params, x, t = network(mf.Tanh, mf.SoftmaxCrossEntropy, rng)
    f = Objective(model, mf.SoftmaxCrossEntropy())

    def regularised(p):
        return f(p, x, t) + 0.1 * mf.np.sum(p["0"]["W"] ** 2)

    def plain(p):
        return generic(model, mf.SoftmaxCrossEntropy())(p, x, t) + 0.1 * mf.np.sum(p["0"]["W"] ** 2)

    assert_trees_close(mf.grad(regularised)(params), mf.grad(plain)(params))
    assert mf.check_grads(regularised, params).ok


def test_a_wrong_fused_vjp_fails_the_checker(monkeypatch):
    rng = onp.random.default_rng(1)
    model, params, x, t = network(mf.Tanh, mf.SoftmaxCrossEntropy, rng)
    f = Objective(model, mf.SoftmaxCrossEntropy())
    right = objective._act_grad
    monkeypatch.setattr(objective, "_act_grad", lambda *a: 2.0 * right(*a))
    report = mf.check_grads(f, params, x, t)
    assert not report.ok
    assert [row.path for row in report.rows if not row.ok] == ["0.W", "0.b"]


def test_gradients_are_freed_with_their_last_reference():
    # a recursive closure once made a reference cycle that kept every gradient alive until
    # the garbage collector ran (page faults on every training step)
    rng = onp.random.default_rng(0)
    model, params, x, t = network(mf.ReLU, mf.SoftmaxCrossEntropy, rng)
    vg = mf.value_and_grad(Objective(model, mf.SoftmaxCrossEntropy()))
    gc.disable()
    try:
        grads = vg(params, x, t)[1]
        ref = weakref.ref(grads["0"]["W"])
        del grads
        assert ref() is None
    finally:
        gc.enable()


def test_gradients_are_fresh_arrays():
    rng = onp.random.default_rng(0)
    model, params, x, t = network(mf.ReLU, mf.SoftmaxCrossEntropy, rng)
    vg = mf.value_and_grad(Objective(model, mf.SoftmaxCrossEntropy()))
    g1, g2 = vg(params, x, t)[1], vg(params, x, t)[1]
    assert g1["0"]["W"] is not g2["0"]["W"]
    assert not onp.shares_memory(g1["0"]["W"], params["0"]["W"])


def test_empty_dicts_of_layers_without_parameters_are_kept():
    rng = onp.random.default_rng(0)
    model = mf.Sequential(mf.Linear(3, 4), mf.ReLU(), mf.Linear(4, 2))
    params = {**model.init(rng), "1": {}}
    x, t = rng.standard_normal((5, 3)), onp.array([0, 1, 1, 0, 1])
    f = Objective(model, mf.SoftmaxCrossEntropy())
    assert f._fused_value_and_grad(params, x, t) is not None
    grads = mf.grad(f)(params, x, t)
    assert grads["1"] == {} and list(grads) == list(params)


def test_nested_sequentials_and_a_single_linear():
    rng = onp.random.default_rng(0)
    inner = mf.Sequential(mf.Linear(3, 4), mf.Sigmoid())
    model = mf.Sequential(inner, mf.Linear(4, 2))
    x, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    for m in (model, mf.Linear(3, 2)):
        params = m.init(rng)
        f = Objective(m, mf.MeanSquaredError())
        assert f.fused and f._fused_value_and_grad(params, x, t) is not None
        assert_trees_close(mf.grad(f)(params, x, t),
                           mf.grad(generic(m, mf.MeanSquaredError()))(params, x, t))


class Doubler(mf.Layer):
    def forward(self, params, x):
        return 2 * x


class MySoftmaxCrossEntropy(mf.SoftmaxCrossEntropy):
    def forward(self, y, t):
        return 2 * super().forward(y, t)


def test_unknown_layers_and_losses_take_the_generic_path():
    rng = onp.random.default_rng(0)
    x, t = rng.standard_normal((4, 3)), onp.array([0, 1, 1, 0])
    model = mf.Sequential(mf.Linear(3, 2), Doubler())
    params = model.init(rng)
    f = Objective(model, mf.SoftmaxCrossEntropy())
    assert not f.fused and f._fused_value_and_grad(params, x, t) is None
    g = Objective(mf.Sequential(mf.Linear(3, 2)), MySoftmaxCrossEntropy())
    assert not g.fused
    assert_trees_close(mf.grad(f)(params, x, t),
                       mf.grad(generic(model, mf.SoftmaxCrossEntropy()))(params, x, t))


@pytest.mark.parametrize("case", ["float32", "extra key", "int x", "3-D x", "float labels",
                                  "list x"])
def test_calls_the_fused_path_does_not_cover_give_the_generic_results(case):
    rng = onp.random.default_rng(0)
    model = mf.Sequential(mf.Linear(3, 4), mf.ReLU(), mf.Linear(4, 2))
    params, x, t = model.init(rng), rng.standard_normal((5, 3)), onp.array([0, 1, 1, 0, 1])
    if case == "float32":
        params = {k: {n: a.astype(onp.float32) for n, a in v.items()} for k, v in params.items()}
    elif case == "extra key":
        params["9"] = {"w": onp.ones(2)}
    elif case == "int x":
        x = rng.integers(-2, 3, (5, 3))
    elif case == "3-D x":
        x, t = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 2))
    elif case == "float labels":
        t = t.astype(float)
    else:
        x = x.tolist()
    loss = mf.SumSquaresError() if case == "3-D x" else mf.SoftmaxCrossEntropy()
    f = Objective(model, loss)
    assert f._fused_value_and_grad(params, x, t) is None
    value, grads = mf.value_and_grad(f)(params, x, t)
    value0, grads0 = mf.value_and_grad(generic(model, loss))(params, x, t)
    assert value == value0
    assert_trees_close(grads, grads0, rtol=0, atol=0)


@pytest.mark.parametrize("t, message", [(onp.array([0, 5]), "labels must lie in"),
                                        (onp.array([-1, 0]), "labels must lie in"),
                                        (onp.zeros((2, 3)), "neither one-hot")])
def test_bad_targets_raise_the_generic_errors(t, message):
    model = mf.Sequential(mf.Linear(3, 2))
    params = model.init(onp.random.default_rng(0))
    f = Objective(model, mf.SoftmaxCrossEntropy())
    for method in ("autograd", "numerical"):
        with pytest.raises(ValueError, match=message):
            mf.value_and_grad(f, method=method)(params, onp.ones((2, 3)), t)


def test_a_wrong_input_width_raises_the_layers_error():
    model = mf.Sequential(mf.Linear(3, 2))
    params = model.init(onp.random.default_rng(0))
    with pytest.raises(ValueError, match="expects inputs whose last axis is 3"):
        mf.grad(Objective(model, mf.SumSquaresError()))(params, onp.ones((2, 4)), onp.ones((2, 2)))


def test_objective_needs_callables():
    with pytest.raises(TypeError, match="callable"):
        Objective(mf.Linear(2, 2), "mse")


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_numerical_method_uses_the_stacked_engine_and_equals_the_loop(act):
    rng = onp.random.default_rng(2)
    model, params, x, t = network(act, mf.SoftmaxCrossEntropy, rng, depth=3)
    f = Objective(model, mf.SoftmaxCrossEntropy())
    h = 1e-5
    fast = mf.grad(f, method="numerical", h=h)(params, x, t)
    loop = mf.numerical.central_differences(lambda p: f(p, x, t), params, h, relative=True)
    bound = 64 * onp.finfo(float).eps * max(1.0, abs(float(f(params, x, t)))) / h
    for (path, a), (_, b) in zip(leaves(fast), leaves(loop)):
        assert onp.abs(a - b).max() <= bound, path


def test_fit_trains_through_the_fused_path():
    rng = onp.random.default_rng(0)
    x = rng.standard_normal((64, 2))
    t = (x[:, 0] > 0).astype(int)
    model = mf.Sequential(mf.Linear(2, 8), mf.Tanh(), mf.Linear(8, 2))
    params = model.init(rng)
    history = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.SGD(lr=0.5), params, x, t,
                     epochs=20, batch_size=16, rng=rng, progress=False)
    assert history.accuracy[-1] > 0.9


def test_layer_objective_is_check_layers_scalar_and_differentiates_x():
    rng = onp.random.default_rng(0)
    layer = mf.Sequential(mf.Linear(4, 3), mf.Tanh())
    params, x = layer.init(rng), rng.standard_normal((5, 4))
    G = rng.standard_normal((5, 3))
    f = LayerObjective(layer, G)
    tree = {"x": x, **params}
    assert float(f(tree)) == float((layer(params, x) * G).sum())
    h = 1e-5
    fast = f._fused_central_differences(tree, h=h)
    loop = mf.numerical.central_differences(f, tree, h, relative=True)
    assert list(fast) == list(tree)
    for (path, a), (_, b) in zip(leaves(fast), leaves(loop)):
        assert onp.abs(a - b).max() <= 64 * onp.finfo(float).eps * max(1, abs(float(f(tree)))) / h
    assert mf.check_layer(layer, x, params=params).ok
    assert "G of shape (5, 3)" in repr(f)


def test_layer_objective_of_a_custom_layer_takes_the_loop():
    f = LayerObjective(Doubler(), onp.ones((2, 2)))
    assert f._fused_central_differences({"x": onp.ones((2, 2))}, h=1e-5) is None
    assert mf.check_layer(Doubler(), onp.ones((2, 2))).ok


def outcome(fn):
    """What ``fn()`` returns, or the type of what it raises."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - the comparison is the test
        return type(e)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("case", ["nan x", "inf x", "huge W", "nan target", "-inf logit"])
def test_non_finite_values_get_the_generic_errors(loss, case):
    rng = onp.random.default_rng(0)
    model, params, x, t = network(mf.Tanh, loss, rng, labels=False, softmax_out=False)
    if case == "nan x":
        x[1, 0] = onp.nan
    elif case == "inf x":
        x[0, 0] = onp.inf
    elif case == "huge W":
        params["2"]["W"][0, 0] = 1e308
    elif case == "nan target":
        t = t.astype(float)
        t[0, 0] = onp.nan
    else:
        params["2"]["b"][0] = -onp.inf
    for method in ("autograd", "numerical"):
        fused = outcome(lambda: mf.value_and_grad(Objective(model, loss()), method)(params, x, t))
        plain = outcome(lambda: mf.value_and_grad(generic(model, loss()), method)(params, x, t))
        if isinstance(plain, type):
            assert fused is plain, (method, fused, plain)
        else:
            assert fused[0] == plain[0] or (onp.isnan(fused[0]) and onp.isnan(plain[0]))

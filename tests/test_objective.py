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


# --- Optimizer.step: SGD's step from the backward pass seeded with -lr ------------------------


def _two_calls(f, opt, params, *args):
    """``value_and_grad`` then ``update``: what ``opt.step`` must equal."""
    value, grads = mf.value_and_grad(f)(params, *args)
    opt.update(params, grads)
    return value


def _copy(params):
    def copy(a):
        b = a.copy()
        b.setflags(write=a.flags.writeable)
        return b

    return {k: {n: copy(a) for n, a in v.items()} for k, v in params.items()}


def _bytes(params):
    return [(p, a.tobytes()) for p, a in leaves(params)]


@pytest.mark.parametrize("act, loss, labels",
                         list(itertools.product(ACTIVATIONS, LOSSES, [True, False])))
def test_the_fused_sgd_step_is_the_two_calls_to_the_bit_for_a_power_of_two_lr(act, loss,
                                                                                labels):
    # multiplying by a power of two is exact (no subnormals here) and commutes with every
    # operation of the backward pass, which is linear in its seed: seeding it with -lr*dL/dy
    # or multiplying its result by -lr gives the same bits
    rng = onp.random.default_rng(11)
    model, params, x, t = network(act, loss, rng, depth=3, labels=labels)
    f = Objective(model, loss())
    assert f._fused_steps(_copy(params), x, t, scale=-0.125) is not None  # the fused road
    by_step, by_calls = _copy(params), _copy(params)
    for _ in range(3):
        assert mf.optim.SGD(lr=0.125).step(f, by_step, x, t) == _two_calls(
            f, mf.optim.SGD(lr=0.125), by_calls, x, t)
        assert _bytes(by_step) == _bytes(by_calls)


def test_the_fused_sgd_step_is_the_two_calls_to_rounding_for_any_lr():
    # one Linear and SSE: the step is -lr * x.T @ s (s = (y - t) / batch) for W, -lr * sum(s)
    # for b. Two calls round x.T @ s (a sum of `batch` products: error <= gamma_batch * A,
    # A = |x|.T @ |s|) and then the product by lr; the step rounds lr * s first (u * lr * A
    # after the sum) and then the sum (gamma_batch * lr * A). Apart: (2 gamma_batch + 2u) *
    # lr * A, plus half an ulp of each new value (u = eps / 2).
    rng = onp.random.default_rng(2)
    batch, lr, u = 9, 0.1, onp.finfo(float).eps / 2
    model = mf.Sequential(mf.Linear(5, 3))
    params = model.init(rng)
    params["0"]["b"] = rng.standard_normal(3)
    x, t = rng.standard_normal((batch, 5)), rng.standard_normal((batch, 3))
    s = onp.abs(model(params, x) - t) / batch
    A = {"W": onp.abs(x).T @ s, "b": s.sum(axis=0)}
    f = Objective(model, mf.SumSquaresError())
    by_step, by_calls = _copy(params), _copy(params)
    mf.optim.SGD(lr=lr).step(f, by_step, x, t)
    _two_calls(f, mf.optim.SGD(lr=lr), by_calls, x, t)
    gamma = batch * u / (1 - batch * u)
    for n in "Wb":
        a, b = by_step["0"][n], by_calls["0"][n]
        bound = (2 * gamma + 2 * u) * lr * A[n] * (1 + 4 * u) + u * (onp.abs(a) + onp.abs(b))
        assert (onp.abs(a - b) <= bound).all(), n
        assert (a != params["0"][n]).all()  # it did step


def _outcome_of(fn, params):
    before = _bytes(params)
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the type is the outcome
        assert _bytes(params) == before, "a refused step changed the parameters"
        return type(e)
    return None


@pytest.mark.parametrize("case", ["overflowing step", "nan W", "inf x", "read-only W",
                                  "non-finite gradient", "labels out of range"])
def test_a_fused_step_that_cannot_be_taken_raises_what_the_two_calls_raise(case):
    rng = onp.random.default_rng(4)
    model = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), mf.Linear(4, 2))
    params = model.init(rng)
    x, t, lr = rng.standard_normal((5, 3)), onp.array([0, 1, 1, 0, 1]), 0.5
    if case == "overflowing step":
        params["2"]["b"][:] = 1.7e308
        lr = 1e308
    elif case == "nan W":
        params["0"]["W"][1, 1] = onp.nan
    elif case == "inf x":
        x[2, 0] = onp.inf
    elif case == "read-only W":
        params["2"]["W"].setflags(write=False)
    elif case == "non-finite gradient":  # f finite (W1 = 0), the backward pass overflows
        params["0"]["W"][:] = 0.0
        params["2"]["W"] *= 1e300
        x *= 1e10
    else:
        t = onp.array([0, 1, 2, 0, 1])
    f = Objective(model, mf.SoftmaxCrossEntropy())
    opt, other = mf.optim.SGD(lr=lr), _copy(params)
    with onp.errstate(all="ignore"):  # the generic path's own warnings are not the question
        want = _outcome_of(lambda: _two_calls(f, mf.optim.SGD(lr=lr), other, x, t), other)
        assert want is not None, "the case should be refused"
        assert _outcome_of(lambda: opt.step(f, params, x, t), params) is want
    assert opt.iterations == 0


def test_a_gradient_that_overflows_where_lr_times_it_does_not_is_a_step():
    # the documented difference: the step is computed as -lr * gradient directly
    rng = onp.random.default_rng(4)
    model = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), mf.Linear(4, 2))
    params = model.init(rng)
    params["0"]["W"][:] = 0.0
    params["2"]["W"] *= 1e300
    x, t = 1e10 * rng.standard_normal((5, 3)), onp.array([0, 1, 1, 0, 1])
    f = Objective(model, mf.SoftmaxCrossEntropy())
    with pytest.raises(mf.functions.NonFiniteError, match="not finite"), onp.errstate(
            over="ignore"):  # autograd's backward pass warns on its way to the refusal
        mf.value_and_grad(f)(params, x, t)
    mf.optim.SGD(lr=1e-20).step(f, params, x, t)
    assert all(onp.isfinite(a).all() for _, a in leaves(params))
    assert onp.abs(params["0"]["W"]).max() > 1e280


def test_a_subclass_of_sgd_takes_the_two_calls():
    # it may have a rule or an update of its own: step must run them
    class Halved(mf.optim.SGD):
        def update(self, params, grads):
            super().update(params, {k: {n: g / 2 for n, g in v.items()}
                                    for k, v in grads.items()})

    rng = onp.random.default_rng(0)
    model, params, x, t = network(mf.ReLU, mf.SoftmaxCrossEntropy, rng)
    f = Objective(model, mf.SoftmaxCrossEntropy())
    by_step, by_calls = _copy(params), _copy(params)
    Halved(lr=0.1).step(f, by_step, x, t)
    _two_calls(f, mf.optim.SGD(lr=0.05), by_calls, x, t)
    assert _bytes(by_step) == _bytes(by_calls)


def test_the_fused_vjp_can_be_called_again_and_scales_with_its_cotangent():
    # the backward pass overwrites its seed in place (Tanh here): a second call of the same
    # VJP once saw the first call's leftovers
    from autograd.core import make_vjp

    rng = onp.random.default_rng(0)
    model, params, x, t = network(mf.Tanh, mf.SumSquaresError, rng, depth=3)
    vjp, _ = make_vjp(lambda p: Objective(model, mf.SumSquaresError())(p, x, t), params)
    first, again, doubled = vjp(1.0), vjp(1.0), vjp(2.0)
    assert _bytes(first) == _bytes(again)
    assert _bytes(doubled) == _bytes({k: {n: 2 * a for n, a in v.items()}
                                      for k, v in first.items()})

"""One definition per op: the three gradient sources agree, and a planted bug is caught.

Every built-in layer and loss has its maths once, as an op's forward and backward passes. The
fast path (``method="autograd"``, what trains: a Sequential's own reverse loop over its ops),
autograd's trace of the forward passes (``method="trace"``) and central differences
(``method="numerical"``) must agree, in float64 and float32, with inputs at kinks; and a wrong
backward pass planted in any of them, small or local or large, must fail ``check_grads`` of a
model that uses it, however the objective is written.
"""

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minifw as mf
from minifw import functions as F
from minifw import gradcheck, testing
from minifw.layers import sequential
from minifw.tree import leaves

DTYPES = [onp.float64, onp.float32]


def _cast(tree, dtype):
    return {k: _cast(v, dtype) if isinstance(v, dict) else v.astype(dtype) for k, v in tree.items()}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
@given(data=st.data())
def test_the_three_sources_agree_on_every_built_in_network(dtype, mode, data):
    problem = data.draw(testing.problems(dtype=dtype))
    f, params, x, t = problem["f"], problem["params"], problem["x"], problem["t"]
    report = mf.check_grads(f, params, x, t, mode=mode, rng=0)
    assert report.ok, str(report)
    assert all(row.trace_error is not None for row in report.rows)  # the trace took part


@pytest.mark.parametrize("dtype", DTYPES)
@given(problem=st.data())
def test_backward_and_trace_differ_by_rounding_away_from_kinks(dtype, problem):
    # inputs drawn away from 0, so no kink: the backward passes and the (float64) trace give
    # the same numbers up to the backward passes' rounding, within half the checker's
    # tolerance TRACE_ROUNDING eps (|a| + |r| + max |r|)
    p = problem.draw(testing.problems(dtype=dtype))
    x = onp.where(onp.abs(p["x"]) < 0.1, 0.5, p["x"]).astype(dtype)
    a = mf.grad(p["f"])(p["params"], x, p["t"])
    ref = gradcheck.Reference(p["f"], _cast(p["params"], onp.float64), (
        x.astype(onp.float64), p["t"].astype(onp.float64) if p["t"].dtype.kind == "f" else p["t"]),
        float(onp.finfo(dtype).eps))
    for path, ga in leaves(a):
        gr = ref.grads[path]
        assert ga.dtype == dtype, path
        unit = ref.eps * (onp.abs(ga) + onp.abs(gr) + ref.scale)
        assert (onp.abs(ga - gr) <= gradcheck.TRACE_ROUNDING / 2 * unit).all(), (path, ga, gr)


# --- planted bugs ----------------------------------------------------------------------------

def _bigger(vjp, by):
    """``vjp`` off by a relative ``by`` everywhere: a small, global bug."""
    return lambda g, y, *a, **o: vjp(g, y, *a, **o) * (1 + by)


def _wrong_at_zero(vjp):
    """``vjp`` doubled where the op's input is exactly 0: a bug at one point."""
    def wrong(g, y, x, *a, **o):
        out = vjp(g, y, x, *a, **o)
        return onp.where(x == 0, 2 * out + 1, out)
    return wrong


def _model(layer, n=3):
    return mf.Sequential(mf.Linear(n, n), layer, mf.Linear(n, 2))


# (op, argument, the model that uses it, the loss on top)
BUILT_INS = {
    "affine x": (F.AFFINE, 0, lambda: _model(mf.Tanh()), mf.SumSquaresError()),
    "affine W": (F.AFFINE, 1, lambda: _model(mf.Tanh()), mf.SumSquaresError()),
    "affine b": (F.AFFINE, 2, lambda: _model(mf.Tanh()), mf.SumSquaresError()),
    "sigmoid": (F._SIGMOID, 0, lambda: _model(mf.Sigmoid()), mf.SumSquaresError()),
    "tanh": (F._TANH, 0, lambda: _model(mf.Tanh()), mf.SumSquaresError()),
    "relu": (F._RELU, 0, lambda: _model(mf.ReLU()), mf.SumSquaresError()),
    "leaky relu": (F._LEAKY_RELU, 0, lambda: _model(mf.LeakyReLU(0.1)), mf.SumSquaresError()),
    "softmax": (F._SOFTMAX, 0, lambda: mf.Sequential(mf.Linear(3, 2), mf.Softmax()),
                mf.SumSquaresError()),
    "sum squares": (F.SUM_SQUARES, 0, lambda: _model(mf.Tanh()), mf.SumSquaresError()),
    "mean squared": (F.MEAN_SQUARED, 0, lambda: _model(mf.Tanh()), mf.MeanSquaredError()),
    "cross entropy": (F.CROSS_ENTROPY, 0, lambda: mf.Sequential(mf.Linear(3, 2), mf.Softmax()),
                      mf.CrossEntropyError()),
    "softmax cross entropy": (F.SOFTMAX_CROSS_ENTROPY, 0, lambda: _model(mf.Tanh()),
                              mf.SoftmaxCrossEntropy()),
}


def _objectives(model, loss):
    """The ways a user writes the scalar: a lambda, a def over functions, a fit-style loss."""
    def written_out(p, x, t):
        return loss.forward(model.forward(p, x), t)

    return {"lambda": lambda p, x, t: loss(model(p, x), t), "def": written_out}


def _problem(model, loss, dtype, rng):
    params = _cast(model.init(rng), dtype)
    x = rng.standard_normal((4, 3)).astype(dtype)
    x[0, 0] = 0.0  # a point where a bug "only at 0" shows, after a layer of identity weights
    t = onp.array([0, 1, 1, 0]) if "Entropy" in type(loss).__name__ else rng.standard_normal(
        (4, 2)).astype(dtype)
    return params, x, t


@pytest.mark.parametrize("bug", ["1e-3 too big", "sign flipped"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
@pytest.mark.parametrize("name", list(BUILT_INS))
def test_a_wrong_backward_in_any_built_in_is_caught(name, mode, dtype, bug, monkeypatch):
    op, at, make, loss = BUILT_INS[name]
    right = op.vjps[at]
    wrong = _bigger(right, 1e-3) if bug == "1e-3 too big" else _bigger(right, -2.0)
    monkeypatch.setattr(op, "vjps", op.vjps[:at] + (wrong,) + op.vjps[at + 1:])
    model = make()
    params, x, t = _problem(model, loss, dtype, onp.random.default_rng(1))
    for how, f in _objectives(model, loss).items():
        if at == 0 and op is F.AFFINE:  # the input's gradient: check the layer itself
            report = mf.check_layer(model, x, params, mode=mode, rng=0)
        else:
            report = mf.check_grads(f, params, x, t, mode=mode, rng=0)
        assert not report.ok, f"{name} ({bug}), objective written as {how}:\n{report}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softmax"])
def test_a_backward_wrong_at_one_point_is_caught(name, dtype, monkeypatch):
    op, at, make, loss = BUILT_INS[name]
    monkeypatch.setattr(op, "vjps", (_wrong_at_zero(op.vjps[0]),))
    model = mf.Sequential(make().layers[1]) if name != "softmax" else mf.Sequential(mf.Softmax())
    x = onp.array([[0.0, 0.3, -0.2], [0.1, 0.0, 0.4]], dtype=dtype)
    report = mf.check_layer(model, x, {}, rng=0)
    assert not report.ok, str(report)


def test_the_checker_checks_the_reverse_loop_that_trains(monkeypatch):
    # a bug in the Sequential's own reverse pass (not in any op) is caught too: check_grads
    # differentiates through the same fused road as training
    right = sequential.chain_grads

    def skips_a_layer(calls, *args):
        grads = right(calls, *args)
        return None if grads is None else [g if g is None else g * 1.01 for g in grads]

    monkeypatch.setattr(sequential, "chain_grads", skips_a_layer)
    model = mf.Sequential(mf.Linear(3, 4), mf.ReLU(), mf.Linear(4, 2))
    params = model.init(onp.random.default_rng(0))
    x, t = onp.random.default_rng(1).standard_normal((5, 3)), onp.array([0, 1, 1, 0, 1])
    report = mf.check_grads(lambda p, x, t: mf.SoftmaxCrossEntropy()(model(p, x), t), params,
                            x, t)
    assert not report.ok, str(report)


# --- users' layers have the same powers ------------------------------------------------------


class MyReLU(mf.ReLU):
    """A subclass of a built-in: the same op, the same road."""


class MyAffine(mf.Layer):
    """A user's layer with its own backward pass, wrong in ``b`` when ``bug``."""

    per_sample = True

    def __init__(self, n_in, n_out, bug=0.0):
        self.n_in, self.n_out, self.bug = n_in, n_out, bug

    def init(self, rng):
        return {"W": rng.standard_normal((self.n_in, self.n_out)), "b": rng.standard_normal(
            self.n_out)}

    def forward(self, params, x):
        return x @ params["W"] + params["b"]

    def backward(self, params, x, y, g, need_x=True):
        return (g @ params["W"].T if need_x else None), {
            "W": x.T @ g, "b": g.sum(axis=0) * (1 + self.bug)}


@pytest.mark.parametrize("layer", [MyReLU(), MyAffine(3, 3)], ids=repr)
def test_a_users_layer_takes_the_fused_road_and_passes(layer):
    model = mf.Sequential(mf.Linear(3, 3), layer, mf.Linear(3, 2))
    assert model.ops_only  # a Sequential of them runs its own reverse loop
    params = model.init(onp.random.default_rng(0))
    x, t = onp.random.default_rng(1).standard_normal((4, 3)), onp.array([0, 1, 1, 0])
    f = lambda p, x, t: mf.SoftmaxCrossEntropy()(model(p, x), t)  # noqa: E731
    assert mf.check_grads(f, params, x, t).ok
    a, r = mf.grad(f)(params, x, t), mf.grad(f, method="trace")(params, x, t)
    for (path, ga), (_, gr) in zip(leaves(a), leaves(r)):
        onp.testing.assert_allclose(ga, gr, rtol=1e-12, atol=1e-15, err_msg=path)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", gradcheck.MODES)
def test_a_small_bug_in_a_users_backward_is_caught(mode, dtype):
    model = mf.Sequential(MyAffine(3, 3, bug=1e-3), mf.Tanh(), mf.Linear(3, 2))
    params = _cast(model.init(onp.random.default_rng(0)), dtype)
    x = onp.random.default_rng(1).standard_normal((4, 3)).astype(dtype)
    t = onp.array([0, 1, 1, 0])
    report = mf.check_grads(lambda p, x, t: mf.SoftmaxCrossEntropy()(model(p, x), t), params,
                            x, t, mode=mode, rng=0)
    assert not report.ok and "0.b" in [r.path for r in report.rows if not r.ok], str(report)

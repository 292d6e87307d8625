"""Optimizers: each update rule against a hand computation, in place, state per path, refusals.

The expected values are the papers' recurrences written out in plain Python floats, step by
step, for two parameters with different gradients (so that state kept per path, and not
shared, is what makes them right). Each rule is a few float operations: rel 1e-12.
"""

import math

import numpy as onp
import pytest

import minifw as mf
from minifw import optim

G1 = {"a": {"w": 0.5}, "b": -2.0}
G2 = {"a": {"w": -1.0}, "b": 3.0}
G3 = {"a": {"w": 0.25}, "b": 1e-3}
START = {"a": {"w": 1.0}, "b": -1.0}


def _params():
    return {"a": {"w": onp.array([START["a"]["w"]])}, "b": onp.array([START["b"]])}


def _grads(g):
    return {"a": {"w": onp.array([g["a"]["w"]])}, "b": onp.array([g["b"]])}


def _run(opt, steps):
    params = _params()
    out = []
    for g in steps:
        opt.update(params, _grads(g))
        out.append((float(params["a"]["w"][0]), float(params["b"][0])))
    return out


def _by_hand(rule, steps):
    """Apply a scalar rule(state, g) -> delta independently to each path."""
    out = []
    w, b = START["a"]["w"], START["b"]
    sw, sb = {}, {}
    for g in steps:
        w += rule(sw, g["a"]["w"])
        b += rule(sb, g["b"])
        out.append((w, b))
    return out


STEPS = [G1, G2, G3]


def _check(opt, rule):
    got = _run(opt, STEPS)
    expected = _by_hand(rule, STEPS)
    for (gw, gb), (ew, eb) in zip(got, expected):
        assert gw == pytest.approx(ew, rel=1e-12)
        assert gb == pytest.approx(eb, rel=1e-12)


def test_sgd():
    def rule(s, g):
        return -0.1 * g

    _check(optim.SGD(lr=0.1), rule)
    # first step by hand, no helper: 1 - 0.1 * 0.5, -1 - 0.1 * (-2)
    assert _run(optim.SGD(lr=0.1), [G1])[0] == pytest.approx((0.95, -0.8), rel=1e-15)


def test_momentum():
    def rule(s, g):
        s["v"] = 0.8 * s.get("v", 0.0) - 0.1 * g
        return s["v"]

    _check(optim.Momentum(lr=0.1, momentum=0.8), rule)
    # by hand: v1 = -0.05, w1 = 0.95; v2 = 0.8 * -0.05 + 0.1 = 0.06, w2 = 1.01
    w = [s[0] for s in _run(optim.Momentum(lr=0.1, momentum=0.8), [G1, G2])]
    assert w == pytest.approx([0.95, 1.01], rel=1e-14)


def test_adagrad():
    def rule(s, g):
        s["h"] = s.get("h", 0.0) + g * g
        return -0.1 * g / (math.sqrt(s["h"]) + 1e-7)

    _check(optim.AdaGrad(lr=0.1), rule)


def test_rmsprop():
    def rule(s, g):
        s["h"] = 0.9 * s.get("h", 0.0) + 0.1 * g * g
        return -0.1 * g / (math.sqrt(s["h"]) + 1e-7)

    _check(optim.RMSProp(lr=0.1, decay_rate=0.9), rule)


def test_adam():
    b1, b2, lr, eps = 0.9, 0.999, 0.1, 1e-8

    def rule(s, g):
        s["t"] = s.get("t", 0) + 1
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        m_hat = s["m"] / (1 - b1 ** s["t"])
        v_hat = s["v"] / (1 - b2 ** s["t"])
        return -lr * m_hat / (math.sqrt(v_hat) + eps)

    _check(optim.Adam(lr=lr), rule)


@pytest.mark.parametrize("make", [optim.Momentum, optim.AdaGrad, optim.RMSProp, optim.Adam])
def test_state_arrays_are_reused_two_steps_later_and_refused_steps_between_change_nothing(make):
    steps = [G1, G2, G3, G1, G2]
    clean = _run(make(lr=0.1), steps)
    opt, params, got = make(lr=0.1), _params(), []
    for i, g in enumerate(steps):
        if i in (1, 3):  # a refused step writes into the spare arrays, and must not matter
            with pytest.raises(ValueError, match="not finite"):
                opt.update(params, _grads({"a": {"w": onp.nan}, "b": 1.0}))
        opt.update(params, _grads(g))
        got.append((float(params["a"]["w"][0]), float(params["b"][0])))
    assert got == clean  # exactly
    reused = make(lr=0.1)
    arrays = []
    p = _params()
    for g in [G1, G2, G3]:
        reused.update(p, _grads(g))
        arrays.append({k: id(v) for k, v in reused.state["b"].items() if k != "t"})
    assert arrays[2] == arrays[0] and not set(arrays[1].values()) & set(arrays[0].values())


def test_adam_first_step_is_lr_times_sign():
    # bias correction: m_hat = g, v_hat = g^2, so the first step is lr * g / (|g| + 1e-8)
    got = _run(optim.Adam(lr=0.1), [G1])[0]
    assert got == pytest.approx((1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -1.0 + 0.1 * 2 / (2 + 1e-8)),
                                rel=1e-15)


def test_adam_eps_is_added_to_sqrt_v_hat():
    # g = 1e-8: sqrt(v_hat) = 1e-8, so the step is lr * 1e-8 / (1e-8 + 1e-8) = lr / 2.
    # With eps inside the root it would be lr * 1e-8 / sqrt(1e-16 + 1e-8) = lr * 1e-4.
    params = {"w": onp.array([0.0])}
    optim.Adam(lr=0.1).update(params, {"w": onp.array([1e-8])})
    assert params["w"][0] == pytest.approx(-0.05, rel=1e-12)


def test_adam_bias_correction_counts_steps_per_path():
    # a path first seen at the third update starts its own correction: its step is lr
    opt = optim.Adam(lr=0.1)
    p = {"a": onp.array([0.0])}
    for _ in range(2):
        opt.update(p, {"a": onp.array([1.0])})
    p["b"] = onp.array([0.0])
    opt.update(p, {"a": onp.array([1.0]), "b": onp.array([4.0])})
    assert p["b"][0] == pytest.approx(-0.1 * 4 / (4 + 1e-8), rel=1e-12)


@pytest.mark.parametrize("make, first", [
    (optim.SGD, 1.0 - 0.01 * 0.5),
    (optim.Momentum, 1.0 - 0.01 * 0.5),
    (optim.AdaGrad, 1.0 - 0.01 * 0.5 / (0.5 + 1e-7)),
    # RMSProp: h = 0.01 * 0.25, sqrt(h) = 0.05
    (optim.RMSProp, 1.0 - 0.01 * 0.5 / (0.05 + 1e-7)),
    (optim.Adam, 1.0 - 0.001 * 0.5 / (0.5 + 1e-8)),
])
def test_default_hyperparameters(make, first):
    assert _run(make(), [G1])[0][0] == pytest.approx(first, rel=1e-13)


def test_momentum_default_is_0_9():
    # v2 = 0.9 * (-0.005) - 0.01 * (-1) = 0.0055; w2 = 0.995 + 0.0055
    assert _run(optim.Momentum(), [G1, G2])[1][0] == pytest.approx(1.0005, rel=1e-13)


def test_rmsprop_default_decay_is_0_99():
    # h2 = 0.99 * 0.0025 + 0.01 * 1 = 0.012475
    w1 = 1.0 - 0.01 * 0.5 / (0.05 + 1e-7)
    w2 = w1 + 0.01 * 1.0 / (math.sqrt(0.012475) + 1e-7)
    assert _run(optim.RMSProp(), [G1, G2])[1][0] == pytest.approx(w2, rel=1e-13)


ALL = [optim.SGD, optim.Momentum, optim.AdaGrad, optim.RMSProp, optim.Adam]


@pytest.mark.parametrize("make", ALL)
def test_update_is_in_place_and_state_is_per_dotted_path(make):
    opt = make(lr=0.1)
    params = _params()
    w, b = params["a"]["w"], params["b"]
    view = w[:]
    assert opt.update(params, _grads(G1)) is None
    assert params["a"]["w"] is w and params["b"] is b
    assert view[0] != START["a"]["w"]
    if make is not optim.SGD:
        assert set(opt.state) == {"a.w", "b"}


def _snapshot(params):
    return {"w": params["a"]["w"].tobytes(), "b": params["b"].tobytes()}


BAD_GRADS = [
    ({"a": {"w": onp.array([1.0])}}, ValueError, r"missing \['b'\]"),
    ({"a": {"w": onp.array([1.0])}, "b": onp.array([1.0]), "c": onp.array([1.0])}, ValueError,
     r"extra \['c'\]"),
    ({"a": {"w": onp.array([1.0, 2.0])}, "b": onp.array([1.0])}, ValueError,
     r"'a.w'.*\(2,\).*\(1,\)"),
    ({"a": {"w": onp.array([1.0])}, "b": onp.array([onp.nan])}, ValueError, r"'b'.*finite"),
    ({"a": {"w": onp.array([1.0])}, "b": onp.array([-onp.inf])}, ValueError, r"'b'.*finite"),
    ({"a": {"w": onp.array([onp.inf])}, "b": onp.array([1.0])}, ValueError, r"'a.w'.*finite"),
    ({"a": onp.array([1.0]), "b": onp.array([1.0])}, ValueError, r"missing \['a.w'\]"),
]


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("grads, error, message", BAD_GRADS)
def test_bad_gradients_are_refused_with_nothing_changed(make, grads, error, message):
    opt = make(lr=0.1)
    params = _params()
    opt.update(params, _grads(G1))
    before = _snapshot(params)
    with pytest.raises(error, match=message):
        opt.update(params, grads)
    assert _snapshot(params) == before
    # the state is untouched too: the next good update is the one a clean run makes
    opt.update(params, _grads(G2))
    clean = _run(make(lr=0.1), [G1, G2])[1]
    assert (float(params["a"]["w"][0]), float(params["b"][0])) == clean


@pytest.mark.parametrize("make", ALL)
def test_non_writeable_or_integer_params_are_refused(make):
    params = {"w": onp.array([1, 2])}
    with pytest.raises(TypeError, match="'w'"):
        make(lr=0.1).update(params, {"w": onp.array([1.0, 1.0])})
    ro = onp.array([1.0])
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="writeable"):
        make(lr=0.1).update({"v": onp.array([0.0]), "w": ro},
                            {"v": onp.array([1.0]), "w": onp.array([1.0])})


def test_float32_params_stay_float32():
    params = {"w": onp.array([1.0], dtype=onp.float32)}
    optim.Adam(lr=0.1).update(params, {"w": onp.array([1.0])})
    assert params["w"].dtype == onp.float32


@pytest.mark.parametrize("make, kwargs", [
    (optim.SGD, {"lr": 0}), (optim.SGD, {"lr": -0.1}), (optim.SGD, {"lr": float("nan")}),
    (optim.Momentum, {"momentum": 1.0}), (optim.Momentum, {"momentum": -0.1}),
    (optim.RMSProp, {"decay_rate": 1.5}), (optim.Adam, {"beta1": 1.0}),
    (optim.Adam, {"beta2": -0.5}), (optim.AdaGrad, {"lr": "0.1"}),
])
def test_nonsensical_hyperparameters_are_refused(make, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make(**kwargs)


# The update writes each new value into the rule's own fresh array, checks it (a dot product
# that is finite only if every element is, with the exact check only when it is not: squares
# overflow above 1e154), and copies it in: SGD must give W - lr * g to the bit or refuse with
# nothing changed. Each case runs small, and tiled to 9000 elements (BLAS splits longer dot
# products between threads).
BIG = 1.7e308
SGD_CASES = {
    "ordinary": ([0.5, -2.0, 3.0], [1.0, -0.25, 4.0], 0.1, "finite"),
    "large": ([1e150, -2e150, 0.0], [1e150, 1.0, -1e150], 1.0, "finite"),
    "huge": ([1e307, -2e307, 0.0], [1e300, 1.0, -1e300], 1.0, "finite"),
    "near the largest float": ([BIG, -BIG, 1.0], [1.0, -1.0, 1e308], 1e-300, "finite"),
    "overflow": ([BIG, 0.0, 1.0], [-1e308, 0.0, 0.0], 1.0, "refused"),
    "nan parameter": ([1.0, onp.nan, 0.0], [1.0, 1.0, 1.0], 0.1, "refused"),
    "inf gradient": ([1.0, 2.0, 0.0], [1.0, -onp.inf, 1.0], 0.1, "refused"),
}


@pytest.mark.parametrize("size", [3, 9000])
@pytest.mark.parametrize("case", sorted(SGD_CASES))
def test_sgd_step_is_exact_or_refused_with_nothing_changed(case, size):
    w, g, lr, outcome = SGD_CASES[case]
    W, G = (onp.resize(onp.array(a), size) for a in (w, g))
    params = {"first": onp.array([1.0, 2.0]), "W": W.copy()}
    grads = {"first": onp.array([0.5, 0.5]), "W": G}
    opt = optim.SGD(lr=lr)
    if outcome == "refused":
        with pytest.raises(ValueError, match="'W'"):
            opt.update(params, grads)
        assert params["W"].tobytes() == W.tobytes()  # nothing written, not even "first"
        assert params["first"].tolist() == [1.0, 2.0] and opt.iterations == 0
        return
    opt.update(params, grads)
    with onp.errstate(over="raise", invalid="raise"):
        expected = W - lr * G
    assert params["W"].tobytes() == expected.tobytes()
    assert params["first"].tolist() == [1.0 - 0.5 * lr, 2.0 - 0.5 * lr]


# --- step: the gradient, then update ------------------------------------------------------------


def _regression(rng):
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    return params, rng.standard_normal((4, 3)), rng.standard_normal((4, 2))


def _f(p, x, t):
    return mf.np.sum((mf.np.tanh(mf.np.dot(x, p["w"]) + p["b"]) - t) ** 2)


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
@pytest.mark.parametrize("method", ["autograd", "numerical"])
def test_step_is_value_and_grad_then_update(name, method):
    rng = onp.random.default_rng(0)
    params, x, t = _regression(rng)
    by_step = {k: a.copy() for k, a in params.items()}
    opt_step, opt_calls = optim.OPTIMIZERS[name](), optim.OPTIMIZERS[name]()
    for _ in range(3):
        value = opt_step.step(_f, by_step, x, t, method=method)
        want, grads = mf.value_and_grad(_f, method)(params, x, t)
        opt_calls.update(params, grads)
        assert value == want
        assert all(by_step[k].tobytes() == params[k].tobytes() for k in params)
    assert opt_step.iterations == 3 and repr(opt_step.state) == repr(opt_calls.state)


@pytest.mark.parametrize("bad", [onp.nan, onp.inf])
def test_step_refuses_a_loss_that_is_not_finite_with_nothing_changed(bad):
    rng = onp.random.default_rng(1)
    params, x, t = _regression(rng)
    before = {k: a.tobytes() for k, a in params.items()}
    opt = optim.Adam()
    with pytest.raises(mf.functions.NonFiniteError, match=f"the loss is {bad}"):
        opt.step(lambda p, x, t: _f(p, x, t) + bad, params, x, t)  # the gradient is finite
    assert {k: a.tobytes() for k, a in params.items()} == before
    assert opt.state == {} and opt.iterations == 0


def test_step_refuses_an_unknown_method():
    with pytest.raises(ValueError, match="method must be one of"):
        optim.SGD().step(_f, *_regression(onp.random.default_rng(0)), method="symbolic")


@pytest.mark.parametrize("make", [optim.SGD, optim.Momentum, optim.AdaGrad, optim.RMSProp,
                                  optim.Adam, lambda lr: optim.Momentum(lr, nesterov=True)])
def test_the_rules_temporaries_are_reused_and_never_the_state(make):
    # each path's scratch arrays (the rule's temporaries) are the same arrays step after step,
    # and no array of opt.state is one of them; the values are those of fresh temporaries
    rng = onp.random.default_rng(1)
    shape = (40, 30)
    params = {"w": rng.standard_normal(shape)}
    opt, fresh = make(lr=0.01), make(lr=0.01)
    twin = {"w": params["w"].copy()}
    seen = []
    for _ in range(4):
        g = {"w": rng.standard_normal(shape)}
        opt.update(params, g)
        fresh._scratch.clear()  # a twin that makes every temporary anew
        fresh.update(twin, {"w": g["w"].copy()})
        assert onp.array_equal(params["w"], twin["w"])
        pool = opt._scratch["w"]
        seen.append({k: id(v) for k, v in pool.items()})
        assert not {id(v) for v in opt.state.get("w", {}).values()} & set(seen[-1].values())
    # (Momentum's first step has no kept v to scale: its temporary comes with the second)
    assert seen[1] and all(s == seen[1] for s in seen[1:])


def test_a_state_of_another_dtype_is_scaled_as_before():
    # a kept state array that is not of the step's dtype (parameters cast to float32 after
    # some steps) takes the plain product, not the float32 scratch array
    p64 = {"w": onp.array([1.0, -2.0])}
    opt = optim.Momentum(lr=0.1)
    opt.update(p64, {"w": onp.array([0.3, 0.7])})
    p32 = {"w": p64["w"].astype(onp.float32)}
    v = opt.state["w"]["v"].copy()
    g = onp.array([0.5, -0.25], dtype=onp.float32)
    opt.update(p32, {"w": g})
    # in float64, then rounded to float32, as the subtraction into the float32 v computes it
    want = p64["w"].astype(onp.float32) + (0.9 * v - onp.multiply(g, 0.1)).astype(onp.float32)
    assert p32["w"].dtype == onp.float32
    onp.testing.assert_array_equal(p32["w"], want)

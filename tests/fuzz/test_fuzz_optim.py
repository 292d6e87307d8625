"""Fuzzing the optimizers: ``optim.SGD``, ``Momentum``, ``AdaGrad``, ``RMSProp``, ``Adam`` (their
constructors, ``update`` and ``step``).

What "correct" means here (decided for issue 6):

- ``update(params, grads)`` either applies exactly the rule (checked against an independent
  implementation of each paper's formula, bit for bit) or raises and changes nothing: neither
  ``params`` nor the optimizer's state. The proof of "nothing": after a refused update, the
  next good one gives exactly what a run that never saw the bad one gives.
- Refused: NaN or infinite gradients; gradients of another structure or shape; non-real
  gradients (object, string, complex); parameters that are not writeable float arrays; and a
  step that would make a parameter or the state overflow (a gradient of 1e300 squared in Adam's
  ``v``), which would otherwise silently freeze that parameter forever (``v = inf``).
- Integer, boolean and list gradients are float; empty parameter arrays and trees are
  updated trivially; non-contiguous writeable parameters are updated in place.
- ``step(f, params, x, t)`` on a :class:`minifw.Objective` (plain SGD's fused road included)
  takes a step exactly when ``value_and_grad`` then ``update`` would, and refuses with the
  same exception type, changing nothing, when they would refuse; one documented exception: a
  gradient that overflows float64 where ``lr`` times it does not is a step SGD takes.
- Hyperparameters: ``numpy.float32(0.1)`` is a learning rate; ``True``, ``"0.1"``, NaN,
  infinities, zero and negatives are not; momentum and decay rates lie in ``[0, 1)``.
"""

from __future__ import annotations

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minifw as mf
from minifw import optim
from minifw.functions import NonFiniteError

from .harness import (
    EXTREME,
    awkward,
    bad_numbers,
    call,
    call_ieee,
    intbool,
    label_vectors,
    non_real,
    nonfinite,
    plain,
    pylists,
    record,
    refused,
    returned,
    shapes,
    snapshot,
    spiked,
)
from .harness import arrays as float_arrays

NAMES = {"optim.SGD": optim.SGD, "optim.Momentum": optim.Momentum,
         "optim.AdaGrad": optim.AdaGrad, "optim.RMSProp": optim.RMSProp,
         "optim.Adam": optim.Adam}
every = pytest.mark.parametrize("name", list(NAMES))


class Reference:
    """The rules written out again, per path, from the papers (state kept here)."""

    def __init__(self, name, lr=0.1):
        self.name, self.lr, self.s = name, lr, {}

    def step(self, path, p, g):
        s = self.s.setdefault(path, {"v": 0.0, "h": 0.0, "m": 0.0, "t": 0})
        lr = self.lr
        if self.name == "optim.SGD":
            return p - lr * g
        if self.name == "optim.Momentum":
            s["v"] = 0.9 * s["v"] - lr * g
            return p + s["v"]
        if self.name == "optim.AdaGrad":
            s["h"] = s["h"] + g * g
            return p + (-lr * g / (onp.sqrt(s["h"]) + 1e-7))
        if self.name == "optim.RMSProp":
            s["h"] = 0.99 * s["h"] + (1 - 0.99) * g * g
            return p + (-lr * g / (onp.sqrt(s["h"]) + 1e-7))
        s["t"] += 1
        s["m"] = 0.9 * s["m"] + (1 - 0.9) * g
        s["v"] = 0.999 * s["v"] + (1 - 0.999) * g * g
        m_hat, v_hat = s["m"] / (1 - 0.9 ** s["t"]), s["v"] / (1 - 0.999 ** s["t"])
        return p + (-lr * m_hat / (onp.sqrt(v_hat) + 1e-8))


@st.composite
def trees(draw, leaves=None):
    """``{"a": {"w": ...}, "b": ...}`` with small float arrays."""
    leaves = leaves or (lambda: float_arrays(shapes(max_dims=2)))
    return {"a": {"w": draw(leaves())}, "b": draw(leaves())}


def _like(tree, fn):
    return {"a": {"w": fn(tree["a"]["w"])}, "b": fn(tree["b"])}


def _flat(tree):
    return [("a.w", tree["a"]["w"]), ("b", tree["b"])]


def _copy(tree):
    return _like(tree, lambda a: onp.array(a, copy=True))


def _expected(name, params, grads_seq, state=None):
    ref, p = Reference(name), _copy(params)
    for grads in grads_seq:
        for (path, a), (_, g) in zip(_flat(p), _flat(grads)):
            a[...] = ref.step(path, a, onp.asarray(g, dtype=a.dtype))
    if state is not None:
        state.update(ref.s)
    return p


def _same(a, b):
    for (k, x), (_, y) in zip(_flat(a), _flat(b)):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), (k, x, y)


def _refused_changes_nothing(name, params, good, bad, *words):
    """Update with ``good``, then ``bad`` (refused, nothing changes), then ``good`` again: the
    result must be a clean run of two good updates."""
    opt = NAMES[name](lr=0.1)
    p = _copy(params)
    opt.update(p, good)
    before, state = snapshot(p), snapshot(opt.state)
    refused(call(opt.update, p, bad), *words)
    assert snapshot(p) == before and snapshot(opt.state) == state and opt.iterations == 1
    opt.update(p, good)
    _same(p, _expected(name, params, [good, good]))


@every
@given(params=trees(), data=st.data())
def test_nan_or_inf_gradients_are_refused_and_change_nothing(name, params, data):
    record(name, "nonfinite")
    good = _like(params, lambda a: onp.full_like(a, 0.5))
    bad = _like(good, lambda a: a.copy())
    where = data.draw(st.sampled_from(["a", "b"]))
    if where == "a":
        bad["a"]["w"] = data.draw(spiked(st.just(bad["a"]["w"]), (onp.nan, onp.inf, -onp.inf)))
    else:
        bad["b"] = data.draw(spiked(st.just(bad["b"]), (onp.nan, onp.inf, -onp.inf)))
    _refused_changes_nothing(name, params, good, bad, "not finite")


@every
@given(params=trees(), data=st.data())
def test_parameters_at_nan_or_inf_are_refused(name, params, data):
    record(name, "nonfinite")
    params["b"] = data.draw(nonfinite(params["b"].shape, dtype=onp.float64))
    opt = NAMES[name](lr=0.1)
    refused(call(opt.update, params, _like(params, onp.ones_like)), "not finite")
    assert opt.state == {} and opt.iterations == 0


@every
@given(params=trees(), data=st.data())
def test_huge_and_tiny_gradients_step_exactly_or_are_refused_as_overflow(name, params, data):
    record(name, "extreme")
    grads = _like(params, lambda a: data.draw(spiked(st.just(onp.full_like(a, 0.5)), EXTREME)))
    opt = NAMES[name](lr=0.1)
    p = _copy(params)
    out = _call_update(opt, p, grads)
    state = {}
    with onp.errstate(all="ignore"):
        want = _expected(name, params, [grads], state)
    used = {"optim.SGD": (), "optim.Momentum": ("v",), "optim.AdaGrad": ("h",),
            "optim.RMSProp": ("h",), "optim.Adam": ("m", "v")}[name]
    state_ok = all(onp.all(onp.isfinite(s[k])) for s in state.values() for k in used)
    if all(onp.all(onp.isfinite(a)) for _, a in _flat(want)) and state_ok:
        returned(out)
        _same(p, want)
    else:
        refused(out, "overflows")
        _same(p, params)
        assert opt.state == {} and opt.iterations == 0


@every
@given(params=trees(lambda: st.one_of(float_arrays(shapes(max_dims=2)),
                                      st.just(onp.zeros((0, 3))), st.just(onp.zeros(0)))))
def test_empty_arrays_and_trees_update_trivially(name, params):
    record(name, "empty")
    opt = NAMES[name](lr=0.1)
    p = _copy(params)
    returned(_call_update(opt, p, _like(params, onp.ones_like)))
    _same(p, _expected(name, params, [_like(params, onp.ones_like)]))
    returned(call(opt.update, {}, {}))


@every
@given(params=trees(), data=st.data())
def test_gradients_of_another_shape_or_structure_are_refused(name, params, data):
    record(name, "shape")
    good = _like(params, onp.ones_like)
    bad = _like(good, lambda a: a.copy())
    new_shape = data.draw(shapes(min_dims=0, max_dims=3).filter(
        lambda s: s != params["b"].shape))
    bad["b"] = onp.ones(new_shape)
    _refused_changes_nothing(name, params, good, bad, "shape")


@every
@given(params=trees(), bad=st.sampled_from(["missing", "extra", "flat", "nested", "keys"]))
def test_gradient_trees_of_another_structure_are_refused(name, params, bad):
    record(name, "structure")
    good = _like(params, onp.ones_like)
    g = {"missing": {"a": good["a"]}, "extra": {**good, "c": onp.ones(1)},
         "flat": {"a.w": good["a"]["w"], "b": good["b"]},
         "nested": {"a": good["a"]["w"], "b": good["b"]},
         "keys": {"a": {"w": good["a"]["w"]}, "b": good["b"], 3: onp.ones(1)}}[bad]
    _refused_changes_nothing(name, params, good, g, "match", "missing", "extra", "keys")


@every
@given(params=trees(), kind=st.sampled_from(["int", "readonly", "list", "scalar", "object"]))
def test_parameters_that_cannot_be_updated_in_place_are_refused(name, params, kind):
    record(name, "structure")
    p = _copy(params)
    if kind == "int":
        p["b"] = onp.ones(p["b"].shape, dtype=onp.int64)
    elif kind == "readonly":
        p["b"].setflags(write=False)
    elif kind == "list":
        p["b"] = p["b"].tolist()
    elif kind == "scalar":
        p["b"] = 1.5
        params["b"] = onp.ones(())
    else:
        p["b"] = p["b"].astype(object)
    opt = NAMES[name](lr=0.1)
    refused(call(opt.update, p, _like(params, onp.ones_like)), "writeable float")
    assert opt.state == {}


@every
@given(params=trees(), data=st.data())
def test_integer_and_boolean_gradients_are_float(name, params, data):
    record(name, "intbool")
    grads = _like(params, lambda a: data.draw(intbool(a.shape, small=True)))
    opt = NAMES[name](lr=0.1)
    p = _copy(params)
    returned(_call_update(opt, p, grads))
    _same(p, _expected(name, params, [_like(grads, lambda g: g.astype(onp.float64))]))


@every
@given(params=trees(), data=st.data())
def test_non_real_gradients_are_refused(name, params, data):
    record(name, "object")
    good = _like(params, onp.ones_like)
    bad = _like(good, lambda a: a.copy())
    bad["b"] = data.draw(non_real(params["b"].shape))
    _refused_changes_nothing(name, params, good, bad, "dtype", "real")


@every
@given(params=trees(), data=st.data())
def test_list_gradients_are_arrays(name, params, data):
    record(name, "pylist")
    grads = _like(params, lambda a: data.draw(pylists(a.shape, elements=plain())))
    opt = NAMES[name](lr=0.1)
    p = _copy(params)
    returned(_call_update(opt, p, grads))
    _same(p, _expected(name, params, [_like(grads, onp.asarray)]))


@every
@given(params=trees(), data=st.data())
def test_awkward_gradients_and_strided_parameters(name, params, data):
    record(name, "layout")
    grads = _like(params, lambda a: data.draw(awkward(onp.full_like(a, 0.25))))
    base = _like(params, lambda a: onp.zeros(a.shape[:-1] + (2 * a.shape[-1],)) if a.ndim
                 else onp.zeros(()))
    p = _like(base, lambda a: a[..., ::2] if a.ndim else a)  # writeable, non-contiguous views
    for (_, view), (_, src) in zip(_flat(p), _flat(params)):
        view[...] = src
    opt = NAMES[name](lr=0.1)
    out = _call_update(opt, p, grads)
    returned(out)
    _same(p, _expected(name, params, [_like(grads, onp.array)]))
    for (_, view), (_, b) in zip(_flat(p), _flat(base)):  # in place: the views' bases moved
        assert view.base is b or view is b


def _call_update(opt, p, grads):
    """``call(opt.update, p, grads)`` that expects ``p`` to change (in place): only the
    gradients must stay as they were."""
    before = snapshot(grads)
    out = call(lambda: opt.update(p, grads))
    assert snapshot(grads) == before
    return out


@every
@given(setting=st.sampled_from(["lr", "momentum", "decay_rate", "beta1", "beta2", "eps"]),
       data=st.data())
def test_nonsensical_hyperparameters_are_refused_by_name(name, setting, data):
    record(name, "settings")
    params = {"optim.Momentum": ["lr", "momentum"],
              "optim.RMSProp": ["lr", "decay_rate"],
              "optim.Adam": ["lr", "beta1", "beta2", "eps"]}.get(name, ["lr"])
    setting = setting if setting in params else "lr"
    if setting in ("momentum", "decay_rate", "beta1", "beta2"):
        value = data.draw(st.sampled_from([1.0, -0.1, 1.5, onp.nan, onp.inf, True, "0.9", None,
                                           [0.9], onp.float32(1.0)]))
    else:
        value = data.draw(bad_numbers())
    refused(call(NAMES[name], **{setting: value}), setting)


@every
@given(lr=st.one_of(st.floats(1e-6, 1.0).map(onp.float32), st.floats(1e-6, 1.0),
                    st.integers(1, 3).map(onp.int64), st.integers(1, 3)))
def test_numpy_scalars_are_learning_rates(name, lr):
    record(name, "settings")
    opt = returned(call(NAMES[name], lr=lr))
    assert opt.lr == float(lr) and type(opt.lr) is float


MODEL = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), mf.Linear(4, 2))
def F(p, x, t):
    return mf.SoftmaxCrossEntropy()(MODEL(p, x), t)


def _net_copy(params):
    out = {}
    for k, v in params.items():
        out[k] = {n: a.copy() for n, a in v.items()}
        for n, a in v.items():
            out[k][n].setflags(write=a.flags.writeable)
    return out


@st.composite
def step_cases(draw, cls):
    """``(params, x, t)``: the fit suite's network with one hostile ingredient of ``cls``."""
    params = MODEL.init(onp.random.default_rng(draw(st.integers(0, 3))))
    n = draw(st.integers(1, 5))
    x = draw(float_arrays((n, 3)))
    t = onp.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    key, name = draw(st.sampled_from([("0", "W"), ("0", "b"), ("2", "W"), ("2", "b")]))
    a = params[key][name]
    if cls == "extreme":
        if draw(st.booleans()):
            params[key][name] = draw(spiked(st.just(a), EXTREME))
        else:
            x = draw(spiked(st.just(x), EXTREME))
    elif cls == "nonfinite":
        if draw(st.booleans()):
            params[key][name] = draw(nonfinite(a.shape, dtype=onp.float64))
        else:
            x = draw(nonfinite(x.shape, dtype=onp.float64))
    elif cls == "labels":
        t = draw(label_vectors(n, 2))
    else:
        a.setflags(write=False)
    return params, x, t


@every
@pytest.mark.parametrize("cls", ["extreme", "nonfinite", "labels", "layout"])
@given(data=st.data())
def test_step_steps_or_refuses_as_the_two_calls_do(name, cls, data):
    record(f"{name}.step", cls)
    params, x, t = data.draw(step_cases(cls))
    two, opt_two = _net_copy(params), NAMES[name](lr=0.5)
    with onp.errstate(all="ignore"):  # the question is the outcome, not the warnings on the way
        want = call_ieee(lambda: opt_two.update(two, mf.value_and_grad(F)(two, x, t)[1]))
        opt = NAMES[name](lr=0.5)
        p = _net_copy(params)
        before = snapshot(p)
        got = call_ieee(lambda: opt.step(F, p, x, t))
    if got.error is None:
        assert onp.isfinite(got.value) and opt.iterations == 1
        assert all(onp.isfinite(a).all() for v in p.values() for a in v.values())
        overflowed = isinstance(want.error, NonFiniteError) and "gradient" in str(want.error)
        assert want.error is None or (name == "optim.SGD" and overflowed), want.error
    else:
        refused(got, "")
        assert type(got.error) is type(want.error), (got.error, want.error)
        assert snapshot(p) == before and opt.state == {} and opt.iterations == 0

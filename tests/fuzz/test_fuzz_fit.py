"""Fuzzing training: ``mf.fit`` and ``mf.accuracy``.

What "correct" means here (decided for issue 6):

- Bad data and settings are refused **before any parameter changes** (the parameters and the
  optimizer's state are compared before and after): NaN or infinite ``x``/``t``, empty
  batches, lengths that differ, inputs of the wrong width for the model, labels outside
  ``[0, classes)`` or not integers (checked against the model's output width up front, not
  at the batch where they first turn up), non-real arrays, parameters that are not finite
  writeable float arrays, a validation set with any of these, and nonsensical ``epochs``,
  ``batch_size``, ``rng``, ``gradient`` or ``validation``, or a class where an instance belongs.
- Data too large for the model (``x = 1e300``) makes the loss overflow: ``FloatingPointError``
  naming the epoch and batch, with the parameters at their last finite values (here: as given).
- Everything else trains: integer, boolean, list and awkwardly laid out data give exactly the
  parameters that float64 contiguous data gives, and never change the caller's arrays.
- ``accuracy`` refuses what ``fit`` refuses, and outputs that are not finite.
"""

from __future__ import annotations

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minifw as mf

from .harness import (
    EXTREME,
    awkward,
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
    snapshot,
    spiked,
)
from .harness import arrays as float_arrays

MODEL = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), mf.Linear(4, 2))
LOSS = mf.SoftmaxCrossEntropy()


@st.composite
def data_sets(draw, x=None, n=None):
    n = draw(st.integers(1, 6)) if n is None else n
    x = draw(x((n, 3)) if x else float_arrays((n, 3)))
    t = onp.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    return x, t


def _params(seed=0):
    return MODEL.init(onp.random.default_rng(seed))


def _fit(params, x, t, opt=None, ieee=False, params_out=None, **kw):
    """``fit`` on a private copy of ``params`` (it trains in place): ``(copy, history)``;
    the copy also lands in ``params_out``, also when ``fit`` raises."""
    kw = {"epochs": 2, "batch_size": 2, "rng": 0, "progress": False, **kw}
    opt = opt or mf.optim.Adam(lr=0.01)

    def train(x, t):
        p = {k: {n: a.copy() for n, a in v.items()} for k, v in params.items()}
        try:
            return p, mf.fit(MODEL, LOSS, opt, p, x, t, **kw)
        finally:
            if params_out is not None:
                params_out.update(p)

    return (call_ieee if ieee else call)(train, x, t)


def _refused_before_anything(x, t, *words, **kw):
    params, opt, after = _params(), mf.optim.Adam(lr=0.01), {}
    out = _fit(params, x, t, opt, params_out=after, **kw)
    refused(out, *words)
    assert snapshot(after) == snapshot(params), "params changed before the error"
    assert opt.iterations == 0 and opt.state == {}


def _clean(x, t, **kw):
    return returned(_fit(_params(), onp.asarray(x, float), onp.asarray(t), **kw))


def _same_training(out, x, t):
    params, history = returned(out)
    want, want_history = _clean(x, t)
    assert snapshot(params) == snapshot(want) and history == want_history


@given(d=data_sets(), where=st.sampled_from(["x", "t", "x_val"]), data=st.data())
def test_nan_or_inf_data_is_refused_before_anything_changes(d, where, data):
    record("mf.fit", "nonfinite")
    x, t = d
    bad = (onp.nan, onp.inf, -onp.inf)
    validation = None
    if where == "x":
        x = data.draw(spiked(st.just(x), bad))
    elif where == "t":
        t = data.draw(spiked(st.just(t.astype(float)), bad))
    else:
        validation = (data.draw(spiked(st.just(x), bad)), t)
    _refused_before_anything(x, t, "nan or infinite", validation=validation)


@given(d=data_sets(), data=st.data())
def test_nan_or_inf_params_are_refused_before_anything_changes(d, data):
    record("mf.fit", "nonfinite")
    x, t = d
    params = _params()
    params["2"]["b"] = data.draw(nonfinite((2,), dtype=onp.float64))
    opt = mf.optim.SGD()
    refused(call(mf.fit, MODEL, LOSS, opt, params, x, t, epochs=1, batch_size=2, rng=0,
                 progress=False), "nan or infinite")
    assert opt.iterations == 0


@given(d=data_sets(lambda s: spiked(float_arrays(s), EXTREME)))
def test_data_too_large_for_the_model_stops_with_epoch_and_batch(d):
    record("mf.fit", "extreme")
    x, t = d
    params, opt, after = _params(), mf.optim.SGD(lr=0.1), {}
    out = _fit(params, x, t, opt, ieee=True, params_out=after)
    if out.error is None:
        assert all(onp.all(onp.isfinite(a)) for v in out.value[0].values() for a in v.values())
        return
    e = refused(out, "epoch", types=(FloatingPointError,))
    assert "batch" in str(e) and hasattr(e, "history")
    assert all(onp.all(onp.isfinite(a)) for v in after.values() for a in v.values())


@given(n=st.integers(0, 0), where=st.sampled_from(["train", "validation"]))
def test_empty_data_is_refused(n, where):
    record("mf.fit", "empty")
    x, t = onp.zeros((n, 3)), onp.zeros(n, dtype=int)
    good = (onp.zeros((2, 3)), onp.array([0, 1]))
    if where == "train":
        _refused_before_anything(x, t, "empty")
    else:
        _refused_before_anything(*good, "empty", validation=(x, t))


@given(d=data_sets(), bad=st.sampled_from(["width", "rank", "length", "t-width", "val-width"]),
       k=st.integers(1, 3))
def test_shapes_that_do_not_fit_the_model_are_refused_before_anything(d, bad, k):
    record("mf.fit", "shape")
    x, t = d
    validation = None
    if bad == "width":
        x = onp.zeros((len(x), 3 + k))
    elif bad == "rank":
        x = onp.zeros(len(x))
    elif bad == "length":
        t = onp.zeros(len(t) + k, dtype=int)
    elif bad == "t-width":
        t = onp.zeros((len(t), 2 + k))
    else:
        validation = (onp.zeros((2, 3 + k)), onp.array([0, 1]))
    _refused_before_anything(x, t, "shape", "last axis", "samples", validation=validation)


@given(d=data_sets(n=6), where=st.sampled_from(["train", "validation"]), data=st.data())
def test_labels_out_of_range_are_refused_before_the_first_step(d, where, data):
    record("mf.fit", "labels")
    x, t = d
    bad = data.draw(label_vectors(6, 2))
    if where == "train":
        _refused_before_anything(x, bad, "label", "nan or infinite")
    else:
        _refused_before_anything(x, t, "label", "nan or infinite", validation=(x, bad))


@given(d=data_sets(lambda s: intbool(s, small=True)))
def test_integer_and_boolean_data_train_as_float64(d):
    record("mf.fit", "intbool")
    x, t = d
    _same_training(_fit(_params(), x, t.astype(onp.uint8)), x, t)


@given(d=data_sets(lambda s: non_real(s)), where=st.sampled_from(["x", "t"]))
def test_non_real_data_is_refused(d, where):
    record("mf.fit", "object")
    x, t = d
    if where == "t":
        x, t = onp.zeros(x.shape), t.astype(object) if len(t) % 2 else t.astype(str)
    _refused_before_anything(x, t, "numeric", "dtype")


@given(d=data_sets(lambda s: pylists(s, elements=plain())))
def test_lists_train_as_arrays(d):
    record("mf.fit", "pylist")
    x, t = d
    _same_training(_fit(_params(), x, t.tolist()), x, t)


@given(d=data_sets(), data=st.data())
def test_awkward_data_trains_the_same_and_is_left_alone(d, data):
    record("mf.fit", "layout")
    x, t = d
    _same_training(_fit(_params(), data.draw(awkward(x)), data.draw(awkward(t))), x, t)


@given(d=data_sets(), kind=st.sampled_from(["int", "readonly", "list", "not-dict", "missing"]))
def test_params_that_cannot_be_trained_are_refused(d, kind):
    record("mf.fit", "structure")
    x, t = d
    params = _params()
    if kind == "int":
        params["0"]["b"] = onp.zeros(4, dtype=int)
    elif kind == "readonly":
        params["0"]["W"].setflags(write=False)
    elif kind == "list":
        params["0"]["b"] = [0.0] * 4
    elif kind == "not-dict":
        params = [params["0"], params["2"]]
    else:
        del params["2"]
    opt = mf.optim.SGD()
    refused(call(mf.fit, MODEL, LOSS, opt, params, x, t, epochs=1, batch_size=2, rng=0,
                 progress=False), "writeable float", "dict", "expects")
    assert opt.iterations == 0


SETTINGS = {
    "epochs": [-1, 2.5, True, "3", None, onp.nan],
    "batch_size": [0, -1, 1.5, False, "2", None],
    "rng": [-1, 0.5, "seed", None, [0]],
    "gradient": ["Autograd", "", None, "central"],
    "validation": [(onp.zeros((2, 3)),), onp.zeros((2, 3)), "val", (1, 2, 3)],
}


@given(d=data_sets(), setting=st.sampled_from(list(SETTINGS)), data=st.data())
def test_nonsensical_settings_are_refused_by_name(d, setting, data):
    record("mf.fit", "settings")
    x, t = d
    value = data.draw(st.sampled_from(SETTINGS[setting]))
    _refused_before_anything(x, t, setting, "rng", **{setting: value})


@given(d=data_sets(), which=st.sampled_from(["model", "loss", "optimizer"]))
def test_a_class_where_an_instance_belongs_is_refused(d, which):
    record("mf.fit", "settings")
    x, t = d
    args = {"model": MODEL, "loss": LOSS, "optimizer": mf.optim.SGD()}
    args[which] = {"model": mf.Sequential, "loss": mf.SoftmaxCrossEntropy,
                   "optimizer": mf.optim.SGD}[which]
    refused(call(mf.fit, args["model"], args["loss"], args["optimizer"], _params(), x, t,
                 epochs=1, batch_size=2, rng=0, progress=False), which)


# --- accuracy ---------------------------------------------------------------------------------


def _accuracy(x, t, params="default"):
    return call(mf.accuracy, MODEL, _params() if params == "default" else params, x, t)


@given(d=data_sets(), where=st.sampled_from(["x", "t", "W"]), data=st.data())
def test_accuracy_refuses_nan_or_inf(d, where, data):
    record("mf.accuracy", "nonfinite")
    x, t = d
    params = _params()
    bad = (onp.nan, onp.inf, -onp.inf)
    if where == "x":
        x = data.draw(spiked(st.just(x), bad))
    elif where == "t":
        t = data.draw(spiked(st.just(t.astype(float)), bad))
    else:
        params["2"]["b"] = data.draw(spiked(st.just(params["2"]["b"]), (onp.nan,)))
    refused(call_ieee(mf.accuracy, MODEL, params, x, t), "nan or infinite")


@given(d=data_sets(lambda s: spiked(float_arrays(s), EXTREME)))
def test_accuracy_of_huge_inputs_is_a_fraction_or_refused(d):
    record("mf.accuracy", "extreme")
    x, t = d
    out = call_ieee(mf.accuracy, MODEL, _params(), x, t)
    if out.error is not None:
        refused(out, "nan or infinite")
    else:
        assert 0.0 <= out.value <= 1.0


@given(n=st.integers(0, 0))
def test_accuracy_of_nothing_is_refused(n):
    record("mf.accuracy", "empty")
    refused(_accuracy(onp.zeros((n, 3)), onp.zeros(n, dtype=int)), "empty")


@given(d=data_sets(), bad=st.sampled_from(["width", "length", "t-width"]))
def test_accuracy_refuses_shapes_that_do_not_fit(d, bad):
    record("mf.accuracy", "shape")
    x, t = d
    if bad == "width":
        x = onp.zeros((len(x), 5))
    elif bad == "length":
        t = onp.zeros(len(t) + 1, dtype=int)
    else:
        t = onp.zeros((len(t), 3))
    refused(_accuracy(x, t), "shape", "last axis", "samples")


@given(d=data_sets(n=5), data=st.data())
def test_accuracy_refuses_labels_out_of_range(d, data):
    record("mf.accuracy", "labels")
    x, _ = d
    refused(_accuracy(x, data.draw(label_vectors(5, 2))), "label", "nan or infinite")


@given(d=data_sets(lambda s: intbool(s, small=True)))
def test_accuracy_of_integer_data(d):
    record("mf.accuracy", "intbool")
    x, t = d
    assert returned(_accuracy(x, t.astype(onp.int8))) == mf.accuracy(
        MODEL, _params(), x.astype(float), t)


@given(d=data_sets(lambda s: non_real(s)))
def test_accuracy_refuses_non_real_data(d):
    record("mf.accuracy", "object")
    x, t = d
    refused(_accuracy(x, t), "numeric", "dtype")


@given(d=data_sets(lambda s: pylists(s, elements=plain())))
def test_accuracy_of_lists(d):
    record("mf.accuracy", "pylist")
    x, t = d
    assert returned(_accuracy(x, t.tolist())) == mf.accuracy(MODEL, _params(), onp.array(x), t)


@given(d=data_sets(), data=st.data())
def test_accuracy_of_awkward_arrays(d, data):
    record("mf.accuracy", "layout")
    x, t = d
    assert returned(_accuracy(data.draw(awkward(x)), data.draw(awkward(t)))) == mf.accuracy(
        MODEL, _params(), x, t)


@pytest.mark.parametrize("params", [{}, {"0": {}}, None, [1, 2]])
def test_accuracy_refuses_params_the_model_cannot_use(params):
    record("mf.accuracy", "structure")
    refused(_accuracy(onp.zeros((2, 3)), onp.array([0, 1]), params), "expects", "params")

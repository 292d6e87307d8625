"""Fuzzing ``mf.Perceptron``: its constructor, ``fit`` and ``predict``.

What "correct" means here (decided for issue 6):

- ``fit`` runs the classic rule exactly (checked against an independent loop) or raises and
  leaves ``w``, ``b`` and ``errors_`` as they were. NaN or infinite ``X``, targets other than
  0/1, shapes that do not fit ``n_inputs``, empty data and non-real arrays are refused by name.
- Inputs near 1e300 make ``w @ x`` overflow: the weights would become infinite, so ``fit``
  refuses with a message naming the overflow; ``predict`` keeps the sign of an overflow
  (``+-inf``) and refuses only where ``w @ x + b`` is ``inf - inf``.
- Integers, booleans and lists are float64; layouts do not matter; ``n_inputs`` and ``epochs``
  are whole numbers, ``lr`` a finite number > 0 (NumPy scalars included, ``True`` not).
"""

from __future__ import annotations

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minifw as mf

from .harness import (
    EXTREME,
    awkward,
    bad_numbers,
    call,
    intbool,
    non_real,
    nonfinite,
    plain,
    record,
    refused,
    returned,
    snapshot,
    spiked,
)

ENTRY = "mf.Perceptron"


def reference_fit(X, t, n, lr=0.2, epochs=10):
    """The rule; ``w = NaN`` where ``w @ x + b`` is ``inf - inf`` (no sign: refused)."""
    w, b, errors = onp.zeros(n), 0.0, []
    for _ in range(epochs):
        mistakes = 0
        for x, ti in zip(onp.asarray(X, dtype=onp.float64), t):
            if onp.isnan(x @ w + b):
                return onp.full(n, onp.nan), b, errors
            d = lr * (float(ti) - int(x @ w + b > 0))
            w, b, mistakes = w + d * x, b + d, mistakes + (d != 0)
        errors.append(int(mistakes))
        if mistakes == 0:
            break
    return w, b, errors


@st.composite
def data_sets(draw, X=None):
    n = draw(st.integers(1, 3))
    rows = draw(st.integers(1, 6))
    X = draw(X((rows, n)) if X else hnp.arrays(onp.float64, (rows, n), elements=plain()))
    t = onp.array(draw(st.lists(st.integers(0, 1), min_size=rows, max_size=rows)))
    return n, X, t


def _fit(n, X, t):
    p = mf.Perceptron(n)
    out = call(p.fit, X, t)
    return p, out


def _unchanged(p):
    assert not p.w.any() and p.b == 0.0 and p.errors_ == []


def _matches(p, X, t):
    with onp.errstate(all="ignore"):  # w @ x may overflow to +-inf: its sign still decides
        w, b, errors = reference_fit(X, t, p.n_inputs)
    assert p.w.tobytes() == w.tobytes() and p.b == b and p.errors_ == errors


@given(d=data_sets(lambda s: nonfinite(s, dtype=onp.float64)))
def test_nan_or_inf_inputs_are_refused(d):
    record(ENTRY, "nonfinite")
    n, X, t = d
    p, out = _fit(n, X, t)
    refused(out, "nan or infinite")
    _unchanged(p)
    refused(call(mf.Perceptron(n).predict, X), "nan or infinite")


@given(d=data_sets(lambda s: spiked(hnp.arrays(onp.float64, s, elements=plain()), EXTREME)))
def test_huge_inputs_fit_exactly_or_name_the_overflow(d):
    record(ENTRY, "extreme")
    n, X, t = d
    p, out = _fit(n, X, t)
    with onp.errstate(all="ignore"):
        w, b, _ = reference_fit(X, t, n)
    if onp.all(onp.isfinite(w)) and onp.isfinite(b):
        returned(out)
        _matches(p, X, t)
    else:
        refused(out, "overflow")
        _unchanged(p)


@given(d=data_sets(lambda s: spiked(hnp.arrays(onp.float64, s, elements=plain()), EXTREME)),
       data=st.data())
def test_predict_keeps_the_sign_of_an_overflow(d, data):
    record(ENTRY, "extreme")
    n, X, _ = d
    p = mf.Perceptron(n)
    p.w = onp.array(data.draw(st.lists(st.sampled_from([1e300, -1e300, 1.0, 0.0]),
                                       min_size=n, max_size=n)))
    out = call(p.predict, X)
    with onp.errstate(all="ignore"):
        score = X @ p.w + p.b
    if onp.isnan(score).any():
        refused(out, "overflow")
    else:
        assert returned(out).tolist() == (score > 0).astype(int).tolist()


@given(n=st.integers(1, 3), rows=st.sampled_from([0]))
def test_empty_data_is_refused(n, rows):
    record(ENTRY, "empty")
    p, out = _fit(n, onp.zeros((rows, n)), onp.zeros(rows))
    refused(out, "empty")
    _unchanged(p)
    assert returned(call(p.predict, onp.zeros((0, n)))).shape == (0,)


@given(d=data_sets(), shape=st.sampled_from(["width", "rank", "targets"]), data=st.data())
def test_shapes_that_do_not_fit_are_refused_naming_them(d, shape, data):
    record(ENTRY, "shape")
    n, X, t = d
    if shape == "width":
        X = onp.zeros((len(X), n + data.draw(st.integers(1, 3))))
    elif shape == "rank":
        X = onp.zeros((len(X), n, 2))
    else:
        t = onp.zeros(len(t) + data.draw(st.integers(1, 3)))
    p, out = _fit(n, X, t)
    e = refused(out, "shape")
    assert str(X.shape if shape != "targets" else t.shape) in str(e)
    _unchanged(p)


@given(d=data_sets(lambda s: intbool(s, small=True)))
def test_integer_and_boolean_inputs_are_float64(d):
    record(ENTRY, "intbool")
    n, X, t = d
    p, out = _fit(n, X, t.astype(bool))
    returned(out)
    _matches(p, X, t)


@given(d=data_sets(lambda s: non_real(s)), where=st.sampled_from(["X", "t"]))
def test_non_real_inputs_and_targets_are_refused(d, where):
    record(ENTRY, "object")
    n, X, t = d
    if where == "t":
        X, t = onp.zeros(X.shape), onp.array(["0"] * len(t))
    p, out = _fit(n, X, t)
    refused(out, "numeric", "0 or 1", "dtype")
    _unchanged(p)


@given(d=data_sets())
def test_lists_are_arrays(d):
    record(ENTRY, "pylist")
    n, X, t = d
    p, out = _fit(n, X.tolist(), t.tolist())
    returned(out)
    _matches(p, X, t)
    assert returned(call(p.predict, X.tolist())).tolist() == p.predict(X).tolist()


@given(d=data_sets(), data=st.data())
def test_awkward_layouts_give_the_same_fit(d, data):
    record(ENTRY, "layout")
    n, X, t = d
    p, out = _fit(n, data.draw(awkward(X)), data.draw(awkward(t)))
    returned(out)
    _matches(p, X, t)


@given(n=st.integers(1, 3), rows=st.integers(1, 4), data=st.data())
def test_targets_other_than_0_and_1_are_refused(n, rows, data):
    record(ENTRY, "labels")
    t = onp.array(data.draw(st.lists(st.integers(0, 1), min_size=rows, max_size=rows)),
                  dtype=onp.float64)
    t[data.draw(st.integers(0, rows - 1))] = data.draw(st.sampled_from(
        [2, -1, 0.5, onp.nan, onp.inf, 1e300]))
    p, out = _fit(n, onp.zeros((rows, n)), t)
    refused(out, "0 or 1")
    _unchanged(p)


@pytest.mark.parametrize("setting", ["n_inputs", "lr", "epochs"])
@given(data=st.data())
def test_nonsensical_settings_are_refused_by_name(setting, data):
    record(ENTRY, "settings")
    if setting == "lr":
        value = data.draw(bad_numbers())
    else:
        value = data.draw(st.sampled_from([-1, 2.5, True, "3", None, onp.nan, [3]] + (
            [0] if setting == "n_inputs" else [])))
    kwargs = {"n_inputs": 2, setting: value}
    refused(call(mf.Perceptron, **kwargs), setting)


@given(lr=st.floats(0.01, 1).map(onp.float32), epochs=st.integers(0, 3).map(onp.int64))
def test_numpy_scalars_are_settings(lr, epochs):
    record(ENTRY, "settings")
    p = returned(call(mf.Perceptron, onp.int64(2), lr=lr, epochs=epochs))
    X = onp.array([[0, 0], [1, 1]])
    before = snapshot(X)
    p.fit(X, [0, 1])
    assert snapshot(X) == before and p.lr == float(lr)

"""Training: mini-batches, fit (both gradient sources, validation, History, errors), accuracy."""

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minifw as mf
from minifw.training import minibatches
from minifw.tree import leaves


def _snapshot(params):
    return {k: v.tobytes() for k, v in leaves(params)}


def _copy(params):
    return {k: _copy(v) if isinstance(v, dict) else v.copy() for k, v in params.items()}


def _classification(n=24, seed=0):
    rng = onp.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    t = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(onp.int64)
    return x, t


def _regression(n=8, seed=0):
    rng = onp.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    t = x @ onp.array([[1.0], [-2.0], [0.5]]) + 0.3
    return x, t


# --- minibatches ------------------------------------------------------------------------------


@given(n=st.integers(1, 60), batch_size=st.integers(1, 70), seed=st.integers(0, 2**32 - 1))
def test_minibatches_partition_the_indices(n, batch_size, seed):
    batches = list(minibatches(n, batch_size, onp.random.default_rng(seed)))
    assert len(batches) == -(-n // batch_size)
    assert all(len(b) == batch_size for b in batches[:-1])
    assert 1 <= len(batches[-1]) <= batch_size
    assert sorted(onp.concatenate(batches).tolist()) == list(range(n))
    again = list(minibatches(n, batch_size, onp.random.default_rng(seed)))
    assert all(onp.array_equal(a, b) for a, b in zip(batches, again))


def test_minibatches_shuffle():
    orders = {tuple(onp.concatenate(list(minibatches(20, 20, onp.random.default_rng(s)))))
              for s in range(5)}
    assert len(orders) == 5  # 20! orders: five seeds giving five orders is no accident


# --- fit --------------------------------------------------------------------------------------


def test_fit_with_both_gradient_sources_gives_the_same_training():
    # Linear regression, SGD: the two sources differ by about eps |f| / h = 4e-11 per gradient
    # element (central differences on a quadratic: rounding only, |f| ~ 1), so 20 steps of
    # lr 0.1 move the params apart by at most ~1e-10 (measured 6e-12); 1e-9 bounds that. A
    # wrong gradient source would be off by O(0.1).
    x, t = _regression()
    model = mf.Sequential(mf.Linear(3, 1))
    start = model.init(onp.random.default_rng(1))
    results = {}
    for gradient in ("autograd", "numerical"):
        params = _copy(start)
        h = mf.fit(model, mf.SumSquaresError(), mf.optim.SGD(lr=0.1), params, x, t,
                   epochs=10, batch_size=4, rng=onp.random.default_rng(2), gradient=gradient,
                   progress=False)
        results[gradient] = (params, h)
    pa, ha = results["autograd"]
    pn, hn = results["numerical"]
    for (k, a), (_, b) in zip(leaves(pa), leaves(pn)):
        onp.testing.assert_allclose(a, b, rtol=0, atol=1e-9, err_msg=k)
    onp.testing.assert_allclose(ha.loss, hn.loss, rtol=1e-9)
    assert ha.loss[-1] < ha.loss[0] / 4
    assert ha.accuracy == [] and ha.val_loss == []


def test_fit_trains_in_place_and_first_loss_is_the_initial_loss():
    # one batch per epoch: the first History entry is the loss at the initial params,
    # computed here independently
    x, t = _classification()
    model = mf.Sequential(mf.Linear(2, 2))
    params = model.init(onp.random.default_rng(3))
    W = params["0"]["W"]
    y0 = x @ W + params["0"]["b"]
    y0 = y0 - y0.max(axis=1, keepdims=True)
    initial = -(y0[onp.arange(len(t)), t] - onp.log(onp.exp(y0).sum(axis=1))).mean()
    h = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.SGD(lr=0.5), params, x, t,
               epochs=5, batch_size=len(x), rng=0, progress=False)
    assert params["0"]["W"] is W
    assert h.loss[0] == pytest.approx(initial, rel=1e-12)
    assert len(h.loss) == len(h.accuracy) == 5
    assert h.accuracy[-1] == mf.accuracy(model, params, x, t)
    assert h.loss[-1] < h.loss[0]


def test_fit_with_validation_records_per_epoch():
    x, t = _classification(40)
    xv, tv = _classification(10, seed=1)
    model = mf.Sequential(mf.Linear(2, 2))
    params = model.init(onp.random.default_rng(4))
    h = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.SGD(lr=0.5), params, x, t,
               epochs=3, batch_size=8, rng=0, validation=(xv, tv), progress=False)
    assert len(h.loss) == len(h.accuracy) == len(h.val_loss) == len(h.val_accuracy) == 3
    expected = float(mf.SoftmaxCrossEntropy()(model(params, xv), tv))
    assert h.val_loss[-1] == pytest.approx(expected, rel=1e-12)
    assert h.val_accuracy[-1] == mf.accuracy(model, params, xv, tv)
    assert set(h.to_dict()) == {"loss", "accuracy", "val_loss", "val_accuracy",
                                "initial_loss", "final_loss", "best_epoch"}


def test_fit_with_one_hot_targets_records_accuracy():
    x, t = _classification()
    model = mf.Sequential(mf.Linear(2, 2))
    params = model.init(onp.random.default_rng(5))
    h = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.SGD(lr=0.5), params, x,
               onp.eye(2)[t], epochs=2, batch_size=6, rng=0, progress=False)
    assert len(h.accuracy) == 2
    assert h.accuracy[-1] == mf.accuracy(model, params, x, t)


def test_fit_is_deterministic_by_seed_and_shuffles():
    x, t = _regression(12)
    model = mf.Sequential(mf.Linear(3, 1))
    start = model.init(onp.random.default_rng(6))
    ends = []
    for seed in (7, 7, 8):
        params = _copy(start)
        mf.fit(model, mf.SumSquaresError(), mf.optim.SGD(lr=0.05), params, x, t, epochs=2,
               batch_size=3, rng=onp.random.default_rng(seed), progress=False)
        ends.append(params["0"]["W"])
    assert onp.array_equal(ends[0], ends[1])
    assert not onp.array_equal(ends[0], ends[2])  # another order of batches, another path


def test_zero_epochs_changes_nothing():
    x, t = _regression()
    model = mf.Sequential(mf.Linear(3, 1))
    params = model.init(onp.random.default_rng(0))
    before = _snapshot(params)
    h = mf.fit(model, mf.SumSquaresError(), mf.optim.SGD(), params, x, t, epochs=0,
               batch_size=2, rng=0, progress=False)
    assert h.loss == [] and _snapshot(params) == before


BAD_SETTINGS = [
    ({"epochs": -1}, "epochs"),
    ({"epochs": 1.5}, "epochs"),
    ({"epochs": True}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": -3}, "batch_size"),
    ({"batch_size": 2.0}, "batch_size"),
    ({"gradient": "finite"}, "gradient"),
]


@pytest.mark.parametrize("override, name", BAD_SETTINGS)
def test_nonsensical_settings_are_refused(override, name):
    x, t = _regression()
    model = mf.Sequential(mf.Linear(3, 1))
    params = model.init(onp.random.default_rng(0))
    before = _snapshot(params)
    kwargs = {"epochs": 2, "batch_size": 2, "rng": 0, "progress": False, **override}
    with pytest.raises(ValueError, match=name):
        mf.fit(model, mf.SumSquaresError(), mf.optim.SGD(), params, x, t, **kwargs)
    assert _snapshot(params) == before


class OnlyUpdate:
    """An optimizer of the user's own: ``update(params, grads)`` and nothing else."""

    def __init__(self):
        self.sgd = mf.optim.SGD(lr=0.1)

    def update(self, params, grads):
        self.sgd.update(params, grads)


def test_any_object_with_update_is_an_optimizer_for_fit():
    # fit steps it with value_and_grad then update: SGD's two calls, to the bit
    x, t = _regression()
    model = mf.Sequential(mf.Linear(3, 1))
    start = model.init(onp.random.default_rng(0))
    params = _copy(start)
    mf.fit(model, mf.SumSquaresError(), OnlyUpdate(), params, x, t, epochs=2, batch_size=4,
           rng=1, progress=False)
    want, opt = _copy(start), mf.optim.SGD(lr=0.1)
    def f(p, x, t):
        return mf.SumSquaresError()(model(p, x), t)

    rng = onp.random.default_rng(1)
    for _ in range(2):
        for idx in minibatches(len(x), 4, rng):
            opt.update(want, mf.grad(f)(want, x[idx], t[idx]))
    assert _snapshot(params) == _snapshot(want)


@pytest.mark.parametrize("optimizer, message", [(mf.optim.SGD, "instance such as SGD"),
                                                (None, "no method update"),
                                                (object(), "not an optimizer")])
def test_what_has_no_update_is_not_an_optimizer(optimizer, message):
    x, t = _regression()
    model = mf.Sequential(mf.Linear(3, 1))
    params = model.init(onp.random.default_rng(0))
    with pytest.raises(TypeError, match=message):
        mf.fit(model, mf.SumSquaresError(), optimizer, params, x, t, epochs=1, batch_size=2,
               rng=0, progress=False)


def _bad_data():
    x, t = _regression()
    x_nan = x.copy()
    x_nan[5, 1] = onp.nan
    t_inf = t.copy()
    t_inf[7, 0] = onp.inf
    return [
        ("x nan", x_nan, t, None, r"x.*NaN"),
        ("t inf", x, t_inf, None, r"t.*infinite"),
        ("validation nan", x, t, (x_nan, t), r"validation.*NaN"),
        ("empty", x[:0], t[:0], None, r"empty.*\(0, 3\)"),
        ("lengths", x, t[:5], None, r"\(8, 3\).*\(5, 1\)"),
    ]


@pytest.mark.parametrize("case", _bad_data(), ids=lambda c: c[0])
def test_bad_training_data_refused_before_any_param_change(case):
    _, x, t, validation, message = case
    model = mf.Sequential(mf.Linear(3, 1))
    params = model.init(onp.random.default_rng(0))
    before = _snapshot(params)
    with pytest.raises(ValueError, match=message):
        mf.fit(model, mf.SumSquaresError(), mf.optim.SGD(), params, x, t, epochs=1,
               batch_size=2, rng=0, validation=validation, progress=False)
    assert _snapshot(params) == before


class TurnsBad(mf.Loss):
    """Sum-squares error that becomes `bad` (NaN or inf) from its `at`-th call on."""

    def __init__(self, at, bad):
        self.at, self.bad, self.calls = at, bad, 0

    def forward(self, y, t):
        self.calls += 1
        value = mf.functions.sum_squares_error(y, t)
        return value + self.bad if self.calls >= self.at else value


@pytest.mark.parametrize("bad", [onp.nan, onp.inf, -onp.inf])
def test_loss_turning_non_finite_stops_with_epoch_and_batch(bad):
    # 8 samples, batches of 4: calls 1, 2 are epoch 1; call 3 is epoch 2, batch 1
    x, t = _regression()
    model = mf.Sequential(mf.Linear(3, 1))
    start = model.init(onp.random.default_rng(0))
    params = _copy(start)
    with pytest.raises(FloatingPointError, match=r"epoch 2, batch 1\b"):
        mf.fit(model, TurnsBad(3, bad), mf.optim.SGD(lr=0.1), params, x, t, epochs=3,
               batch_size=4, rng=onp.random.default_rng(9), progress=False)
    # params keep their last finite values: those after exactly one clean epoch (by the same
    # generic path: a loss that never turns bad)
    clean = _copy(start)
    mf.fit(model, TurnsBad(onp.inf, bad), mf.optim.SGD(lr=0.1), clean, x, t, epochs=1,
           batch_size=4, rng=onp.random.default_rng(9), progress=False)
    assert _snapshot(params) == _snapshot(clean)


def test_diverging_training_stops_with_finite_params():
    # lr far too large: the loss grows by orders of magnitude each step until it overflows
    x, t = _regression()
    model = mf.Sequential(mf.Linear(3, 1))
    params = model.init(onp.random.default_rng(0))
    with onp.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(FloatingPointError, match=r"epoch \d+, batch \d+"):
            mf.fit(model, mf.SumSquaresError(), mf.optim.SGD(lr=1e3), params, x, t,
                   epochs=1000, batch_size=8, rng=0, progress=False)
    assert all(onp.all(onp.isfinite(a)) for _, a in leaves(params))


class SqrtLoss(mf.Loss):
    """Finite value 0, infinite gradient: sqrt at 0."""

    def forward(self, y, t):
        return mf.np.sqrt(mf.np.sum(y * 0.0))


def test_non_finite_gradient_stops_with_params_unchanged():
    x, t = _regression()
    model = mf.Sequential(mf.Linear(3, 1))
    params = model.init(onp.random.default_rng(0))
    before = _snapshot(params)
    with onp.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1 .*not finite"):
            mf.fit(model, SqrtLoss(), mf.optim.SGD(), params, x, t, epochs=1, batch_size=4,
                   rng=0, progress=False)
    assert _snapshot(params) == before


# --- accuracy ---------------------------------------------------------------------------------


def test_accuracy_with_labels_and_one_hot():
    model = mf.Sequential(mf.Identity())
    y = onp.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    labels = onp.array([0, 1, 1, 0])  # the third is wrong: 3 of 4
    assert mf.accuracy(model, {}, y, labels) == 0.75
    assert mf.accuracy(model, {}, y, onp.eye(3)[labels]) == 0.75
    assert isinstance(mf.accuracy(model, {}, y, labels), float)


def test_accuracy_errors():
    model = mf.Sequential(mf.Identity())
    y = onp.zeros((4, 3))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3,\)"):
        mf.accuracy(model, {}, y, onp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="shape"):
        mf.accuracy(model, {}, y[:0], onp.array([], dtype=int))
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        mf.accuracy(model, {}, y, onp.zeros((4, 2)))


def test_whole_number_float_labels_record_accuracy():
    rng = onp.random.default_rng(0)
    x = rng.standard_normal((32, 2))
    t = (x[:, 0] > 0).astype(float)  # 0.0 / 1.0: labels, checked as labels by the preflight
    model = mf.Sequential(mf.Linear(2, 2))
    h = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.SGD(lr=0.5), model.init(rng), x, t,
               epochs=2, batch_size=8, rng=rng, progress=False)
    assert len(h.accuracy) == 2

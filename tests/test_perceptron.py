"""The perceptron: the classic rule by hand, logic gates, XOR's failure and a two-layer fix."""

import numpy as onp
import pytest

import minifw as mf

X = onp.array([[0, 0], [1, 0], [0, 1], [1, 1]])
GATES = {
    "AND": [0, 0, 0, 1],
    "OR": [0, 1, 1, 1],
    "NAND": [1, 1, 1, 0],
}
XOR = onp.array([0, 1, 1, 0])


def test_zero_initialised_with_w_shape():
    p = mf.Perceptron(3)
    assert p.w.shape == (3,) and onp.all(p.w == 0) and p.b == 0
    # w @ x + b = 0 is not > 0: every prediction is 0 before training
    assert p.predict(onp.ones((2, 3))).tolist() == [0, 0]


def test_first_two_epochs_by_hand_on_and():
    # lr 0.2, samples in order (0,0) (1,0) (0,1) (1,1), targets 0 0 0 1.
    # Epoch 1: only (1,1) is wrong (0 > 0 is false): w = (0.2, 0.2), b = 0.2.
    p = mf.Perceptron(2, lr=0.2, epochs=1).fit(X, GATES["AND"])
    assert p.w.tolist() == [0.2, 0.2] and p.b == 0.2
    # Epoch 2: (0,0) -> 0.2 > 0, wrong: b = 0. (1,0) -> 0.2, wrong: w = (0, 0.2), b = -0.2.
    # (0,1) -> 0.2 - 0.2 = 0, not > 0: right. (1,1) -> 0, wrong: w = (0.2, 0.4), b = 0.
    p = mf.Perceptron(2, lr=0.2, epochs=2).fit(X, GATES["AND"])
    assert p.w.tolist() == pytest.approx([0.2, 0.4], abs=1e-15)
    assert p.b == pytest.approx(0.0, abs=1e-15)


def test_sample_order_matters():
    # the same data in another order ends elsewhere after one epoch: one sample at a time
    order = [3, 0, 1, 2]
    p = mf.Perceptron(2, lr=0.2, epochs=1).fit(X[order], onp.array(GATES["AND"])[order])
    # (1,1) first: w = (0.2, 0.2), b = 0.2; then (0,0) -> 0.2, wrong: b = 0;
    # (1,0) -> 0.2, wrong: w = (0, 0.2), b = -0.2; (0,1) -> 0, right.
    assert p.w.tolist() == pytest.approx([0.0, 0.2], abs=1e-15)
    assert p.b == pytest.approx(-0.2, abs=1e-15)


@pytest.mark.parametrize("gate", sorted(GATES))
def test_learns_linearly_separable_gates(gate):
    p = mf.Perceptron(2).fit(X, onp.array(GATES[gate]))
    pred = p.predict(X)
    assert pred.tolist() == GATES[gate]
    assert pred.dtype.kind == "i"
    assert p.errors_[-1] == 0


def test_cannot_learn_xor():
    p = mf.Perceptron(2, epochs=200).fit(X, XOR)
    # no line separates XOR: at least one of the four points is always wrong
    assert (p.predict(X) != XOR).sum() >= 1
    assert all(e > 0 for e in p.errors_) and len(p.errors_) == 200


def test_two_layer_network_learns_xor_with_autograd():
    model = mf.Sequential(mf.Linear(2, 8), mf.Tanh(), mf.Linear(8, 2))
    rng = onp.random.default_rng(0)
    params = model.init(rng)
    x = X.astype(float)
    history = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.Adam(lr=0.05), params, x, XOR,
                     epochs=300, batch_size=4, rng=rng, progress=False)
    assert mf.accuracy(model, params, x, XOR) == 1.0
    assert history.loss[-1] < 0.05 < history.loss[0]


def test_predict_single_sample_and_errors():
    p = mf.Perceptron(2).fit(X, onp.array(GATES["OR"]))
    assert p.predict(onp.array([1, 1])).tolist() == [1]
    with pytest.raises(ValueError, match=r"\(n, 2\).*\(4, 3\)"):
        p.predict(onp.ones((4, 3)))
    with pytest.raises(ValueError, match="0 or 1"):
        mf.Perceptron(2).fit(X, onp.array([0, 2, 1, 0]))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        mf.Perceptron(2).fit(X, onp.array([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        mf.Perceptron(2).fit(onp.array([[0.0, onp.nan]]), onp.array([1]))
    with pytest.raises(ValueError, match="n_inputs"):
        mf.Perceptron(0)

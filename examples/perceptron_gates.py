"""The perceptron learns AND, OR and NAND; it cannot learn XOR. A two-layer network can.

AND, OR and NAND are linearly separable: one line splits the 0s from the 1s, and the
perceptron rule finds it. XOR is not, so the perceptron keeps making mistakes whatever its
weights. Two layers with a nonlinearity in between, trained by gradient descent with autograd
gradients, bend the boundary and learn XOR.

Run: python examples/perceptron_gates.py
"""

import numpy as onp

import minifw as mf

X = onp.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
GATES = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "NAND": [1, 1, 1, 0], "XOR": [0, 1, 1, 0]}


def main() -> None:
    for name, targets in GATES.items():
        t = onp.array(targets)
        perceptron = mf.Perceptron(2, lr=0.2, epochs=20).fit(X, t)
        y = perceptron.predict(X)
        verdict = "learned" if onp.array_equal(y, t) else "FAILS: not linearly separable"
        print(f"perceptron {name:<4}: predicts {y.tolist()}, target {targets}: {verdict} "
              f"(w = {perceptron.w.round(2).tolist()}, b = {perceptron.b:.2f})")

    # XOR with two layers: 2 -> 4 tanh units -> 2 classes, gradients from autograd.
    rng = onp.random.default_rng(0)
    model = mf.Sequential(mf.Linear(2, 4), mf.Tanh(), mf.Linear(4, 2))
    params = model.init(rng)
    t = onp.array(GATES["XOR"])
    history = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.Adam(lr=0.05), params, X, t,
                     epochs=300, batch_size=4, rng=rng, gradient="autograd", progress=False)
    y = model(params, X).argmax(axis=1)
    verdict = "learned" if onp.array_equal(y, t) else "failed"
    print(f"two-layer XOR  : predicts {y.tolist()}, target {GATES['XOR']}: {verdict} "
          f"(final loss {history.loss[-1]:.4f})")


if __name__ == "__main__":
    main()

"""A two-layer network on real handwritten digits, above 95% test accuracy in about a second.

Why these digits: the 8x8 digits (1797 images, 10 classes) are shipped inside scikit-learn,
so there is nothing to download and the example runs offline, and they are real handwriting
(scans of 43 people's digits, from the UCI repository), small enough to train in a second on
a laptop's CPU. MNIST works the same way: ``minifw.datasets.load_mnist`` (it downloads).

The network is the book's TwoLayerNet: Linear -> ReLU -> Linear, softmax cross-entropy on the
logits, gradients from autograd, trained with Adam on mini-batches.

Run: python examples/two_layer_digits.py
"""

import time

import numpy as onp

import minifw as mf
from minifw.datasets import load_digits


def main() -> None:
    (x_train, t_train), (x_test, t_test) = load_digits()  # pixels in [0, 1], labels 0..9
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of "
          f"{x_train.shape[1]} pixels")

    rng = onp.random.default_rng(0)
    model = mf.Sequential(mf.Linear(64, 64, weight_init="he"), mf.ReLU(), mf.Linear(64, 10))
    params = model.init(rng)

    start = time.perf_counter()
    history = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.Adam(lr=0.01), params,
                     x_train, t_train, epochs=20, batch_size=32, rng=rng, progress=False)
    seconds = time.perf_counter() - start

    print(f"final training loss: {history.loss[-1]:.4f}")
    print(f"train accuracy: {mf.accuracy(model, params, x_train, t_train):.4f}")
    print(f"test accuracy: {mf.accuracy(model, params, x_test, t_test):.4f}")
    print(f"training time: {seconds:.2f} s (20 epochs)")


if __name__ == "__main__":
    main()

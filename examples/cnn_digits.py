"""A small convolutional network on the 8x8 digits: trained, then its gradients checked.

The network is the book's SimpleConvNet (chapter 7) sized for 8x8 images: a 3x3 convolution
with padding 1, ReLU, 2x2 max pooling, a hidden fully connected layer, and the output logits,
with softmax cross-entropy. Adam with a cosine learning-rate schedule trains it; then the
gradient checker holds autograd (the layers' hand-written backward passes: col2im, max
pooling's routing) against central differences on a few images, at the trained weights
(at the initial ones, every bias is 0 and the blank border of a digit puts the ReLUs after
the convolution exactly at their kink: checked, but only as kinks).

Run: python examples/cnn_digits.py
"""

import time

import numpy as onp

import minifw as mf
from minifw.datasets import load_digits


def main() -> None:
    (x_train, t_train), (x_test, t_test) = load_digits(flatten=False)  # (N, 1, 8, 8)
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of shape "
          f"{x_train.shape[1:]}")

    rng = onp.random.default_rng(0)
    model = mf.Sequential(
        mf.Conv2D(1, 16, 3, padding=1, weight_init="he"), mf.ReLU(), mf.MaxPool2D(2),
        mf.Flatten(), mf.Linear(16 * 4 * 4, 64, weight_init="he"), mf.ReLU(),
        mf.Linear(64, 10),
    )
    params = model.init(rng)
    loss = mf.SoftmaxCrossEntropy()

    epochs, batch_size = 12, 32
    steps = epochs * -(-len(x_train) // batch_size)
    optimizer = mf.optim.Adam(lr=mf.optim.CosineDecay(0.01, total_steps=steps))
    start = time.perf_counter()
    history = mf.fit(model, loss, optimizer, params, x_train, t_train, epochs=epochs,
                     batch_size=batch_size, rng=rng, progress=False)
    seconds = time.perf_counter() - start

    print(f"final training loss: {history.loss[-1]:.4f}")
    print(f"train accuracy: {mf.accuracy(model, params, x_train, t_train):.4f}")
    print(f"test accuracy: {mf.accuracy(model, params, x_test, t_test):.4f}")
    print(f"training time: {seconds:.2f} s ({epochs} epochs)")

    def f(p, x, t):
        return loss(model(p, x), t)

    report = mf.check_grads(f, params, x_train[:8], t_train[:8])
    print(report)
    print(f"gradient check: {'ok' if report.ok else 'FAILED'}")


if __name__ == "__main__":
    main()

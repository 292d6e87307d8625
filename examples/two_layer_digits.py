"""A two-layer network on real handwritten digits, above 95% test accuracy in about a second,
saved as a model file, reloaded and evaluated.

Why these digits: the 8x8 digits (1797 images, 10 classes) ship inside minifw, so there is
nothing to download and the example runs offline, and they are real handwriting (scans of
43 people's digits: the UCI "Optical Recognition of Handwritten Digits" test set), small
enough to train in a second on a laptop's CPU. MNIST works the same way:
``minifw.datasets.load_mnist`` (it downloads).

The network is the book's TwoLayerNet: Linear -> ReLU -> Linear, softmax cross-entropy on the
logits, gradients from autograd, trained with Adam on mini-batches. The last 200 training
images are held out to choose the best epoch, whose parameters are saved with the
architecture (``mf.save_model``) and reloaded (``mf.load_model``) for the test.

Run: python examples/two_layer_digits.py
"""

import os
import tempfile
import time

import numpy as onp

import minifw as mf
from minifw.datasets import load_digits


def main() -> None:
    (x_train, t_train), (x_test, t_test) = load_digits()  # pixels in [0, 1], labels 0..9
    x_val, t_val = x_train[-200:], t_train[-200:]  # held out to choose the best epoch
    x_train, t_train = x_train[:-200], t_train[:-200]
    print(f"digits: {len(x_train)} training, {len(x_val)} validation and {len(x_test)} test "
          f"images of {x_train.shape[1]} pixels")

    rng = onp.random.default_rng(0)
    model = mf.Sequential(mf.Linear(64, 64), mf.ReLU(), mf.Linear(64, 10))
    params = model.init(rng)
    print(mf.summary(model, x_train[:1], params))

    start = time.perf_counter()
    history = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.Adam(lr=0.01), params,
                     x_train, t_train, epochs=20, batch_size=32, rng=rng,
                     validation=(x_val, t_val), progress=False)
    seconds = time.perf_counter() - start
    print(f"training loss: {history.initial_loss:.4f} before training, "
          f"{history.final_loss:.4f} after")
    print(f"best epoch: {history.best_epoch} (validation loss "
          f"{history.val_loss[history.best_epoch - 1]:.4f})")

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "digits.npz")
        mf.save_model(path, model, history.best_params, info={"epoch": history.best_epoch})
        model, params = mf.load_model(path)
    print(f"train accuracy: {mf.accuracy(model, params, x_train, t_train):.4f}")
    print(f"test accuracy: {mf.accuracy(model, params, x_test, t_test):.4f}")
    print(f"training time: {seconds:.2f} s (20 epochs)")


if __name__ == "__main__":
    main()

"""``fit`` with Adam on the digits against the same training written by hand.

The hand loop is what a reader of the book writes: the two-layer network's hand-written
forward and backward passes (``baselines.HandNet``), the book's Adam (``baselines.HandRule``),
a permutation of the samples per epoch from the same kind of generator, and after each epoch
the two figures ``fit`` records (the mean training loss of the epoch's steps and the
accuracy on the training set). ``fit`` also checks its data and steps, keeps the best
epoch's parameters and measures the loss before and after.
"""

from __future__ import annotations

from typing import Any

import numpy as onp
from baselines import HandNet, HandRule
from run import Figure, Mode, interleaved, median

import minifw as mf
from minifw.datasets import load_digits

EPOCHS, BATCH, HIDDEN = 20, 32, 50


def hand_fit(params: Any, x: onp.ndarray, t: onp.ndarray, rng: onp.random.Generator
             ) -> list[float]:
    """The hand loop: ``EPOCHS`` epochs of Adam; returns the accuracy after each."""
    net, rule = HandNet(params), HandRule("adam", lr=0.001)
    accuracies = []
    for _ in range(EPOCHS):
        order, total = rng.permutation(len(x)), 0.0
        for start in range(0, len(x), BATCH):
            idx = order[start:start + BATCH]
            loss, grads = net.gradient(x[idx], t[idx])
            rule.update(net.arrays(), grads)
            total += loss * len(idx)
        scores = net._forward(x)[1][-1]
        accuracies.append(float(onp.mean(scores.argmax(axis=1) == t)))
    return accuracies


def fit_figure(mode: Mode) -> Figure:
    """``fit(..., optimizer=Adam)`` on the digits, 64-50-10: minifw / the hand loop."""
    fig = Figure(f"fit with Adam on the digits, 64-{HIDDEN}-10, {EPOCHS} epochs, batch {BATCH}: "
                 "minifw / the same loop by hand", "<= 1.2", "minifw", "hand")
    (x, t), _ = load_digits()
    epochs = EPOCHS if mode.name != "smoke" else 1
    model = mf.Sequential(mf.Linear(64, HIDDEN), mf.ReLU(), mf.Linear(HIDDEN, 10))
    start = model.init(onp.random.default_rng(0))

    def ours() -> Any:
        params = {k: {n: a.copy() for n, a in v.items()} for k, v in start.items()}
        return mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.Adam(lr=0.001), params, x, t,
                      epochs=epochs, batch_size=BATCH, rng=onp.random.default_rng(1),
                      progress=False)

    times = interleaved({"minifw": ours,
                         "hand": lambda: hand_fit(start, x, t, onp.random.default_rng(1))},
                        max(2, mode.slow_rounds), 1, warmup=1)
    fig.minifw_s, fig.peer_s = median(times["minifw"]), median(times["hand"])
    fig.note = (f"{len(x)} training images; final training accuracy "
                f"{ours().accuracy[-1]:.3f} (minifw)")
    return fig

"""The perceptron (Rosenblatt 1958), the first model of "Deep Learning from Scratch".

``y = 1 if w @ x + b > 0 else 0``; on each sample in order, ``w += lr * (t - y) * x`` and
``b += lr * (t - y)``. It learns AND, OR and NAND, which are linearly separable, and cannot
learn XOR, which is not (a two-layer network can: see ``examples/``).

>>> import numpy as onp
>>> X = onp.array([[0, 0], [1, 0], [0, 1], [1, 1]])
>>> Perceptron(2).fit(X, onp.array([0, 0, 0, 1])).predict(X)
array([0, 0, 0, 1])
"""

from __future__ import annotations

from typing import Any

import numpy as onp


class Perceptron:
    """A single-layer perceptron with the classic update rule, zero-initialised.

    Arguments:
        n_inputs: the number of inputs.
        lr: the learning rate.
        epochs: how many passes over the data ``fit`` makes (it stops early once a pass makes
            no mistake).

    Attributes ``w`` (shape ``(n_inputs,)``) and ``b``; ``errors_`` counts the mistakes per pass.
    """

    def __init__(self, n_inputs: int, lr: float = 0.2, epochs: int = 10):
        whole = isinstance(n_inputs, (int, onp.integer)) and not isinstance(n_inputs, bool)
        if not whole or n_inputs < 1:
            raise ValueError(f"n_inputs must be a whole number >= 1, got {n_inputs!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, onp.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a whole number >= 0, got {epochs!r}")
        real = isinstance(lr, (int, float, onp.integer, onp.floating)) and not isinstance(
            lr, (bool, onp.bool_))
        if not (real and onp.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        self.n_inputs, self.lr, self.epochs = int(n_inputs), float(lr), int(epochs)
        self.w = onp.zeros(self.n_inputs)
        self.b = 0.0
        self.errors_: list[int] = []

    def _inputs(self, X: Any) -> onp.ndarray:
        X = onp.asarray(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"Perceptron: X must be numeric, got dtype {X.dtype}")
        X = X.astype(onp.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(
                f"Perceptron({self.n_inputs}) expects X of shape (n, {self.n_inputs}), "
                f"got {X.shape}"
            )
        if not onp.all(onp.isfinite(X)):
            raise ValueError("Perceptron: X contains NaN or infinite values")
        return X

    def fit(self, X: Any, y: Any) -> Perceptron:
        """Train on samples ``X`` (shape ``(n, n_inputs)``) with targets ``y`` in {0, 1}.

        Raises ``ValueError`` for bad data, and if the weights or ``w @ x`` overflow (inputs
        near 1e300); then ``w``, ``b`` and ``errors_`` are left as they were.
        """
        X = self._inputs(X)
        t = onp.asarray(y)
        if t.shape != (len(X),):
            raise ValueError(f"Perceptron: y must have shape ({len(X)},), got {t.shape}")
        if len(X) == 0:
            raise ValueError("Perceptron: cannot fit an empty data set")
        if t.dtype.kind not in "biuf" or not onp.all((t == 0) | (t == 1)):
            raise ValueError(f"Perceptron: targets must be 0 or 1, got {onp.unique(t)}")
        w, b, errors = self.w.copy(), self.b, []
        with onp.errstate(over="ignore", invalid="ignore"):  # overflow is refused below
            for epoch in range(1, self.epochs + 1):
                mistakes = 0
                for x_i, t_i in zip(X, t):
                    score = x_i @ w + b
                    if score != score:  # inf - inf: no sign to decide by
                        raise ValueError(
                            f"Perceptron: w @ x + b overflows float64 (inf - inf) in epoch "
                            f"{epoch} (largest |x| {float(onp.abs(X).max()):.3g}); scale X down")
                    delta = self.lr * (float(t_i) - int(score > 0))
                    w += delta * x_i
                    b += delta
                    mistakes += delta != 0
                if not (onp.all(onp.isfinite(w)) and onp.isfinite(b)):
                    raise ValueError(f"Perceptron: the weights overflow float64 in epoch {epoch} "
                                     f"(largest |x| {float(onp.abs(X).max()):.3g}); scale X down")
                errors.append(int(mistakes))
                if mistakes == 0:
                    break
        self.w, self.b, self.errors_ = w, b, errors
        return self

    def predict(self, X: Any) -> onp.ndarray:
        """``1`` where ``w @ x + b > 0``, else ``0``, for each row of ``X``."""
        X = self._inputs(X)
        with onp.errstate(over="ignore", invalid="ignore"):  # +-inf keeps the sign
            score = X @ self.w + self.b
        if onp.isnan(score).any():
            raise ValueError("Perceptron: w @ x + b overflows float64 (inf - inf) for a row of "
                             f"X (largest |x| {float(onp.abs(X).max()):.3g}); scale X down")
        return (score > 0).astype(onp.int64)

    def __repr__(self) -> str:
        return f"Perceptron(n_inputs={self.n_inputs}, lr={self.lr}, epochs={self.epochs})"

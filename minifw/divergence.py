"""Divergence: a descent that ends higher than it began, and the warning that says so.

Gradient descent with a learning rate too large overshoots the minimum by more each step, and
the function it minimises grows instead of shrinking. The book shows it on purpose
(``gradient_descent(function_2, init_x, lr=10.0)``); a training run does it by accident
(``minifw train --optimizer sgd --lr 1000``). Either way the numbers may stay finite, so
nothing fails: :class:`DivergenceWarning` says what happened and which rate to lower.

>>> went_uphill(2.3, 1.2e8), went_uphill(2.3, 0.05), went_uphill(1.0, 1.0 + 1e-15)
(True, False, False)
"""

from __future__ import annotations

import math

#: How much above its start a value may end and still count as not having grown: rounding,
#: for a function evaluated exactly (gradient descent on ``f``).
RTOL = 1e-9

#: The same for training, whose steps follow noisy mini-batches: a loss that ends a little
#: higher is noise, a rate too large multiplies it; training diverged when its loss on the
#: training data grew by more than its own size (more than doubled, for a loss above 1).
TRAINING_RTOL = 1.0


class DivergenceWarning(RuntimeWarning):
    """A descent ended above where it began: the learning rate is too large.

    ``minifw.fit`` warns so when the loss on the training data ends more than
    :data:`TRAINING_RTOL` times its size above where it began;
    ``minifw.numerical.gradient_descent`` when ``f`` at its last point exceeds ``f`` at
    ``init_x``. Silence it as any warning:
    ``warnings.simplefilter("ignore", mf.DivergenceWarning)``.
    """


def went_uphill(start: float, end: float, rtol: float = RTOL) -> bool:
    """Whether a descent from the value ``start`` to ``end`` went up by more than
    ``rtol * max(1, |start|)``.

    A non-finite ``end`` after a finite ``start`` went up too.

    >>> went_uphill(1.0, float("inf")), went_uphill(-5.0, -4.0), went_uphill(2.4, 2.9, 1.0)
    (True, True, False)
    """
    if not math.isfinite(end):
        return math.isfinite(start) or end != start
    return end - start > rtol * max(1.0, abs(start))

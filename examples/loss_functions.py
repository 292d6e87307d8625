"""The book's loss examples: sum of squares and cross-entropy for two network outputs.

The target is class 2 (one-hot). The first output puts 0.6 on class 2, the second puts 0.6 on
class 7: both losses are smaller for the first, the better answer.

Run: python examples/loss_functions.py
"""

import numpy as onp

from minifw import functions as F

t = onp.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])  # the correct class is 2
outputs = {
    "2 is most likely": onp.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]),
    "7 is most likely": onp.array([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]),
}


def main() -> None:
    for name, y in outputs.items():
        sse = float(F.sum_squares_error(y, t))
        cee = float(F.cross_entropy_error(y, t))
        # (the sum of squares is 0.0975 up to rounding: 0.09750000000000003, as in the book)
        print(f"{name}: sum_squares_error = {round(sse, 12)}, cross_entropy_error = {cee!r}")
    # Labels work as well as one-hot targets, and a batch gives the mean over its samples.
    batch = onp.stack(list(outputs.values()))
    print(f"batch of both, labels [2, 2]: cross_entropy_error = "
          f"{float(F.cross_entropy_error(batch, onp.array([2, 2]))):.6f}")


if __name__ == "__main__":
    main()

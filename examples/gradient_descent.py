"""Gradient descent on f(x0, x1) = x0**2 + x1**2 from (-3, 4), as in the book, chapter 4.

The gradient is numerical (central differences); each step is x -= lr * grad f(x). With
lr = 0.1 every step multiplies x by 1 - 2 * 0.1 = 0.8, so x heads straight for the minimum at
(0, 0): (-2.4, 3.2) after one step, (-1.92, 2.56) after two. With the book's lr = 10.0 every
step multiplies x by -19: the descent diverges, and minifw says so with a DivergenceWarning
naming lr (it stops once x is so large that the step h = 1e-4 no longer changes it).

Run: python examples/gradient_descent.py
"""

import warnings

import numpy as onp

import minifw as mf
from minifw import numerical as N


def function_2(x: onp.ndarray) -> float:
    return x[0] ** 2 + x[1] ** 2


def main() -> None:
    init_x = onp.array([-3.0, 4.0])
    final, path = N.gradient_descent(function_2, init_x, lr=0.1, step_num=100, return_path=True)
    print("gradient descent on x0**2 + x1**2 from (-3, 4), lr = 0.1, 100 steps")
    for step, x in enumerate(path[:4]):
        print(f"  step {step}: ({x[0]:.4g}, {x[1]:.4g})")
    print(f"  final point: ({final[0]:.3e}, {final[1]:.3e})")
    print(f"  f at the final point: {function_2(final):.3e}")

    # Too large a rate overshoots farther every step (x *= 1 - 2 lr = -19 here); too small a
    # rate barely moves.
    for lr in (10.0, 1e-10):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", mf.DivergenceWarning)
            x = N.gradient_descent(function_2, init_x, lr=lr, step_num=100)
        print(f"  lr = {lr:g}: final point ({x[0]:.4g}, {x[1]:.4g})")
        for warning in caught:
            print(f"    {type(warning.message).__name__}: {warning.message}")


if __name__ == "__main__":
    main()

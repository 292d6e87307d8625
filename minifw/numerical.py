"""Numerical differentiation by central differences, as in "Deep Learning from Scratch", ch. 4.

``(f(x + h) - f(x - h)) / (2h)`` has truncation error ``O(h**2)`` (the ``h**2 f'''/6`` term
of the Taylor series) and rounding error ``O(eps |f| / h)``. The book's ``h = 1e-4`` is the
default of the functions here; :func:`default_step` gives the step that balances the two
errors for a dtype, used by :func:`minifw.grad` and the gradient checker.

The caller's arrays are left exactly as they were. A writeable float array is perturbed in
place, one element at a time, and restored bit for bit in a ``finally`` (so the book's style,
``f = lambda W: net.loss(x, t)`` closing over the very array being differentiated, works);
any other input (integers, lists, read-only arrays) is first copied to float64.

>>> import numpy as onp
>>> numerical_gradient(lambda x: x[0] ** 2 + x[1] ** 2, onp.array([3.0, 4.0])).round(6)
array([6., 8.])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as onp
from autograd.tracer import getval

from minifw.tree import Tree, copy_float, leaves, tree_map


def default_step(dtype: Any) -> float:
    """The central-difference step for ``dtype``: ``eps ** (1/3)``.

    Truncation error ``h**2 |f'''| / 6`` plus rounding error ``eps |f| / h`` is smallest near
    ``h = (3 eps)**(1/3)`` for unit-sized ``f`` and ``f'''``; ``eps**(1/3)`` is that, rounded
    down. float64: 6.1e-6 (total error about 4e-11); float32: 4.9e-3 (about 2.4e-5).

    >>> round(default_step("float64"), 8), round(default_step("float32"), 5)
    (6.06e-06, 0.00492)
    """
    return float(onp.finfo(dtype).eps) ** (1.0 / 3.0)


def scalar_value(value: Any, what: str = "f") -> Any:
    """Return ``value`` if it is a real scalar (any 1-element array), else raise.

    >>> float(scalar_value(onp.array([2.5])))
    2.5
    """
    v = getval(value)
    if onp.size(v) != 1:
        raise ValueError(f"{what} must return a scalar, got shape {onp.shape(v)}")
    v = onp.asarray(v)
    if v.dtype.kind not in "fiub":
        raise TypeError(f"{what} must return a real number, got dtype {v.dtype}")
    return v.reshape(()).item() if v.dtype.kind != "f" else v.reshape(())[()]


def evaluate_at(f: Callable[[Tree], Any], tree: Tree, a: onp.ndarray, idx: Any, value: Any,
                scalar: bool = True) -> Any:
    """``f(tree)`` with ``a[idx]`` (a leaf of ``tree``) set to ``value``, restored afterwards.

    ``f`` must return a scalar unless ``scalar`` is false.

    The original element is put back bit for bit in a ``finally``, also when ``f`` raises.

    >>> x = onp.array([1.0, 2.0])
    >>> float(evaluate_at(lambda t: t.sum(), x, x, 0, 10.0)), x
    (12.0, array([1., 2.]))
    """
    old = a[idx].copy()
    try:
        a[idx] = value
        return scalar_value(f(tree)) if scalar else f(tree)
    finally:
        a[idx] = old


def work_tree(x: Tree) -> Tree:
    """``x`` itself if every leaf is a writeable float ndarray, else a float64 copy of it."""
    in_place = all(
        isinstance(a, onp.ndarray) and a.dtype.kind == "f" and a.flags.writeable
        for _, a in leaves(x)
    )
    return x if in_place else copy_float(x)


def central_differences(
    f: Callable[[Tree], Any], x: Tree, h: float, relative: bool = False
) -> Tree:
    """Central differences of ``f`` at every element of every leaf of ``x``.

    Arguments:
        f: a scalar function of one tree.
        x: an array or a nested dict of arrays (left as it was).
        h: the step.
        relative: use the step ``h * max(1, |x_i|)`` for element ``i``, so that ``x_i + h``
            differs from ``x_i`` in about the same number of bits whatever the size of ``x_i``.

    Returns:
        The gradient estimate, with the structure of ``x``.

    The quotient divides by the step actually taken, ``(x_i + h) - (x_i - h)`` in floating
    point, which removes the representation error of ``x_i +- h``.

    >>> central_differences(lambda x: (x ** 3).sum(), onp.array([1.0]), 1e-4).round(6)
    array([3.])
    """
    work = work_tree(x)
    grads = tree_map(onp.zeros_like, work)
    for (_, a), (_, g) in zip(leaves(work), leaves(grads)):
        for idx in onp.ndindex(a.shape):
            x0 = a[idx]
            step = h * max(1.0, abs(float(x0))) if relative else h
            up, down = (x0 + a.dtype.type(step)), (x0 - a.dtype.type(step))
            f_up = evaluate_at(f, work, a, idx, up)
            f_down = evaluate_at(f, work, a, idx, down)
            g[idx] = (f_up - f_down) / (float(up) - float(down))
    return grads


def numerical_diff(f: Callable[[Any], Any], x: Any, h: float = 1e-4) -> Any:
    """The derivative of a function of one number by the central difference.

    Arguments:
        f: a function of one real number.
        x: the point.
        h: the step (the book's ``1e-4``).

    Returns:
        ``(f(x + h) - f(x - h)) / (2h)``.

    >>> round(numerical_diff(lambda x: 0.01 * x ** 2 + 0.1 * x, 5.0), 10)
    0.2
    """
    return (f(x + h) - f(x - h)) / (2 * h)


def numerical_gradient(f: Callable[[Tree], Any], x: Tree, h: float = 1e-4) -> Tree:
    """The gradient of a scalar function by central differences, element by element.

    Arguments:
        f: a scalar function of ``x``.
        x: an array of any shape, or a nested dict of arrays; left exactly as it was.
            Integer arrays are computed in float64, never truncated.
        h: the step (the book's ``1e-4``).

    Returns:
        The gradient, with the structure of ``x`` (float arrays).

    >>> numerical_gradient(lambda p: (p["w"] ** 2).sum(), {"w": onp.array([1, 2])})["w"].round(6)
    array([2., 4.])
    """
    return central_differences(f, x, h)


def gradient_descent(
    f: Callable[[onp.ndarray], Any],
    init_x: Any,
    lr: float = 0.01,
    step_num: int = 100,
    *,
    return_path: bool = False,
) -> Any:
    """Gradient descent with the numerical gradient: ``x -= lr * grad`` for ``step_num`` steps.

    Arguments:
        f: a scalar function of an array.
        init_x: the starting point (not modified).
        lr: the learning rate.
        step_num: the number of steps.
        return_path: also return the points visited, ``init_x`` first (shape
            ``(step_num + 1, *x.shape)``), e.g. to plot them.

    Returns:
        The final point, or ``(final point, path)`` with ``return_path=True``.

    >>> gradient_descent(lambda x: (x ** 2).sum(), [-3.0, 4.0], lr=0.1, step_num=1).round(6)
    array([-2.4,  3.2])
    """
    if isinstance(step_num, bool) or not isinstance(step_num, (int, onp.integer)) or step_num < 0:
        raise ValueError(f"step_num must be a whole number >= 0, got {step_num!r}")
    x = copy_float(init_x)
    path = [x.copy()]
    for _ in range(int(step_num)):
        x = x - lr * numerical_gradient(f, x)
        path.append(x.copy())
    return (x, onp.stack(path)) if return_path else x

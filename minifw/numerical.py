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

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as onp
from autograd.tracer import getval

from minifw.divergence import DivergenceWarning, went_uphill
from minifw.functions import NonFiniteError, check_finite, real_number
from minifw.tree import Tree, copy_float, leaves, tree_map

#: Below these, ``(f_up - f_down) / step`` of float64 values cannot overflow (the common case
#: skips ``numpy.errstate``, which costs more than a small ``f``).
_SAFE_F, _SAFE_STEP = 1e299, 1e-8


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
    if type(v) is onp.float64 or type(v) is onp.float32:  # what a loss returns
        return v
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


def work_tree(x: Tree, integers: bool = True) -> Tree:
    """``x`` itself if every leaf is a writeable float ndarray (or, without ``integers``, an
    integer one), else a copy: floats keep their dtype, integers become float64 unless they
    are constants (``integers=False``)."""
    def movable(a: Any) -> bool:
        return isinstance(a, onp.ndarray) and (a.dtype.kind == "f" and a.flags.writeable
                                                or not integers and a.dtype.kind in "biu")

    if all(movable(a) for _, a in leaves(x)):
        return x
    if integers:
        return copy_float(x)
    return tree_map(lambda a: onp.array(a) if onp.asarray(a).dtype.kind in "biu" else
                    copy_float(a), x)


def step_size(h: Any, name: str = "h") -> float:
    """``h`` as a float if it is a finite real number ``> 0``, else ``ValueError``/``TypeError``.

    >>> step_size(1e-4)
    0.0001
    """
    h = real_number(name, h)
    if h <= 0:
        raise ValueError(f"{name} must be > 0, got {h!r}")
    return h


def _where(path: str, idx: tuple[int, ...]) -> str:
    return f"{path or 'x'}[{', '.join(map(str, idx))}]" if idx else (path or "x")


def _quotient(f_up: Any, f_down: Any, span: float, where: str, x0: Any) -> Any:
    """``(f_up - f_down) / span``, refused unless both values and the quotient are finite."""
    if not (math.isfinite(f_up) and math.isfinite(f_down)):
        raise NonFiniteError(
            f"f is not finite beside {where} = {x0!r}: f(x + h) = {f_up}, f(x - h) = {f_down}; "
            "does the step leave f's domain? try a smaller h"
        )
    if (type(f_up) in (float, onp.float64) and type(f_down) in (float, onp.float64)
            and abs(f_up) < _SAFE_F and abs(f_down) < _SAFE_F and span >= _SAFE_STEP):
        d = (f_up - f_down) / span
    else:
        with onp.errstate(over="ignore", invalid="ignore"):
            d = (f_up - f_down) / span
    if not math.isfinite(d):
        raise NonFiniteError(
            f"the central difference at {where} = {x0!r} overflows: (f(x + h) - f(x - h)) / "
            f"step = ({f_up} - {f_down}) / {span:.3g}"
        )
    return d


def central_differences(
    f: Callable[[Tree], Any], x: Tree, h: float, relative: bool = False,
    integers: bool = True,
) -> Tree:
    """Central differences of ``f`` at every element of every leaf of ``x``.

    Arguments:
        f: a scalar function of one tree.
        x: an array or a nested dict of arrays (left as it was).
        h: the step.
        relative: use the step ``h * max(1, |x_i|)`` for element ``i``, so that ``x_i + h``
            differs from ``x_i`` in about the same number of bits whatever the size of ``x_i``.
        integers: differentiate integer arrays (as float64); ``False`` holds them constant
            (indices, masks), with differences 0.

    Returns:
        The gradient estimate, with the structure of ``x``.

    The quotient divides by the step actually taken, ``(x_i + h) - (x_i - h)`` in floating
    point, which removes the representation error of ``x_i +- h``.

    Raises ``ValueError`` (:class:`~minifw.functions.NonFiniteError` for the non-finite cases)
    naming the element when ``x_i`` is not finite, when ``x_i + h == x_i - h`` (the step is
    below the resolution of ``x_i``: ``|x_i| > 1e12`` for ``h = 1e-4``), or when ``f`` beside
    ``x_i`` or the quotient is not finite: never a silent NaN.

    >>> central_differences(lambda x: (x ** 3).sum(), onp.array([1.0]), 1e-4).round(6)
    array([3.])
    """
    h = step_size(h)
    work = work_tree(x, integers)
    for path, a in leaves(work):  # no derivative at NaN or inf; and f never sees them
        check_finite(a, "central differences", f"{path or 'x'}")
    grads = tree_map(lambda a: onp.zeros(a.shape, dtype=a.dtype if a.dtype.kind == "f" else
                                         onp.float64), work)
    for (path, a), (_, g) in zip(leaves(work), leaves(grads)):
        if a.dtype.kind != "f":
            continue  # a constant
        big = float(onp.finfo(a.dtype).max) / 2
        for idx in onp.ndindex(a.shape):
            x0 = a[idx]
            step = h * max(1.0, abs(float(x0))) if relative else h
            if abs(float(x0)) < big and step < big:
                up, down = (x0 + a.dtype.type(step)), (x0 - a.dtype.type(step))
            else:  # near the largest float: x0 + step may be inf, refused below as f(inf)
                with onp.errstate(over="ignore"):
                    up, down = (x0 + a.dtype.type(step)), (x0 - a.dtype.type(step))
            if up == down:
                raise ValueError(
                    f"the step h={step:.3g} is below the resolution of {_where(path, idx)} = "
                    f"{x0!r} ({a.dtype}: x + h == x - h); use a larger h, or "
                    "minifw.grad(f, method='numerical'), whose step grows with |x|"
                )
            f_up = evaluate_at(f, work, a, idx, up)
            f_down = evaluate_at(f, work, a, idx, down)
            g[idx] = _quotient(f_up, f_down, float(up) - float(down), _where(path, idx), x0)
    return grads


def numerical_diff(f: Callable[[Any], Any], x: Any, h: float = 1e-4) -> Any:
    """The derivative of a function of one number by the central difference.

    Arguments:
        f: a function of one real number.
        x: the point.
        h: the step (the book's ``1e-4``).

    Returns:
        ``(f(x + h) - f(x - h)) / (2h)``.

    Raises ``ValueError``/``TypeError`` naming the problem for an ``x`` that is not a finite
    real number (or array of them), an ``h`` that is not a finite number ``> 0``, a step lost
    in the rounding of ``x`` (``x + h == x - h``), and values of ``f`` that are not finite.

    >>> round(numerical_diff(lambda x: 0.01 * x ** 2 + 0.1 * x, 5.0), 10)
    0.2
    """
    h = step_size(h)
    if not isinstance(x, (int, float, onp.integer, onp.floating)) or isinstance(x, bool):
        x = copy_float(x)
        if isinstance(x, dict):
            raise TypeError("numerical_diff: x must be a number or an array, got a dict")
    elif isinstance(x, onp.integer):
        x = float(x)
    check_finite(x, "numerical_diff", "x")
    up, down = x + h, x - h
    if onp.any(up == down):
        raise ValueError(f"numerical_diff: h={h:.3g} is below the resolution of x = {x!r} "
                         "(x + h == x - h); use a larger h")
    f_up, f_down = _real_value(f(up), "f(x + h)"), _real_value(f(down), "f(x - h)")
    with onp.errstate(over="ignore", invalid="ignore"):
        d = (f_up - f_down) / (2 * h)
    check_finite(d, "numerical_diff", f"(f(x + h) - f(x - h)) / 2h (f(x + h) = {f_up!r:.40}, "
                 f"f(x - h) = {f_down!r:.40})")
    return d


def _real_value(v: Any, what: str) -> Any:
    """``v`` unchanged if it holds finite real numbers; else ``TypeError``/``NonFiniteError``."""
    a = onp.asarray(getval(v))
    if a.dtype.kind not in "biuf":
        raise TypeError(f"numerical_diff: {what} must be a real number, got {v!r:.60}")
    check_finite(a, "numerical_diff", what)
    return v


def numerical_gradient(f: Callable[[Tree], Any], x: Tree, h: float = 1e-4) -> Tree:
    """The gradient of a scalar function by central differences, element by element.

    Arguments:
        f: a scalar function of ``x``.
        x: an array of any shape, or a nested dict of arrays; left exactly as it was.
            Integer arrays are computed in float64, never truncated.
        h: the step (the book's ``1e-4``).

    Returns:
        The gradient, with the structure of ``x`` (float arrays).

    Raises ``ValueError`` naming the element when an element of ``x`` is not finite, when
    ``h`` is lost in its rounding (``x + h == x - h``: ``|x| > 1e12`` for ``h = 1e-4``), or
    when ``f`` beside it is not finite; ``TypeError`` for non-numeric ``x``.

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
        lr: the learning rate, a finite number > 0.
        step_num: the number of steps.
        return_path: also return the points visited, ``init_x`` first (shape
            ``(steps taken + 1, *x.shape)``), e.g. to plot them.

    Returns:
        The final point, or ``(final point, path)`` with ``return_path=True``.

    A learning rate too large makes ``x`` overshoot the minimum by more at every step, as the
    book shows with ``lr=10.0``. The run goes on while the numbers are representable, and
    ends with a :class:`~minifw.divergence.DivergenceWarning` naming ``lr`` when ``f`` ends
    above where it began. Once ``x`` is so large that the gradient's step no longer changes
    it (``x + h == x - h``, past about ``1e12`` for ``h = 1e-4``), the numerical gradient is
    lost in rounding: the run stops there, returns that point and says so in the warning.
    Only a step that leaves float64 (``x`` or ``f`` infinite) raises, a ``ValueError`` naming
    the step and ``lr``.

    >>> gradient_descent(lambda x: (x ** 2).sum(), [-3.0, 4.0], lr=0.1, step_num=1).round(6)
    array([-2.4,  3.2])
    """
    if isinstance(step_num, bool) or not isinstance(step_num, (int, onp.integer)) or step_num < 0:
        raise ValueError(f"step_num must be a whole number >= 0, got {step_num!r}")
    lr = step_size(lr, "lr")
    if isinstance(init_x, dict):
        raise TypeError("gradient_descent: init_x must be an array, got a dict")
    x = copy_float(init_x)
    check_finite(x, "gradient_descent", "init_x")
    path = [x.copy()]
    h = 1e-4  # numerical_gradient's, the book's
    stopped = ""
    for i in range(1, int(step_num) + 1):
        lost = (x + h) == (x - h)
        if lost.any():
            where = tuple(int(k) for k in onp.argwhere(lost)[0])
            text = (f"x{list(where) if where else ''} = {x[where]:.4g} is too large for the "
                    f"numerical gradient (its step h={h:g} is below the resolution of x: x + h "
                    "== x - h)")
            if i == 1:
                raise ValueError(f"gradient_descent: {text}")
            stopped = f"; it stopped before step {i} of {step_num}: {text}"
            break
        try:
            g = numerical_gradient(f, x)
        except NonFiniteError as e:
            moved = f"lr={lr:g} is too large: " if i > 1 else ""
            raise NonFiniteError(f"gradient_descent, step {i} of {step_num} (largest |x| "
                                 f"{_largest(x)}): {moved}{e}") from e
        with onp.errstate(over="ignore", invalid="ignore"):
            x = x - lr * g
        if not onp.all(onp.isfinite(x)):
            raise NonFiniteError(f"gradient_descent diverged at step {i} of {step_num}: x "
                                 f"overflows {x.dtype}; lr={lr:g} is too large")
        path.append(x.copy())
    if len(path) > 1:
        _warn_if_uphill(f, path[0], x, lr, len(path) - 1, stopped)
    return (x, onp.stack(path)) if return_path else x


def _warn_if_uphill(f: Callable[[onp.ndarray], Any], start: onp.ndarray, end: onp.ndarray,
                    lr: float, steps: int, stopped: str) -> None:
    """A :class:`DivergenceWarning` naming ``lr`` if ``f(end) > f(start)``; a
    ``RuntimeWarning`` if the run stopped early for another reason."""
    with onp.errstate(over="ignore", invalid="ignore"):
        before, after = float(scalar_value(f(start))), float(scalar_value(f(end)))
    went = (f"f {'rose' if after > before else 'went'} from {before:.4g} to {after:.4g} in "
            f"{steps} step{'s' if steps > 1 else ''} (largest |x| from {_largest(start)} to "
            f"{_largest(end)})")
    if not math.isfinite(after):
        raise NonFiniteError(f"gradient_descent diverged: {went}, beyond float64; lr={lr:g} is "
                             "too large")
    if went_uphill(before, after):
        warnings.warn(DivergenceWarning(f"gradient_descent: lr={lr:g} is too large: the descent "
                                        f"diverged, {went}{stopped}"), stacklevel=3)
    elif stopped:
        warnings.warn(RuntimeWarning(f"gradient_descent: {went}{stopped}"), stacklevel=3)


def _largest(x: onp.ndarray) -> str:
    return f"{float(onp.abs(x).max()):.3g}" if x.size else "none"

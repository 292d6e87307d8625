"""The fuzzing harness: input classes, hostile-input strategies, and the checks every call passes.

The contract (issue 6; DESIGN.md, "Errors"): every call of a public entry point either returns a
correct result or raises ``ValueError``/``TypeError`` (a ``FileNotFoundError`` subclass for a
missing file) whose message names the problem. Never a silent NaN, never a bare NumPy error
from deep inside (:func:`refused` requires the raise site to be in ``minifw/``), never a NumPy
``RuntimeWarning`` (:func:`call` turns warnings into errors), never a changed caller array
(:func:`call` compares the bytes, dtype, shape, strides and flags of every array it was given).

Every example records ``(entry point, input class)`` with :func:`record`; ``conftest.py`` writes
the counts to JSON when ``MINIFW_FUZZ_RECORD`` names a file, and ``tools/fuzz_table.py`` renders
them as ``docs/fuzz.md``.
"""

from __future__ import annotations

import collections
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as onp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minifw

#: The input classes of issue 6, in the order of the table's columns.
CLASSES: dict[str, str] = {
    "nonfinite": "NaN and infinities",
    "extreme": "huge and tiny magnitudes (1e300, 1e-300, subnormals, float max)",
    "empty": "empty arrays and zero-size batches",
    "shape": "wrong ranks and widths, mismatched shapes",
    "intbool": "integer and boolean arrays",
    "object": "object arrays and other non-real dtypes (strings, complex, datetimes)",
    "pylist": "Python lists and scalars (and NumPy scalars)",
    "layout": "non-contiguous, Fortran-ordered, broadcast and read-only arrays",
    "labels": "labels out of range, negative, fractional, NaN or boolean",
    "structure": "parameter trees of the wrong structure (keys, nesting, leaf types)",
    "settings": "nonsensical settings (rates, steps, epochs, sizes, seeds, modes, paths)",
    "files": "truncated, corrupted, foreign and missing .npz and IDX files",
    "bombs": "decompression bombs, and declared sizes beyond the file or the stated limits",
    "faults": "FIFOs, devices, links, write-protected files, failing file systems, kills",
}

#: ``(entry point, input class) -> examples run``, filled by :func:`record`.
COUNTS: collections.Counter[tuple[str, str]] = collections.Counter()

MINIFW_DIR = str(Path(minifw.__file__).resolve().parent)


def record(entry: str, cls: str) -> None:
    """Count one example of input class ``cls`` given to ``entry`` (for docs/fuzz.md)."""
    assert cls in CLASSES, cls
    COUNTS[entry, cls] += 1


# --- calling and judging ----------------------------------------------------------------------


@dataclass
class Outcome:
    """What a call did: its value, or the exception it raised."""

    value: Any = None
    error: Exception | None = None


def snapshot(obj: Any) -> Any:
    """Everything observable about ``obj``'s arrays: bytes, dtype, shape, strides, flags."""
    if isinstance(obj, onp.ndarray):
        data = repr(obj.tolist()) if obj.dtype.kind == "O" else obj.tobytes()
        return ("ndarray", obj.dtype.str, obj.shape, obj.strides, obj.flags.writeable, data)
    if isinstance(obj, dict):
        return ("dict", [(repr(k), snapshot(v)) for k, v in obj.items()])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [snapshot(v) for v in obj])
    return ("other", repr(obj))


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    """Call ``fn`` with warnings as errors; check that no argument changed.

    A NumPy ``RuntimeWarning`` (overflow, invalid value) raised inside becomes the outcome's
    error, which :func:`refused` and :func:`returned` then reject.
    """
    return _call(fn, args, kwargs, ieee=False)


def call_ieee(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    """Like :func:`call`, but NumPy's floating-point warnings (overflow, invalid value, divide
    by zero) pass: for layers, whose values are IEEE's (see ``test_fuzz_layers.py``)."""
    return _call(fn, args, kwargs, ieee=True)


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
          ieee: bool) -> Outcome:
    before = snapshot((args, kwargs))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if ieee:
            warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) "
                                    "encountered", RuntimeWarning)
        try:
            out = Outcome(value=fn(*args, **kwargs))
        except Exception as e:  # judged by refused() / returned()
            out = Outcome(error=e)
    assert snapshot((args, kwargs)) == before, f"{fn!r} changed the caller's arrays"
    return out


def raise_site(error: BaseException) -> str:
    """The file of the innermost frame of ``error``'s traceback (where it was raised)."""
    tb, last = error.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last.tb_frame.f_code.co_filename if last is not None else "?"


def refused(out: Outcome, *words: str, types: tuple[type, ...] = (ValueError, TypeError),
            sites: tuple[str, ...] = ()) -> Exception:
    """Assert a clear refusal: ``types``, raised by minifw, its message naming the problem.

    Arguments:
        out: the outcome of :func:`call`.
        words: the message must contain one of them (case-insensitive).
        types: the accepted exception types.
        sites: further files (besides minifw's) allowed to raise, e.g. a test's own ``f``.
    """
    e = out.error
    if e is None:
        raise AssertionError(f"expected a clear error, got the result {out.value!r}")
    if not isinstance(e, types):
        names = "/".join(t.__name__ for t in types)
        raise AssertionError(f"expected {names}, got {type(e).__name__}: {e}") from e
    site = raise_site(e)
    if not (site.startswith(MINIFW_DIR) or site in sites):
        raise AssertionError(
            f"{type(e).__name__} raised from deep inside {site}, not by minifw: {e}"
        ) from e
    message = str(e).lower()
    if words and not any(w.lower() in message for w in words):
        raise AssertionError(f"the message names none of {words}: {e}") from e
    return e


def returned(out: Outcome) -> Any:
    """Assert the call returned; its value."""
    if out.error is not None:
        raise AssertionError(
            f"expected a result, got {type(out.error).__name__}: {out.error}"
        ) from out.error
    return out.value


def all_finite(tree: Any) -> bool:
    """True when every number in ``tree`` (an array, scalar or dict of them) is finite."""
    if isinstance(tree, dict):
        return all(all_finite(v) for v in tree.values())
    return bool(onp.all(onp.isfinite(onp.asarray(tree, dtype=onp.float64))))


# --- strategies -------------------------------------------------------------------------------

FLOATS = (onp.float64, onp.float32)
NONFINITE = (onp.nan, onp.inf, -onp.inf)
#: Magnitudes at and beyond the edges of float64, and where ``x + 1e-4 == x``.
EXTREME = (1e300, -1e300, 1e-300, -1e-300, 5e-324, -5e-324, 1.7976931348623157e308,
           -1.7976931348623157e308, 1e154, -1e154, 1e-154, 1e13, -1e13, 2.2250738585072014e-308)


def plain(width: int = 64, bound: float = 3.0) -> st.SearchStrategy[float]:
    """Ordinary finite floats in ``[-bound, bound]``."""
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=width)


def shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1,
           max_side: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """Small array shapes."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def arrays(shape: Any = None, dtype: Any = onp.float64, bound: float = 3.0,
           **shape_kwargs: Any) -> st.SearchStrategy[onp.ndarray]:
    """Ordinary float arrays (the baseline every hostile class is a variation of)."""
    dtype = onp.dtype(dtype)
    width = 8 * dtype.itemsize
    return hnp.arrays(dtype, shapes(**shape_kwargs) if shape is None else shape,
                      elements=plain(width, bound))


@st.composite
def spiked(draw: Any, base: st.SearchStrategy[onp.ndarray], values: tuple[float, ...],
           dtype_cast: bool = True) -> onp.ndarray:
    """An array from ``base`` with one to all of its elements replaced by ``values``."""
    a = draw(base).copy()
    if a.size == 0:
        return a
    k = draw(st.integers(1, a.size))
    where = draw(st.lists(st.integers(0, a.size - 1), min_size=1, max_size=k, unique=True))
    for i in where:
        v = draw(st.sampled_from(values))
        with onp.errstate(over="ignore"):  # float32 holds 1e300 as inf: still hostile
            a.flat[i] = a.dtype.type(v) if dtype_cast else v
    return a


def nonfinite(shape: Any = None, dtype: Any = None, **kw: Any) -> st.SearchStrategy:
    """Float arrays holding at least one NaN, inf or -inf."""
    dt = st.sampled_from(FLOATS) if dtype is None else st.just(dtype)
    return dt.flatmap(lambda d: spiked(arrays(shape, d, **kw), NONFINITE))


def extreme(shape: Any = None, **kw: Any) -> st.SearchStrategy:
    """float64 arrays holding at least one value of :data:`EXTREME`."""
    return spiked(arrays(shape, onp.float64, **kw), EXTREME)


@st.composite
def empty(draw: Any, min_dims: int = 1, max_dims: int = 3, zero_axis: int | None = None,
          dtype: Any = onp.float64) -> onp.ndarray:
    """Arrays with a zero-length axis (``zero_axis``, else any)."""
    shape = list(draw(shapes(min_dims, max_dims)))
    axis = draw(st.integers(0, len(shape) - 1)) if zero_axis is None else zero_axis
    shape[axis] = 0
    return onp.zeros(tuple(shape), dtype=dtype)


INT_DTYPES = (onp.bool_, onp.int8, onp.int16, onp.int32, onp.int64, onp.uint8, onp.uint16,
              onp.uint64)


def intbool(shape: Any = None, small: bool = False, **kw: Any) -> st.SearchStrategy:
    """Integer and boolean arrays (full range, or ``small`` values in [-3, 3])."""
    def make(d: Any) -> st.SearchStrategy:
        dt = onp.dtype(d)
        if small and dt.kind != "b":
            elements = st.integers(0 if dt.kind == "u" else -3, 3)
        else:
            elements = None
        return hnp.arrays(dt, shapes(**kw) if shape is None else shape, elements=elements)

    return st.sampled_from(INT_DTYPES).flatmap(make)


@st.composite
def non_real(draw: Any, shape: Any = None, **kw: Any) -> onp.ndarray:
    """Object arrays of numbers, strings, bytes, complex numbers and datetimes."""
    shape = draw(shapes(**kw)) if shape is None else shape
    n = int(onp.prod(shape))
    kind = draw(st.sampled_from(["object", "str", "bytes", "complex", "datetime", "mixed"]))
    if kind == "object":
        return onp.array(draw(st.lists(plain(), min_size=n, max_size=n)) + [None],
                         dtype=object)[:n].reshape(shape)
    if kind == "str":
        return onp.array(draw(st.lists(st.text("abc01.", max_size=3), min_size=n, max_size=n)),
                         dtype=str).reshape(shape)
    if kind == "bytes":
        return onp.zeros(shape, dtype="S2")
    if kind == "complex":
        return (onp.ones(shape) + 1j * draw(plain())).astype(onp.complex128)
    if kind == "datetime":
        return onp.zeros(shape, dtype="datetime64[s]")
    values: list[Any] = draw(st.lists(st.one_of(plain(), st.text(max_size=2), st.none()),
                                      min_size=n, max_size=n))
    out = onp.empty(n, dtype=object)
    out[:] = values
    return out.reshape(shape)


@st.composite
def pylists(draw: Any, shape: Any = None, elements: Any = None, **kw: Any) -> Any:
    """Nested Python lists of floats, ints or bools of ``shape``."""
    shape = draw(shapes(**kw)) if shape is None else shape
    if elements is None:
        elements = st.one_of(plain(), st.integers(-3, 3), st.booleans())
    n = int(onp.prod(shape))
    flat = draw(st.lists(elements, min_size=n, max_size=n))
    if not shape:
        return flat[0]
    return onp.array(flat, dtype=object).reshape(shape).tolist()


def scalars() -> st.SearchStrategy:
    """Python and NumPy real scalars."""
    return st.one_of(plain(), st.integers(-3, 3), st.booleans(),
                     plain().map(onp.float64), plain(32).map(onp.float32),
                     st.integers(-3, 3).map(onp.int64))


@st.composite
def awkward(draw: Any, values: onp.ndarray) -> onp.ndarray:
    """An array equal to ``values`` but non-contiguous, Fortran-ordered, broadcast or read-only."""
    v = onp.asarray(values)
    how = draw(st.sampled_from(["strided", "transposed", "reversed", "fortran", "readonly",
                                "strided-readonly", "broadcast"]))
    if how in ("strided", "strided-readonly") and v.ndim:
        base = onp.zeros(v.shape[:-1] + (2 * v.shape[-1],), dtype=v.dtype)
        base[..., ::2] = v
        out = base[..., ::2]
    elif how == "transposed" and v.ndim >= 2:
        out = onp.ascontiguousarray(v.T).T
    elif how == "reversed" and v.ndim:
        out = v[::-1].copy()[::-1]
    elif how == "fortran" and v.ndim >= 2:
        out = onp.asfortranarray(v)
    elif how == "broadcast" and v.ndim and v.size and onp.all(v == v.reshape(-1)[0]):
        out = onp.broadcast_to(v.reshape(-1)[:1].reshape((1,) * v.ndim), v.shape)
    else:
        out = v.copy()
        how = "readonly"
    if how.endswith("readonly"):
        out.setflags(write=False)
    assert onp.array_equal(out, v, equal_nan=v.dtype.kind in "fc")
    return out


@st.composite
def awkward_arrays(draw: Any, shape: Any = None, dtype: Any = onp.float64,
                   **kw: Any) -> onp.ndarray:
    """Plain float values laid out awkwardly (see :func:`awkward`); constant ones broadcast."""
    v = draw(st.one_of(arrays(shape, dtype, **kw),
                       arrays(shape, dtype, **kw).map(lambda a: onp.full_like(a, 0.5))))
    return draw(awkward(v))


def bad_labels(classes: int) -> st.SearchStrategy[Any]:
    """Single labels that are not in ``[0, classes)`` or not integers."""
    return st.one_of(
        st.integers(classes, classes + 10**6),
        st.integers(-(10**6), -1),
        st.floats(0.01, classes - 0.01).filter(lambda v: v != int(v)),
        st.sampled_from([onp.nan, onp.inf, -onp.inf, 2**63, -(2**63)]),
    )


@st.composite
def label_vectors(draw: Any, n: int, classes: int) -> onp.ndarray:
    """``n`` labels of which at least one is bad (out of range, fractional, NaN) or all bool."""
    if draw(st.integers(0, 7)) == 0:
        return onp.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    good = draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n))
    bad = draw(bad_labels(classes))
    i = draw(st.integers(0, n - 1))
    out: list[Any] = list(good)
    out[i] = bad
    if isinstance(bad, float) or (isinstance(bad, int) and abs(bad) >= 2**63):
        return onp.array(out, dtype=onp.float64)
    return onp.array(out, dtype=onp.int64)


def bad_numbers(positive: bool = True) -> st.SearchStrategy[Any]:
    """Values no rate, step or probability accepts: non-finite, wrong type, bool."""
    bad = [onp.nan, onp.inf, -onp.inf, True, False, None, "0.1", [0.1], 1j, onp.array([0.1, 0.2])]
    if positive:
        bad += [0, 0.0, -1e-3, -1, onp.float64(-0.5), onp.int64(0)]
    return st.sampled_from(bad)

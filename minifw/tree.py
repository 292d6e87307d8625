"""Parameter trees: nested dicts of arrays, addressed by dotted paths.

A model's parameters are plain data, ``{"0": {"W": ..., "b": ...}}``; this module walks them.
Every place that needs "each array with its path" (optimizers, numerical gradients, the
gradient checker, files) uses :func:`leaves`, so the order and the path spelling are the same
everywhere.

>>> import numpy as onp
>>> params = {"0": {"W": onp.zeros((2, 3)), "b": onp.zeros(3)}}
>>> [(path, a.shape) for path, a in leaves(params)]
[('0.W', (2, 3)), ('0.b', (3,))]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as onp

Tree = Any  # an array (lists and scalars are arrays too), or a dict of trees


def leaves(tree: Tree, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(path, array)`` for every leaf of ``tree``, depth first, in insertion order.

    Arguments:
        tree: a nested dict whose leaves are arrays (anything else is a leaf).
        prefix: the path of ``tree`` itself (``""`` at the root).

    Returns:
        An iterator of dotted paths (``"0.W"``; ``""`` for a bare array) and leaves.

    >>> [p for p, _ in leaves({"a": {"b": [1.0, 2.0]}, "c": 3.0})]
    ['a.b', 'c']
    """
    if not isinstance(tree, dict):
        yield prefix, tree
        return
    for key, sub in tree.items():
        if not isinstance(key, str):
            raise TypeError(f"parameter keys must be strings, got {key!r} at {prefix or 'root'}")
        yield from leaves(sub, f"{prefix}.{key}" if prefix else str(key))


def flat(tree: Tree, out: list[Any] | None = None) -> list[Any]:
    """The leaves of ``tree`` in the order of :func:`leaves`, without their paths (faster).

    >>> flat({"a": {"b": 1.0}, "c": 2.0})
    [1.0, 2.0]
    """
    out = [] if out is None else out
    if not _flat(tree, out):
        for _ in leaves(tree):  # raises, naming the key that is not a string and where it is
            pass
    return out


def _flat(tree: Tree, out: list[Any]) -> bool:
    if not isinstance(tree, dict):
        out.append(tree)
        return True
    for key, sub in tree.items():
        if not isinstance(key, str):
            return False
        if isinstance(sub, dict):
            if not _flat(sub, out):
                return False
        else:
            out.append(sub)
    return True


def tree_map(fn: Callable[..., Any], tree: Tree, *others: Tree) -> Tree:
    """Apply ``fn`` to every leaf of ``tree`` (and the matching leaves of ``others``).

    >>> tree_map(lambda a: 2 * a, {"w": 1.5, "v": {"u": 1.0}})
    {'w': 3.0, 'v': {'u': 2.0}}
    """
    if isinstance(tree, dict):
        return {k: tree_map(fn, v, *(o[k] for o in others)) for k, v in tree.items()}
    return fn(tree, *others)


def unflatten(items: dict[str, Any]) -> dict[str, Any]:
    """Rebuild a nested dict from ``{dotted path: array}``; the inverse of :func:`leaves`.

    >>> unflatten({"0.W": 1, "0.b": 2, "c": 3})
    {'0': {'W': 1, 'b': 2}, 'c': 3}
    """
    root: dict[str, Any] = {}
    for path, value in items.items():
        node = root
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f"path {path!r} passes through a leaf")
        if last in node:  # "a" after "a.b": the leaf would silently replace the subtree
            raise ValueError(f"path {path!r} is both a leaf and a subtree (or given twice)")
        node[last] = value
    return root


def copy_float(tree: Tree) -> Tree:
    """A deep copy whose leaves are float ndarrays (floats keep their dtype, the rest is float64).

    Integers are never truncated: they become float64 before anything is computed with them.

    >>> copy_float({"x": [1, 2]})["x"].dtype
    dtype('float64')
    """
    return tree_map(_as_float_array, tree)


def _as_float_array(a: Any) -> onp.ndarray:
    try:
        a = onp.array(a)
    except ValueError as e:  # a ragged list: numpy cannot make one array of it
        raise TypeError(f"expected numeric arrays, got a ragged sequence ({e})") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"expected real numeric arrays, got dtype {a.dtype}: {a!r:.80}")
    return a if a.dtype.kind == "f" else a.astype(onp.float64)


def _key_paths(tree: Tree, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if not isinstance(tree, dict):
        return {prefix}
    return {p for k, v in tree.items() for p in _key_paths(v, (*prefix, k))} or {prefix}


def zip_like(reference: Tree, other: Tree, what: str) -> list[tuple[str, Any, Any]]:
    """``(path, reference leaf, other leaf)`` for every leaf, after :func:`check_like`'s checks.

    One walk of both trees in the common case; the full diagnosis only when they differ.

    >>> import numpy as onp
    >>> [(p, o.shape) for p, _, o in zip_like({"W": onp.zeros(2)}, {"W": onp.ones(2)}, "g")]
    [('W', (2,))]
    """
    out: list[tuple[str, Any, Any]] = []
    if not _zip_walk(reference, other, "", out):
        check_like(reference, other, what)
        raise ValueError(f"{what} do not have the structure of the parameters")
    return out


def _zip_walk(r: Any, o: Any, path: str, out: list[tuple[str, Any, Any]]) -> bool:
    # a module-level function: a recursive closure would be a reference cycle holding ``out``
    # (and so every gradient) until the garbage collector ran
    if not isinstance(r, dict):
        out.append((path, r, o))
        if type(r) is onp.ndarray and type(o) is onp.ndarray:
            return r.shape == o.shape
        return not isinstance(o, dict) and onp.shape(o) == onp.shape(r)
    if not isinstance(o, dict) or r.keys() != o.keys():
        return False
    for k, v in r.items():
        if not isinstance(k, str) or not _zip_walk(v, o[k], f"{path}.{k}" if path else k, out):
            return False
    return True


def check_like(reference: Tree, other: Tree, what: str) -> None:
    """Raise ``ValueError`` unless ``other`` has the paths and shapes of ``reference``.

    Arguments:
        reference: the tree whose structure is expected (e.g. the parameters).
        other: the tree to check (e.g. gradients).
        what: how to call ``other`` in the message.

    >>> import numpy as onp
    >>> check_like({"W": onp.zeros(2)}, {"W": onp.zeros(3)}, "grads")
    Traceback (most recent call last):
    ...
    ValueError: grads at 'W' has shape (3,), expected (2,)
    """
    ref = dict(leaves(reference))
    got = dict(leaves(other))
    if ref.keys() != got.keys():
        missing = sorted(ref.keys() - got.keys())
        extra = sorted(got.keys() - ref.keys())
        raise ValueError(f"{what} do not match the parameters: missing {missing}, extra {extra}")
    if _key_paths(reference) != _key_paths(other):  # {"a.w": g} spells {"a": {"w": g}}
        raise ValueError(f"{what} nest their keys differently from the parameters (a key with "
                         "a '.' in it?)")
    for path, r in ref.items():
        g_shape = onp.shape(got[path])
        if g_shape != onp.shape(r):
            raise ValueError(f"{what} at {path!r} has shape {g_shape}, expected {onp.shape(r)}")

"""Saving and loading parameters: ``.npz`` at exactly the path given, atomic, no pickle.

A nested dict of arrays is stored flat, one array per dotted path (``"0.W"``). ``save``
writes a temporary file beside the target and renames it over the target, so a crash never
leaves a half-written file; ``load`` refuses pickles and checks what it reads.

>>> import numpy as onp, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
>>> save(path, {"0": {"W": onp.eye(2)}})
>>> load(path)["0"]["W"]
array([[1., 0.],
       [0., 1.]])
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from typing import Any

import numpy as onp

from minifw.tree import leaves, unflatten


class ParamsFileError(ValueError):
    """A parameters file that is not a readable ``.npz`` of numeric arrays."""


class ParamsFileNotFoundError(FileNotFoundError, ValueError):
    """The parameters file does not exist (both a ``FileNotFoundError`` and a ``ValueError``)."""


def save(path: str | os.PathLike[str], params: dict[str, Any]) -> None:
    """Write ``params`` (a nested dict of arrays) to ``path`` as ``.npz``, atomically.

    Arguments:
        path: the file to write, used exactly as given (no ``.npz`` is appended).
        params: a nested dict of numeric arrays with string keys without dots.

    On error, no file is created and an existing ``path`` is left as it was.
    """
    if not isinstance(params, dict):
        raise TypeError(f"save: params must be a dict of arrays, got {type(params).__name__}")
    _check_keys(params, "")
    arrays = {}
    for p, a in leaves(params):
        a = onp.asarray(a)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"save: {p!r} must be a numeric array, got dtype {a.dtype}")
        arrays[p] = a
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".minifw-", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would: an existing
        # file's own, else 0666 less the umask
        if os.path.isfile(path):
            mode = os.stat(path).st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            onp.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _check_keys(tree: dict[str, Any], prefix: str) -> None:
    for k, v in tree.items():
        if not isinstance(k, str) or not k or "." in k:
            raise ValueError(f"save: keys must be non-empty strings without '.', got {k!r} "
                             f"at {prefix or 'the top'}")
        if isinstance(v, (list, tuple)):
            raise TypeError(f"save: {prefix + k!r} is a {type(v).__name__}; use a dict of arrays")
        if isinstance(v, dict):
            _check_keys(v, f"{prefix}{k}.")


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read parameters written by :func:`save`: a nested dict of arrays.

    Raises ``ParamsFileNotFoundError`` (a ``FileNotFoundError`` and ``ValueError``) for a
    missing file and ``ParamsFileError`` (a ``ValueError``) for one that is truncated, not an
    ``.npz``, or holds pickled objects.
    """
    if not os.path.isfile(path):
        raise ParamsFileNotFoundError(f"load: no parameters file at {os.fspath(path)!r}")
    try:
        # our own handle: numpy leaks the one it opens when the zip turns out to be broken
        with open(path, "rb") as fh:
            npz = onp.load(fh, allow_pickle=False)
            if not isinstance(npz, onp.lib.npyio.NpzFile):  # a .npy gives a bare array
                raise ParamsFileError(f"load: {os.fspath(path)!r} is a .npy array, not an .npz")
            with npz:
                items = {k: npz[k] for k in npz.files}
    except ParamsFileError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ParamsFileError(
            f"load: {os.fspath(path)!r} is not a readable .npz of arrays ({e})"
        ) from e
    for k, a in items.items():
        if a.dtype.kind not in "biuf":
            raise ParamsFileError(
                f"load: {os.fspath(path)!r} holds {k!r} of dtype {a.dtype}, not a numeric array"
            )
    try:
        return unflatten(items)
    except ValueError as e:
        raise ParamsFileError(f"load: {os.fspath(path)!r}: {e}") from e

"""Saving and loading parameters: ``.npz`` at exactly the path given, atomic, no pickle.

A nested dict of arrays is stored flat, one array per dotted path (``"0.W"``); an empty
sub-dict (a layer without parameters) is stored as a zero-size marker under its path with a
trailing dot (``"1."``), which no key can produce. ``save`` writes a temporary file beside the
target and renames it over the target, so a crash never leaves a half-written file; ``load``
refuses pickles and checks what it reads before reading it.

>>> import numpy as onp, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
>>> save(path, {"0": {"W": onp.eye(2)}, "1": {}})
>>> params = load(path)
>>> params["0"]["W"], params["1"]
(array([[1., 0.],
       [0., 1.]]), {})
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as onp

from minifw.tree import unflatten

#: The suffix of the marker of an empty sub-dict: ``"1."`` is the path ``"1"``, holding ``{}``.
EMPTY = "."


class ParamsFileError(ValueError):
    """A parameters file that is not a readable ``.npz`` of numeric arrays."""


class ParamsFileNotFoundError(FileNotFoundError, ValueError):
    """The parameters file does not exist (both a ``FileNotFoundError`` and a ``ValueError``)."""


def _path(path: Any, what: str) -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what}: path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fsdecode(path)
    if not path:
        raise ValueError(f"{what}: path is empty")
    return path


def save(path: str | os.PathLike[str], params: dict[str, Any]) -> None:
    """Write ``params`` (a nested dict of arrays) to ``path`` as ``.npz``, atomically.

    Arguments:
        path: the file to write, used exactly as given (no ``.npz`` is appended); its folder
            must exist.
        params: a nested dict of numeric arrays with string keys without dots.

    On error, no file is created and an existing ``path`` is left as it was; no temporary
    file is left behind, also when the write is interrupted.
    """
    path = _path(path, "save")
    if not isinstance(params, dict):
        raise TypeError(f"save: params must be a dict of arrays, got {type(params).__name__}")
    _check_keys(params, "")
    arrays: dict[str, Any] = {}
    for p, a in _entries(params, ""):
        a = onp.asarray(a)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"save: {p!r} must be a numeric array, got dtype {a.dtype}")
        arrays[p] = a
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ParamsFileNotFoundError(f"save: no folder {folder!r} to write {path!r} into")
    if os.path.isdir(path):
        raise ValueError(f"save: {path!r} is a folder, not a file")
    fd, tmp = tempfile.mkstemp(prefix=".minifw-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            onp.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file 0600; give it the mode a plain open() would: an existing
        # file's own, else 0666 less the umask
        os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


def _mode(path: str) -> int:
    if os.path.isfile(path):
        return os.stat(path).st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _sync_folder(folder: str) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _entries(tree: dict[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """``(dotted path, array)`` in order; an empty sub-dict gives its marker ``path.``."""
    for k, v in tree.items():
        if isinstance(v, dict):
            if v:
                yield from _entries(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}{EMPTY}", onp.zeros(0, dtype=onp.uint8)
        else:
            yield prefix + k, v


def _check_keys(tree: dict[str, Any], prefix: str) -> None:
    for k, v in tree.items():
        if not isinstance(k, str) or not k or "." in k:
            raise ValueError(f"save: keys must be non-empty strings without '.', got {k!r} "
                             f"at {prefix or 'the top'}")
        if isinstance(v, (list, tuple)):
            raise TypeError(f"save: {prefix + k!r} is a {type(v).__name__}; use a dict of arrays")
        if isinstance(v, dict):
            _check_keys(v, f"{prefix}{k}.")


#: What reading a damaged zip or .npy can raise, besides ValueError and OSError.
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, zlib.error,
                NotImplementedError, RuntimeError, struct.error, OverflowError)


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read parameters written by :func:`save`: a nested dict of arrays.

    Raises ``ParamsFileNotFoundError`` (a ``FileNotFoundError`` and ``ValueError``) for a
    missing file and ``ParamsFileError`` (a ``ValueError``) for one that is truncated,
    corrupted, not an ``.npz``, or holds pickled objects or text; every message names the file.
    """
    path = _path(path, "load")
    if os.path.isdir(path):
        raise ParamsFileNotFoundError(f"load: {path!r} is a folder, not a parameters file")
    if not os.path.isfile(path):
        raise ParamsFileNotFoundError(f"load: no parameters file at {path!r}")
    try:
        # our own handle: numpy leaks the one it opens when the zip turns out to be broken
        with open(path, "rb") as fh:
            npz = onp.load(fh, allow_pickle=False)
            if not isinstance(npz, onp.lib.npyio.NpzFile):  # a .npy gives a bare array
                raise ParamsFileError(f"load: {path!r} is a .npy array, not an .npz")
            with npz:
                _check_directory(fh, npz.zip, path)
                items = {k: _read_member(npz, k, path) for k in npz.files}
    except ParamsFileError:
        raise
    except _READ_ERRORS as e:
        raise ParamsFileError(f"load: {path!r} is not a readable .npz of arrays "
                              f"({type(e).__name__}: {e})") from e
    empty = [k[: -len(EMPTY)] for k in items if k.endswith(EMPTY)]
    arrays = {k: a for k, a in items.items() if not k.endswith(EMPTY)}
    for k in [*arrays, *empty]:
        if not all(k.split(".")):
            raise ParamsFileError(f"load: {path!r} holds the key {k!r}, not a dotted path")
    try:
        tree = unflatten(arrays)
        for k in empty:
            _put_empty(tree, k)
    except ValueError as e:
        raise ParamsFileError(f"load: {path!r}: {e}") from e
    return _ordered(tree, list(items))


def _check_directory(fh: Any, zf: Any, path: str) -> None:
    """The zip's directory lists as many members as its end record promises.

    Nothing checksums a zip's directory: one damaged length field in it can hide the entries
    after it, and the file would load with arrays silently missing.
    """
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - (22 + 65535)))  # the end record, and at most a full comment
    tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return  # zipfile found an end record, or it would have refused the file
    total = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    if total != 0xFFFF and total != len(zf.infolist()):  # 0xFFFF: see the zip64 record
        raise ParamsFileError(f"load: {path!r}: the zip directory promises {total} arrays but "
                              f"lists {len(zf.infolist())}: the file is corrupt")


def _read_member(npz: Any, key: str, path: str) -> onp.ndarray:
    """One array of the archive, after its header is checked against the bytes it holds.

    A corrupted header can claim any shape; numpy would allocate it before finding out.
    """
    member = key + ".npy"
    if member not in npz.zip.namelist():
        raise ParamsFileError(f"load: {path!r} holds {key!r}, which is not a .npy array")
    info = npz.zip.getinfo(member)
    with npz.zip.open(member) as m:
        version = onp.lib.format.read_magic(m)
        read_header = (onp.lib.format.read_array_header_1_0 if version == (1, 0)
                       else onp.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(m)
    if dtype.kind not in "biuf":
        raise ParamsFileError(f"load: {path!r} holds {key!r} of dtype {dtype}, not a numeric "
                              "array")
    need = math.prod(shape) * dtype.itemsize
    if need > info.file_size:
        raise ParamsFileError(f"load: {path!r} holds {key!r} of shape {shape} ({need} bytes) in "
                              f"{info.file_size} bytes: truncated or corrupt")
    a: onp.ndarray = npz[key]
    return a


def _put_empty(tree: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    node = tree
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"path {dotted!r} passes through a leaf")
    if last in node:
        raise ValueError(f"path {dotted!r} is an empty dict and something else as well")
    node[last] = {}


def _ordered(tree: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """``tree`` with its keys in the order the file lists them (markers included)."""
    return _sorted_by({k: i for i, k in enumerate(keys)}, tree, "")


# module-level functions, not recursive closures: a closure that calls itself is a reference
# cycle, left for the garbage collector


def _rank(order: dict[str, int], path: str, value: Any) -> int:
    if isinstance(value, dict) and value:
        return min(_rank(order, f"{path}.{k}", v) for k, v in value.items())
    return order.get(path if not isinstance(value, dict) else path + EMPTY, 0)


def _sorted_by(order: dict[str, int], node: dict[str, Any], prefix: str) -> dict[str, Any]:
    items = sorted(node.items(), key=lambda kv: _rank(order, prefix + kv[0], kv[1]))
    return {k: _sorted_by(order, v, f"{prefix}{k}.") if isinstance(v, dict) else v
            for k, v in items}

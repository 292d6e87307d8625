"""Saving and loading parameters: ``.npz`` at exactly the path given, atomic, checked, no pickle.

A nested dict of arrays is stored flat, one ``.npy`` member per dotted path (``"0.W"``); an empty
sub-dict (a layer without parameters) is stored as a zero-size marker under its path with a
trailing dot (``"1."``), which no key can produce. The file is an ordinary ``.npz``:
``numpy.load`` reads it too.

``save`` validates everything before it writes a byte, writes a temporary file beside the
target and renames it over the target (:mod:`minifw.atomic`), so a crash never leaves a
half-written file, and a later save removes what a killed one left. It replaces only a regular
file (or creates one), and refuses a write-protected one.

``load`` never unpickles. It reads the zip itself, once: every member's CRC-32 is checked (each
member is read to its end), every ``.npy`` header must account for exactly the bytes of its
member, names must be unique, and the declared sizes are checked against the file's real size
and the stated limits of :mod:`minifw.limits` before anything is allocated. Whatever is wrong
comes back as a :class:`ParamsFileError` naming the file and the problem.

>>> import numpy as onp, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
>>> save(path, {"0": {"W": onp.eye(2)}, "1": {}})
>>> params = load(path)
>>> params["0"]["W"], params["1"]
(array([[1., 0.],
       [0., 1.]]), {})
"""

from __future__ import annotations

import ast
import contextlib
import functools
import math
import os
import re
import stat
import struct
import zipfile
import zlib
from typing import IO, Any, BinaryIO

import numpy as onp

from minifw import atomic
from minifw.limits import MAX_BYTES, MAX_RATIO, check_limits, declared_size_problem
from minifw.tree import unflatten

#: The suffix of the marker of an empty sub-dict: ``"1."`` is the path ``"1"``, holding ``{}``.
EMPTY = "."

#: The most bytes a member name may take: the zip format's 16-bit length field.
MAX_NAME_BYTES = 0xFFFF

#: Names ``numpy.savez`` takes for its own arguments, so it cannot store them as top-level keys.
_SAVEZ_ARGUMENTS = ("file", "allow_pickle")
_NUMERIC_DESCR = re.compile(r"[<>|=]?[biuf][1-9][0-9]?")
_MAX_HEADER = 10000  # characters of an .npy header, as numpy.load allows
_CHUNK = 1 << 20


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
    if "\0" in path:
        raise ValueError(f"{what}: path {path!r} holds a NUL character")
    return path


# --- save -------------------------------------------------------------------------------------


def save(path: str | os.PathLike[str], params: dict[str, Any]) -> None:
    """Write ``params`` (a nested dict of arrays) to ``path`` as ``.npz``, atomically.

    Arguments:
        path: the file to write, used exactly as given (no ``.npz`` is appended); its folder
            must exist. A symbolic link is followed: the file it names is replaced.
        params: a nested dict of numeric arrays (bool, integer or float) with string keys
            that are non-empty, without ``'.'`` or NUL, and encodable as UTF-8.

    Raises:
        TypeError, ValueError: ``params`` or a key cannot be stored faithfully, or ``path``
            is a folder, a FIFO, a device or has no folder; nothing is written.
        PermissionError: ``path`` is a write-protected file (e.g. mode 0444).
        OSError: the file system refused (full, read-only, no permission); the error names
            ``path``.

    On any error an existing ``path`` is left exactly as it was and no temporary file is left
    behind; one left by a save that was killed is removed by the next save into the folder.

    >>> import numpy as onp, tempfile, os
    >>> save(os.path.join(tempfile.mkdtemp(), "p.npz"), {"a\\0b": onp.ones(1)})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: save: the key 'a\\x00b' at the top holds a NUL character, which a zip ...
    """
    path = _path(path, "save")
    if not isinstance(params, dict):
        raise TypeError(f"save: params must be a dict of arrays, got {type(params).__name__}")
    arrays = _flat(params)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ParamsFileNotFoundError(f"save: no folder {folder!r} to write {path!r} into")
    target = atomic.replaceable(path, "save")
    try:
        atomic.write_file(target, lambda fh: onp.savez(fh, **arrays))
    except OSError as e:
        raise _write_error(e, path) from e


def _write_error(e: OSError, path: str) -> OSError:
    """``e`` (full disk, read-only or forbidden folder...) as the same kind of error, naming
    ``path`` instead of the temporary file or nothing."""
    left = "it was left as it was" if os.path.lexists(path) else "nothing was written"
    if e.errno is None:
        return type(e)(f"save: cannot write {path!r} ({e}); {left}")
    return type(e)(e.errno, f"save: cannot write the file ({e.strerror}); {left}", path)


def _flat(params: dict[str, Any]) -> dict[str, Any]:
    """``{member name: array}`` in depth-first order, every key and leaf checked.

    An explicit stack, not recursion: a deeply nested dict is walked, not a RecursionError,
    and one that contains itself is refused by name.
    """
    out: dict[str, Any] = {}
    # (path prefix, its length in UTF-8, the dict's items, the dict); ``above``: the ids of
    # the dicts on the stack
    stack = [("", 0, iter(params.items()), params)]
    above = {id(params)}
    while stack:
        prefix, size, items, _ = stack[-1]
        for k, v in items:
            _check_key(k, prefix)
            empty = isinstance(v, dict) and not v
            name = prefix + k + (EMPTY if empty else "")
            nbytes = size + len(k.encode()) + empty
            if nbytes + len(".npy") > MAX_NAME_BYTES:
                raise ValueError(f"save: the path {name[:40]!r}... takes more than "
                                 f"{MAX_NAME_BYTES - 4} bytes in UTF-8, more than a zip member "
                                 "name holds")
            if isinstance(v, dict) and v:
                if id(v) in above:
                    raise ValueError(f"save: {name!r} is a dict that contains itself")
                stack.append((name + ".", nbytes + 1, iter(v.items()), v))
                above.add(id(v))
                break
            out[name] = onp.zeros(0, dtype=onp.uint8) if empty else _leaf(name, v)
            if not prefix and name in _SAVEZ_ARGUMENTS:
                raise ValueError(f"save: the top-level key {name!r} cannot be stored: "
                                 "numpy.savez, which writes the file, takes it for an argument; "
                                 "put it in a sub-dict")
        else:
            above.discard(id(stack.pop()[3]))
    return out


def _check_key(k: Any, prefix: str) -> None:
    where = f"under {prefix[:-1]!r}" if prefix else "at the top"
    if not isinstance(k, str) or not k or "." in k:
        raise ValueError(f"save: keys must be non-empty strings without '.', got {k!r} {where}")
    if "\0" in k:
        raise ValueError(f"save: the key {k!r} {where} holds a NUL character, which a zip "
                         "member name cannot")
    try:
        k.encode()
    except UnicodeEncodeError:
        raise ValueError(f"save: the key {k!r} {where} is not encodable as UTF-8 (a lone "
                         "surrogate)") from None


def _leaf(name: str, a: Any) -> onp.ndarray:
    if isinstance(a, (list, tuple)):
        raise TypeError(f"save: {name!r} is a {type(a).__name__}; use a dict of arrays")
    a = onp.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"save: {name!r} must be a numeric array, got dtype {a.dtype}")
    return a


# --- load -------------------------------------------------------------------------------------

#: What reading a damaged zip can raise, besides what is checked by hand.
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                RuntimeError, struct.error, OverflowError, ValueError, KeyError)


def load(path: str | os.PathLike[str], *, max_bytes: int | None = MAX_BYTES,
         max_ratio: float | None = MAX_RATIO) -> dict[str, Any]:
    """Read parameters written by :func:`save` (or ``numpy.savez``): a nested dict of arrays.

    Arguments:
        path: the ``.npz`` file.
        max_bytes: the most bytes its arrays may declare in all (default 4 GiB; ``None``: no
            limit), checked before anything is allocated.
        max_ratio: the most a compressed file's arrays may expand beyond its compressed bytes
            (default 100 to 1; ``None``: no limit), against decompression bombs.

    Returns:
        The nested dict, keys in the order of the file.

    Raises:
        ParamsFileNotFoundError: (a ``FileNotFoundError`` and ``ValueError``) no file at
            ``path``, or a folder.
        ParamsFileError: (a ``ValueError``) anything else: not an ``.npz`` (the message says
            what it is instead), truncated, corrupted (a CRC-32, a size or a name that does not
            match), duplicate or foreign members, pickled objects, text or complex arrays,
            sizes beyond the limits, a FIFO or a device. Every message names the file.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.npz")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("W = [1, 2]")
    >>> load(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    minifw.files.ParamsFileError: load: '...notes.npz' is not an .npz parameters file: it is text...
    """
    path = _path(path, "load")
    check_limits(max_bytes, max_ratio, "load")
    with _open_regular(path) as fh:
        try:
            items = _read_npz(fh, path, max_bytes, max_ratio)
        except ParamsFileError:
            raise
        except MemoryError:
            raise ParamsFileError(f"load: {path!r}: not enough memory for its arrays") from None
        except _READ_ERRORS as e:
            raise ParamsFileError(f"load: {path!r} is truncated or corrupt, not a readable "
                                  f".npz of arrays ({type(e).__name__}: {e})") from e
    return _tree(items, path)


@contextlib.contextmanager
def _open_regular(path: str) -> Any:
    """The file at ``path`` opened for reading, if it is a regular file (a FIFO would block)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise ParamsFileNotFoundError(f"load: no parameters file at {path!r}") from None
    except IsADirectoryError:  # Windows
        raise ParamsFileNotFoundError(f"load: {path!r} is a folder, not a parameters "
                                      "file") from None
    except OSError as e:  # no permission, a socket...
        raise ParamsFileError(f"load: cannot open {path!r} ({e.strerror})") from e
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ParamsFileNotFoundError(f"load: {path!r} is a folder, not a parameters file")
        if not stat.S_ISREG(mode):
            raise ParamsFileError(f"load: {path!r} is {atomic.kind(mode)}, not a parameters "
                                  "file")
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh


def _read_npz(fh: BinaryIO, path: str, max_bytes: int | None,
              max_ratio: float | None) -> dict[str, onp.ndarray]:
    head = fh.read(64)
    if head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip's first member, or an empty zip
        raise ParamsFileError(f"load: {path!r} is not an .npz parameters file: it is "
                              f"{_what_it_is(head)}")
    size = os.fstat(fh.fileno()).st_size
    promised = _promised_count(fh, size)
    fh.seek(0)
    with zipfile.ZipFile(fh) as zf:
        members = zf.infolist()
        if promised is not None and promised != len(members):
            raise ParamsFileError(f"load: {path!r}: the zip directory promises {promised} arrays "
                                  f"but lists {len(members)}: the file is corrupt")
        _check_members(members, size, path, max_bytes, max_ratio)
        return {m.filename[:-4]: _read_member(zf, m, path) for m in members}


def _what_it_is(head: bytes) -> str:
    """What a file that is not a zip is, from its first bytes, for the error message."""
    if not head:
        return "empty (0 bytes)"
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array (numpy.save), not an .npz archive"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle, which load never unpickles"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "a PNG image"
    for cut in range(4):  # the 64 bytes read may end inside a character
        with contextlib.suppress(UnicodeDecodeError):
            text = head[: len(head) - cut].decode()
            if all(c.isprintable() or c in "\t\r\n" for c in text):
                return f"text ({text[:20]!r})"
            break
    return f"not a zip archive (it starts with the bytes {head[:8].hex(' ')})"


def _promised_count(fh: BinaryIO, size: int) -> int | None:
    """How many members the zip's end record promises, or None if it cannot say.

    Nothing checksums a zip's directory: one damaged length field in it can hide the entries
    after it, and the file would load with arrays silently missing.
    """
    start = max(0, size - (22 + 0xFFFF))  # the end record, and at most a full comment
    fh.seek(start)
    tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None  # zipfile refuses the file, or finds an end record we do not
    total: int = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    if total != 0xFFFF:
        return total
    # 0xFFFF: the count is in the zip64 end record, found by the locator just before
    locator = tail[at - 20 : at] if at >= 20 else b""
    if locator[:4] != b"PK\x06\x07":
        return None
    fh.seek(struct.unpack("<Q", locator[8:16])[0])
    record = fh.read(56)
    return struct.unpack("<Q", record[32:40])[0] if record[:4] == b"PK\x06\x06" else None


def _check_members(members: list[zipfile.ZipInfo], size: int, path: str,
                   max_bytes: int | None, max_ratio: float | None) -> None:
    """Names, compression and declared sizes, before anything is decompressed or allocated."""
    seen: set[str] = set()
    for m in members:
        name = m.orig_filename
        if not name.endswith(".npy") or name != m.filename:  # zipfile cuts a name at a NUL
            raise ParamsFileError(f"load: {path!r} holds the member {name!r}, which is not "
                                  "named as a .npy array")
        if name in seen:
            raise ParamsFileError(f"load: {path!r} holds {name[:-4]!r} twice: the file is "
                                  "corrupt")
        seen.add(name)
        if m.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or m.flag_bits & 1:
            raise ParamsFileError(f"load: {path!r} holds {name[:-4]!r} encrypted or compressed "
                                  f"by method {m.compress_type}; an .npz is stored or deflated")
        # the member's local header (at least 30 bytes and its name) and data fit in the file
        end = m.header_offset + 30 + len(name) + m.compress_size
        if end > size or (m.compress_type == zipfile.ZIP_STORED
                          and m.compress_size != m.file_size):
            raise ParamsFileError(f"load: {path!r}: the member {name!r} claims "
                                  f"{m.compress_size} bytes (for {m.file_size}) at offset "
                                  f"{m.header_offset} of a {size}-byte file: truncated or "
                                  "corrupt")
    # members may not share bytes: one kernel of data under many names is the overlapping zip
    # bomb, whose compressed bytes, counted once per name, would also hide its ratio
    if sum(30 + len(m.orig_filename) + m.compress_size for m in members) > size:
        raise ParamsFileError(f"load: {path!r}: its {len(members)} members claim more bytes than "
                              f"the {size}-byte file holds: they overlap (a zip bomb?) or it is "
                              "corrupt")
    deflated = [m for m in members if m.compress_type == zipfile.ZIP_DEFLATED]
    problem = declared_size_problem(sum(m.file_size for m in members), None, max_bytes, None)
    problem = problem or declared_size_problem(sum(m.file_size for m in deflated),
                                               sum(m.compress_size for m in deflated), None,
                                               max_ratio)
    if problem:
        raise ParamsFileError(f"load: {path!r} {problem}; pass max_bytes= or max_ratio= to "
                              "load a file you trust")


def _read_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, path: str) -> onp.ndarray:
    """One array, read to the end of its member, so that zipfile checks its CRC-32.

    Its header must account for exactly the member's bytes: a header that shrank (a shape of
    (1000,) flipped to (0000,)) would otherwise read a prefix, never reaching the CRC.
    """
    key = member.filename[:-4]
    with zf.open(member) as m:
        shape, fortran, dtype, header = _npy_header(m, key, path)
        count = math.prod(shape)
        if header + count * dtype.itemsize != member.file_size:
            raise ParamsFileError(f"load: {path!r} holds {key!r} of shape {shape} and dtype "
                                  f"{dtype} ({count * dtype.itemsize} bytes) in a member of "
                                  f"{member.file_size - header} bytes of data: corrupt")
        flat = onp.empty(count, dtype=dtype)
        data = flat.view(onp.uint8).data
        done = 0
        while done < len(data):
            n = m.readinto(data[done : done + _CHUNK])  # type: ignore[attr-defined]
            if not n:
                raise EOFError(f"{key!r} ends after {done} of its {len(data)} bytes")
            done += n  # the last read reaches the member's end, where zipfile checks its CRC
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _npy_header(m: IO[bytes], key: str, path: str) -> tuple[tuple[int, ...], bool, onp.dtype,
                                                           int]:
    """``(shape, fortran_order, dtype, header bytes)`` of the ``.npy`` header at ``m``.

    Parsed here, not by numpy: its errors would be raw (a tokenize error, a SyntaxError, a
    warning) or recommend ``allow_pickle``; ``ast.literal_eval`` builds literals and runs
    nothing.
    """
    def bad(what: str) -> ParamsFileError:
        return ParamsFileError(f"load: {path!r} holds {key!r}, whose .npy header {what}")

    magic = m.read(8)
    if magic[:6] != b"\x93NUMPY" or len(magic) < 8:
        raise bad("is missing (not a .npy array)")
    version = (magic[6], magic[7])
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise bad(f"has the unknown version {version}")
    width = 2 if version == (1, 0) else 4
    raw = m.read(width)
    length = int.from_bytes(raw, "little")
    if len(raw) < width or length > _MAX_HEADER:
        raise bad(f"claims {length} bytes (at most {_MAX_HEADER})")
    text = m.read(length)
    try:
        shape, fortran, descr = _parse_header(text.decode("utf-8" if version == (3, 0)
                                                          else "latin1"))
    except ValueError as e:
        raise bad(str(e)) from None
    dtype = None
    if isinstance(descr, str) and _NUMERIC_DESCR.fullmatch(descr):
        with contextlib.suppress(TypeError):  # "<f9": no such type
            dtype = onp.dtype(descr)
    if dtype is None or dtype.kind not in "biuf":
        raise ParamsFileError(f"load: {path!r} holds {key!r} of dtype {descr!r}, not a numeric "
                              "array")
    return shape, fortran, dtype, 8 + width + length


@functools.lru_cache(maxsize=256)  # the arrays of a file share few headers
def _parse_header(text: str) -> tuple[tuple[int, ...], bool, object]:
    """``(shape, fortran_order, descr)`` of an ``.npy`` header's text, or ``ValueError``."""
    try:
        d = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as e:
        raise ValueError(f"is not a Python literal ({type(e).__name__})") from None
    if not isinstance(d, dict) or d.keys() != {"descr", "fortran_order", "shape"}:
        raise ValueError("is not a dict of descr, fortran_order and shape")
    shape, fortran, descr = d["shape"], d["fortran_order"], d["descr"]
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise ValueError(f"has the shape {shape!r:.60}")
    if not isinstance(fortran, bool):
        raise ValueError(f"has fortran_order {fortran!r:.60}")
    return shape, fortran, descr


def _tree(items: dict[str, onp.ndarray], path: str) -> dict[str, Any]:
    """The nested dict of the flat ``items``, in their order, empty sub-dicts restored."""
    flat: dict[str, Any] = {}
    empty: list[tuple[str, dict[str, Any]]] = []
    for name, a in items.items():
        marker = name.endswith(EMPTY)
        key = name[: -len(EMPTY)] if marker else name
        if not all(key.split(".")):
            raise ParamsFileError(f"load: {path!r} holds the key {name!r}, not a dotted path")
        if key in flat:
            raise ParamsFileError(f"load: {path!r} holds {key!r} both as an array and as an "
                                  "empty dict")
        if not marker:
            flat[key] = a
        elif a.size:
            raise ParamsFileError(f"load: {path!r} holds {name!r}, which marks an empty dict, "
                                  f"with {a.size} values")
        else:
            node: dict[str, Any] = {}
            flat[key] = node
            empty.append((key, node))
    try:
        tree = unflatten(flat)
    except ValueError as e:
        raise ParamsFileError(f"load: {path!r}: {e}") from e
    for key, node in empty:
        if node:  # "1." then "1.W": the marker's dict was filled
            raise ParamsFileError(f"load: {path!r}: path {key!r} is an empty dict and something "
                                  "else as well")
    return tree

"""Fuzzing ``mf.save`` and ``mf.load``.

What "correct" means here (decided for issue 6):

- ``load(save(params))`` is ``params``: the same nested keys in the same order (empty
  sub-dicts included), and every array with the same dtype, shape and bytes, whatever it
  holds (NaN, infinities, 1e300, subnormals, zero-size arrays) and however it was laid out.
  Saving is faithful, not a judge of the values.
- ``save`` refuses what is not a dict of numeric arrays (object, string, complex arrays;
  lists; keys that are not non-empty strings without dots) and paths that cannot be written
  (a folder, a missing folder, not a path); then the target file, if any, is unchanged and no
  temporary file is left.
- ``load`` of a file that is truncated anywhere, has any byte flipped, is empty, is random
  bytes, is a ``.npy``, a pickle, or an ``.npz`` of strings or objects, either returns exactly
  what was saved (a flip in a byte the format does not check, such as a timestamp) or raises
  ``ParamsFileError`` (a ``ValueError``) naming the file, never numpy's or zipfile's own
  exception, never a MemoryError from a corrupted header. A missing file raises
  ``ParamsFileNotFoundError`` (a ``FileNotFoundError`` and a ``ValueError``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
import tempfile
import warnings
import zipfile

import numpy as onp
import pytest
from file_helpers import ROOT, assert_same_tree, special_file
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minifw as mf
from minifw.files import ParamsFileError, ParamsFileNotFoundError

from .harness import (
    EXTREME,
    INT_DTYPES,
    awkward,
    call,
    non_real,
    nonfinite,
    record,
    refused,
    returned,
    shapes,
    snapshot,
)

KEYS = st.text("abcW01_-", min_size=1, max_size=4)


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def _folder():
    return tempfile.TemporaryDirectory(prefix="minifw-fuzz-")


def _roundtrip(params):
    with _folder() as d:
        path = os.path.join(d, "p.npz")
        returned(call(mf.save, path, params))
        assert sorted(os.listdir(d)) == ["p.npz"]
        return returned(call(mf.load, path))


def trees(leaves, max_depth=2):
    return st.recursive(st.dictionaries(KEYS, leaves, max_size=3),
                        lambda children: st.dictionaries(KEYS, children, max_size=3),
                        max_leaves=6)


@given(params=trees(nonfinite(shapes(min_dims=0, max_dims=3))))
def test_nan_and_inf_are_saved_faithfully(params):
    record("mf.save", "nonfinite")
    record("mf.load", "nonfinite")
    assert_same_tree(params, _roundtrip(params))


@given(params=trees(hnp.arrays(onp.float64, shapes(min_dims=0, max_dims=2),
                               elements=st.sampled_from(EXTREME))))
def test_huge_tiny_and_subnormal_values_are_saved_faithfully(params):
    record("mf.save", "extreme")
    record("mf.load", "extreme")
    assert_same_tree(params, _roundtrip(params))


EMPTY = st.sampled_from([onp.zeros(0), onp.zeros((0, 3)), onp.zeros((2, 0, 1), onp.float32),
                         onp.zeros(0, bool)])


@given(params=st.one_of(trees(EMPTY), st.just({}), st.just({"0": {}, "1": {"W": onp.ones(1)}}),
                        trees(st.just({}))))
def test_empty_arrays_and_empty_sub_dicts_survive(params):
    record("mf.save", "empty")
    record("mf.load", "empty")
    assert_same_tree(params, _roundtrip(params))


@given(params=trees(hnp.arrays(onp.float64, shapes(min_dims=0, max_dims=5, max_side=3))))
def test_arrays_of_any_rank_survive(params):
    record("mf.save", "shape")
    record("mf.load", "shape")
    assert_same_tree(params, _roundtrip(params))


@given(params=trees(st.sampled_from(INT_DTYPES).flatmap(
    lambda d: hnp.arrays(d, shapes(min_dims=0, max_dims=2)))))
def test_integer_and_boolean_arrays_keep_their_dtype(params):
    record("mf.save", "intbool")
    record("mf.load", "intbool")
    assert_same_tree(params, _roundtrip(params))


@given(bad=non_real(max_dims=2), key=KEYS, data=st.data())
def test_non_real_arrays_are_refused_and_nothing_is_written(bad, key, data):
    record("mf.save", "object")
    with _folder() as d:
        path = os.path.join(d, "p.npz")
        mf.save(path, {"keep": onp.arange(3.0)})
        before = _read(path)
        params = {"ok": onp.ones(2), key: bad} if data.draw(st.booleans()) else {"a": {key: bad}}
        refused(call(mf.save, path, params), "numeric")
        assert _read(path) == before and sorted(os.listdir(d)) == ["p.npz"]


@given(params=st.dictionaries(KEYS, st.one_of(
    st.floats(allow_nan=True), st.integers(-(2**62), 2**62), st.booleans(),
    st.floats(width=32).map(onp.float32)), min_size=1, max_size=3))
def test_python_and_numpy_scalars_are_saved_as_0d_arrays(params):
    record("mf.save", "pylist")
    record("mf.load", "pylist")
    loaded = _roundtrip(params)
    assert list(loaded) == list(params)
    for k, v in params.items():
        assert loaded[k].shape == () and onp.asarray(v).tobytes() == loaded[k].tobytes()


@given(key=KEYS, value=st.sampled_from([[1.0, 2.0], (onp.ones(2),), [onp.ones(2)]]))
def test_lists_and_tuples_as_leaves_are_refused(key, value):
    record("mf.save", "pylist")
    with _folder() as d:
        refused(call(mf.save, os.path.join(d, "p.npz"), {key: value}), "list", "tuple")
        assert os.listdir(d) == []


@given(values=trees(hnp.arrays(onp.float64, shapes(min_dims=0, max_dims=3))), data=st.data())
def test_awkward_layouts_are_saved_as_their_values(values, data):
    record("mf.save", "layout")
    record("mf.load", "layout")

    def odd(tree):
        return {k: odd(v) if isinstance(v, dict) else data.draw(awkward(v))
                for k, v in tree.items()}

    params = odd(values)
    before = snapshot(params)
    assert_same_tree(values, _roundtrip(params))
    assert snapshot(params) == before


@given(bad=st.sampled_from([
    {"a.b": onp.ones(1)}, {"": onp.ones(1)}, {1: onp.ones(1)}, {"a": {"": onp.ones(1)}},
    {"a": {None: onp.ones(1)}}, {("a",): onp.ones(1)}, {"a": {"b.c": {}}},
]))
def test_keys_that_are_not_plain_names_are_refused(bad):
    record("mf.save", "structure")
    with _folder() as d:
        refused(call(mf.save, os.path.join(d, "p.npz"), bad), "keys")
        assert os.listdir(d) == []


@given(bad=st.sampled_from([onp.ones(2), [onp.ones(2)], None, "params", 3.0]))
def test_params_that_are_not_a_dict_are_refused(bad):
    record("mf.save", "structure")
    with _folder() as d:
        refused(call(mf.save, os.path.join(d, "p.npz"), bad), "dict")
        assert os.listdir(d) == []


@given(kind=st.sampled_from(["folder", "missing-folder", "int", "none", "empty", "list"]))
def test_paths_that_cannot_be_written_are_refused(kind):
    record("mf.save", "settings")
    with _folder() as d:
        path = {"folder": d, "missing-folder": os.path.join(d, "no", "p.npz"), "int": 3,
                "none": None, "empty": "", "list": [d]}[kind]
        out = call(mf.save, path, {"w": onp.ones(1)})
        e = refused(out, "path", "folder", types=(ValueError, TypeError, FileNotFoundError))
        assert kind != "missing-folder" or isinstance(e, FileNotFoundError)
        assert os.listdir(d) == []


# --- damaged files ----------------------------------------------------------------------------


def _saved_bytes(params):
    with _folder() as d:
        path = os.path.join(d, "p.npz")
        mf.save(path, params)
        return _read(path)


PARAMS = {"0": {"W": onp.arange(6.0).reshape(2, 3), "b": onp.array([-0.0, onp.nan, 1e300])},
          "1": {}, "2": {"n": onp.arange(4, dtype=onp.int32), "m": onp.array(True)}}
GOOD = _saved_bytes(PARAMS)


def _load_bytes(data, name="p.npz"):
    with _folder() as d:
        path = os.path.join(d, name)
        with open(path, "wb") as fh:
            fh.write(data)
        return call(mf.load, path), path


def _damaged(out, path):
    e = refused(out, os.path.basename(path), types=(ParamsFileError,))
    assert path in str(e)


@given(cut=st.integers(0, len(GOOD) - 1))
def test_a_truncated_file_is_refused_naming_it(cut):
    record("mf.load", "files")
    out, path = _load_bytes(GOOD[:cut])
    _damaged(out, path)


@given(where=st.integers(0, len(GOOD) - 1), mask=st.integers(1, 255))
def test_a_flipped_byte_is_refused_or_harmless(where, mask):
    _flipped_byte(GOOD, where, mask, PARAMS)


def _flipped_byte(good: bytes, where: int, mask: int, expected) -> None:
    """Load ``good`` with one byte XOR-ed by ``mask``: refused, or exactly ``expected``."""
    record("mf.load", "files")
    data = bytearray(good)
    data[where] ^= mask
    out, path = _load_bytes(bytes(data))
    if out.error is None:
        assert_same_tree(expected, out.value)
    else:
        _damaged(out, path)


@given(where=st.lists(st.integers(0, len(GOOD) - 1), min_size=2, max_size=20),
       data=st.data())
def test_many_flipped_bytes_are_refused_or_harmless(where, data):
    record("mf.load", "files")
    raw = bytearray(GOOD)
    for i in where:
        raw[i] = data.draw(st.integers(0, 255))
    out, path = _load_bytes(bytes(raw))
    if out.error is None:
        assert_same_tree(PARAMS, out.value)
    else:
        _damaged(out, path)


def _npy(a):
    buf = io.BytesIO()
    onp.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _npz(**arrays):
    buf = io.BytesIO()
    onp.savez(buf, **arrays)
    return buf.getvalue()


def _npz_compressed(**arrays):
    buf = io.BytesIO()
    onp.savez_compressed(buf, **arrays)
    return buf.getvalue()


FOREIGN = {
    "empty": b"",
    "text": b"W = [1, 2, 3]\n",
    "npy": _npy(onp.ones(3)),
    "pickle": pickle.dumps({"W": onp.ones(2)}),
    "strings": _npz(names=onp.array(["a", "b"])),
    "objects": _npz(W=onp.array([{"a": 1}, None], dtype=object)),
    "complex": _npz(W=onp.ones(2) * 1j),
    "conflict": _npz(**{"a.b": onp.ones(1), "a": onp.ones(1)}),
    "bad path": _npz(**{"a..b": onp.ones(1)}),
    "leading dot": _npz(**{".a": onp.ones(1)}),
    "zip of text": b"PK\x05\x06" + b"\x00" * 18,
}


@given(kind=st.sampled_from(sorted(FOREIGN)))
def test_files_that_are_not_params_are_refused_naming_them(kind):
    record("mf.load", "files")
    out, path = _load_bytes(FOREIGN[kind])
    if kind == "zip of text":  # an empty zip: an empty .npz, no arrays
        assert returned(out) == {}
    else:
        _damaged(out, path)


@given(raw=st.binary(max_size=200), prefix=st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY"]))
def test_random_bytes_are_refused(raw, prefix):
    record("mf.load", "files")
    out, path = _load_bytes(prefix + raw)
    if out.error is None:  # only an empty zip could pass: it holds no arrays
        assert out.value == {}
    else:
        _damaged(out, path)


COMPRESSED = _npz_compressed(**{"0.W": onp.arange(50.0), "0.b": onp.ones(3)})


@given(where=st.integers(0, len(COMPRESSED) - 1), mask=st.integers(1, 255))
def test_a_damaged_compressed_npz_is_refused_or_harmless(where, mask):
    _flipped_byte(COMPRESSED, where, mask, {"0": {"W": onp.arange(50.0), "b": onp.ones(3)}})


def _npz_with_header(header_edit):
    """An .npz whose one member's .npy header is edited, with a valid zip CRC: only the
    header lies (a corrupted length field, a forged shape or dtype)."""
    buf = io.BytesIO()
    onp.lib.format.write_array(buf, onp.arange(3.0))
    raw = buf.getvalue()
    end = raw.index(b"\n") + 1
    header = header_edit(raw[:end].decode("latin1").rstrip("\n").rstrip(" "))
    header = header.ljust(end - 1)[: end - 1] + "\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("W.npy", header.encode("latin1") + raw[end:])
    return out.getvalue()


@given(edit=st.sampled_from([
    ("'shape': (3,)", "'shape': (999999999999,)"),
    ("'shape': (3,)", "'shape': (99999, 99999, 99999)"),
    ("'shape': (3,)", "'shape': (-1,)"),
    ("'shape': (3,)", "'shape': (3, 'a')"),
    ("'descr': '<f8'", "'descr': '<U9'"),
    ("'descr': '<f8'", "'descr': '|O'"),
    ("'descr': '<f8'", "'descr': '<c16'"),
    ("'fortran_order': False", "'fortran_order': 7"),
]))
def test_a_header_that_lies_is_refused_without_allocating_what_it_claims(edit):
    record("mf.load", "files")
    old, new = edit
    out, path = _load_bytes(_npz_with_header(lambda h: h.replace(old, new)))
    _damaged(out, path)


@given(which=st.integers(0, 3), compressed=st.booleans())
def test_a_directory_entry_that_swallows_the_next_is_refused(which, compressed):
    # nothing checksums a zip's directory: a damaged "comment length" in one entry makes
    # zipfile read the next entry as that comment, and a member silently goes missing
    # (found by the dev profile: one flipped bit in a compressed .npz)
    record("mf.load", "files")
    arrays = {f"{i}.W": onp.full(3, float(i)) for i in range(5)}
    raw = bytearray((_npz_compressed if compressed else _npz)(**arrays))
    entries = [i for i in range(len(raw)) if raw[i:i + 4] == b"PK\x01\x02"]
    at, nxt = entries[which], entries[which + 1]
    raw[at + 32:at + 34] = _entry_length(raw, nxt).to_bytes(2, "little")
    out, path = _load_bytes(bytes(raw))
    _damaged(out, path)


def _entry_length(raw, at):
    n, m, k = (int.from_bytes(raw[at + o:at + o + 2], "little") for o in (28, 30, 32))
    return 46 + n + m + k


@given(name=st.sampled_from(["missing.npz", "missing", "sub/missing.npz"]))
def test_a_missing_file_is_a_file_not_found_error_naming_it(name):
    record("mf.load", "files")
    with _folder() as d:
        path = os.path.join(d, name)
        e = refused(call(mf.load, path), name.split("/")[-1], types=(ParamsFileNotFoundError,))
        assert isinstance(e, FileNotFoundError) and isinstance(e, ValueError)


@given(kind=st.sampled_from(["folder", "int", "none", "empty"]))
def test_load_refuses_paths_that_are_not_files(kind):
    record("mf.load", "settings")
    with _folder() as d:
        path = {"folder": d, "int": 3, "none": None, "empty": ""}[kind]
        refused(call(mf.load, path), "path", "folder")


@pytest.mark.parametrize("where", ["savez", "fsync", "replace", "chmod"])
def test_a_save_that_fails_midway_leaves_the_old_file_and_no_temp(where, monkeypatch):
    # (the fault tests in tests/test_faults.py cover interrupts; this is the fuzz table's row)
    record("mf.save", "files")
    from minifw import files

    with _folder() as d:
        path = os.path.join(d, "p.npz")
        mf.save(path, PARAMS)
        before = _read(path)

        def fail(*args, **kwargs):
            if where == "savez":
                args[0].write(b"PK\x03\x04 half")
            raise OSError(28, "No space left on device")

        target = {"savez": (files.onp, "savez"), "fsync": (files.os, "fsync"),
                  "replace": (files.os, "replace"), "chmod": (files.os, "chmod")}[where]
        with monkeypatch.context() as m:
            m.setattr(*target, fail)
            with pytest.raises(OSError, match="No space"):
                mf.save(path, {"new": onp.zeros(2)})
        assert _read(path) == before and sorted(os.listdir(d)) == ["p.npz"]


# --- issue 15: keys, flips of a 1000-element header, members, bombs, faults -------------------


@given(key=KEYS, at=st.integers(0, 4), bad=st.sampled_from(["\0", "\ud800", "\udfff"]),
       nested=st.booleans())
def test_keys_a_zip_cannot_hold_are_refused_and_nothing_is_written(key, at, bad, nested):
    record("mf.save", "structure")
    key = key[:at] + bad + key[at:]
    with _folder() as d:
        path = os.path.join(d, "p.npz")
        mf.save(path, PARAMS)
        before = _read(path)
        params = {"0": {key: onp.ones(1)}} if nested else {key: onp.ones(1)}
        refused(call(mf.save, path, params), "NUL", "UTF-8")
        assert _read(path) == before and sorted(os.listdir(d)) == ["p.npz"]


@given(length=st.integers(65_532, 70_000))
def test_paths_longer_than_a_zip_name_are_refused(length):
    record("mf.save", "structure")
    with _folder() as d:
        refused(call(mf.save, os.path.join(d, "p.npz"), {"k" * length: onp.ones(1)}),
                "zip member name")
        assert os.listdir(d) == []


THOUSAND = _saved_bytes({"W": onp.arange(1000.0)})


@given(where=st.integers(0, 200), bit=st.integers(0, 7))
def test_a_flipped_bit_in_the_headers_of_a_1000_element_array_is_refused_or_harmless(where,
                                                                                     bit):
    # the silently wrong loads: (1000,) flipped to (0000,), a shifted header length
    _flipped_byte(THOUSAND, where, 1 << bit, {"W": onp.arange(1000.0)})


def _members(names_and_arrays):
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": what a hostile
        # writer makes on purpose
        for name, a in names_and_arrays:
            with zf.open(name, "w") as m:
                onp.lib.format.write_array(m, a)
    return buf.getvalue()


@given(names=st.lists(st.sampled_from(["W.npy", "b.npy", "0.W.npy", "1..npy", "W.npz", "W",
                                       "a/b.npy", "x.npy.npy"]), min_size=1, max_size=4))
def test_members_that_repeat_or_are_not_arrays_are_refused(names):
    record("mf.load", "files")
    data = _members([(n, onp.zeros(0, "u1") if n == "1..npy" else onp.ones(2)) for n in names])
    out, path = _load_bytes(data)
    bad = len(set(names)) < len(names) or any(not n.endswith(".npy") for n in names)
    if bad:
        _damaged(out, path)
    else:  # "x.npy.npy" is the dotted path "x.npy": {"x": {"npy": ...}}
        assert len(returned(out)) == len({n.split(".")[0] for n in names})


@given(n=st.integers(0, 2**40), compressed=st.booleans(), extra=st.integers(0, 64))
def test_declared_sizes_are_checked_before_anything_is_allocated(n, compressed, extra):
    # a header claiming n float64 elements, over a few bytes of data: refused unless true,
    # never a MemoryError or an allocation of what the header claims
    record("mf.load", "bombs")
    text = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({n},), }}".ljust(117) + "\n"
    npy = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()
    npy += bytes(8 * min(n, 8) + extra)
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as zf:
        zf.writestr("W.npy", npy)
    out, path = _load_bytes(buf.getvalue())
    if n <= 8 and extra == 0:
        assert returned(out)["W"].shape == (n,)
    else:
        _damaged(out, path)


@given(mib=st.integers(2, 8), ratio=st.sampled_from([None, 10.0, 100.0, 2000.0]))
def test_a_deflate_bomb_is_refused_unless_its_ratio_is_allowed(mib, ratio):
    record("mf.load", "bombs")
    n = (mib << 20) // 8
    buf = io.BytesIO()
    onp.savez_compressed(buf, W=onp.zeros(n))  # about 1000 to 1
    out, path = _load_bytes_limited(buf.getvalue(), max_ratio=ratio)
    if ratio is None or ratio >= 1100:
        assert returned(out)["W"].shape == (n,)
    else:
        e = _damaged_error(out, path)
        assert "max_ratio" in str(e) and "bomb" in str(e)


@given(limit=st.integers(1, 20_000))
def test_the_stated_maximum_is_exact(limit):
    record("mf.load", "bombs")
    out, path = _load_bytes_limited(THOUSAND, max_bytes=limit)
    need = 1000 * 8 + 128
    if limit >= need:
        assert returned(out)["W"].shape == (1000,)
    else:
        assert "max_bytes" in str(_damaged_error(out, path))


def _load_bytes_limited(data, **limits):
    with _folder() as d:
        path = os.path.join(d, "p.npz")
        with open(path, "wb") as fh:
            fh.write(data)
        return call(mf.load, path, **limits), path


def _damaged_error(out, path):
    _damaged(out, path)
    return out.error


ERRNOS = [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO, errno.EDQUOT, errno.ENAMETOOLONG,
          errno.EPERM]


@given(code=st.sampled_from(ERRNOS),
       where=st.sampled_from(["mkstemp", "savez", "fsync", "chmod", "replace"]),
       existing=st.booleans())
def test_a_failing_file_system_names_the_target_and_changes_nothing(code, where, existing):
    record("mf.save", "faults")
    from minifw import atomic, files

    with _folder() as d:
        path = os.path.join(d, "p.npz")
        before = None
        if existing:
            mf.save(path, PARAMS)
            before = _read(path)

        def fail(*args, **kwargs):
            raise OSError(code, os.strerror(code), os.path.join(d, ".minifw-abcd1234.tmp"))

        target = {"mkstemp": (atomic.tempfile, "mkstemp"), "savez": (files.onp, "savez"),
                  "fsync": (files.os, "fsync"), "chmod": (files.os, "chmod"),
                  "replace": (files.os, "replace")}[where]
        with pytest.MonkeyPatch.context() as m:
            m.setattr(*target, fail)
            out = call(mf.save, path, {"new": onp.ones(2)})
        e = out.error
        assert isinstance(e, OSError) and e.errno == code, e
        assert path in str(e) and ".minifw-" not in str(e), e
        assert ("it was left as it was" if existing else "nothing was written") in str(e), e
        assert (_read(path) if existing else None) == before
        assert sorted(os.listdir(d)) == (["p.npz"] if existing else [])


@given(kind=st.sampled_from(["fifo", "device", "socket", "0444", "0400", "link to fifo",
                             "folder"]))
def test_save_replaces_only_a_regular_writable_file(kind):
    record("mf.save", "faults")
    if kind == "device" and not ROOT:
        return  # making a device node needs root
    with _folder() as d, contextlib.ExitStack() as stack:
        path = os.path.join(d, "p.npz")
        if kind in ("0444", "0400"):
            mf.save(path, PARAMS)
            os.chmod(path, int(kind, 8))
        elif kind == "folder":
            os.mkdir(path)
        else:
            stack.enter_context(special_file(path, kind))
        kept = os.lstat(path)
        out = call(mf.save, path, {"new": onp.ones(2)})
        refused(out, "regular file", "write-protected", "folder",
                types=(ValueError, PermissionError))
        now = os.lstat(path)
        assert (now.st_ino, now.st_mode, now.st_mtime_ns) == (kept.st_ino, kept.st_mode,
                                                             kept.st_mtime_ns)
        assert not [n for n in os.listdir(d) if n.startswith(".minifw-")]


@given(names=st.lists(st.sampled_from([
    ".minifw-abcd1234.tmp", ".minifw-zz_99_zz.tmp", ".minifw-abc.tmp", ".minifw-abcd1234.txt",
    "minifw-abcd1234.tmp", ".minifw-ABCD1234.tmp", ".minifw-abcd1234.tmp.keep"]), unique=True,
    max_size=5), kind=st.sampled_from(["file", "folder", "fifo", "link"]))
def test_the_next_save_sweeps_exactly_the_stale_entries_of_its_pattern(names, kind):
    record("mf.save", "faults")
    from minifw.atomic import PATTERN

    with _folder() as d:
        for name in names:
            path = os.path.join(d, name)
            if kind == "file":
                with open(path, "wb") as fh:
                    fh.write(b"left by a killed save")
            elif kind == "folder":
                os.mkdir(path)
                with open(os.path.join(path, "params.npz"), "wb") as fh:
                    fh.write(b"half")
            elif kind == "fifo":
                os.mkfifo(path)
            else:
                os.symlink(os.path.join(d, "elsewhere"), path)
        returned(call(mf.save, os.path.join(d, "p.npz"), PARAMS))
        swept = {n for n in names if PATTERN.fullmatch(n) and kind in ("file", "folder")}
        assert sorted(os.listdir(d)) == sorted({*names, "p.npz"} - swept)

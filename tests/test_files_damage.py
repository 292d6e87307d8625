"""Damaged and hostile ``.npz`` files (issue 15, items 3, 6, 9 and 10).

Every single-bit flip of every header byte of a small file (zip local headers, ``.npy``
headers, the central directory, the end record) is refused or loads exactly what was saved,
and so is every flip of its data; duplicate, renamed and NUL-named members are refused;
declared sizes beyond the file, the stated maximum or the compression ratio are refused before
anything is allocated; and what is not an ``.npz`` is named for what it is, without numpy's
advice to unpickle it.

Zip files with lying fields are built here byte by byte (:func:`zip_bytes`), so that a test
can say exactly what the file claims.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
import zlib

import numpy as onp
import pytest
from file_helpers import assert_same_tree, peak_and_error

import minifw as mf
from minifw import files
from minifw.files import ParamsFileError
from minifw.limits import GRACE_BYTES

SMALL = {"0": {"W": onp.arange(4.0)}, "1": {}, "2": {"n": onp.array([7], dtype=onp.int16)}}


def _saved_bytes(tmp_path, params):
    mf.save(tmp_path / "good.npz", params)
    return (tmp_path / "good.npz").read_bytes()


def _load_bytes(tmp_path, data, **limits):
    path = tmp_path / "p.npz"
    path.write_bytes(data)
    return mf.load(path, **limits)


def _refused(tmp_path, data, *words, **limits):
    with pytest.raises(ParamsFileError) as raised:
        _load_bytes(tmp_path, data, **limits)
    message = str(raised.value)
    assert str(tmp_path / "p.npz") in message, message
    assert "allow_pickle" not in message and "pickle.load" not in message, message
    said = message.replace(str(tmp_path / "p.npz"), "")  # the words, not the test's folder name
    assert not words or any(w in said for w in words), message
    return message


# --- every bit of every header ----------------------------------------------------------------


def _regions(data):
    """``{region: byte offsets}`` of a file written by ``save``: headers and array data."""
    regions = {"local headers": [], "npy headers": [], "data": [], "directory": [],
               "end record": list(range(data.rindex(b"PK\x05\x06"), len(data)))}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for m in zf.infolist():
            n, k = struct.unpack("<HH", data[m.header_offset + 26:m.header_offset + 30])
            start = m.header_offset + 30 + n + k
            npy = data[start:start + m.file_size]
            header = 10 + struct.unpack("<H", npy[8:10])[0]
            regions["local headers"] += range(m.header_offset, start)
            regions["npy headers"] += range(start, start + header)
            regions["data"] += range(start + header, start + m.file_size)
        regions["directory"] = list(range(zf.start_dir, regions["end record"][0]))
    return regions


#: A small file of several members (an empty dict, an int16 array), and one of the issue's
#: shape: a 1000-element array whose header a flip can shrink to (0000,).
FILES = {"small": SMALL, "1000": {"W": onp.arange(1000.0)}}
REGIONS = ["local headers", "npy headers", "directory", "end record"]


@pytest.mark.parametrize("name, region", [*((f, r) for f in FILES for r in REGIONS),
                                          ("small", "data")])
def test_every_bit_flip_is_refused_or_harmless(tmp_path, name, region):
    params = FILES[name]
    good = _saved_bytes(tmp_path, params)
    where = _regions(good)[region]
    assert where
    refused = 0
    for i in where:
        for bit in range(8):
            data = bytearray(good)
            data[i] ^= 1 << bit
            try:
                loaded = _load_bytes(tmp_path, bytes(data))
            except ParamsFileError as e:
                assert "allow_pickle" not in str(e) and str(tmp_path) in str(e), e
                refused += 1
                continue
            assert_same_tree(params, loaded)  # a byte nothing reads: a timestamp, an attribute
    assert refused > 0
    if region in ("npy headers", "data"):  # covered by the member's CRC-32: all refused
        assert refused == 8 * len(where)


def test_a_header_that_lies_about_the_shape_is_refused_even_with_a_matching_crc(tmp_path):
    # (1000,) -> (0000,): the header still fits in the member, but the member's size does not
    # fit the header, whatever the CRC says (the silently empty array)
    a = onp.arange(1000.0)
    buf = io.BytesIO()
    onp.lib.format.write_array(buf, a)
    npy = buf.getvalue().replace(b"(1000,)", b"(0000,)")
    data = zip_bytes([("W.npy", npy)])
    _refused(tmp_path, data, "shape (0,)")


# --- members: duplicates, names, counts -------------------------------------------------------


def _npy(a):
    buf = io.BytesIO()
    onp.lib.format.write_array(buf, onp.asarray(a))
    return buf.getvalue()


def zip_bytes(members, *, sizes=None, method=0, count=None, zip64_end=False):
    """A zip of ``members`` (name, data), written by hand; its fields can lie.

    ``sizes`` overrides each member's declared (uncompressed) size, ``method`` is the
    compression method written (0 stored; 8 for data already deflated), ``count`` the number
    of entries the end record promises (in a zip64 end record if ``zip64_end``, as written for
    65,535 members or more). Sizes are in zip64 extra fields, as numpy writes them.
    """
    local, central, at = [], [], 0
    for i, (name, data) in enumerate(members):
        raw = name.encode()
        size = len(data) if sizes is None else sizes[i]
        crc = zlib.crc32(data) if method == 0 and sizes is None else 0
        extra = struct.pack("<HHQQ", 1, 16, size, len(data))
        head = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0x800, method, 0, 0x21, crc,
                           0xFFFFFFFF, 0xFFFFFFFF, len(raw), len(extra))
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0x800, method, 0,
                                   0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(raw), len(extra), 0,
                                   0, 0, 0, at) + raw + extra)
        local.append(head + raw + extra + data)
        at += len(local[-1])
    n = len(members) if count is None else count
    directory = b"".join(central)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(directory), at, 0)
    if zip64_end:  # the count in a zip64 end record, found by its locator; 0xFFFF in the end
        record = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(directory),
                             at)
        locator = struct.pack("<IIQI", 0x07064B50, 0, at + len(directory), 1)
        end = record + locator + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF,
                                             len(directory), at, 0)
    return b"".join(local) + directory + end


def test_the_hand_written_zip_is_what_numpy_reads(tmp_path):
    data = zip_bytes([("0.W.npy", _npy(onp.arange(3.0))), ("1..npy", _npy(onp.zeros(0, "u1")))])
    assert_same_tree({"0": {"W": onp.arange(3.0)}, "1": {}}, _load_bytes(tmp_path, data))
    assert onp.load(io.BytesIO(data))["0.W"].tolist() == [0.0, 1.0, 2.0]


def test_duplicate_members_are_refused_not_last_wins(tmp_path):
    data = zip_bytes([("W.npy", _npy(onp.zeros(2))), ("W.npy", _npy(onp.ones(2)))])
    _refused(tmp_path, data, "twice")


@pytest.mark.parametrize("name, words", [
    ("W\0x.npy", ("not named",)),  # zipfile cuts the name at the NUL
    ("W.txt", ("not named",)),
    ("a..b.npy", ("not a dotted path",)),
    ("a.npy.npz", ("not named",)),
])
def test_members_not_named_as_arrays_are_refused(tmp_path, name, words):
    _refused(tmp_path, zip_bytes([(name, _npy(onp.ones(1)))]), *words)


@pytest.mark.parametrize("names", [3, 50])
def test_members_that_share_their_bytes_are_refused_before_any_is_read(tmp_path, names):
    # the overlapping zip bomb: many directory entries, one kernel of data. Here every entry,
    # each under a name of its own, points at one stored member
    one = zip_bytes([("W.npy", _npy(onp.ones(1000)))])
    start = one.index(b"PK\x01\x02")
    entry = one[start:one.index(b"PK\x05\x06")]
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    directory = b"".join(entry[:46] + f"{c}.npy".encode() + entry[51:] for c in letters[:names])
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, names, names, len(directory), start, 0)
    peak, error = peak_and_error(lambda: _load_bytes(tmp_path, one[:start] + directory + end),
                                 (ParamsFileError,))
    assert error is not None and "overlap" in str(error), error
    assert peak < 1e6


def test_a_marker_of_an_empty_dict_that_holds_data_is_refused(tmp_path):
    _refused(tmp_path, zip_bytes([("1..npy", _npy(onp.ones(3)))]), "marks an empty dict")


@pytest.mark.parametrize("order", [("1..npy", "1.W.npy"), ("1.W.npy", "1..npy")])
def test_an_empty_dict_that_also_holds_an_array_is_refused(tmp_path, order):
    members = [(n, _npy(onp.zeros(0, "u1") if n == "1..npy" else onp.ones(1))) for n in order]
    _refused(tmp_path, zip_bytes(members), "empty dict", "both a leaf and a subtree")


def test_an_array_and_an_empty_dict_of_one_name_are_refused(tmp_path):
    data = zip_bytes([("1.npy", _npy(onp.ones(1))), ("1..npy", _npy(onp.zeros(0, "u1")))])
    _refused(tmp_path, data, "both")


@pytest.mark.parametrize("zip64_end", [False, True])
@pytest.mark.parametrize("count", [1, 3])
def test_an_end_record_that_miscounts_the_members_is_refused(tmp_path, count, zip64_end):
    members = [("a.npy", _npy(onp.ones(1))), ("b.npy", _npy(onp.ones(1)))]
    _refused(tmp_path, zip_bytes(members, count=count, zip64_end=zip64_end), "promises")
    assert list(_load_bytes(tmp_path, zip_bytes(members, zip64_end=zip64_end))) == ["a", "b"]


def test_a_file_that_cannot_be_opened_is_the_loaders_error(tmp_path, monkeypatch):
    (tmp_path / "p.npz").write_bytes(b"")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "p.npz"))

    monkeypatch.setattr(files.os, "open", denied)
    with pytest.raises(ParamsFileError, match=r"cannot open .*p\.npz.*Permission denied"):
        mf.load(tmp_path / "p.npz")


def test_sixteen_thousand_members_are_listed_once(tmp_path, monkeypatch):
    # 32,000 tiny members took 42 s when the member list was rebuilt for each member
    # (quadratic); counted, not timed: the entries of every list zipfile hands out in a load
    n = 16_000
    data = zip_bytes([(f"k{i}.npy", _npy(onp.array([float(i)]))) for i in range(n)])
    listed = []
    for name in ("infolist", "namelist"):
        def counted(self, real=getattr(zipfile.ZipFile, name)):
            out = real(self)
            listed.append(len(out))
            return out

        monkeypatch.setattr(zipfile.ZipFile, name, counted)
    loaded = _load_bytes(tmp_path, data)
    assert len(loaded) == n and loaded["k15999"].tolist() == [15999.0]
    assert sum(listed) == n, f"{len(listed)} lists of members, {sum(listed)} entries in all"


# --- declared sizes: limits before allocation -------------------------------------------------


def _header_of(n):
    """The 128-byte ``.npy`` header (version 1.0) of ``n`` float64 elements."""
    text = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({n},), }}".ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def _deflated_zeros(mib):
    """Raw deflate data of ``mib`` MiB of zeros, built from one repeated block (fast)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)  # resets: blocks repeat
    return block * mib + c.flush(zlib.Z_FINISH)


def test_a_deflate_bomb_of_four_gib_is_refused_without_allocating_it(tmp_path, monkeypatch):
    # 4 MB of deflate data that would inflate to 4 GiB of zeros (the 4.2 MB file),
    # refused before any member is opened, so before anything is inflated
    n = 2**29  # float64 elements: 4 GiB
    header = _header_of(n)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH) + _deflated_zeros(4096)
    data = zip_bytes([("W.npy", packed)], sizes=[len(header) + 8 * n], method=8)
    assert len(data) < 5e6

    def opened(*args, **kwargs):
        raise AssertionError("a member of the bomb was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", opened)
    for limits, words in (({}, "more than max_bytes=4294967296"),  # 4 GiB and its header
                          ({"max_bytes": None}, "(1011 to 1), more than max_ratio=100"),
                          ({"max_bytes": 2**33, "max_ratio": 1000.0}, "more than max_ratio")):
        peak, error = peak_and_error(lambda: _load_bytes(tmp_path, data, **limits),
                                     (ParamsFileError,))
        said = str(error).replace(str(tmp_path), "")
        assert error is not None and words in said, error
        assert peak < 64e6, (peak, error)


def test_an_honest_high_ratio_file_is_refused_by_default_and_loads_when_allowed(tmp_path):
    buf = io.BytesIO()
    onp.savez_compressed(buf, W=onp.zeros(2**20))  # 8 MiB of zeros in about 8 kB
    _refused(tmp_path, buf.getvalue(), "max_ratio")
    loaded = _load_bytes(tmp_path, buf.getvalue(), max_ratio=None)
    assert loaded["W"].shape == (2**20,) and not loaded["W"].any()
    small = io.BytesIO()
    n = (GRACE_BYTES - 128) // 8  # with its 128-byte header, within the grace: accepted
    onp.savez_compressed(small, W=onp.zeros(n))
    assert _load_bytes(tmp_path, small.getvalue())["W"].shape == (n,)


def test_the_stated_maximum_is_checked_before_reading(tmp_path):
    good = _saved_bytes(tmp_path, {"W": onp.ones(1000)})
    _refused(tmp_path, good, "max_bytes=4096", max_bytes=4096)
    assert _load_bytes(tmp_path, good, max_bytes=9000)["W"].shape == (1000,)


@pytest.mark.parametrize("claim", [2**45, 2**32 + 128, 10**6])
def test_sizes_beyond_the_file_are_refused_without_allocating(tmp_path, claim):
    # the 320-byte zip64 file that asked numpy for 32 TiB
    npy = _header_of((claim - 128) // 8) + bytes(64)
    data = zip_bytes([("W.npy", npy)], sizes=[claim])
    assert len(data) < 400
    peak, error = peak_and_error(lambda: _load_bytes(tmp_path, data), (ParamsFileError,))
    assert error is not None and "truncated or corrupt" in str(error), error
    assert peak < 1e6


@pytest.mark.parametrize("method, words", [(12, "method 12"), (14, "method 14"),
                                           (99, "method 99")])
def test_compression_other_than_stored_or_deflate_is_refused(tmp_path, method, words):
    data = zip_bytes([("W.npy", _npy(onp.ones(2)))], method=method)
    _refused(tmp_path, data, words)


# --- what is not an .npz ----------------------------------------------------------------------


def _png():
    return b"\x89PNG\r\n\x1a\n" + bytes(40)


FOREIGN = {
    "text": (b"W = [1, 2, 3]\n", "text ('W = [1, 2, 3]"),
    "utf-8 text": (("température 20 °C, " * 5).encode(), "text ('temp"),
    "png": (_png(), "a PNG image"),
    "gzip": (b"\x1f\x8b\x08\x00" + bytes(30), "gzip"),
    "pickle": (pickle.dumps({"W": [1.0]}), "pickle, which load never unpickles"),
    "npy": (_npy(onp.ones(3)), "single .npy array"),
    "random": (bytes(range(7, 200)), "not a zip archive (it starts with the bytes 07 08"),
    "empty": (b"", "empty (0 bytes)"),
}


@pytest.mark.parametrize("kind", list(FOREIGN))
def test_what_is_not_an_npz_is_named_for_what_it_is(tmp_path, kind):
    data, words = FOREIGN[kind]
    message = _refused(tmp_path, data, words)
    assert "is not an .npz parameters file" in message


@pytest.mark.parametrize("text", [
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), ",  # cut short: a tokenize error
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)" + ")" * 50 + "}",
    "(" * 5000 + ")" * 5000,  # nested too deep for the parser
    "{'descr': ',f8', 'fortran_order': False, 'shape': (3,), }",  # numpy.dtype: SyntaxError
    "{'descr': '<f9', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}",
    "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,), }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (" + "9" * 5000 + ",), }",
    "__import__('os').system('touch pwned')",
])
def test_a_header_numpy_would_choke_on_is_the_loaders_own_error(tmp_path, text):
    raw = text.encode()
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + bytes(24)
    _refused(tmp_path, zip_bytes([("W.npy", npy)]), "'W'")
    assert not os.path.exists("pwned")

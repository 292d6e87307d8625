"""Fuzzing the data loaders: ``datasets.read_idx``, ``write_idx``, ``load_mnist`` (never with a
download: ``download=False`` and a temporary cache folder) and ``load_digits``.

What "correct" means here (decided for issue 6):

- ``read_idx`` returns exactly what ``write_idx`` wrote, gzipped or not, or raises
  ``ValueError`` naming the file for anything damaged: a truncated file, a flipped byte in the
  header or in a gzip stream (gzip's CRC catches those), a wrong magic number or number of
  dimensions, a payload longer or shorter than the header says. IDX has no checksum, so a
  flipped byte in a raw (not gzipped) payload is indistinguishable from data: that one byte
  of the result differs and nothing else. A missing file is a ``FileNotFoundError`` naming it.
- ``load_mnist`` of a cache folder holding damaged files raises ``ValueError`` naming the
  file (or ``DatasetNotFoundError``, a ``FileNotFoundError``, for missing ones), labels that
  are not digits and images and labels of different counts included.
- ``write_idx`` refuses arrays that are not uint8 with at least one axis; ``load_digits``
  refuses a ``test_fraction`` outside (0, 1) and a ``seed`` that is not a whole number >= 0.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile

import numpy as onp
import pytest
from file_helpers import ROOT, special_file
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minifw import datasets
from minifw.datasets import DatasetNotFoundError, load_mnist, read_idx, write_idx

from .harness import (
    INT_DTYPES,
    awkward,
    call,
    non_real,
    record,
    refused,
    returned,
    shapes,
)


def _folder():
    return tempfile.TemporaryDirectory(prefix="minifw-fuzz-")


def _write_bytes(folder, name, data):
    path = os.path.join(folder, name)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def _idx_bytes(a, gz):
    with _folder() as d:
        path = os.path.join(d, "f.gz" if gz else "f")
        write_idx(path, a)
        with open(path, "rb") as fh:
            return fh.read()


def _header_length(a):
    return 4 + 4 * a.ndim


UINT8 = hnp.arrays(onp.uint8, shapes(min_dims=1, max_dims=3, max_side=5))


def _damaged(out, path):
    e = refused(out, os.path.basename(path))
    assert path in str(e)


@given(a=UINT8, gz=st.booleans(), data=st.data())
def test_a_truncated_idx_file_is_refused_naming_it(a, gz, data):
    record("datasets.read_idx", "files")
    raw = _idx_bytes(a, gz)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with _folder() as d:
        path = _write_bytes(d, "f.gz" if gz else "f", raw[:cut])
        _damaged(call(read_idx, path), path)


@given(a=UINT8, gz=st.booleans(), data=st.data())
def test_a_flipped_byte_is_refused_or_only_changes_that_pixel(a, gz, data):
    record("datasets.read_idx", "files")
    raw = bytearray(_idx_bytes(a, gz))
    where = data.draw(st.integers(0, len(raw) - 1))
    raw[where] ^= data.draw(st.integers(1, 255))
    with _folder() as d:
        path = _write_bytes(d, "f", bytes(raw))
        out = call(read_idx, path, ndim=a.ndim)
        if out.error is not None:
            _damaged(out, path)
            return
        got = out.value
        if gz:  # gzip's CRC: an accepted flip was in the header's name or time fields
            assert got.tobytes() == a.tobytes() and got.shape == a.shape
        else:
            assert where >= _header_length(a) and got.shape == a.shape
            diff = onp.flatnonzero(got.ravel() != a.ravel())
            assert diff.tolist() == [where - _header_length(a)]


@given(a=UINT8, extra=st.binary(min_size=1, max_size=5))
def test_a_payload_longer_than_the_header_says_is_refused(a, extra):
    record("datasets.read_idx", "files")
    with _folder() as d:
        path = _write_bytes(d, "f", _idx_bytes(a, False) + extra)
        _damaged(call(read_idx, path), path)


@given(raw=st.binary(max_size=64), prefix=st.sampled_from([b"", b"\x00\x00\x08", b"\x1f\x8b"]))
def test_random_bytes_are_refused_or_read_as_what_they_say(raw, prefix):
    record("datasets.read_idx", "files")
    with _folder() as d:
        path = _write_bytes(d, "f", prefix + raw)
        out = call(read_idx, path)
        if out.error is None:
            assert out.value.dtype == onp.uint8
        else:
            _damaged(out, path)


@given(a=UINT8, ndim=st.integers(1, 4))
def test_the_wrong_number_of_dimensions_is_refused_naming_the_magic(a, ndim):
    record("datasets.read_idx", "shape")
    with _folder() as d:
        path = _write_bytes(d, "f", _idx_bytes(a, False))
        out = call(read_idx, path, ndim=ndim)
        if ndim == a.ndim:
            assert returned(out).tobytes() == a.tobytes()
        else:
            e = refused(out, "magic")
            assert path in str(e)


@given(ndim=st.sampled_from([0, -1, 256, 2.5, True, "3", [1]]))
def test_a_nonsensical_ndim_is_refused(ndim):
    record("datasets.read_idx", "settings")
    with _folder() as d:
        path = _write_bytes(d, "f", _idx_bytes(onp.zeros(2, onp.uint8), False))
        refused(call(read_idx, path, ndim=ndim), "ndim")


@given(kind=st.sampled_from(["missing", "folder", "int", "none", "empty"]))
def test_read_idx_of_what_is_not_a_file(kind):
    record("datasets.read_idx", "files")
    with _folder() as d:
        path = {"missing": os.path.join(d, "nope"), "folder": d, "int": 3, "none": None,
                "empty": ""}[kind]
        out = call(read_idx, path)
        refused(out, "no such", "folder", "path", types=(ValueError, TypeError,
                                                          FileNotFoundError))
        assert kind != "missing" or isinstance(out.error, FileNotFoundError)


@given(a=UINT8.filter(lambda a: a.size), gz=st.booleans(), data=st.data())
def test_write_idx_of_awkward_arrays_reads_back_the_values(a, gz, data):
    record("datasets.write_idx", "layout")
    with _folder() as d:
        path = os.path.join(d, "f.gz" if gz else "f")
        returned(call(write_idx, path, data.draw(awkward(a))))
        assert read_idx(path).tobytes() == a.tobytes()


@given(a=st.one_of(non_real(max_dims=2),
                   st.sampled_from([d for d in INT_DTYPES if d is not onp.uint8]).map(
                       lambda d: onp.zeros(3, d)),
                   hnp.arrays(onp.float64, shapes(max_dims=2))))
def test_write_idx_refuses_what_is_not_uint8(a):
    record("datasets.write_idx", "object")
    with _folder() as d:
        refused(call(write_idx, os.path.join(d, "f"), a), "uint8")
        assert os.listdir(d) == []


@given(a=st.sampled_from([onp.uint8(3), onp.array(3, onp.uint8)]))
def test_write_idx_refuses_scalars(a):
    record("datasets.write_idx", "shape")
    with _folder() as d:
        refused(call(write_idx, os.path.join(d, "f"), a), "dimension")


@given(a=hnp.arrays(onp.uint8, shapes(min_dims=1, max_dims=3, min_side=0, max_side=3)))
def test_write_idx_of_empty_arrays_round_trips(a):
    record("datasets.write_idx", "empty")
    with _folder() as d:
        path = os.path.join(d, "f")
        returned(call(write_idx, path, a))
        got = read_idx(path)
        assert got.shape == a.shape


@given(a=st.lists(st.integers(0, 255), min_size=1, max_size=5))
def test_write_idx_of_a_list_of_ints_is_refused_as_not_uint8(a):
    record("datasets.write_idx", "pylist")
    with _folder() as d:
        refused(call(write_idx, os.path.join(d, "f"), a), "uint8")


# --- load_mnist -------------------------------------------------------------------------------


def _mnist_folder(d, images=(2, 28, 28), labels=2, label_values=None, gz=True):
    for prefix in ("train", "t10k"):
        write_idx(os.path.join(d, f"{prefix}-images-idx3-ubyte" + (".gz" if gz else "")),
                  onp.ones(images, onp.uint8))
        lab = onp.array(label_values if label_values is not None else [3] * labels, onp.uint8)
        write_idx(os.path.join(d, f"{prefix}-labels-idx1-ubyte" + (".gz" if gz else "")), lab)


@given(which=st.sampled_from(sorted(datasets.MNIST_FILES.values())), data=st.data())
def test_load_mnist_refuses_a_damaged_file_naming_it(which, data):
    record("datasets.load_mnist", "files")
    with _folder() as d:
        _mnist_folder(d)
        path = os.path.join(d, which)
        with open(path, "rb") as fh:
            raw = bytearray(fh.read())
        if data.draw(st.booleans()):
            raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
        else:
            where = data.draw(st.integers(0, len(raw) - 1))
            raw[where] ^= data.draw(st.integers(1, 255))
        _write_bytes(d, which, bytes(raw))
        out = call(load_mnist, cache_dir=d, download=False)
        if out.error is not None:
            e = refused(out, which)
            assert path in str(e)
        else:  # a flip in gzip's name or time fields: harmless
            (x, t), _ = out.value
            assert x.shape == (2, 784) and t.tolist() == [3, 3]


@given(missing=st.sets(st.sampled_from(sorted(datasets.MNIST_FILES.values())), min_size=1))
def test_load_mnist_names_missing_files_and_does_not_download(missing):
    record("datasets.load_mnist", "files")
    with _folder() as d:
        _mnist_folder(d)
        for name in missing:
            os.remove(os.path.join(d, name))
        out = call(load_mnist, cache_dir=d, download=False)
        e = refused(out, *missing, types=(DatasetNotFoundError,))
        assert all(name in str(e) for name in missing) and d in str(e)


@given(values=st.lists(st.integers(0, 255), min_size=2, max_size=2).filter(
    lambda v: max(v) > 9))
def test_load_mnist_refuses_labels_that_are_not_digits(values):
    record("datasets.load_mnist", "labels")
    with _folder() as d:
        _mnist_folder(d, label_values=values)
        refused(call(load_mnist, cache_dir=d, download=False), "label")


@given(n_images=st.integers(0, 3), n_labels=st.integers(0, 3))
def test_load_mnist_refuses_counts_that_differ_and_takes_empty_sets(n_images, n_labels):
    record("datasets.load_mnist", "empty" if n_images == n_labels == 0 else "shape")
    with _folder() as d:
        _mnist_folder(d, images=(n_images, 28, 28), labels=n_labels)
        out = call(load_mnist, cache_dir=d, download=False)
        if n_images == n_labels:
            (x, t), _ = returned(out)
            assert x.shape == (n_images, 784) and t.shape == (n_images,)
        else:
            refused(out, "images", "labels")


@given(images=st.sampled_from([(2, 784), (2, 28, 28, 1), (2,)]))
def test_load_mnist_refuses_images_of_the_wrong_rank(images):
    record("datasets.load_mnist", "shape")
    with _folder() as d:
        _mnist_folder(d, images=images)
        refused(call(load_mnist, cache_dir=d, download=False), "dimensions")


@given(cache=st.sampled_from([3, [], b"", ""]))
def test_load_mnist_refuses_a_cache_dir_that_is_not_a_path(cache):
    record("datasets.load_mnist", "settings")
    refused(call(load_mnist, cache_dir=cache, download=False), "cache_dir")


# --- load_digits ------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["test_fraction", "seed"])
@given(data=st.data())
def test_load_digits_refuses_nonsensical_settings_by_name(setting, data):
    record("datasets.load_digits", "settings")
    bad = {"test_fraction": [0, 1, -0.5, 1.5, onp.nan, onp.inf, True, "0.2", None, [0.2]],
           "seed": [-1, 0.5, True, "0", None, onp.nan, [0]]}[setting]
    refused(call(datasets.load_digits, **{setting: data.draw(st.sampled_from(bad))}), setting)


@given(data=st.data())
def test_gzip_of_garbage_is_refused(data):
    record("datasets.read_idx", "files")
    raw = gzip.compress(data.draw(st.binary(max_size=32)), mtime=0)
    with _folder() as d:
        path = _write_bytes(d, "f.gz", raw)
        out = call(read_idx, path)
        if out.error is None:
            assert out.value.dtype == onp.uint8
        else:
            _damaged(out, path)


# --- issue 15: streaming limits, image sizes, special files, downloads ------------------------


@given(shape=st.tuples(st.integers(0, 2**20), st.integers(0, 64), st.integers(0, 64)),
       payload=st.integers(0, 3000), gz=st.booleans())
def test_a_header_is_held_to_its_payload_before_the_payload_is_allocated(shape, payload, gz):
    record("datasets.read_idx", "bombs")
    raw = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in shape) + bytes(payload)
    with _folder() as d:
        path = _write_bytes(d, "f.gz" if gz else "f", gzip.compress(raw, mtime=0) if gz else raw)
        out = call(read_idx, path)
        if shape[0] * shape[1] * shape[2] == payload:
            assert returned(out).shape == shape
        else:
            _damaged(out, path)


@given(mib=st.integers(2, 6), ratio=st.sampled_from([None, 50.0, 5000.0]))
def test_a_gzip_of_zeros_beyond_the_ratio_is_refused_unless_allowed(mib, ratio):
    record("datasets.read_idx", "bombs")
    a = onp.zeros((mib, 1024, 1024), onp.uint8)
    with _folder() as d:
        path = os.path.join(d, "f.gz")
        write_idx(path, a)  # about 1000 to 1
        out = call(read_idx, path, max_ratio=ratio)
        if ratio is None or ratio > 1100:
            assert returned(out).shape == a.shape
        else:
            assert "max_ratio" in str(refused(out, "f.gz"))


@given(train=st.tuples(st.integers(1, 30), st.integers(1, 30)),
       test=st.tuples(st.integers(1, 30), st.integers(1, 30)))
def test_load_mnist_refuses_training_and_test_images_of_different_sizes(train, test):
    record("datasets.load_mnist", "shape")
    with _folder() as d:
        for prefix, (h, w) in (("train", train), ("t10k", test)):
            write_idx(os.path.join(d, f"{prefix}-images-idx3-ubyte.gz"),
                      onp.ones((2, h, w), onp.uint8))
            write_idx(os.path.join(d, f"{prefix}-labels-idx1-ubyte.gz"),
                      onp.array([1, 2], onp.uint8))
        out = call(load_mnist, cache_dir=d, download=False, flatten=False)
        if train == test:
            (x, _), (x_test, _) = returned(out)
            assert x.shape[2:] == x_test.shape[2:] == train
        else:
            e = refused(out, "same size")
            assert f"{train[0]}x{train[1]}" in str(e) and f"{test[0]}x{test[1]}" in str(e)


@given(kind=st.sampled_from(["fifo", "device", "socket", "link to fifo"]))
def test_read_idx_refuses_what_is_not_a_regular_file_without_blocking(kind):
    record("datasets.read_idx", "faults")
    if kind == "device" and not ROOT:
        return  # making a device node needs root
    with _folder() as d, special_file(os.path.join(d, "f"), kind):
        refused(call(read_idx, os.path.join(d, "f")), "not an IDX file")


class _Response(io.BytesIO):
    """A fake HTTP response: ``chunks`` then, if given, ``error``."""

    def __init__(self, chunks, error):
        super().__init__()
        self.chunks, self.error = list(chunks), error

    def read1(self, n=-1):
        if self.chunks:
            return self.chunks.pop(0)
        if self.error is not None:
            raise self.error
        return b""

    read = read1


@given(chunks=st.lists(st.binary(min_size=1, max_size=64), max_size=5),
       error=st.sampled_from([None, TimeoutError("timed out"), ConnectionResetError(104, "reset"),
                              OSError(101, "Network is unreachable")]),
       at_open=st.booleans())
def test_a_failing_download_keeps_nothing_and_names_the_missing_files(chunks, error, at_open):
    record("datasets.load_mnist", "faults")
    import urllib.request

    def urlopen(url, timeout):
        if at_open and error is not None:
            raise error
        return _Response(chunks, error)

    with _folder() as d, pytest.MonkeyPatch.context() as m:
        m.setattr(urllib.request, "urlopen", urlopen)
        out = call(load_mnist, cache_dir=d, mirror="https://example.invalid/mnist")
        if error is None:  # the bytes arrived, and are not MNIST's: the digest refuses them
            refused(out, "checksum mismatch")
        else:
            e = refused(out, "download failed", types=(DatasetNotFoundError,))
            assert all(name in str(e) for name in datasets.MNIST_FILES.values())
        assert os.listdir(d) == []

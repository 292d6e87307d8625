"""Tests of minifw.datasets: the digits split, IDX files and the MNIST loader, all offline.

The MNIST files here are tiny (5 training and 3 test images) and written byte by byte in this
file, so the reader is checked against the format, not against its own writer. Downloads use
``file://`` mirrors in temporary folders.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from file_helpers import ROOT, peak_and_error, special_file

import minifw as mf
from minifw import datasets
from minifw.datasets import (
    DIGITS_FILE,
    MNIST_FILES,
    MNIST_SHA256,
    DatasetNotFoundError,
    load_digits,
    load_mnist,
    read_idx,
    write_idx,
)

TRAIN_IMAGES = (np.arange(5 * 28 * 28) * 7 % 256).astype(np.uint8).reshape(5, 28, 28)
TRAIN_LABELS = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
TEST_IMAGES = (255 - np.arange(3 * 28 * 28) % 256).astype(np.uint8).reshape(3, 28, 28)
TEST_LABELS = np.array([7, 2, 1], dtype=np.uint8)
CONTENTS = {
    "train-images-idx3-ubyte.gz": TRAIN_IMAGES,
    "train-labels-idx1-ubyte.gz": TRAIN_LABELS,
    "t10k-images-idx3-ubyte.gz": TEST_IMAGES,
    "t10k-labels-idx1-ubyte.gz": TEST_LABELS,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array, spelled out: magic, big-endian sizes, payload."""
    assert array.dtype == np.uint8
    magic = struct.pack(">I", 0x00000800 + array.ndim)
    sizes = struct.pack(f">{array.ndim}I", *array.shape)
    return magic + sizes + array.tobytes()


def write_mnist(folder: Path, gzipped: bool | tuple[bool, ...] = True) -> dict[str, str]:
    """Write the four small MNIST files into ``folder``; return the SHA-256 of the .gz files.

    ``gzipped`` is one flag for all files or one per file (in :data:`CONTENTS` order).
    """
    flags = gzipped if isinstance(gzipped, tuple) else (gzipped,) * len(CONTENTS)
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for (name, array), flag in zip(CONTENTS.items(), flags):
        compressed = gzip.compress(idx_bytes(array), mtime=0)
        digests[name] = hashlib.sha256(compressed).hexdigest()
        if flag:
            (folder / name).write_bytes(compressed)
        else:
            (folder / name.removesuffix(".gz")).write_bytes(idx_bytes(array))
    return digests


def leftovers(folder: Path) -> list[str]:
    """Names in ``folder`` that are not finished MNIST files (temporary or partial files)."""
    names = {name for gz in CONTENTS for name in (gz, gz.removesuffix(".gz"))}
    return sorted(path.name for path in folder.iterdir() if path.name not in names)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test off the network and out of the user's real cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("MINIFW_DATA", raising=False)
    monkeypatch.setenv("MINIFW_MNIST_MIRROR", (tmp_path / "no-mirror-here").as_uri())


# --- load_digits -------------------------------------------------------------------------


def test_load_digits_shapes_dtypes_and_default_split() -> None:
    (x_train, t_train), (x_test, t_test) = load_digits()
    assert x_train.shape == (1438, 64) and x_test.shape == (359, 64)
    assert t_train.shape == (1438,) and t_test.shape == (359,)
    assert len(x_train) + len(x_test) == 1797
    assert x_train.dtype == np.float64 and t_train.dtype == np.int64
    assert set(np.concatenate([t_train, t_test]).tolist()) == set(range(10))


def test_load_digits_split_is_a_partition_of_all_samples() -> None:
    shipped = mf.load(DIGITS_FILE)
    pixels, labels = shipped["images"].reshape(-1, 64), shipped["labels"]
    (x_train, t_train), (x_test, t_test) = load_digits(normalize=False, test_fraction=0.3)
    together = np.column_stack([np.vstack([x_train, x_test]), np.concatenate([t_train, t_test])])
    original = np.column_stack([pixels, labels])
    assert sorted(map(tuple, together.tolist())) == sorted(map(tuple, original.tolist()))
    assert len(x_test) == round(1797 * 0.3)


def test_the_shipped_digits_are_the_uci_test_set() -> None:
    # the UCI optdigits test set (optdigits.tes): 1797 images, these counts per digit
    shipped = mf.load(DIGITS_FILE)
    images, labels = shipped["images"], shipped["labels"]
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 16
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert hashlib.sha256(images.tobytes()).hexdigest() == (
        "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3")
    assert hashlib.sha256(labels.tobytes()).hexdigest() == (
        "8ba4f891220f5e4c9c819638d1602d74b83618f167043c6da52a2a247841ddf0")


def test_the_shipped_digits_are_scikit_learns_copy_where_it_is_installed() -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    pixels, labels = datasets.load_digits(return_X_y=True)
    shipped = mf.load(DIGITS_FILE)
    np.testing.assert_array_equal(shipped["images"].reshape(-1, 64), pixels)
    np.testing.assert_array_equal(shipped["labels"], labels)


def test_minifw_does_not_need_scikit_learn() -> None:
    # the digits load and the command line starts in a process where sklearn cannot import
    code = ("import sys; sys.modules['sklearn'] = None; import minifw.cli; "
            "from minifw.datasets import load_digits; load_digits(); "
            "print('sklearn' in sys.modules and sys.modules['sklearn'] is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_load_digits_is_deterministic_per_seed() -> None:
    (x_a, t_a), (x_test_a, _) = load_digits(seed=3)
    (x_b, t_b), (x_test_b, _) = load_digits(seed=3)
    (x_c, t_c), _ = load_digits(seed=4)
    np.testing.assert_array_equal(x_a, x_b)
    np.testing.assert_array_equal(t_a, t_b)
    np.testing.assert_array_equal(x_test_a, x_test_b)
    assert not np.array_equal(t_a, t_c)


def test_load_digits_normalize_scales_raw_values_by_16() -> None:
    (x_normal, _), (x_normal_test, _) = load_digits(normalize=True)
    (x_raw, _), _ = load_digits(normalize=False)
    assert x_normal.min() == 0.0 and x_normal.max() == 1.0 and x_normal_test.max() <= 1.0
    assert x_raw.dtype == np.float64 and x_raw.max() == 16.0
    np.testing.assert_array_equal(x_normal * 16.0, x_raw)


def test_load_digits_one_hot_matches_integer_labels() -> None:
    (_, t_integer), (_, t_integer_test) = load_digits(seed=1)
    (_, t_hot), (_, t_hot_test) = load_digits(seed=1, one_hot_label=True)
    assert t_hot.shape == (1438, 10) and t_hot.dtype == np.float64
    np.testing.assert_array_equal(t_hot.sum(axis=1), np.ones(1438))
    assert set(np.unique(t_hot).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(t_hot.argmax(axis=1), t_integer)
    np.testing.assert_array_equal(t_hot_test.argmax(axis=1), t_integer_test)


def test_load_digits_unflattened_is_n_1_8_8() -> None:
    (x_flat, _), (x_flat_test, _) = load_digits()
    (x_image, _), (x_image_test, _) = load_digits(flatten=False)
    assert x_image.shape == (1438, 1, 8, 8) and x_image_test.shape == (359, 1, 8, 8)
    np.testing.assert_array_equal(x_image.reshape(1438, 64), x_flat)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_load_digits_rejects_test_fraction_outside_open_unit_interval(fraction: float) -> None:
    with pytest.raises(ValueError, match=rf"test_fraction.*{fraction!r}"):
        load_digits(test_fraction=fraction)


# --- read_idx and write_idx -------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("array", [TRAIN_IMAGES, TRAIN_LABELS, np.zeros((0,), np.uint8)])
def test_read_idx_reads_hand_written_files(
    tmp_path: Path, array: np.ndarray, gzipped: bool
) -> None:
    data = idx_bytes(array)
    path = tmp_path / "file"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    result = read_idx(path)
    assert result.dtype == np.uint8 and result.shape == array.shape
    np.testing.assert_array_equal(result, array)
    result[...] = 0  # the result must be an ordinary writable array


def test_read_idx_detects_gzip_by_content_not_by_name(tmp_path: Path) -> None:
    plain_named_gz = tmp_path / "labels.gz"
    plain_named_gz.write_bytes(idx_bytes(TEST_LABELS))
    gzip_without_suffix = tmp_path / "labels"
    gzip_without_suffix.write_bytes(gzip.compress(idx_bytes(TEST_LABELS)))
    np.testing.assert_array_equal(read_idx(plain_named_gz), TEST_LABELS)
    np.testing.assert_array_equal(read_idx(gzip_without_suffix), TEST_LABELS)


@pytest.mark.parametrize("name", ["images", "images.gz"])
def test_write_idx_writes_the_standard_bytes(tmp_path: Path, name: str) -> None:
    write_idx(tmp_path / name, TEST_IMAGES)
    data = (tmp_path / name).read_bytes()
    if name.endswith(".gz"):
        assert data[:2] == b"\x1f\x8b"
        data = gzip.decompress(data)
    assert data == idx_bytes(TEST_IMAGES)
    assert data[:4] == b"\x00\x00\x08\x03"


def test_write_idx_rejects_other_dtypes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_rejects_truncated_payload_naming_file_and_sizes(
    tmp_path: Path, gzipped: bool
) -> None:
    data = idx_bytes(TRAIN_IMAGES)[:-10]
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    expected = 5 * 28 * 28
    with pytest.raises(ValueError, match=rf"train-images-idx3-ubyte.*{expected}.*{expected - 10}"):
        read_idx(path)


def test_read_idx_rejects_extra_bytes(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(TRAIN_LABELS) + b"\x00")
    with pytest.raises(ValueError, match=r"labels.*5 bytes.*holds 6"):
        read_idx(path)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00",
        b"\x00\x00\x09\x01\x00\x00\x00\x01\x05",  # element type 0x09 (signed byte)
        b"\x01\x00\x08\x01\x00\x00\x00\x01\x05",
        b"\x00\x00\x08\x00",  # zero dimensions
        b"PK\x03\x04 this is a zip file",
    ],
)
def test_read_idx_rejects_bad_headers(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad-file"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="bad-file"):
        read_idx(path)


def test_read_idx_rejects_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(TRAIN_IMAGES)[:10])
    with pytest.raises(ValueError, match=r"truncated IDX header.*10 bytes.*16"):
        read_idx(path)


def test_read_idx_rejects_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(TRAIN_IMAGES))[:-20])
    with pytest.raises(ValueError, match=r"images\.gz.*gzip"):
        read_idx(path)


def test_read_idx_checks_the_number_of_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(TRAIN_LABELS))
    assert read_idx(path, ndim=1).shape == (5,)
    with pytest.raises(ValueError, match=r"0x00000801.*0x00000803"):
        read_idx(path, ndim=3)


# --- load_mnist from a folder -----------------------------------------------------------


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("one_hot_label", [True, False])
def test_load_mnist_shapes_and_dtypes(
    tmp_path: Path, normalize: bool, flatten: bool, one_hot_label: bool
) -> None:
    write_mnist(tmp_path)
    (x_train, t_train), (x_test, t_test) = load_mnist(
        normalize, flatten, one_hot_label, cache_dir=tmp_path, download=False
    )
    image_shape = (784,) if flatten else (1, 28, 28)
    assert x_train.shape == (5, *image_shape) and x_test.shape == (3, *image_shape)
    assert x_train.dtype == x_test.dtype == (np.float32 if normalize else np.uint8)
    if one_hot_label:
        assert t_train.shape == (5, 10) and t_test.shape == (3, 10)
        assert t_train.dtype == t_test.dtype == np.float32
    else:
        assert t_train.shape == (5,) and t_test.shape == (3,)
        assert t_train.dtype == t_test.dtype == np.int64


def test_load_mnist_values_are_exactly_those_written(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (x_train, t_train), (x_test, t_test) = load_mnist(
        normalize=False, flatten=False, cache_dir=tmp_path, download=False
    )
    np.testing.assert_array_equal(x_train[:, 0], TRAIN_IMAGES)
    np.testing.assert_array_equal(x_test[:, 0], TEST_IMAGES)
    assert t_train.tolist() == [5, 0, 4, 1, 9] and t_test.tolist() == [7, 2, 1]


def test_load_mnist_normalize_divides_by_255_in_float32(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (x_train, _), (x_test, _) = load_mnist(cache_dir=tmp_path, download=False)
    expected = TRAIN_IMAGES.reshape(5, 784).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(x_train, expected)
    assert x_test.min() == 0.0 and x_test.max() == 1.0


def test_load_mnist_one_hot_rows(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (_, t_train), (_, t_test) = load_mnist(one_hot_label=True, cache_dir=tmp_path, download=False)
    np.testing.assert_array_equal(t_train.sum(axis=1), np.ones(5))
    np.testing.assert_array_equal(t_train.argmax(axis=1), TRAIN_LABELS)
    np.testing.assert_array_equal(t_test.argmax(axis=1), TEST_LABELS)
    assert set(np.unique(t_test).tolist()) == {0.0, 1.0}


def test_load_mnist_reads_mixed_gzipped_and_plain_files(tmp_path: Path) -> None:
    write_mnist(tmp_path, gzipped=(True, False, False, True))
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte",
    ]
    (x_train, t_train), (x_test, t_test) = load_mnist(
        normalize=False, cache_dir=tmp_path, download=False
    )
    np.testing.assert_array_equal(x_train, TRAIN_IMAGES.reshape(5, 784))
    np.testing.assert_array_equal(x_test, TEST_IMAGES.reshape(3, 784))
    assert t_train.tolist() == TRAIN_LABELS.tolist() and t_test.tolist() == TEST_LABELS.tolist()


def test_cache_dir_argument_beats_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mnist(tmp_path / "argument")
    (tmp_path / "environment").mkdir()
    monkeypatch.setenv("MINIFW_DATA", str(tmp_path / "environment"))
    (_, t_train), _ = load_mnist(cache_dir=tmp_path / "argument", download=False)
    assert t_train.tolist() == TRAIN_LABELS.tolist()
    with pytest.raises(DatasetNotFoundError, match="environment"):
        load_mnist(download=False)


def test_environment_variable_names_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mnist(tmp_path / "environment")
    monkeypatch.setenv("MINIFW_DATA", str(tmp_path / "environment"))
    (_, t_train), _ = load_mnist(download=False)
    assert t_train.tolist() == TRAIN_LABELS.tolist()


def test_default_folder_is_under_xdg_cache_home(tmp_path: Path) -> None:
    write_mnist(tmp_path / "xdg-cache" / "minifw" / "mnist")
    (_, t_train), _ = load_mnist(download=False)
    assert t_train.tolist() == TRAIN_LABELS.tolist()


def test_default_folder_without_xdg_is_home_dot_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_mnist(tmp_path / "home" / ".cache" / "minifw" / "mnist")
    (_, t_train), _ = load_mnist(download=False)
    assert t_train.tolist() == TRAIN_LABELS.tolist()


def test_image_and_label_counts_must_match(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(idx_bytes(TEST_LABELS[:2]))
    with pytest.raises(ValueError, match=r"3 images.*t10k-labels-idx1-ubyte\.gz.* 2 labels"):
        load_mnist(cache_dir=tmp_path, download=False)


def test_labels_must_be_digits(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(idx_bytes(np.array([1, 10, 2], "u1")))
    with pytest.raises(ValueError, match=r"t10k-labels.*label 10"):
        load_mnist(cache_dir=tmp_path, download=False)


def test_images_and_labels_files_must_not_be_swapped(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(idx_bytes(TRAIN_LABELS))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*0x00000801"):
        load_mnist(cache_dir=tmp_path, download=False)


def test_truncated_file_in_the_folder_raises(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(TRAIN_IMAGES)[:-1]))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*3920.*3919"):
        load_mnist(cache_dir=tmp_path, download=False)


# --- load_mnist downloads ---------------------------------------------------------------


def test_known_digests_cover_the_four_files() -> None:
    assert set(MNIST_SHA256) == set(MNIST_FILES.values()) == set(CONTENTS)
    for digest in MNIST_SHA256.values():
        assert len(digest) == 64 and int(digest, 16) >= 0
    assert MNIST_SHA256["t10k-labels-idx1-ubyte.gz"].startswith("f7ae60f92e00ec6d")


@pytest.mark.parametrize("trailing_slash", [True, False])
def test_download_from_file_mirror(tmp_path: Path, trailing_slash: bool) -> None:
    digests = write_mnist(tmp_path / "mirror")
    mirror = (tmp_path / "mirror").as_uri() + ("/" if trailing_slash else "")
    cache = tmp_path / "cache" / "nested"
    (x_train, t_train), (x_test, t_test) = load_mnist(
        normalize=False, cache_dir=cache, mirror=mirror, sha256=digests
    )
    np.testing.assert_array_equal(x_train, TRAIN_IMAGES.reshape(5, 784))
    np.testing.assert_array_equal(x_test, TEST_IMAGES.reshape(3, 784))
    assert t_test.tolist() == TEST_LABELS.tolist()
    assert sorted(path.name for path in cache.iterdir()) == sorted(CONTENTS)
    for name in CONTENTS:
        assert (cache / name).read_bytes() == (tmp_path / "mirror" / name).read_bytes()


def test_download_mirror_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    digests = write_mnist(tmp_path / "mirror")
    monkeypatch.setenv("MINIFW_MNIST_MIRROR", (tmp_path / "mirror").as_uri())
    (_, t_train), _ = load_mnist(cache_dir=tmp_path / "cache", sha256=digests)
    assert t_train.tolist() == TRAIN_LABELS.tolist()
    assert leftovers(tmp_path / "cache") == []


def test_download_fetches_only_missing_files(tmp_path: Path) -> None:
    digests = write_mnist(tmp_path / "mirror")
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (tmp_path / "mirror" / name).unlink()
    write_mnist(tmp_path / "cache", gzipped=(False, False, False, False))
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / "cache" / name).unlink()
    (_, t_train), (_, t_test) = load_mnist(
        cache_dir=tmp_path / "cache", mirror=(tmp_path / "mirror").as_uri(), sha256=digests
    )
    assert t_train.tolist() == TRAIN_LABELS.tolist() and t_test.tolist() == TEST_LABELS.tolist()
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]


def test_checksum_mismatch_raises_and_keeps_nothing(tmp_path: Path) -> None:
    digests = write_mnist(tmp_path / "mirror")
    wrong = "0" * 64
    digests["t10k-images-idx3-ubyte.gz"] = wrong
    actual = hashlib.sha256((tmp_path / "mirror" / "t10k-images-idx3-ubyte.gz").read_bytes())
    cache = tmp_path / "cache"
    with pytest.raises(ValueError) as raised:
        load_mnist(cache_dir=cache, mirror=(tmp_path / "mirror").as_uri(), sha256=digests)
    assert not isinstance(raised.value, FileNotFoundError)
    message = str(raised.value)
    assert "t10k-images-idx3-ubyte.gz" in message
    assert wrong in message and actual.hexdigest() in message
    assert not (cache / "t10k-images-idx3-ubyte.gz").exists()
    assert leftovers(cache) == []


def test_default_digests_reject_other_files(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mirror")
    with pytest.raises(ValueError, match=MNIST_SHA256["train-images-idx3-ubyte.gz"]):
        load_mnist(cache_dir=tmp_path / "cache", mirror=(tmp_path / "mirror").as_uri())
    assert list((tmp_path / "cache").iterdir()) == []


def assert_names_files_and_folder(message: str, missing: list[str], folder: Path) -> None:
    for name in CONTENTS:
        assert (name in message) == (name in missing), name
    assert f"Put these files into {folder}" in message


def test_offline_failure_names_files_and_folder(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    mirror = (tmp_path / "missing-mirror").as_uri()
    with pytest.raises(DatasetNotFoundError) as raised:
        load_mnist(cache_dir=cache, mirror=mirror)
    assert isinstance(raised.value, FileNotFoundError)
    assert_names_files_and_folder(str(raised.value), list(CONTENTS), cache)
    assert "download failed" in str(raised.value) and mirror in str(raised.value)
    assert leftovers(cache) == []


def test_download_false_names_only_the_missing_files(tmp_path: Path) -> None:
    write_mnist(tmp_path, gzipped=(True, False, True, True))
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as raised:
        load_mnist(cache_dir=tmp_path, download=False)
    assert_names_files_and_folder(
        str(raised.value), ["train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"], tmp_path
    )
    assert "turned off" in str(raised.value)


def test_failure_after_some_downloads_keeps_them_and_names_the_rest(tmp_path: Path) -> None:
    digests = write_mnist(tmp_path / "mirror")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / "mirror" / name).unlink()
    cache = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError) as raised:
        load_mnist(cache_dir=cache, mirror=(tmp_path / "mirror").as_uri(), sha256=digests)
    still_missing = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert_names_files_and_folder(str(raised.value), still_missing, cache)
    assert sorted(path.name for path in cache.iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]


class BrokenConnection(io.BytesIO):
    """A response that delivers some bytes and then fails, like a dropped connection."""

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() > 0:
            raise TimeoutError("the connection timed out")
        return super().read(10)

    read1 = read  # the download reads what each recv brings


def test_interrupted_download_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requested: list[tuple[str, float]] = []

    def fake_urlopen(url: str, timeout: float) -> BrokenConnection:
        requested.append((url, timeout))
        return BrokenConnection(b"\x1f\x8b" + bytes(100))

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError, match="timed out") as raised:
        load_mnist(cache_dir=cache, mirror="https://example.invalid/mnist", timeout=2.5)
    assert requested == [("https://example.invalid/mnist/train-images-idx3-ubyte.gz", 2.5)]
    assert_names_files_and_folder(str(raised.value), list(CONTENTS), cache)
    assert list(cache.iterdir()) == []


# --- issue 15: bounded reads, bounded downloads, consistent splits ----------------------


def _gzip_of_zeros(header: bytes, mib: int) -> bytes:
    """A gzip file of ``header`` then ``mib`` MiB of zeros, built from one repeated deflate
    block, so that a 1 GiB payload costs a megabyte and no time (its CRC is left wrong: a
    reader that got that far has already failed)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    body = first + block * mib + c.flush(zlib.Z_FINISH)
    size = (len(header) + (mib << 20)) & 0xFFFFFFFF
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + struct.pack("<II", 0, size)


def test_a_gzip_bomb_is_not_decompressed_beyond_what_its_header_promised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the 1 MB .gz: a header for ten 28x28 images, then 1 GiB of zeros; how far the
    # compressed file was read when it was refused says how much was inflated (not a timing)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(_gzip_of_zeros(idx_bytes(np.zeros((10, 28, 28), np.uint8))[:16], 1024))
    size = path.stat().st_size
    assert size < 1.2e6
    read_to: list[int] = []

    class Counted(io.FileIO):
        def close(self) -> None:
            if not self.closed:
                read_to.append(self.tell())
            super().close()

    monkeypatch.setattr(datasets, "open", lambda p, mode: Counted(p, mode), raising=False)
    peak, error = peak_and_error(lambda: read_idx(path), (ValueError,))
    assert error is not None and "7840" in str(error) and str(path) in str(error), error
    # zlib inflates ~1 MiB of zeros per kB: a quarter of the file would be 256 MiB of them
    assert peak < 16e6 and read_to and read_to[0] < size / 4, (peak, read_to, size)


@pytest.mark.parametrize("shape", [(2**20, 2**10, 2**10), (60000, 28, 28)])
def test_a_header_declaring_more_than_the_limits_is_refused_before_allocating(
    tmp_path: Path, shape: tuple[int, ...]
) -> None:
    header = struct.pack(">I3I", 0x803, *shape)
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(header + bytes(1000)))  # 1 TiB, or 47 MB from 1 kB
    peak, error = peak_and_error(lambda: read_idx(path), (ValueError,))
    assert error is not None and str(path) in str(error) and "declares" in str(error), error
    assert peak < 1e6
    plain = tmp_path / "images"
    plain.write_bytes(header + bytes(1000))  # not gzipped: checked against the file's size
    with pytest.raises(ValueError, match=r"images.*promises.*holds 1000"):
        read_idx(plain)


def test_the_limits_can_be_raised_for_a_file_one_trusts(tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((300, 64, 64), np.uint8))))  # 1.2 MB of 0
    with pytest.raises(ValueError, match="max_ratio"):
        read_idx(path)
    assert read_idx(path, max_ratio=None).shape == (300, 64, 64)
    with pytest.raises(ValueError, match="max_bytes=1000"):
        read_idx(path, max_bytes=1000, max_ratio=None)
    with pytest.raises(ValueError, match="max_bytes"):
        read_idx(path, max_bytes=-1)


def test_a_gzip_stream_longer_than_its_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(TRAIN_LABELS) + b"\x00\x01"))
    with pytest.raises(ValueError, match=r"labels\.gz.*5 bytes.*more than 5"):
        read_idx(path)


def test_a_flipped_bit_in_a_gzip_payload_is_caught_by_its_crc(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(idx_bytes(TRAIN_LABELS), mtime=0))
    path = tmp_path / "labels.gz"
    refused = 0
    for i in range(10, len(data)):  # everything after gzip's 10-byte header
        for bit in range(8):
            damaged = bytearray(data)
            damaged[i] ^= 1 << bit
            path.write_bytes(bytes(damaged))
            try:
                got = read_idx(path)
            except ValueError as error:
                assert str(path) in str(error)
                refused += 1
            else:
                np.testing.assert_array_equal(got, TRAIN_LABELS)
    assert refused >= 8 * (len(data) - 10) - 16  # at most a few flips deflate does not read


def test_read_idx_of_a_fifo_or_a_device_is_refused_without_blocking(tmp_path: Path) -> None:
    for kind, words in (("fifo", "FIFO"), ("device", "character device")):
        if kind == "device" and not ROOT:
            continue  # making a device node needs root
        with special_file(tmp_path / kind, kind), pytest.raises(ValueError, match=words):
            read_idx(tmp_path / kind)


def test_training_and_test_images_of_different_sizes_are_refused(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    small = np.zeros((5, 3, 5), np.uint8)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(small)))
    with pytest.raises(ValueError, match=r"train-images.*3x5.*t10k-images.*28x28.*same size"):
        load_mnist(cache_dir=tmp_path, download=False)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros((3, 3, 5), np.uint8))))
    (x, _), (x_test, _) = load_mnist(cache_dir=tmp_path, download=False, flatten=False)
    assert x.shape == (5, 1, 3, 5) and x_test.shape == (3, 1, 3, 5)  # the same size: taken


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "3", True])
def test_load_mnist_refuses_a_timeout_that_is_not_a_positive_number(
    tmp_path: Path, timeout: object
) -> None:
    with pytest.raises(ValueError, match="timeout"):
        load_mnist(cache_dir=tmp_path, timeout=timeout)  # type: ignore[arg-type]


class SlowMirror:
    """An HTTP server on 127.0.0.1 that answers every request one byte at a time.

    ``where="body"`` sends its headers at once and then a byte every ``interval`` seconds;
    ``where="headers"`` already trickles the status line. It runs in a thread of its own.
    """

    def __init__(self, where: str, interval: float = 0.25) -> None:
        self.stop = threading.Event()
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                if where == "body":
                    self.wfile.write(head)
                    head = b""
                with contextlib.suppress(OSError):
                    for byte in head + b"\x1f" * 100000:
                        if mirror.stop.wait(interval):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SlowMirror:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("where", ["body", "headers"])
def test_the_timeout_bounds_the_whole_download_from_a_slow_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setenv("no_proxy", "*")
    cache = tmp_path / "cache"
    with SlowMirror(where) as mirror:  # a byte every 0.25 s: each read is well within 1 s
        start = time.monotonic()
        with pytest.raises(DatasetNotFoundError, match=r"did not finish within timeout=1 s"):
            load_mnist(cache_dir=cache, mirror=mirror.url, timeout=1.0)
        seconds = time.monotonic() - start
    assert 0.9 < seconds < 2.5, seconds
    assert list(cache.iterdir()) == []


def test_a_download_larger_than_any_mnist_file_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in CONTENTS:
        (mirror / name).write_bytes(bytes(5000))
    monkeypatch.setattr(datasets, "MAX_DOWNLOAD_BYTES", 4096)
    with pytest.raises(ValueError, match="more than 4096 bytes"):
        load_mnist(cache_dir=tmp_path / "cache", mirror=mirror.as_uri())
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_download_cleans_what_a_killed_download_left(tmp_path: Path) -> None:
    digests = write_mnist(tmp_path / "mirror")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".minifw-abcd1234.tmp").write_bytes(b"half a download")
    load_mnist(cache_dir=cache, mirror=(tmp_path / "mirror").as_uri(), sha256=digests)
    assert leftovers(cache) == []


def test_a_download_refuses_to_replace_what_is_not_a_file(tmp_path: Path) -> None:
    digests = write_mnist(tmp_path / "mirror")
    cache = tmp_path / "cache"
    (cache / "train-images-idx3-ubyte.gz").mkdir(parents=True)  # "missing": not a file
    with pytest.raises(ValueError, match="is a folder"):
        load_mnist(cache_dir=cache, mirror=(tmp_path / "mirror").as_uri(), sha256=digests)
    assert (cache / "train-images-idx3-ubyte.gz").is_dir()

"""Data sets: the 8x8 digits shipped inside minifw, and MNIST from the IDX files.

Both loaders return ``((x_train, t_train), (x_test, t_test))`` the way the book
"Deep Learning from Scratch" does: ``flatten`` gives one row per image, otherwise images are
``(N, 1, height, width)``; ``one_hot_label`` turns the integer labels into one-hot rows.

:func:`load_digits` needs no download, so it is the data set for examples and tests: its
images are the test set of the UCI "Optical Recognition of Handwritten Digits" data set (E.
Alpaydin and C. Kaynak, 1998; https://archive.ics.uci.edu/dataset/80, licensed CC BY 4.0), as
scikit-learn copies them, stored in ``minifw/data/digits.npz`` (45 kB) by
``tools/make_digits.py``.
:func:`load_mnist` reads the four standard IDX files (gzipped or not) from a cache folder and
downloads the missing ones, verified by SHA-256, when it may.

>>> (x_train, t_train), (x_test, t_test) = load_digits()
>>> x_train.shape, t_train.shape, x_test.shape, t_test.shape
((1438, 64), (1438,), (359, 64), (359,))
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import math
import os
import queue
import stat
import struct
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from minifw import atomic
from minifw.files import load
from minifw.limits import MAX_BYTES, MAX_RATIO, check_limits, declared_size_problem

PathArg = str | os.PathLike[str]
Split = tuple[np.ndarray, np.ndarray]

MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
"""The four MNIST files, by role, under their download (gzipped) names."""

MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaaf7d8b5b2f6c2eb1"
    ),
}
"""SHA-256 hex digests of the original gzipped MNIST files; downloads must match them."""

DEFAULT_MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
"""Base URL the MNIST files are downloaded from when neither ``mirror`` nor
``MINIFW_MNIST_MIRROR`` says otherwise."""

DIGITS_FILE = Path(__file__).resolve().parent / "data" / "digits.npz"
"""The digits minifw ships: ``images`` (1797, 8, 8) and ``labels`` (1797,), uint8 (0..16, 0..9)."""

DATA_ENV = "MINIFW_DATA"
MIRROR_ENV = "MINIFW_MNIST_MIRROR"

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UBYTE = 0x08
_MNIST_CLASSES = 10
_CHUNK_BYTES = 1 << 20

MAX_DOWNLOAD_BYTES = 2**28
"""The most bytes one download may send (256 MiB; the largest MNIST file is 9.9 MB)."""


class DatasetNotFoundError(FileNotFoundError):
    """Data set files are missing and could not (or may not) be downloaded.

    The message names the missing files and the folder to put them in; so do the attributes
    ``folder``, ``missing`` (file names), ``reason`` and ``base_url`` (the mirror), for a caller
    that words it otherwise (``minifw train`` names its options).
    """

    folder: Path
    missing: list[str]
    reason: str
    base_url: str


def load_digits(
    *,
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[Split, Split]:
    """Load the 8x8 handwritten digits minifw ships (1797 images, 10 classes), split in two.

    The split is a shuffle with ``numpy.random.default_rng(seed)``: the same seed gives the
    same split, and the test part holds ``round(1797 * test_fraction)`` samples (at least one,
    and at least one left for training).

    Arguments:
        normalize: scale the pixels (0..16) to [0, 1]; otherwise keep the raw values.
        flatten: images as rows of 64; otherwise shaped ``(N, 1, 8, 8)``.
        one_hot_label: labels as one-hot rows ``(N, 10)`` of float64; otherwise int64 ``(N,)``.
        test_fraction: the share of samples held out for testing, in (0, 1).
        seed: seeds the shuffle.

    Returns:
        ``((x_train, t_train), (x_test, t_test))`` with float64 images.

    Raises:
        ValueError: ``test_fraction`` is not in (0, 1), or ``seed`` is not a whole number >= 0.

    >>> (x_train, t_train), _ = load_digits(flatten=False, one_hot_label=True, test_fraction=0.5)
    >>> x_train.shape, t_train.shape, float(x_train.max()), set(t_train.sum(axis=1).tolist())
    ((899, 1, 8, 8), (899, 10), 1.0, {1.0})
    """
    real = isinstance(test_fraction, (int, float, np.integer, np.floating))
    if not (real and not isinstance(test_fraction, bool) and 0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    shipped = load(DIGITS_FILE)
    pixels, labels = shipped["images"], shipped["labels"]
    images = pixels.astype(np.float64)
    labels = labels.astype(np.int64)
    if normalize:
        images = images / 16.0
    images = images.reshape(-1, 64) if flatten else images.reshape(-1, 1, 8, 8)
    targets: np.ndarray = labels
    if one_hot_label:
        targets = np.eye(10, dtype=np.float64)[labels]

    count = len(labels)
    test_count = min(max(round(count * test_fraction), 1), count - 1)
    order = np.random.default_rng(seed).permutation(count)
    test, train = order[:test_count], order[test_count:]
    return (images[train], targets[train]), (images[test], targets[test])


def read_idx(
    path: PathArg,
    *,
    ndim: int | None = None,
    max_bytes: int | None = MAX_BYTES,
    max_ratio: float | None = MAX_RATIO,
) -> np.ndarray:
    """Read an IDX file of unsigned bytes (the MNIST format), gzipped or not.

    The header is a big-endian magic number ``0x000008NN`` (``NN`` = number of dimensions,
    so 0x00000803 for images and 0x00000801 for labels), then one big-endian 32-bit size per
    dimension, then the uint8 payload. A gzipped file is recognised by its content (it starts
    with the bytes 1f 8b), not by its name.

    The file is read as a stream: the header first, whose sizes are checked (against the
    file's size, or for gzip against the limits of :mod:`minifw.limits`) before the payload
    is allocated, then exactly the payload it promises, then one byte more, which must not be
    there. A gzip bomb is never decompressed beyond what its header promised.

    Arguments:
        path: the file.
        ndim: if given, the number of dimensions the file must have.
        max_bytes: the most bytes the payload may declare (default 4 GiB; ``None``: no limit).
        max_ratio: the most a gzipped payload may expand beyond the file's size (default 100
            to 1; ``None``: no limit).

    Returns:
        A uint8 array shaped as the header says.

    Raises:
        ValueError: the file is not IDX of unsigned bytes, has other than ``ndim`` dimensions,
            is a corrupt gzip stream, its payload length does not match the header, or the
            header declares more than the limits allow.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_idx(f"{folder}/labels.gz", np.array([3, 1, 4], dtype=np.uint8))
    ...     read_idx(f"{folder}/labels.gz", ndim=1)
    array([3, 1, 4], dtype=uint8)
    """
    path = _path_arg(path, "read_idx")
    if ndim is not None and (isinstance(ndim, bool) or not isinstance(ndim, (int, np.integer))
                             or not 1 <= ndim <= 255):
        raise ValueError(f"read_idx: ndim must be a whole number in 1..255 or None, got {ndim!r}")
    check_limits(max_bytes, max_ratio, "read_idx")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not an IDX file")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such IDX file")
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path}: is {atomic.kind(mode)}, not an IDX file")
    with open(path, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        gzipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        try:
            return _read_idx_stream(stream, path, ndim, size if gzipped else None,
                                    size, max_bytes, max_ratio)
        except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
            if not gzipped:
                raise
            raise ValueError(f"{path}: corrupt gzip data ({error})") from error


def _read_idx_stream(stream: io.BufferedIOBase, path: Path, ndim: int | None,
                     compressed: int | None, size: int, max_bytes: int | None,
                     max_ratio: float | None) -> np.ndarray:
    """The IDX array from ``stream``; ``compressed`` is the gzip file's size, or None."""
    head = _read_up_to(stream, 4)
    if len(head) < 4:
        raise ValueError(f"{path}: {len(head)} bytes is too short for an IDX header (needs 4)")
    magic = int.from_bytes(head, "big")
    dimensions = head[3]
    if head[:2] != b"\x00\x00" or head[2] != _IDX_UBYTE or dimensions == 0:
        raise ValueError(
            f"{path}: not an IDX file of unsigned bytes: magic number 0x{magic:08x}, expected "
            "0x000008NN (0x00000803 for images, 0x00000801 for labels)"
        )
    if ndim is not None and dimensions != ndim:
        raise ValueError(
            f"{path}: magic number 0x{magic:08x} means {dimensions} dimensions, expected {ndim} "
            f"(magic 0x{0x800 + ndim:08x})"
        )
    header_bytes = 4 + 4 * dimensions
    sizes = _read_up_to(stream, header_bytes - 4)
    if len(sizes) < header_bytes - 4:
        raise ValueError(
            f"{path}: truncated IDX header: {4 + len(sizes)} bytes, the header of a "
            f"{dimensions}-dimensional file needs {header_bytes}"
        )
    shape: tuple[int, ...] = struct.unpack(f">{dimensions}I", sizes)
    expected = math.prod(shape)
    if compressed is None and size - header_bytes != expected:
        raise _length_error(path, expected, shape, str(size - header_bytes))
    problem = declared_size_problem(expected, compressed, max_bytes, max_ratio)
    if problem:
        raise ValueError(f"{path}: the header of shape {shape} {problem}; pass max_bytes= or "
                         "max_ratio= to read a file you trust")
    array = np.empty(expected, dtype=np.uint8)
    view, done = array.data, 0
    while done < expected:
        n = stream.readinto(view[done : done + _CHUNK_BYTES])
        if not n:
            raise _length_error(path, expected, shape, str(done))
        done += n
    if stream.read(1):  # and, for gzip, its CRC-32 and length are checked at the end
        raise _length_error(path, expected, shape, f"more than {expected}")
    return array.reshape(shape)


def _read_up_to(stream: io.BufferedIOBase, n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at the end of the stream."""
    data = b""
    while len(data) < n and (chunk := stream.read(n - len(data))):
        data += chunk
    return data


def _length_error(path: Path, expected: int, shape: tuple[int, ...], actual: str) -> ValueError:
    return ValueError(f"{path}: the header promises {expected} bytes of data for shape {shape}, "
                      f"but the file holds {actual} (truncated or corrupt)")


def write_idx(path: PathArg, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, gzipped when ``path`` ends in ``.gz``.

    The inverse of :func:`read_idx`.

    Arguments:
        path: the file to write.
        array: the data; it must have at least one dimension and only values 0..255.

    Raises:
        ValueError: ``array`` is not uint8 or has no dimensions.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_idx(f"{folder}/images", np.zeros((2, 3, 3), dtype=np.uint8))
    ...     read_idx(f"{folder}/images").shape
    (2, 3, 3)
    """
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim == 0:
        raise ValueError(
            f"IDX needs a uint8 array with at least one dimension, got {array.dtype} "
            f"with shape {array.shape}"
        )
    header = bytes([0, 0, _IDX_UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array).tobytes()
    path = _path_arg(path, "write_idx")
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    cache_dir: PathArg | None = None,
    mirror: str | None = None,
    download: bool = True,
    sha256: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[Split, Split]:
    """Load MNIST (60000 training and 10000 test images of 28x28) as the book does.

    The four IDX files (:data:`MNIST_FILES`) are read from a folder: ``cache_dir``, else the
    environment variable ``MINIFW_DATA``, else ``$XDG_CACHE_HOME/minifw/mnist`` (by default
    ``~/.cache/minifw/mnist``). Each may be there gzipped (``train-images-idx3-ubyte.gz``) or
    not (``train-images-idx3-ubyte``). Missing files are downloaded, when ``download`` is
    true, from ``mirror``, else ``MINIFW_MNIST_MIRROR``, else :data:`DEFAULT_MNIST_MIRROR`;
    each download must finish within ``timeout`` and match its SHA-256, and only then is it
    moved into the folder, so no partial or unverified file is ever left there. Files already
    in the folder are trusted, but read as :func:`read_idx` reads (checked as they stream,
    within its limits); images and labels must agree in number, and training and test images
    in size.

    Arguments:
        normalize: pixels as float32 in [0, 1]; otherwise the raw uint8 values 0..255.
        flatten: images as rows of 784; otherwise shaped ``(N, 1, 28, 28)``.
        one_hot_label: labels as one-hot float32 rows ``(N, 10)``; otherwise int64 ``(N,)``.
        cache_dir: the folder holding (or to receive) the files.
        mirror: base URL of the download; the file names are appended to it.
        download: whether missing files may be downloaded.
        sha256: hex digests of the gzipped files by name (default :data:`MNIST_SHA256`).
        timeout: the most seconds each file's whole download may take (connecting included).

    Returns:
        ``((x_train, t_train), (x_test, t_test))``.

    Raises:
        DatasetNotFoundError: files are missing and ``download`` is false or the download
            failed; the message lists the files and the folder to put them in.
        ValueError: a download does not match its digest, a file is not valid MNIST IDX, or
            the training and test images differ in size.

    >>> import tempfile
    >>> labels = np.array([3, 7], dtype=np.uint8)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for prefix in ("train", "t10k"):
    ...         write_idx(f"{folder}/{prefix}-images-idx3-ubyte.gz", np.ones((2, 28, 28), "u1"))
    ...         write_idx(f"{folder}/{prefix}-labels-idx1-ubyte", labels)
    ...     (x_train, t_train), _ = load_mnist(cache_dir=folder, download=False)
    >>> x_train.shape, x_train.dtype, t_train.tolist()
    ((2, 784), dtype('float32'), [3, 7])
    """
    real = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    if not (real and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"load_mnist: timeout must be a finite number of seconds > 0, got "
                         f"{timeout!r}")
    folder = _mnist_folder(cache_dir)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in MNIST_FILES.values():
        path = _find_file(folder, name)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        base_url = mirror or os.environ.get(MIRROR_ENV) or DEFAULT_MNIST_MIRROR
        if not download:
            raise _not_found(folder, missing, base_url, "downloading is turned off")
        digests = MNIST_SHA256 if sha256 is None else sha256
        for index, name in enumerate(missing):
            try:
                found[name] = _download(base_url, name, folder, digests, timeout)
            except (OSError, http.client.HTTPException) as error:
                reason = f"the download failed: {error}"
                raise _not_found(folder, missing[index:], base_url, reason) from error

    paths = {role: found[name] for role, name in MNIST_FILES.items()}
    train, test = (_read_split(paths[f"{part}_images"], paths[f"{part}_labels"])
                   for part in ("train", "test"))
    if train[0].shape[1:] != test[0].shape[1:]:
        sizes = [f"{path} holds images of {h}x{w}" for path, (h, w) in (
            (paths["train_images"], train[0].shape[1:]), (paths["test_images"], test[0].shape[1:]))]
        raise ValueError(f"{sizes[0]} but {sizes[1]}: training and test images must have the "
                         "same size")
    return (_shape_split(*train, normalize, flatten, one_hot_label),
            _shape_split(*test, normalize, flatten, one_hot_label))


def _path_arg(path: object, what: str) -> Path:
    """``path`` as a ``Path`` if it is a str or os.PathLike; else ``TypeError`` naming it."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise TypeError(f"{what}: path must be a non-empty str or os.PathLike, got {path!r}")
    return Path(path)


def _mnist_folder(cache_dir: PathArg | None) -> Path:
    """The folder MNIST lives in: the argument, else ``$MINIFW_DATA``, else the user cache."""
    if cache_dir is not None:
        return _path_arg(cache_dir, "load_mnist: cache_dir").expanduser()
    from_environment = os.environ.get(DATA_ENV)
    if from_environment:
        return Path(from_environment).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME")
    # The XDG specification says relative paths in XDG_* variables are to be ignored.
    if not cache_home or not os.path.isabs(cache_home):
        cache_home = str(Path.home() / ".cache")
    return Path(cache_home) / "minifw" / "mnist"


def _find_file(folder: Path, gzip_name: str) -> Path | None:
    """The file ``gzip_name`` in ``folder``, or the same without ``.gz``, or None."""
    for name in (gzip_name, gzip_name.removesuffix(".gz")):
        if (folder / name).is_file():
            return folder / name
    return None


def _not_found(folder: Path, missing: list[str], base_url: str, reason: str
               ) -> DatasetNotFoundError:
    listing = "\n".join(f"    {name}" for name in missing)
    error = DatasetNotFoundError(
        f"MNIST files missing from {folder} ({reason}).\n"
        f"Put these files into {folder} (gzipped, or unzipped without '.gz'):\n{listing}\n"
        f"They can be downloaded from {base_url}. To use another folder pass cache_dir= or set "
        f"{DATA_ENV}; to use another mirror pass mirror= or set {MIRROR_ENV}."
    )
    error.folder, error.missing, error.reason, error.base_url = folder, missing, reason, base_url
    return error


def _download(
    base_url: str, name: str, folder: Path, digests: Mapping[str, str], timeout: float
) -> Path:
    """Download ``base_url + name`` into ``folder`` if it matches its SHA-256; return the path.

    The data goes to a temporary file in ``folder`` (:mod:`minifw.atomic`) that is renamed
    only after the digest matched, so readers never see a partial file; it is removed on any
    failure, and one left by a killed process is removed by the next download.
    """
    if name not in digests:
        raise ValueError(f"no SHA-256 digest known for {name}; cannot verify its download")
    expected = digests[name].lower()
    url = (base_url if base_url.endswith("/") else base_url + "/") + name
    folder.mkdir(parents=True, exist_ok=True)

    def fill(output: BinaryIO) -> None:
        digest = hashlib.sha256()
        for chunk in _fetch(url, timeout):
            digest.update(chunk)
            output.write(chunk)
        actual = digest.hexdigest()
        if actual != expected:  # raised before the rename: nothing is kept
            raise ValueError(
                f"checksum mismatch for {name} downloaded from {url}: expected SHA-256 "
                f"{expected}, got {actual}; the file was not kept"
            )

    atomic.write_file(atomic.replaceable(str(folder / name), "load_mnist"), fill)
    return folder / name


def _fetch(url: str, timeout: float) -> Iterator[bytes]:
    """The bytes at ``url``, chunk by chunk, all of them within ``timeout`` seconds.

    ``urlopen``'s timeout bounds each network operation, not their sum: a mirror that sends a
    byte every two seconds never trips a timeout of three. So the connection is read by a
    thread, and this generator gives up (``TimeoutError``) when the whole download has taken
    ``timeout``; the thread then stops at its next chunk, or at the socket's own timeout.
    At most :data:`MAX_DOWNLOAD_BYTES` are accepted.
    """
    chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=64)
    stop = threading.Event()

    def put(item: bytes | BaseException) -> None:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read() -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                read1 = getattr(response, "read1", response.read)  # one recv, not a full chunk
                while not stop.is_set():
                    chunk = read1(_CHUNK_BYTES)
                    put(chunk)
                    if not chunk:
                        return
        except BaseException as error:  # handed to the caller
            put(error)

    deadline = time.monotonic() + timeout
    threading.Thread(target=read, name="minifw-download", daemon=True).start()
    received = 0
    try:
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise queue.Empty
                item = chunks.get(timeout=left)
            except queue.Empty:
                raise TimeoutError(f"the download of {url} did not finish within "
                                   f"timeout={timeout:g} s") from None
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            received += len(item)
            if received > MAX_DOWNLOAD_BYTES:
                raise ValueError(f"the download of {url} sent more than {MAX_DOWNLOAD_BYTES} "
                                 "bytes, more than any MNIST file; it was not kept")
            yield item
    finally:
        stop.set()

def _read_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One images file (N, height, width) and its labels file (N,), checked against each other."""
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() >= _MNIST_CLASSES:
        raise ValueError(
            f"{labels_path}: label {int(labels.max())} is not a digit 0..{_MNIST_CLASSES - 1}"
        )
    return images, labels


def _shape_split(images: np.ndarray, labels: np.ndarray, normalize: bool, flatten: bool,
                 one_hot_label: bool) -> Split:
    """Images and labels as :func:`load_mnist` returns them."""
    count, height, width = images.shape
    x: np.ndarray = images.astype(np.float32) / np.float32(255.0) if normalize else images
    x = x.reshape(count, height * width) if flatten else x.reshape(count, 1, height, width)
    t: np.ndarray = labels.astype(np.int64)
    if one_hot_label:
        t = np.eye(_MNIST_CLASSES, dtype=np.float32)[labels]
    return x, t

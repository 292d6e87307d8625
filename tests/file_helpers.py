"""Helpers of the tests of files and data: the same tree, special files, a call's peak memory."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as onp

#: Device nodes and mounts need root.
ROOT = os.geteuid() == 0


def assert_same_tree(a: Any, b: Any) -> None:
    """``b`` has ``a``'s keys in ``a``'s order, and arrays of the same dtype, shape and bytes."""
    assert isinstance(b, dict) and list(a) == list(b), (list(a), list(b))
    for k in a:
        if isinstance(a[k], dict):
            assert_same_tree(a[k], b[k])
        else:
            x, y = onp.asarray(a[k]), b[k]
            assert (x.dtype, x.shape) == (y.dtype, y.shape), k
            assert onp.ascontiguousarray(x).tobytes() == y.tobytes(), k


@contextlib.contextmanager
def special_file(path: str | os.PathLike[str], kind: str) -> Iterator[None]:
    """Make at ``path``, for the block, a ``"fifo"``, a ``"device"`` (the numbers of /dev/null;
    root only), a listening ``"socket"`` or a ``"link to fifo"``."""
    path = os.fspath(path)
    with contextlib.ExitStack() as stack:
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "device":
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        elif kind == "socket":
            stack.enter_context(socket.socket(socket.AF_UNIX)).bind(path)
        elif kind == "link to fifo":
            os.mkfifo(path + ".fifo")
            os.symlink(path + ".fifo", path)
        else:
            raise ValueError(kind)
        yield


def peak_and_error(fn: Callable[[], Any],
                   errors: tuple[type[Exception], ...]) -> tuple[int, Exception | None]:
    """The peak of traced memory while ``fn()`` ran, and the error of ``errors`` it raised."""
    tracemalloc.start()
    error: Exception | None = None
    try:
        fn()
    except errors as e:
        error = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error

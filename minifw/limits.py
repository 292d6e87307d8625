"""How much a file may make minifw allocate: the stated limits of ``load`` and ``read_idx``.

A file declares the sizes of what it holds (an ``.npy`` header its shape, an IDX header its
dimensions) before the data comes, and a loader allocates what the header says. A damaged or
hostile header can declare anything, and a compressed file can honestly declare a thousand
times its own size (a decompression bomb: a 4 MB ``.npz`` of zeros that is 4 GiB of arrays).
So every declared size is checked, before anything is allocated, against:

- :data:`MAX_BYTES`, a stated maximum for all the arrays of one file (4 GiB); and
- :data:`MAX_RATIO`, the most the compressed bytes may expand (100 to 1, as Apache POI's
  zip reader allows by default; deflate can reach 1032 to 1 on zeros). Sizes up to
  :data:`GRACE_BYTES` (1 MiB) are accepted at any ratio: small files of zeros are no bomb.

Uncompressed data is checked against the bytes that are really there instead, which needs no
limit. Both limits can be raised per call (``load(path, max_bytes=..., max_ratio=...)``);
``None`` turns one off.

>>> declared_size_problem(10 * 2**30, None, MAX_BYTES, MAX_RATIO)
'declares 10737418240 bytes of data, more than max_bytes=4294967296 allows'
>>> print(declared_size_problem(2**30, 2**20, MAX_BYTES, MAX_RATIO))  # doctest: +ELLIPSIS
declares 1073741824 bytes of data in 1048576 compressed bytes (1024 to 1), more than ...
>>> declared_size_problem(2**20, 2**10, MAX_BYTES, MAX_RATIO) is None  # within the grace
True
"""

from __future__ import annotations

import math
from typing import Any

#: The most bytes of data one file may declare, in all (4 GiB).
MAX_BYTES = 4 * 2**30

#: The most the compressed bytes of a file may expand (decompressed : compressed).
MAX_RATIO = 100.0

#: Declared sizes up to this many bytes are accepted whatever their compression ratio.
GRACE_BYTES = 2**20


def check_limits(max_bytes: Any, max_ratio: Any, what: str) -> None:
    """Raise ``TypeError`` or ``ValueError`` unless both limits are ``None`` or positive numbers.

    >>> check_limits(0, None, "load")
    Traceback (most recent call last):
    ...
    ValueError: load: max_bytes must be a whole number > 0 or None, got 0
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)):
        raise TypeError(f"{what}: max_bytes must be a whole number > 0 or None, got "
                        f"{max_bytes!r}")
    if max_bytes is not None and max_bytes <= 0:
        raise ValueError(f"{what}: max_bytes must be a whole number > 0 or None, got {max_bytes}")
    real = isinstance(max_ratio, (int, float)) and not isinstance(max_ratio, bool)
    if max_ratio is not None and not (real and math.isfinite(max_ratio) and max_ratio >= 1):
        raise ValueError(f"{what}: max_ratio must be a finite number >= 1 or None, got "
                         f"{max_ratio!r}")


def declared_size_problem(declared: int, compressed: int | None, max_bytes: int | None,
                          max_ratio: float | None) -> str | None:
    """What is wrong with ``declared`` bytes of data, or ``None`` if they may be allocated.

    Arguments:
        declared: the bytes the file's headers promise, in all.
        compressed: the compressed bytes they come from, or ``None`` for uncompressed data.
        max_bytes: the stated maximum (``None``: no maximum).
        max_ratio: the most ``declared / compressed`` may be (``None``: no limit).

    Returns:
        A phrase for an error message ("declares ... bytes ..."), or ``None``.
    """
    if max_bytes is not None and declared > max_bytes:
        return f"declares {declared} bytes of data, more than max_bytes={max_bytes} allows"
    if (compressed is not None and max_ratio is not None and declared > GRACE_BYTES
            and declared > max_ratio * compressed):
        ratio = declared / max(compressed, 1)
        return (f"declares {declared} bytes of data in {compressed} compressed bytes "
                f"({ratio:.0f} to 1), more than max_ratio={max_ratio:g} allows (a "
                "decompression bomb?)")
    return None

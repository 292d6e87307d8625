"""Write ``minifw/data/digits.npz``: the 8x8 handwritten digits minifw ships (run once).

The images are the test set of the UCI "Optical Recognition of Handwritten Digits" data set
(E. Alpaydin and C. Kaynak, Bogazici University, 1998; https://archive.ics.uci.edu/dataset/80,
licensed CC BY 4.0), as scikit-learn copies them: 1,797 images of 8x8 pixels, each pixel the
number of inked pixels (0..16) in a 4x4 block of a 32x32 bitmap, with their digits 0..9.
This script reads scikit-learn's copy (``pip install scikit-learn``; minifw itself does not
need it) and stores it, in scikit-learn's order, as two uint8 arrays in a compressed ``.npz``
that :func:`minifw.load` reads::

    python tools/make_digits.py [--check]

``--check`` compares the shipped file with scikit-learn's copy instead of writing it.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as onp

import minifw

TARGET = Path(__file__).resolve().parents[1] / "minifw" / "data" / "digits.npz"


def digits() -> dict[str, onp.ndarray]:
    """scikit-learn's digits as ``{"images": (1797, 8, 8) uint8, "labels": (1797,) uint8}``."""
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    assert pixels.min() >= 0 and pixels.max() <= 16 and set(labels) == set(range(10))
    return {"images": pixels.reshape(-1, 8, 8).astype(onp.uint8),
            "labels": labels.astype(onp.uint8)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    arrays = digits()
    if args.check:
        shipped = minifw.load(TARGET)
        same = all(onp.array_equal(shipped[k], v) and shipped[k].dtype == v.dtype
                   for k, v in arrays.items())
        print(f"{TARGET}: {'the same as' if same else 'DIFFERS from'} scikit-learn's copy")
        return 0 if same else 1
    buffer = io.BytesIO()
    onp.savez_compressed(buffer, **arrays)
    TARGET.write_bytes(buffer.getvalue())
    print(f"wrote {TARGET} ({TARGET.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

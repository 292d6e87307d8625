"""``mf.save`` and ``mf.load`` of a 40 MB parameter tree against NumPy's own ``savez`` and ``load``.

    python benchmarks/files.py            # the full run; prints the figures
    python benchmarks/files.py --quick    # fewer repeats

The tree is two linear layers, 1000-2500-1000 in float64 (5,003,500 values, 40.0 MB), the
size issue 15 promised would not get slower. The peers are what a user writes without minifw,
on the same arrays under the same member names (``"0.W"``, ...), so both write the same file:

- **save**: ``numpy.savez`` into an open file, then ``flush`` and ``os.fsync``: the durability
  minifw's save has (it syncs its temporary file before the rename). ``numpy.savez`` alone,
  which leaves the data in the page cache, is timed too and quoted in the note: the gap to it
  is the disk's, and varies with the disk and with what else it is writing back.
- **load**: ``numpy.load`` of the file ``mf.save`` wrote, every array read. Both read each
  member once through ``zipfile``, which checks its CRC-32 at the member's end (``numpy.load``
  refuses a flipped data bit too); minifw's own checks (headers against their members' sizes,
  the limits, the directory's count) read a few hundred bytes, and it reads into the final
  array where NumPy copies from a buffer. Both read from the page cache.

Goals: minifw at most 1.1x the peer, for both. Its extra work is constant (a save validates
the keys, sweeps the folder, renames and syncs the folder; a load parses a header per array),
small beside moving and checksumming 40 MB; the 10% is the budget issue 15 set against the
code before it (measured at 0.96-1.01 of it, see the issue's report).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as onp
from run import MODES, Figure, Mode, interleaved, median, print_verdicts

import minifw as mf
from minifw.tree import leaves

#: The widths of the two linear layers, ``(n, m)``: ``n``-``m``-``n``.
WIDTHS = {"full": (1000, 2500), "quick": (1000, 2500), "smoke": (20, 50)}


def parameter_tree(n: int, m: int, rng: onp.random.Generator) -> dict[str, Any]:
    """``{"0": {"W": (n, m), "b": (m,)}, "1": {"W": (m, n), "b": (n,)}}`` of standard normals."""
    return {"0": {"W": rng.standard_normal((n, m)), "b": rng.standard_normal(m)},
            "1": {"W": rng.standard_normal((m, n)), "b": rng.standard_normal(n)}}


def numpy_save(path: str, arrays: dict[str, onp.ndarray], sync: bool) -> None:
    """``numpy.savez`` of ``arrays`` at ``path``; with ``sync``, flushed and fsynced."""
    with open(path, "wb") as fh:
        onp.savez(fh, **arrays)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())


def numpy_load(path: str) -> dict[str, onp.ndarray]:
    """Every array of the ``.npz`` at ``path``, read by ``numpy.load``."""
    with onp.load(path) as npz:
        return {name: npz[name] for name in npz.files}


def file_figures(mode: Mode, rng: onp.random.Generator) -> list[Figure]:
    """``mf.save`` / ``numpy.savez`` + fsync and ``mf.load`` / ``numpy.load`` of one tree."""
    params = parameter_tree(*WIDTHS[mode.name], rng)
    arrays = dict(leaves(params))
    size = f"{sum(a.nbytes for a in arrays.values()) / 1e6:.3g} MB"
    widths = "-".join(map(str, (*WIDTHS[mode.name], WIDTHS[mode.name][0])))
    rounds = 2 * mode.slow_rounds
    with tempfile.TemporaryDirectory() as folder:
        ours, theirs = os.path.join(folder, "minifw.npz"), os.path.join(folder, "numpy.npz")
        _agree(params, arrays, ours, theirs)
        save = Figure(f"save of a {size} parameter tree ({widths}, float64): mf.save / "
                      "numpy.savez + fsync", "<= 1.1", "minifw", "savez + fsync")
        saves: dict[str, Callable[[], Any]] = {
            "minifw": lambda: mf.save(ours, params),
            "savez + fsync": lambda: numpy_save(theirs, arrays, sync=True),
            "savez": lambda: numpy_save(theirs, arrays, sync=False)}
        times = interleaved(saves, rounds, 3, warmup=1)
        save.minifw_s, save.peer_s = median(times["minifw"]), median(times["savez + fsync"])
        unsynced = median(times["savez"])
        save.note = (f"numpy.savez alone, without the fsync: {unsynced * 1e3:.1f} ms (mf.save / "
                     f"it: {save.minifw_s / unsynced:.3g}; what the sync adds depends on the "
                     f"disk and on what else is being written back); in {tempfile.gettempdir()}")
        mf.save(ours, params)
        load = Figure("load of the same file: mf.load / numpy.load of every array", "<= 1.1",
                      "minifw", "numpy.load")
        times = interleaved({"minifw": lambda: mf.load(ours), "numpy.load": lambda: numpy_load(
            ours)}, rounds, 3, warmup=1)
        load.minifw_s, load.peer_s = median(times["minifw"]), median(times["numpy.load"])
        load.note = ("both read each member once through zipfile, which checks its CRC-32; "
                     "from the page cache")
    return [save, load]


def _agree(params: dict[str, Any], arrays: dict[str, onp.ndarray], ours: str, theirs: str
           ) -> None:
    """Raise unless each side reads the other's file as the same arrays: the same work."""
    mf.save(ours, params)
    numpy_save(theirs, arrays, sync=True)
    for got in (numpy_load(ours), dict(leaves(mf.load(theirs)))):
        if list(got) != list(arrays) or not all(onp.array_equal(got[k], a)
                                                for k, a in arrays.items()):
            raise AssertionError("minifw's and NumPy's files do not hold the same arrays")


def main(argv: list[str] | None = None) -> int:
    """Run the two figures and print them; 1 if a goal was missed (not in a smoke run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it run?")
    args = parser.parse_args(argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    figures = file_figures(mode, onp.random.default_rng(0))
    print_verdicts(figures)
    for fig in figures:
        print(f"- {fig.name.split(':')[0]}: {fig.note}")
    missed = any(fig.passed is False for fig in figures)
    return 1 if missed and mode.name != "smoke" else 0


if __name__ == "__main__":
    sys.exit(main())

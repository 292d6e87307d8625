"""A run folder: what ``minifw train`` writes, replaced as a whole or not at all.

A run's outputs (:data:`OUTPUTS`) are written into a new hidden folder beside ``--out``
(:mod:`minifw.atomic`), made durable, then swapped in for it: readers, and a run killed at
any moment, see the previous run's files or the new run's, never a mixture. So ``--out``
must be new, empty or hold only a previous run's outputs (none write-protected), and may not
be the current folder or one holding it; :func:`check_out` says so before training begins.
``minifw evaluate`` and ``minifw predict`` read a run folder's ``model.npz``
(:func:`model_file`).

>>> import tempfile, os
>>> out = check_out(os.path.join(tempfile.mkdtemp(), "runs", "latest"))
>>> write(out, "runs/latest", {"history.json": b"{}"})
>>> sorted(os.listdir(out))
['history.json']
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

from minifw import atomic

#: What ``minifw train`` writes into its run folder (``best_model.npz`` once an epoch ended).
OUTPUTS = ("model.npz", "best_model.npz", "history.json", "settings.json", "curves.png")

#: All a run folder may hold: the outputs, and ``params.npz`` of runs before model files.
KNOWN = (*OUTPUTS, "params.npz")


class RunFolderError(ValueError):
    """A ``--out`` folder that a run may not replace; the message names it."""


def check_out(text: str) -> Path:
    """The real folder ``--out`` names, checked before training so that a bad one costs nothing.

    Its outputs replace the whole folder at once, so it must be new, empty, or hold only the
    outputs of a previous run (none of them write-protected); it is created only after
    training, so that a failed run leaves no folder behind. Raises :class:`RunFolderError`
    naming the problem.
    """
    out = Path(os.path.realpath(text))  # a link to a folder: the folder it names is replaced
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {text}: exists and is not a folder")
    here = Path.cwd().resolve()
    if out == here or out in here.parents:
        raise RunFolderError(f"--out {text}: is the current folder or holds it; name a folder "
                             "of the run's own (e.g. runs/latest)")
    if out.is_dir():
        check_previous_run(out, text)
    base = next(p for p in out.parents if p.exists())
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise RunFolderError(f"--out {text}: cannot create a folder under {base} "
                             f"({'not a folder' if not base.is_dir() else 'not writable'})")
    return out


def check_previous_run(out: Path, text: str) -> None:
    """Refuse the existing folder ``out`` unless it holds only a previous run's outputs, none
    write-protected; ``text`` is ``--out`` as given, for the message."""
    foreign = sorted(p.name for p in out.iterdir() if p.name not in KNOWN)
    if foreign:
        raise RunFolderError(f"--out {text}: holds {', '.join(foreign[:3])}"
                             f"{', ...' if len(foreign) > 3 else ''}, which minifw train did "
                             "not write; a run's outputs replace the whole folder, so name an "
                             "empty or new one")
    mode = stat.S_IMODE(out.stat().st_mode)
    if mode & 0o222 == 0 or not os.access(out, os.W_OK):
        raise RunFolderError(f"--out {text}: the folder is write-protected (mode {mode:04o})")
    for name in KNOWN:
        if (out / name).exists() or (out / name).is_symlink():
            try:
                atomic.replaceable(str(out / name), f"--out {text}")
            except (ValueError, OSError) as error:
                raise RunFolderError(str(error)) from None


def write(out: Path, text: str, files: dict[str, Any]) -> None:
    """Write ``files`` (name: bytes, or a callable writing to a path) as the folder ``out``.

    They are written into a new hidden folder beside ``out`` (:mod:`minifw.atomic`), made
    durable, then swapped in for ``out``: the outputs of a run appear together or not at all.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.sweep(str(out.parent))
    fd, staging = atomic.new_folder(str(out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, stat.S_IMODE(out.stat().st_mode) if out.is_dir() else 0o777 & ~umask)
        for name, content in files.items():
            path = Path(staging) / name
            if callable(content):
                content(path)
            else:
                path.write_bytes(content)
            with open(path, "rb") as written:
                os.fsync(written.fileno())
        atomic.sync_folder(staging)
        if out.is_dir():  # again: it may have changed while the network trained
            check_previous_run(out, text)
        atomic.replace_folder(staging, str(out))
    finally:
        atomic.release(fd)
        shutil.rmtree(staging, ignore_errors=True)  # gone if the swap happened


def model_file(text: str) -> Path:
    """The model file ``text`` names: the file itself, or ``model.npz`` in a run folder.

    Raises:
        RunFolderError: a folder without a ``model.npz``.
    """
    path = Path(text)
    if path.is_dir():
        if not (path / "model.npz").is_file():
            raise RunFolderError(f"{text}: a folder without model.npz (give a model file, or "
                                 "the folder of a 'minifw train' run)")
        return path / "model.npz"
    return path

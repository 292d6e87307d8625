"""Atomic replacement: a new file or folder is written beside its target, then renamed over it.

Readers of the target see the old version or the new one, never a half-written one, however
the writer ends. The new version is written under a hidden name of one pattern,
``.minifw-XXXXXXXX.tmp``, in the target's folder (a rename is atomic only within one file
system). A writer killed before its rename leaves that entry behind; so, on POSIX, a writer
holds an exclusive ``flock`` on its entry while it lives (the kernel drops the lock when the
process dies, even by SIGKILL), and :func:`sweep` removes the entries of the pattern whose lock
it can take. Where there is no ``fcntl`` (Windows), nothing is locked or swept.

Only a regular file, or nothing, is replaced (:func:`replaceable`): a FIFO, a device or a
folder is refused, and so is a file whose permissions say it must not be written (0444), which a
rename would otherwise replace without asking.

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> write_file(replaceable(os.path.join(folder, "target"), "example"), lambda fh: fh.write(b"1"))
>>> os.listdir(folder)
['target']
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable
from typing import BinaryIO

try:
    import fcntl

    LOCKS = True
except ImportError:  # pragma: no cover - Windows
    LOCKS = False

PREFIX, SUFFIX = ".minifw-", ".tmp"
#: The names :func:`new_file` and :func:`new_folder` make (``tempfile``'s eight characters).
PATTERN = re.compile(r"\.minifw-[a-z0-9_]{8}\.tmp")

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, for a message ("a FIFO (named pipe)").

    >>> kind(os.stat(".").st_mode)
    'a folder'
    """
    return next((name for test, name in _KINDS if test(mode)), "a regular file")


def replaceable(path: str, what: str) -> str:
    """The real path of ``path`` (links followed), after checking that a rename may replace it.

    Arguments:
        path: the target; it may be missing.
        what: the caller's name, first in messages (``"save"``).

    Returns:
        ``os.path.realpath(path)``: the file a rename will replace, so that a link to a file
        stays a link and the file it names is the one replaced, as ``open(path, "w")`` would.

    Raises:
        ValueError: ``path`` is a folder, a FIFO, a device or a socket.
        PermissionError: the file is write-protected (no write permission bits, as a 0444 file,
            or not writable by this user).
        OSError: the file is on a read-only file system (``EROFS``), or cannot be reached (a
            loop of links, a name too long): the error names ``path``.
    """
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real
    except OSError as e:  # a loop of links, a name too long, a folder that may not be searched
        raise type(e)(e.errno, f"{what}: cannot reach the file ({e.strerror})", path) from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what}: {path!r} is {kind(st.st_mode)}, not a regular file; only a "
                         "regular file (or a new path) is replaced")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o222 == 0 or not os.access(real, os.W_OK):
        if hasattr(os, "statvfs") and os.statvfs(real).f_flag & os.ST_RDONLY:
            raise OSError(errno.EROFS, f"{what}: cannot replace the file: read-only file "
                          "system", path)
        raise PermissionError(errno.EACCES, f"{what}: the file is write-protected (mode "
                              f"{mode:04o}); make it writable (chmod u+w) to replace it", path)
    return real


def write_file(target: str, fill: Callable[[BinaryIO], object]) -> None:
    """Write the file ``target`` atomically; ``fill(fh)`` writes its content.

    ``target`` is a path :func:`replaceable` returned. The content goes to a locked temporary
    file beside it (after a :func:`sweep` of the folder), which is synced, given the mode
    ``open(target, "w")`` would leave (the old file's, else 0666 less the umask) and renamed
    over ``target``. On any error, raised as it came, ``target`` is as it was and the
    temporary file is gone.
    """
    folder = os.path.dirname(target)
    mode = _mode(target)
    sweep(folder)
    fd, tmp = new_file(folder)
    try:
        with os.fdopen(fd, "wb") as fh:  # closed, and its lock dropped, after the rename
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
            os.chmod(tmp, mode)  # mkstemp makes the file 0600
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    sync_folder(folder)


def _mode(path: str) -> int:
    with contextlib.suppress(FileNotFoundError):
        return stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def new_file(folder: str) -> tuple[int, str]:
    """A new empty temporary file in ``folder``, locked: ``(descriptor open for writing, path)``.

    The lock lasts until the descriptor is closed: close it after the rename.
    """
    while True:
        fd, path = tempfile.mkstemp(prefix=PREFIX, suffix=SUFFIX, dir=folder)
        if _lock_in_place(fd, path):
            return fd, path
        os.close(fd)


def new_folder(folder: str) -> tuple[int, str]:
    """A new empty temporary folder in ``folder``, locked: ``(descriptor or -1, path)``.

    The lock lasts until :func:`release` of the descriptor: release it after the rename.
    """
    while True:
        path = tempfile.mkdtemp(prefix=PREFIX, suffix=SUFFIX, dir=folder)
        if not LOCKS:  # pragma: no cover - Windows
            return -1, path
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        if _lock_in_place(fd, path):
            return fd, path
        os.close(fd)


def release(fd: int) -> None:
    """Close a descriptor from :func:`new_folder` (dropping its lock)."""
    if fd >= 0:
        os.close(fd)


def _lock_in_place(fd: int, path: str) -> bool:
    """Lock ``fd``; False if a sweep removed ``path`` between its creation and the lock."""
    if not LOCKS:  # pragma: no cover - Windows
        return True
    try:
        # waits only for a sweep that took the fresh entry for stale, a few system calls
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # a file system without locks: its sweeps cannot lock either
        return True
    return _same(path, fd)


def _same(path: str, fd: int) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def sweep(folder: str) -> None:
    """Remove the temporary files and folders that dead writers left in ``folder``.

    An entry of :data:`PATTERN` is removed when its lock can be taken (its writer is gone).
    Best effort: what cannot be opened, locked or removed is left alone.
    """
    if not LOCKS:  # pragma: no cover - Windows
        return
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if PATTERN.fullmatch(e.name)]
    except OSError:
        return
    for name in names:
        _remove_if_stale(os.path.join(folder, name))


def _remove_if_stale(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a live writer: OSError
        if _same(path, fd):
            if stat.S_ISDIR(mode):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
    except OSError:
        return
    finally:
        os.close(fd)


def replace_folder(new: str, target: str) -> None:
    """Put the folder ``new`` at ``target`` (same file system); the old ``target`` is removed.

    At every moment ``target`` is the old folder, the new one, or (between two renames, if the
    process is killed there) missing, with both kept under hidden names until a sweep: never a
    mixture of the two.
    """
    folder = os.path.dirname(target)
    if not os.path.lexists(target):
        os.rename(new, target)
    else:
        old = os.path.join(folder, f"{PREFIX}{secrets.token_hex(4)}{SUFFIX}")
        os.rename(target, old)
        try:
            os.rename(new, target)
        except BaseException:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    sync_folder(folder)


def sync_folder(folder: str) -> None:
    """Make the renames in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - Windows
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

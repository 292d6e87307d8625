"""What ``save`` may replace, and what the file system does to it (issue 15, items 2, 4, 8, 10).

Only a regular file (or nothing) is replaced; a FIFO, a device, a socket or a folder is refused,
and so is a write-protected file, also for root. Errors of a full, read-only or forbidden file
system name the target, never the hidden temporary file. A save killed midway leaves the old
file whole, and the next save into the folder removes the temporary file it left, but never one
a live save is writing.

Real full and read-only file systems are small tmpfs mounts, made where the tests run as root
and may mount (else skipped, saying why); the same errors are also injected, so that every run
checks the messages. Device nodes need root too.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as onp
import pytest
from file_helpers import ROOT, special_file

import minifw as mf
from minifw import atomic, files

PARAMS = {"0": {"W": onp.arange(6.0).reshape(2, 3)}, "1": {}}


def _saved(path, params=PARAMS):
    mf.save(path, params)
    return path.read_bytes()


def _others(folder, *keep):
    return sorted(n for n in os.listdir(folder) if n not in keep)


@pytest.fixture
def tmpfs(tmp_path):
    """A 256 KiB tmpfs mounted at ``tmp_path / "fs"`` (root only); unmounted afterwards."""
    if not ROOT:
        pytest.skip("mounting a small tmpfs needs root")
    where = tmp_path / "fs"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


# --- what may be replaced ---------------------------------------------------------------------


def _load_in_a_thread(path):
    """``load(path)``'s error, failing (not hanging) if it blocks as opening a FIFO would."""
    out = {}

    def run():
        try:
            mf.load(path)
        except Exception as e:  # judged below
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), f"load({path}) blocked"
    return out.get("error")


def test_a_fifo_is_neither_replaced_nor_read(tmp_path):
    path = tmp_path / "p.npz"
    with special_file(path, "fifo"), pytest.raises(ValueError, match=r"p\.npz.*FIFO"):
        mf.save(path, PARAMS)
    assert stat.S_ISFIFO(os.lstat(path).st_mode) and _others(tmp_path, "p.npz") == []
    e = _load_in_a_thread(path)
    assert isinstance(e, files.ParamsFileError) and "FIFO" in str(e), e


@pytest.mark.skipif(not ROOT, reason="making a device node needs root")
def test_a_device_is_neither_replaced_nor_read(tmp_path):
    path = tmp_path / "null"
    with special_file(path, "device"), pytest.raises(ValueError, match="character device"):
        mf.save(path, PARAMS)
    assert stat.S_ISCHR(os.lstat(path).st_mode) and _others(tmp_path, "null") == []
    e = _load_in_a_thread(path)
    assert isinstance(e, files.ParamsFileError) and "character device" in str(e), e


def test_a_socket_and_a_folder_are_not_replaced(tmp_path):
    path = tmp_path / "s"
    with special_file(path, "socket"):
        with pytest.raises(ValueError, match="socket"):
            mf.save(path, PARAMS)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="folder"):
        mf.save(tmp_path / "d", PARAMS)


def test_a_link_is_followed_and_stays_a_link(tmp_path):
    real = tmp_path / "real.npz"
    _saved(real, {"old": onp.zeros(1)})
    (tmp_path / "link.npz").symlink_to(real)
    mf.save(tmp_path / "link.npz", PARAMS)
    assert os.path.islink(tmp_path / "link.npz") and list(mf.load(real)) == ["0", "1"]
    (tmp_path / "dangling.npz").symlink_to(tmp_path / "new.npz")
    mf.save(tmp_path / "dangling.npz", PARAMS)  # as open(path, "w") would: the file is made
    assert list(mf.load(tmp_path / "new.npz")) == ["0", "1"]
    with special_file(tmp_path / "to-fifo", "link to fifo"), pytest.raises(ValueError,
                                                                           match="FIFO"):
        mf.save(tmp_path / "to-fifo", PARAMS)


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o000])
def test_a_write_protected_file_is_refused_also_for_root(tmp_path, mode):
    path = tmp_path / "p.npz"
    before = _saved(path)
    os.chmod(path, mode)
    try:
        with pytest.raises(PermissionError, match="write-protected") as raised:
            mf.save(path, {"new": onp.ones(2)})
        assert raised.value.errno == errno.EACCES and raised.value.filename == str(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
    finally:
        os.chmod(path, 0o644)
    assert path.read_bytes() == before and _others(tmp_path, "p.npz") == []
    mf.save(path, {"new": onp.ones(2)})  # writable again: replaced
    assert list(mf.load(path)) == ["new"]


def _save_as_nobody(path):
    """``(errno, filename, message)`` of a save of ``path`` by the user nobody, in a fork (root
    only: root may write into any folder)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(65534)
            os.setuid(65534)
            mf.save(path, PARAMS)
            out = "saved"
        except BaseException as e:
            out = "\n".join(map(str, (getattr(e, "errno", None), getattr(e, "filename", None),
                                       f"{type(e).__name__}: {e}")))
        os.write(write, out.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        out = fh.read()
    os.waitpid(pid, 0)
    code, name, message = (out.split("\n") + ["", ""])[:3]
    return code, name, message


def test_a_folder_without_write_permission_names_the_target(tmp_path):
    # under root, a folder nobody may enter but not write: pytest's own folders are 0700
    folder = Path(tempfile.mkdtemp()) / "ro" if ROOT else tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder.parent, 0o755)
    os.chmod(folder, 0o555)
    try:
        if ROOT:
            code, name, message = _save_as_nobody(str(folder / "p.npz"))
        else:
            with pytest.raises(PermissionError) as raised:
                mf.save(folder / "p.npz", PARAMS)
            code, name, message = (str(raised.value.errno), raised.value.filename,
                                   f"PermissionError: {raised.value}")
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o755)
        if ROOT:
            shutil.rmtree(folder.parent)
    assert message.startswith("PermissionError") and code == str(errno.EACCES), message
    assert name == str(folder / "p.npz") and ".minifw-" not in message, message
    assert "nothing was written" in message, message


# --- full, read-only and forbidden file systems -----------------------------------------------


def _assert_names_the_target(e, path, code):
    assert e.errno == code, e
    assert e.filename == str(path) and str(path) in str(e), e
    assert ".minifw-" not in str(e) and "cannot write" in str(e), e


INJECTED = {
    "ENOSPC while writing": ("savez", OSError(errno.ENOSPC, "No space left on device")),
    "EROFS creating the temporary file": ("mkstemp", OSError(errno.EROFS, "Read-only file "
                                                             "system", "/x/.minifw-ab.tmp")),
    "EACCES creating the temporary file": ("mkstemp", PermissionError(
        errno.EACCES, "Permission denied", "/x/.minifw-ab.tmp")),
    "EIO at fsync": ("fsync", OSError(errno.EIO, "Input/output error")),
}


@pytest.mark.parametrize("case", list(INJECTED))
def test_file_system_errors_name_the_target_not_the_temporary_file(tmp_path, monkeypatch, case):
    where, error = INJECTED[case]
    path = tmp_path / "p.npz"
    before = _saved(path)

    def fail(*args, **kwargs):
        raise error

    target = {"savez": (files.onp, "savez"), "mkstemp": (atomic.tempfile, "mkstemp"),
              "fsync": (files.os, "fsync")}[where]
    monkeypatch.setattr(*target, fail)
    with pytest.raises(type(error)) as raised:
        mf.save(path, {"new": onp.ones(3)})
    monkeypatch.undo()
    _assert_names_the_target(raised.value, path, error.errno)
    assert path.read_bytes() == before and _others(tmp_path, "p.npz") == []


def test_a_full_file_system(tmpfs):
    path = tmpfs / "p.npz"
    before = _saved(path)
    with pytest.raises(OSError) as raised:
        mf.save(path, {"big": onp.zeros(100_000)})  # 800 KB into 256 KiB
    _assert_names_the_target(raised.value, path, errno.ENOSPC)
    assert path.read_bytes() == before and _others(tmpfs, "p.npz") == []
    mf.save(path, {"small": onp.ones(3)})  # the space was given back
    assert list(mf.load(path)) == ["small"]


def test_a_read_only_file_system(tmpfs):
    path = tmpfs / "p.npz"
    before = _saved(path)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    with pytest.raises(OSError) as replacing:
        mf.save(path, PARAMS)
    with pytest.raises(OSError) as creating:
        mf.save(tmpfs / "new.npz", PARAMS)
    assert replacing.value.errno == errno.EROFS and str(path) in str(replacing.value)
    _assert_names_the_target(creating.value, tmpfs / "new.npz", errno.EROFS)
    assert "nothing was written" in str(creating.value)
    assert path.read_bytes() == before and _others(tmpfs, "p.npz") == []


@pytest.mark.parametrize("case", ["loop of links", "name too long"])
def test_a_target_that_cannot_be_reached_is_saves_error_naming_it(tmp_path, case):
    if case == "loop of links":
        path = tmp_path / "a.npz"
        path.symlink_to(tmp_path / "b.npz")
        (tmp_path / "b.npz").symlink_to(path)
        code = errno.ELOOP
    else:
        path, code = tmp_path / ("x" * 300), errno.ENAMETOOLONG
    with pytest.raises(OSError) as raised:
        mf.save(path, PARAMS)
    e = raised.value
    assert e.errno == code and e.filename == str(path), e
    assert str(e).startswith(f"[Errno {code}] save: cannot reach the file"), e
    assert _others(tmp_path, "a.npz", "b.npz") == []


# --- stale temporary files --------------------------------------------------------------------


def test_the_next_save_removes_what_dead_saves_left_and_nothing_else(tmp_path):
    stale_file = tmp_path / ".minifw-abcd1234.tmp"
    stale_file.write_bytes(b"PK\x03\x04 half of a killed save")
    stale_folder = tmp_path / ".minifw-efgh_567.tmp"  # a killed `minifw train`'s outputs
    stale_folder.mkdir()
    (stale_folder / "params.npz").write_bytes(b"half")
    live = tmp_path / ".minifw-live0000.tmp"
    live.write_bytes(b"being written")
    others = [".minifw-notes.txt", ".minifw-abcd1234.tmp.bak", "minifw-abcd1234.tmp",
              ".minifw-short.tmp", "params.npz.tmp"]
    for name in others:
        (tmp_path / name).write_bytes(b"mine")
    os.mkfifo(tmp_path / ".minifw-fifo0000.tmp")
    (tmp_path / ".minifw-link0000.tmp").symlink_to(tmp_path / "minifw-abcd1234.tmp")
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a save in progress (another process, in effect)
        mf.save(tmp_path / "p.npz", PARAMS)
    assert not stale_file.exists() and not stale_folder.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(
        [".minifw-live0000.tmp", ".minifw-fifo0000.tmp", ".minifw-link0000.tmp", "p.npz",
         *others])
    assert all((tmp_path / n).read_bytes() == b"mine" for n in others)


KILLED_SAVE = """
import os, sys, numpy as onp, minifw as mf
path, n = sys.argv[1], int(sys.argv[2])
for i in range(1, 10**6):  # saves until it is killed, each version a different constant
    mf.save(path, {"W": onp.full(n, float(i)), "b": {}})
    if i == 1:
        open(path + ".ready", "w").close()
"""


def test_a_save_killed_by_sigkill_leaves_a_whole_file_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "p.npz"
    n = 2_000_000  # 16 MB: the kill lands mid-write most of the time
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(path), str(n)])
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "p.npz.ready").exists() or not any(
                atomic.PATTERN.fullmatch(f) for f in os.listdir(tmp_path)):
            assert time.monotonic() < deadline and proc.poll() is None, "no save started"
            time.sleep(0.001)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    loaded = mf.load(path)  # the last complete version, whatever the kill interrupted
    assert loaded["b"] == {} and loaded["W"].shape == (n,)
    assert loaded["W"][0] >= 1 and (loaded["W"] == loaded["W"][0]).all()
    mf.save(tmp_path / "other.npz", PARAMS)
    assert _others(tmp_path, "p.npz", "p.npz.ready", "other.npz") == []


CONCURRENT = """
import sys, numpy as onp, minifw as mf
for i in range(40):
    mf.save(sys.argv[1], {"W": onp.full(1000, float(i))})
"""


def test_saves_running_side_by_side_never_sweep_each_other(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(tmp_path / f"{k}.npz")],
                              stderr=subprocess.PIPE, text=True) for k in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert sorted(os.listdir(tmp_path)) == ["0.npz", "1.npz", "2.npz"]
    assert all(mf.load(tmp_path / f"{k}.npz")["W"][0] == 39.0 for k in range(3))


def test_a_save_midway_leaves_a_locked_temporary_file_no_sweep_removes(tmp_path, monkeypatch):
    # the sweep of another save, run while this one is writing, must leave its file alone
    seen = []

    def savez_then_sweep(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        atomic.sweep(str(tmp_path))  # what a concurrent save does first
        seen.extend(n for n in os.listdir(tmp_path) if atomic.PATTERN.fullmatch(n))
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files.onp, "savez", savez_then_sweep)
    with pytest.raises(OSError, match="Input/output"):
        mf.save(tmp_path / "p.npz", PARAMS)
    assert len(seen) == 1 and os.listdir(tmp_path) == []


def test_a_sweep_that_wins_the_race_for_a_fresh_file_costs_a_retry_not_a_failure(
        tmp_path, monkeypatch):
    # a sweep may lock a just-made temporary file before its writer does, and delete it:
    # the writer sees its file gone and makes another
    made = []
    real_mkstemp = atomic.tempfile.mkstemp

    def mkstemp_swept_once(**kwargs):
        fd, path = real_mkstemp(**kwargs)
        made.append(path)
        if len(made) == 1:
            atomic.sweep(str(tmp_path))  # lands between mkstemp and the writer's lock
        return fd, path

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp_swept_once)
    mf.save(tmp_path / "p.npz", PARAMS)
    assert len(made) == 2 and not os.path.exists(made[0])
    assert os.listdir(tmp_path) == ["p.npz"] and list(mf.load(tmp_path / "p.npz")) == ["0", "1"]


@pytest.mark.parametrize("where", ["sweep", "chmod"])
def test_a_killed_save_in_a_subprocess_and_the_next_one(tmp_path, where):
    # killed at a chosen point (os._exit: no cleanup at all): the old file stays whole
    path = tmp_path / "p.npz"
    before = _saved(path)
    script = textwrap.dedent(f"""
        import os, numpy as onp, minifw as mf
        from minifw import atomic, files

        def killed(*args, **kwargs):
            os._exit(9)

        if {where!r} == "sweep":
            atomic.sweep = killed  # before anything is written
        else:
            files.os.chmod = killed  # written and synced, not yet renamed
        mf.save({str(path)!r}, {{"new": onp.ones(1000)}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert path.read_bytes() == before
    left = _others(tmp_path, "p.npz")
    assert len(left) == (where == "chmod") and all(atomic.PATTERN.fullmatch(n) for n in left)
    mf.save(tmp_path / "q.npz", PARAMS)
    assert _others(tmp_path, "p.npz", "q.npz") == []

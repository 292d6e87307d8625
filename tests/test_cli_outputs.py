"""``minifw train``'s outputs appear together or not at all, and what the CLI refuses up front
(issue 15, items 5 and 11).

The outputs are written into a hidden folder beside ``--out`` and swapped in for it; a run
killed at any moment leaves the previous run's four files, byte for byte, or (killed between
the two renames of the swap) no folder, and never a mixture. The folder must be new, empty or
hold only a previous run's outputs, none write-protected; it may not be the current folder.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from file_helpers import peak_and_error

import minifw
from minifw import atomic, cli, runfolder


def _run(argv, capsys):
    status = cli.main(argv)
    return status, capsys.readouterr().err


def _one_line(err):
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def previous_run(tmp_path, capsys):
    """A finished ``minifw train`` run in ``tmp_path / "runs" / "latest"``: (folder, files)."""
    out = tmp_path / "runs" / "latest"
    assert cli.main(["train", "--quiet", "--epochs", "1", "--hidden", "8", "--out",
                     str(out)]) == 0
    capsys.readouterr()
    return out, _contents(out)


def test_a_second_run_replaces_all_its_files_and_leaves_nothing_beside(previous_run, capsys):
    out, before = previous_run
    assert sorted(before) == sorted(cli.OUTPUTS)
    assert cli.main(["train", "--quiet", "--epochs", "1", "--hidden", "8", "--seed", "1",
                     "--out", str(out)]) == 0
    after = _contents(out)
    assert sorted(after) == sorted(cli.OUTPUTS)
    assert all(after[n] != before[n] for n in ("model.npz", "settings.json", "curves.png"))
    assert os.listdir(out.parent) == ["latest"]


def test_the_folder_gets_the_mode_mkdir_would_give_and_keeps_its_own(tmp_path, capsys):
    old = os.umask(0o027)
    try:
        assert cli.main(["train", "--quiet", "--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o750
    os.chmod(tmp_path / "a", 0o711)
    assert cli.main(["train", "--quiet", "--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o711


KILLED_WRITE = """
import os, sys
from pathlib import Path
from minifw import atomic, cli, runfolder
where, out = sys.argv[1], sys.argv[2]

def killed(*args, **kwargs):
    os._exit(9)

new = {name: b"new " + name.encode() for name in cli.OUTPUTS}
if where == "writing":  # the model files and history.json written, settings.json not
    new["settings.json"] = killed
elif where == "between the renames":
    rename = os.rename
    atomic.os.rename = lambda a, b: killed() if b == out else rename(a, b)
elif where == "after the swap":
    atomic.shutil.rmtree = killed
runfolder.write(Path(out), "out", new)
"""


@pytest.mark.parametrize("where", ["writing", "between the renames", "after the swap"])
def test_outputs_killed_while_written_leave_no_mixture(previous_run, where):
    out, before = previous_run
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITE, where, str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    hidden = [n for n in os.listdir(out.parent) if atomic.PATTERN.fullmatch(n)]
    new = {name: b"new " + name.encode() for name in cli.OUTPUTS}
    if where == "writing":
        assert _contents(out) == before and len(hidden) == 1  # the dead run's staging folder
    elif where == "between the renames":
        assert not out.exists() and len(hidden) == 2  # the old run and the new, both whole
        kept = sorted((_contents(out.parent / n) for n in hidden), key=lambda c: c == new)
        assert kept == [before, new]
    else:
        assert _contents(out) == new and len(hidden) == 1  # the old run, not yet removed
    runfolder.write(out, "out", new)
    assert os.listdir(out.parent) == ["latest"]  # the next run swept what the dead one left


def test_outputs_killed_at_twenty_moments_are_never_mixed(tmp_path):
    # the experiment: 6 of 20 kills left new files beside the previous run's curves.
    # A forked child writes versions 0, 1, 2, ... of the four outputs until it is killed.
    out = tmp_path / "runs" / "latest"
    out.parent.mkdir(parents=True)
    seen = set()
    for k in range(20):
        ready, go = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                for i in range(10**6):
                    runfolder.write(out, "out", {n: b"%d " % i * 5000 for n in cli.OUTPUTS})
                    if i == 0:
                        os.write(go, b"x")
            finally:
                os._exit(0)
        os.read(ready, 1)  # one complete version written
        time.sleep(0.0005 * k)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready)
        os.close(go)
        if out.exists():
            versions = {p.read_bytes() for p in out.iterdir()}
            assert len(versions) == 1 and sorted(os.listdir(out)) == sorted(cli.OUTPUTS)
            seen.add(versions.pop()[:8])
    assert seen  # and every folder seen was one whole version


# --- refused before training ------------------------------------------------------------------


@pytest.fixture
def no_training(monkeypatch):
    """Training fails the test: every refusal here must come before it."""
    def fit(*args, **kwargs):
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(minifw, "fit", fit)


def test_a_folder_holding_other_files_is_refused(previous_run, capsys, no_training):
    out, before = previous_run
    (out / "notes.txt").write_text("mine")
    status, err = _run(["train", "--quiet", "--out", str(out)], capsys)
    assert status == 2 and "notes.txt" in _one_line(err) and "did not write" in err
    assert (out / "notes.txt").read_text() == "mine"
    assert {n: c for n, c in _contents(out).items() if n != "notes.txt"} == before


@pytest.mark.parametrize("what", ["file", "folder"])
def test_write_protected_outputs_are_refused(previous_run, capsys, no_training, what):
    out, before = previous_run
    target = out / "model.npz" if what == "file" else out
    os.chmod(target, 0o555 if what == "folder" else 0o444)
    try:
        status, err = _run(["train", "--quiet", "--out", str(out)], capsys)
    finally:
        os.chmod(target, 0o755 if what == "folder" else 0o644)
    assert status == 2 and "write-protected" in _one_line(err)
    assert _contents(out) == before


@pytest.mark.parametrize("where", [".", "..", "here"])
def test_the_current_folder_and_its_parents_are_refused(tmp_path, monkeypatch, capsys,
                                                        no_training, where):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    out = {"here": str(tmp_path / "here")}.get(where, where)
    status, err = _run(["train", "--quiet", "--out", out], capsys)
    assert status == 2 and "current folder" in _one_line(err)


def test_a_link_to_a_run_folder_stays_a_link(previous_run, capsys):
    out, before = previous_run
    link = out.parent / "link"
    link.symlink_to(out)
    assert cli.main(["train", "--quiet", "--epochs", "1", "--seed", "2", "--out",
                     str(link)]) == 0
    assert link.is_symlink() and _contents(out) != before
    assert sorted(os.listdir(out.parent)) == ["latest", "link"]


@pytest.mark.parametrize("argv", [
    ["train", "--out", ""], ["train", "--data-dir", ""], ["plot", "activations", "--out", ""],
    ["plot", "all", "--out-dir", ""], ["plot", "training_curves", "--history", ""],
    ["bench", "--out", ""],
])
def test_empty_paths_are_refused(tmp_path, monkeypatch, capsys, no_training, argv):
    monkeypatch.chdir(tmp_path)
    status, err = _run(argv, capsys)
    assert status == 2 and "expected a path" in _one_line(err)
    assert os.listdir(tmp_path) == []


def test_a_network_too_big_for_memory_is_one_line_before_anything_is_allocated(
        tmp_path, capsys, no_training):
    ran = []
    peak, _ = peak_and_error(lambda: ran.append(_run(["train", "--quiet", "--hidden", "100000000",
                                                     "--out", str(tmp_path / "run")], capsys)),
                             ())
    status, err = ran[0]
    assert status == 2 and "out of memory" in _one_line(err) and "7,500,000,010" in err
    # the first layer alone is 64 x 10^8 weights (51 GB): nothing of it was made
    assert peak < 64e6 and not (tmp_path / "run").exists(), peak


def test_a_memory_error_while_training_is_one_line(tmp_path, capsys, monkeypatch):
    def fit(*args, **kwargs):
        raise MemoryError("Unable to allocate 12.0 GiB for an array with shape (1438, 10**6)")

    monkeypatch.setattr(minifw, "fit", fit)
    status, err = _run(["train", "--quiet", "--out", str(tmp_path / "run")], capsys)
    assert status == 2 and "out of memory: Unable to allocate 12.0 GiB" in _one_line(err)
    assert not (tmp_path / "run").exists()


# --- minifw plot ------------------------------------------------------------------------------


@pytest.mark.parametrize("history, words", [
    ({"loss": ["a", "b"]}, "'loss'[0] is 'a'"),
    ({"loss": [1.0, float("nan")]}, "'loss'[1] is nan"),
    ({"loss": []}, "no losses"),
    ({"loss": [1.0], "accuracy": [1.5]}, "not an accuracy"),
    ({"loss": [1.0], "val_loss": [1.0, 2.0]}, "2 entries for 1 epochs"),
    ({"loss": [1.0], "accuracy": "high"}, "not a list"),
    ({"loss": [True]}, "not a finite number"),
    ({"loss": [[1.0]]}, "not a finite number"),
])
def test_plot_of_a_bad_history_exits_2_with_one_line(tmp_path, capsys, history, words):
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history))
    status, err = _run(["plot", "training_curves", "--history", str(path), "--out",
                        str(tmp_path / "c.png")], capsys)
    assert status == 2 and words in _one_line(err) and str(path) in err
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("content", ["[" * 100_000, b"\xff\xfe\x00 binary"])
def test_plot_of_a_history_that_is_not_json_exits_2_with_one_line(tmp_path, capsys, content):
    path = tmp_path / "history.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    status, err = _run(["plot", "training_curves", "--history", str(path)], capsys)
    assert status == 2 and "is not JSON" in _one_line(err)


def test_plot_does_not_replace_a_fifo_or_a_protected_file(tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.png")
    status, err = _run(["plot", "activations", "--out", str(tmp_path / "fifo.png")], capsys)
    assert status == 2 and "FIFO" in _one_line(err)
    (tmp_path / "kept.png").write_bytes(b"mine")
    os.chmod(tmp_path / "kept.png", 0o444)
    status, err = _run(["plot", "activations", "--out", str(tmp_path / "kept.png")], capsys)
    assert status == 2 and "write-protected" in _one_line(err)
    assert (tmp_path / "kept.png").read_bytes() == b"mine"


def test_train_in_a_fresh_process_killed_by_sigkill_mid_run_keeps_the_previous_run(
        previous_run):
    # a real SIGKILL, at a moment the test does not choose: the folder is the old run or new
    out, before = previous_run
    script = textwrap.dedent(f"""
        import sys
        from minifw import cli
        sys.exit(cli.main(["train", "--quiet", "--epochs", "3", "--seed", "5", "--out",
                           {str(out)!r}]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if out.exists():
        now = _contents(out)
        assert now == before or (sorted(now) == sorted(cli.OUTPUTS) and all(
            now[n] != before[n] for n in ("model.npz", "settings.json")))

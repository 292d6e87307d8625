"""A learner's day with the command line (issue 16), driven as a person would drive it.

Every run keeps its outputs: one interrupted by Ctrl-C (SIGINT, once or several times, in a
fresh process) exits 130 with the run so far; one that reaches NaN exits 2 with its last finite
parameters; one whose loss ends far above where it began exits 1 and says it diverged. A
saved run is reused with ``minifw evaluate`` and ``minifw predict`` (on a ``.npy`` and on a
picture). Settings that cannot work are refused in one line before training.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import numpy as onp
import pytest

import minifw as mf
from minifw import cli
from minifw.datasets import load_digits

ENV = {**os.environ, "PYTHONWARNINGS": "error"}


def minifw(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m minifw ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "minifw", *args], capture_output=True,
                          text=True, cwd=cwd, env=ENV, timeout=120)


def one_line(err: str) -> str:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of three epochs, its folder."""
    folder = tmp_path_factory.mktemp("trained")
    result = minifw("train", "--epochs", "3", "--hidden", "32", "--out", "run", cwd=folder)
    assert result.returncode == 0, result.stderr
    (folder / "stdout.txt").write_text(result.stdout)
    return folder


# --- a finished run ---------------------------------------------------------------------------


def test_train_shows_the_summary_and_the_losses_and_keeps_a_model(trained: Path) -> None:
    out = (trained / "stdout.txt").read_text()
    assert "Sequential: 2,410 parameters" in out and "(N, 32)" in out and "parameters" in out
    assert "epoch 3: train loss" in out and "before training" in out
    assert "validation loss" in out and "best epoch" in out and "test loss" in out
    saved = mf.load_model(trained / "run" / "model.npz")
    assert saved.info["dataset"] == "digits" and saved.info["epoch"] == 3
    assert saved.info["status"] == "finished"
    best = mf.load_model(trained / "run" / "best_model.npz")
    history = json.loads((trained / "run" / "history.json").read_text())
    assert best.info["epoch"] == history["best_epoch"]
    assert history["val_loss"][history["best_epoch"] - 1] == min(history["val_loss"])


def test_evaluate_a_saved_run_gives_the_accuracy_training_printed(trained: Path) -> None:
    printed = (trained / "stdout.txt").read_text().split("test accuracy")[1].split()[0]
    for target in ("run", "run/model.npz"):
        result = minifw("evaluate", target, cwd=trained)
        assert result.returncode == 0, result.stderr
        assert f"digits test: accuracy {printed}" in result.stdout
    result = minifw("evaluate", "run/best_model.npz", "--split", "train", cwd=trained)
    assert result.returncode == 0 and "digits train: accuracy" in result.stdout
    assert "1438 samples" in result.stdout


def test_predict_on_npy_files_gives_the_models_classes(trained: Path) -> None:
    _, (x_test, t_test) = load_digits()
    onp.save(trained / "batch.npy", x_test[:20])
    onp.save(trained / "one.npy", x_test[0].reshape(8, 8))
    result = minifw("predict", "run", "batch.npy", "one.npy", "--top", "2", cwd=trained)
    assert result.returncode == 0, result.stderr
    model, params = mf.load_model(trained / "run" / "model.npz")
    want = model(params, x_test[:20]).argmax(axis=1)
    lines = result.stdout.splitlines()
    got = [int(line.split(": ")[1].split()[0]) for line in lines[:20]]
    assert got == want.tolist() and lines[0].startswith("batch.npy[0]: ")
    assert lines[20].startswith(f"one.npy: {want[0]} (probability ") and "; then " in lines[20]


def test_predict_on_pictures_of_digits(trained: Path) -> None:
    # test digits drawn large in dark ink on white paper, as a learner's scan would be
    _, (x_test, t_test) = load_digits()
    model, params = mf.load_model(trained / "run" / "model.npz")
    want = model(params, x_test[:10]).argmax(axis=1)
    names = []
    for i in range(10):
        picture = 1.0 - onp.kron(x_test[i].reshape(8, 8), onp.ones((12, 12)))
        name = f"digit{i}.png"
        matplotlib.image.imsave(trained / name, onp.pad(picture, 20, constant_values=1.0),
                                cmap="gray", vmin=0.0, vmax=1.0)
        names.append(name)
    result = minifw("predict", "run", *names, cwd=trained)
    assert result.returncode == 0, result.stderr
    got = [int(line.split(": ")[1].split()[0]) for line in result.stdout.splitlines()]
    assert sum(g == w for g, w in zip(got, want)) >= 8, (got, want)


@pytest.mark.parametrize("args, words", [
    (["evaluate", "nowhere.npz"], "no model file at"),
    (["evaluate", "."], "without model.npz"),
    (["evaluate", "params.npz"], "not a model file"),
    (["predict", "run", "missing.png"], "no such file"),
    (["predict", "run", "notes.txt"], "not a picture"),
    (["predict", "run", "wrong.npy"], "rows of 64 numbers"),
    (["predict", "run", "blank.png"], "no digit"),
])
def test_evaluate_and_predict_refuse_in_one_line(trained: Path, args: list[str],
                                                 words: str) -> None:
    mf.save(trained / "params.npz", {"W": onp.ones(2)})
    (trained / "notes.txt").write_text("a note")
    onp.save(trained / "wrong.npy", onp.ones((2, 5)))
    matplotlib.image.imsave(trained / "blank.png", onp.ones((20, 20)), cmap="gray")
    result = minifw(*args, cwd=trained)
    assert result.returncode == 2 and words in one_line(result.stderr), result.stderr


# --- runs that end early keep what they made --------------------------------------------------


def start_training(folder: Path, *args: str) -> subprocess.Popen[str]:
    """``minifw train`` in a fresh process, returned once it has printed its summary."""
    proc = subprocess.Popen([sys.executable, "-m", "minifw", "train", "--out", "run", *args],
                            cwd=folder, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # the summary's last row comes just before training starts
        if line.startswith("2 "):
            break
    time.sleep(1.0)  # mid-epoch: an epoch of this network takes about 2 s
    return proc


@pytest.mark.parametrize("presses", [1, 2, 3])
def test_ctrl_c_mid_epoch_exits_130_and_keeps_the_run_so_far(tmp_path: Path,
                                                             presses: int) -> None:
    proc = start_training(tmp_path, "--epochs", "500", "--hidden", "512", "256")
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    # a second Ctrl-C stops at once, unless the step it would stop has ended before it came
    assert "interrupted after epoch" in err or (presses > 1 and "by a second Ctrl-C" in err)
    assert "the run so far is in run" in err
    settings = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert settings["status"] == "interrupted" and settings["epochs_done"] < 500
    saved = mf.load_model(tmp_path / "run" / "model.npz")
    assert saved.info["status"] == "interrupted"
    assert all(onp.isfinite(a).all() for a in saved.params["0"].values())
    assert (tmp_path / "run" / "curves.png").is_file()
    assert "wrote run/model.npz" in out


def terminal_screen(output: str, columns: int) -> list[str]:
    """The lines a terminal ``columns`` wide shows for ``output``: ``\\r`` returns to the
    line's start, a character past the last column wraps to the next line."""
    lines: list[list[str]] = [[]]
    column, wrap = 0, False
    for char in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output):  # no cursor moves expected
        if char == "\r":
            column, wrap = 0, False
        elif char == "\n":
            lines.append([])
            column, wrap = 0, False
        else:
            if wrap:
                lines.append([])
                column, wrap = 0, False
            line = lines[-1]
            line.extend(" " * (column + 1 - len(line)))
            line[column] = char
            wrap = column == columns - 1
            column += not wrap
    return ["".join(line).rstrip() for line in lines]


def test_terminal_screen_wraps_and_returns_as_a_terminal_does() -> None:
    assert terminal_screen("abcdef\rXY", 4) == ["abcd", "XY"]
    assert terminal_screen("abcd\rXY\n1", 4) == ["XYcd", "1"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal")
def test_ctrl_c_twice_in_a_terminal_leaves_one_progress_bar(tmp_path: Path) -> None:
    # As a person at an 80-column terminal: the terminal echoes each Ctrl-C as ^C after the
    # bar, and sends SIGINT. Steps of about 2 s (one batch of 1294 samples through four layers
    # of 1024) make both presses land inside the first step.
    import pty

    columns = 80
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pseudo-terminal is its terminal
        try:
            fcntl_winsize(0, columns)
            os.chdir(tmp_path)
            os.execve(sys.executable, [sys.executable, "-m", "minifw", "train", "--hidden",
                                       "1024", "1024", "1024", "1024", "--batch-size", "1294",
                                       "--out", "run"], ENV)
        finally:
            os._exit(127)
    output = read_terminal(fd, until=b"batch/s]", timeout=120)
    time.sleep(0.3)
    os.write(fd, b"\x03")  # Ctrl-C, typed
    # the second press once the first is handled (its handler redraws the bar): two signals
    # that arrive during one BLAS call reach Python as one
    output += read_terminal(fd, until=b"batch/s]", timeout=120)
    os.write(fd, b"\x03")
    output += read_terminal(fd, until=None, timeout=120)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 130, text
    assert "by a second Ctrl-C" in text and "the run so far is in run" in text
    screen = terminal_screen(text, columns)
    bars = [line for line in screen if "batch/s" in line]
    assert len(bars) == 1, "\n".join(screen)
    assert (tmp_path / "run" / "model.npz").is_file()


def fcntl_winsize(fd: int, columns: int) -> None:
    """Tell the terminal on ``fd`` that it is 24 lines of ``columns`` columns."""
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))


def read_terminal(fd: int, until: bytes | None, timeout: float) -> bytes:
    """What the program writes to its terminal, up to ``until`` (or its end)."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (until is None or until not in out):
        if select.select([fd], [], [], 0.1)[0]:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the program has ended and closed its terminal
                break
            if not data:
                break
            out += data
    return out


def test_a_diverging_rate_exits_1_saying_so_and_draws_a_log_axis(tmp_path: Path) -> None:
    result = minifw("train", "--optimizer", "sgd", "--lr", "1000", "--quiet", "--out", "run",
                    cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    err = one_line(result.stderr)
    assert "training diverged" in err and "--lr" in err and "sgd" in err
    assert "train loss" in result.stdout and "before training" in result.stdout
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["final_loss"] > 2 * history["initial_loss"]
    assert mf.load_model(tmp_path / "run" / "model.npz").info["status"] == "diverged"
    from minifw.plots import training_curves_figure

    assert training_curves_figure(history).axes[0].get_yscale() == "log"


def test_a_run_that_reaches_nan_exits_2_and_keeps_its_last_finite_params(tmp_path: Path) -> None:
    result = minifw("train", "--optimizer", "sgd", "--lr", "1e300", "--quiet", "--out", "run",
                    cwd=tmp_path)
    assert result.returncode == 2
    err = one_line(result.stderr)
    assert "training stopped at epoch 1" in err and "the run so far is in run" in err
    _, params = mf.load_model(tmp_path / "run" / "model.npz")
    assert all(onp.isfinite(a).all() for v in params.values() for a in v.values())
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["status"] == "stopped"


def test_holding_interrupts_keeps_a_ctrl_c_until_the_outputs_are_written() -> None:
    with cli._holding_interrupts() as held:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert held
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --- settings that cannot work ----------------------------------------------------------------


def test_a_batch_larger_than_the_data_is_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--batch-size", "5000", "--out", str(tmp_path / "run")]) == 2
    err = one_line(capsys.readouterr().err)
    assert "--batch-size 5000 is larger than the 1294 training samples" in err
    assert not (tmp_path / "run").exists()


def test_the_step_activation_is_said_to_learn_nothing_in_its_hidden_layers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--activation", "step", "--epochs", "1", "--quiet", "--out",
                     str(tmp_path / "run")]) in (0, 1)
    err = capsys.readouterr().err
    assert "warning: --activation step has gradient 0 everywhere" in err


def test_missing_mnist_is_told_in_the_command_lines_words(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"),
                     "--no-download", "--out", str(tmp_path / "run")]) == 2
    err = one_line(capsys.readouterr().err)
    assert "--data-dir" in err and "cache_dir" not in err and "mirror=" not in err
    assert "drop --no-download" in err and "t10k-labels-idx1-ubyte.gz" in err


def test_plot_makes_no_folder_and_no_giant_picture(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.png"
    assert cli.main(["plot", "activations", "--out", str(target)]) == 2
    assert "no folder" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "nonexistent").exists()
    assert cli.main(["plot", "activations", "--dpi", "5000", "--out",
                     str(tmp_path / "x.png")]) == 2
    assert "must be at most 600" in one_line(capsys.readouterr().err)
    assert cli.main(["plot", "all", "--out-dir", str(tmp_path / "a" / "b")]) == 2
    assert "neither it nor its parent" in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_minifw_train_imports_neither_scikit_learn_nor_scipy() -> None:
    code = ("import sys; from minifw import cli; import minifw.experiment as e; "
            "e.prepare(cli.build_parser().parse_args(['train', '--quiet'])); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=ENV).stdout
    assert out.strip() == "[]"

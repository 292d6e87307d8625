"""Every snippet of the README runs as written, and its test command is the one CI runs.

The walk through "A learner's day" runs block after block in one empty folder, as a learner
would type it (``minifw`` lines in a fresh process); every other Python block runs on its own,
in a fresh namespace. Only the installs (``pip``) and the benchmarks are left to CI and to
the lead's machine.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def sections() -> dict[str, list[tuple[str, str]]]:
    """``{heading: [(language, code), ...]}`` for every ``## `` section of the README."""
    out: dict[str, list[tuple[str, str]]] = {}
    for part in re.split(r"^## ", README, flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        out[heading.strip()] = re.findall(r"```(\w+)\n(.*?)```", body, re.S)
    return out


SECTIONS = sections()


def run_python(code: str, name: str) -> None:
    exec(compile(code, f"README: {name}", "exec"), {"__name__": "readme"})


def run_shell(code: str) -> str:
    """Each line of a ``sh`` block, ``minifw`` as ``python -m minifw``; their stdout."""
    out = []
    for line in code.strip().splitlines():
        argv = shlex.split(line)
        assert argv[0] == "minifw", line
        result = subprocess.run([sys.executable, "-m", "minifw", *argv[1:]],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{line}: {result.stderr}"
        out.append(result.stdout)
    return "".join(out)


def test_a_learners_day_runs_from_training_to_a_reloaded_and_evaluated_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    outputs = []
    for language, code in SECTIONS["A learner's day"]:
        if language == "sh":
            outputs.append(run_shell(code))
        elif language == "python":
            run_python(code, "a learner's day")
            outputs.append(capsys.readouterr().out)
    trained, evaluated, pictures, predicted, in_python, book = outputs

    # 1. train from the command line
    assert "Sequential: 4,810 parameters" in trained and "best epoch" in trained
    assert sorted(p.name for p in (tmp_path / "runs" / "latest").iterdir()) == [
        "best_model.npz", "curves.png", "history.json", "model.npz", "settings.json"]
    # 2. reuse the run
    printed = trained.split("test accuracy")[1].split()[0]
    assert f"digits test: accuracy {printed}" in evaluated and "digits train" in evaluated
    digits = re.search(r"the digits are \[(\d) (\d) (\d)\]", pictures).groups()
    lines = predicted.splitlines()
    assert lines[0].startswith(f"digit.png: {digits[0]} ")
    assert [line.split(": ")[1][0] for line in lines[1:]] == list(digits)
    # 3. the same in Python: train, save, reload, evaluate
    assert "Sequential: 3,760 parameters" in in_python and "best epoch" in in_python
    assert float(re.search(r"test accuracy ([0-9.]+)", in_python).group(1)) >= 0.95
    assert (tmp_path / "digits.npz").is_file()
    # 4. the book's code, with the book's numbers
    lines = book.splitlines()
    assert lines[0] == "0.09750000000000003 0.510825457099338"
    assert lines[1] == "[0 1 1]" and lines[2] == "[6. 8.]"
    assert lines[3].split() == ["[-6.11110793e-10", "8.14814391e-10]"]


def test_quick_start_runs_and_learns(capsys: pytest.CaptureFixture[str]) -> None:
    [(_, block)] = SECTIONS["Quick start"]
    assert len(block.strip().splitlines()) <= 16  # the quick start stays short
    run_python(block, "quick start")
    out = capsys.readouterr().out
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert accuracy >= 0.95
    assert "gradient check (projection mode, float64): OK" in out


def test_the_training_loop_runs_and_learns(capsys: pytest.CaptureFixture[str]) -> None:
    [(_, block)] = SECTIONS["A training loop of your own"]
    run_python(block, "training loop")
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", capsys.readouterr().out).group(1))
    assert accuracy >= 0.95


def test_checking_your_own_layer_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    [(_, block)] = SECTIONS["Checking your own layer"]
    run_python(block, "checking your own layer")
    assert "OK" in capsys.readouterr().out


def test_the_cnn_with_training_aids_runs_and_learns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    [(_, block)] = [b for b in SECTIONS["Convolutional networks, dropout, batch norm and better "
                                        "training"] if b[0] == "python"]
    run_python(block, "convolutional networks")
    out = capsys.readouterr().out
    assert float(re.search(r"test accuracy ([0-9.]+)", out).group(1)) >= 0.95
    kept, ran = map(int, re.search(r"kept epoch (\d+) of (\d+)", out).groups())
    assert 1 <= kept <= ran <= 10
    import minifw as mf

    saved = mf.load_model(tmp_path / "cnn.npz")
    assert sorted(saved.state["1"]) == ["mean", "var"]


def test_every_code_block_is_run_by_a_test() -> None:
    run = {"A learner's day", "Quick start", "A training loop of your own",
           "Checking your own layer", "Convolutional networks, dropout, batch norm and better "
           "training"}
    for heading, blocks in SECTIONS.items():
        for language, code in blocks:
            if heading in run or language == "text":
                continue
            # what is left: installs and benchmarks, which CI and the lead's machine run
            assert language == "sh" and ("pip install" in code or "benchmarks/run.py" in code), (
                heading, code)


def test_the_readme_gives_the_measured_timings_of_its_two_commands() -> None:
    timings = re.search(r"Measured on a fresh environment.*?\n\n", README, re.S)
    assert timings and "minifw train" in timings.group(0) and "pytest" in timings.group(0)


def test_ci_runs_the_readme_test_command() -> None:
    command = "python -m pytest --cov=minifw"
    assert f'python -m pip install -e ".[dev]" && {command}' in README
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith(command)


def test_every_example_the_readme_names_exists() -> None:
    for name in re.findall(r"\(examples/(\w+\.py)\)", README):
        assert (ROOT / "examples" / name).is_file(), name

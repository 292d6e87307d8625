"""The README's quick start runs as written, and its test command is the one CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_quick_start_runs_and_learns(capsys):
    block = re.search(r"## Quick start\s+```python\n(.*?)```", README, re.S).group(1)
    assert len(block.strip().splitlines()) <= 16  # the quick start stays short
    exec(compile(block, "README quick start", "exec"), {})
    out = capsys.readouterr().out
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert accuracy >= 0.95
    assert "gradient check (projection mode, float64): OK" in out


def test_the_training_loop_runs_and_learns(capsys):
    block = re.search(r"## A training loop of your own\s+.*?```python\n(.*?)```", README,
                      re.S).group(1)
    exec(compile(block, "README training loop", "exec"), {})
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", capsys.readouterr().out).group(1))
    assert accuracy >= 0.95


def test_ci_runs_the_readme_test_command():
    command = "python -m pytest --cov=minifw"
    assert f'python -m pip install -e ".[dev]" && {command}' in README
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith(command)


def test_every_example_the_readme_names_exists():
    for name in re.findall(r"\(examples/(\w+\.py)\)", README):
        assert (ROOT / "examples" / name).is_file(), name

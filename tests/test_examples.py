"""Every example runs as ``python examples/NAME.py`` and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, cwd: Path | None = None) -> str:
    """Run ``examples/NAME`` in a fresh interpreter (warnings are errors); its stdout."""
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                            text=True, cwd=cwd, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def number_after(label: str, text: str) -> float:
    match = re.search(re.escape(label) + r"\s*:?\s*([-+0-9.e]+)", text)
    assert match, f"{label!r} not in:\n{text}"
    return float(match.group(1))


def test_perceptron_gates() -> None:
    out = run_example("perceptron_gates.py")
    for gate in ("AND", "OR", "NAND"):
        assert re.search(rf"perceptron {gate}\s*: .*: learned", out), out
    assert re.search(r"perceptron XOR\s*: .*: FAILS", out), out
    assert "two-layer XOR  : predicts [0, 1, 1, 0], target [0, 1, 1, 0]: learned" in out


def test_gradient_descent() -> None:
    out = run_example("gradient_descent.py")
    assert "step 1: (-2.4, 3.2)" in out and "step 2: (-1.92, 2.56)" in out
    final = re.search(r"final point: \(([^,]+), ([^)]+)\)", out)
    assert final and abs(float(final.group(1))) < 1e-8 and abs(float(final.group(2))) < 1e-8
    assert "DivergenceWarning: gradient_descent: lr=10 is too large" in out
    assert "lr = 1e-10: final point (-3, 4)" in out


def test_loss_functions() -> None:
    out = run_example("loss_functions.py")
    assert [float(v) for v in re.findall(r"sum_squares_error = ([0-9.]+)", out)] == [
        0.0975, 0.5975]
    assert re.findall(r"cross_entropy_error = ([0-9.]+),?\n", out)[:2] == [
        "0.510825457099338", "2.302584092994546"]


def test_two_layer_digits_reaches_95_percent() -> None:
    out = run_example("two_layer_digits.py")
    assert number_after("test accuracy", out) >= 0.95
    assert number_after("training time", out) > 0


def test_custom_layer_gradcheck() -> None:
    if not (EXAMPLES / "custom_layer_gradcheck.py").exists():
        pytest.skip("examples/custom_layer_gradcheck.py not written yet")
    out = run_example("custom_layer_gradcheck.py")
    assert "FAILED" in out and "OK" in out


def test_plots_example_writes_every_picture(tmp_path: Path) -> None:
    out = run_example("plots.py", str(tmp_path / "pictures"))
    names = sorted(p.name for p in (tmp_path / "pictures").iterdir())
    assert names == sorted(f"{n}.png" for n in (
        "activations", "finite_differences", "gradient_descent", "neuron_loss",
        "vanishing_gradients", "training_curves"))
    for name in names:
        assert (tmp_path / "pictures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "h = 1e-50: 0.0" in out
    assert number_after("sigmoid: gradient norm, layer 1 / layer 8 =", out) < 1e-3


def test_cnn_digits() -> None:
    out = run_example("cnn_digits.py")
    assert number_after("test accuracy", out) > 0.97
    assert "gradient check: ok" in out
    for path in ("0.W", "0.b", "4.W", "6.b"):
        assert re.search(rf"^{re.escape(path)}\s+\S+\s+ok\s", out, re.M), out

"""The ``minifw`` command, run as a user runs it: ``python -m minifw ...`` or ``main(argv)``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image
import numpy as onp
import pytest

import minifw as mf
from minifw import cli
from minifw.datasets import MNIST_FILES, write_idx

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OPTIONS = {
    "train": ["--dataset", "--data-dir", "--no-download", "--hidden", "--activation", "--loss",
              "--optimizer", "--lr", "--epochs", "--batch-size", "--seed", "--gradient", "--out",
              "--quiet"],
    "gradcheck": ["MODULE:LAYER", "--mode", "--examples", "--seed", "--in-features", "--dtype"],
    "bench": ["--quick", "--out"],
    "plot": ["NAME", "--out", "--out-dir", "--history", *cli.PLOT_NAMES],
}


@pytest.fixture(autouse=True)
def hypothesis_storage(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """gradcheck's hypothesis cache goes to a temporary folder, not the user's cache."""
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(tmp_path_factory.mktemp("hyp")))


def run_minifw(*args: str, cwd: Path | None = None, **env_vars: str
               ) -> subprocess.CompletedProcess[str]:
    """``python -m minifw ARGS`` in a fresh process, as a user would type it."""
    env = {**os.environ, "PYTHONWARNINGS": "error", **env_vars}
    return subprocess.run([sys.executable, "-m", "minifw", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100 and image.std() > 0


def assert_one_line_error(err: str) -> None:
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("minifw") and "error: " in err


# --- train ------------------------------------------------------------------------------------


def test_train_writes_model_files_history_settings_and_curves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "2", "--hidden", "16", "8", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "train accuracy" in stdout and "test accuracy" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "best_model.npz", "curves.png", "history.json", "model.npz", "settings.json"]

    model, params = mf.load_model(out / "model.npz")
    assert repr(model) == repr(cli.build_model(64, [16, 8], 10, "relu", "softmax_cross_entropy"))
    assert {k: {n: a.shape for n, a in v.items()} for k, v in params.items()} == {
        "0": {"W": (64, 16), "b": (16,)}, "2": {"W": (16, 8), "b": (8,)},
        "4": {"W": (8, 10), "b": (10,)}}
    assert model(params, onp.zeros((1, 64))).shape == (1, 10)

    history = json.loads((out / "history.json").read_text())
    assert mf.History(**history).to_dict() == history
    assert all(len(history[k]) == 2 for k in ("loss", "accuracy", "val_loss", "val_accuracy"))
    assert history["best_epoch"] in (1, 2) and history["initial_loss"] > history["loss"][-1]
    test_accuracy = float(stdout.split("test accuracy")[1].split()[0])
    assert mf.load_model(out / "model.npz").info["measures"]["test"]["accuracy"] == (
        pytest.approx(test_accuracy, abs=1e-4))

    settings = json.loads((out / "settings.json").read_text())
    assert settings["epochs"] == 2 and settings["hidden"] == [16, 8]
    assert settings["dataset"] == "digits" and settings["seed"] == 0
    assert settings["optimizer"] == "adam" and settings["lr"] == cli.DEFAULT_LR["adam"]
    assert settings["train_samples"] + settings["validation_samples"] == 1438
    assert settings["test_samples"] == 359 and settings["status"] == "finished"
    assert_png(out / "curves.png")


def test_train_defaults_reach_95_percent_on_the_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["train", "--quiet", "--out", str(tmp_path)]) == 0
    stdout = capsys.readouterr().out
    assert float(stdout.split("test accuracy")[1].split()[0]) >= 0.95


def test_train_is_reproducible_from_the_seed(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert cli.main(["train", "--quiet", "--epochs", "1", "--seed", "3", "--out",
                         str(tmp_path / name)]) == 0
    a, b = (mf.load_model(tmp_path / n / "model.npz").params for n in ("a", "b"))
    assert all(onp.array_equal(a[k][n], b[k][n]) for k in a for n in a[k])


@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "sse"])
def test_train_with_each_loss_on_probabilities_ends_in_softmax(
    loss: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["train", "--quiet", "--epochs", "1", "--loss", loss, "--activation", "tanh",
                     "--optimizer", "sgd", "--out", str(tmp_path)]) == 0
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["model"].endswith("Softmax())")
    assert "test accuracy" in capsys.readouterr().out


def test_train_with_numerical_gradients(tmp_path: Path) -> None:
    assert cli.main(["train", "--quiet", "--gradient", "numerical", "--hidden", "4",
                     "--epochs", "1", "--batch-size", "256", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "settings.json").read_text())["gradient"] == "numerical"


def test_train_in_a_fresh_process(tmp_path: Path) -> None:
    result = run_minifw("train", "--epochs", "1", "--out", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    assert "Traceback" not in result.stderr
    assert (tmp_path / "run" / "model.npz").is_file()


def write_small_mnist(folder: Path, rng: onp.random.Generator) -> None:
    folder.mkdir()
    for part, n in (("train", 60), ("test", 20)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(onp.uint8)
        labels = (onp.arange(n) % 10).astype(onp.uint8)
        write_idx(folder / MNIST_FILES[f"{part}_images"], images)
        write_idx(folder / MNIST_FILES[f"{part}_labels"], labels)


def test_train_on_mnist_files_from_the_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_small_mnist(tmp_path / "mnist", onp.random.default_rng(0))
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "mnist"),
                     "--no-download", "--quiet", "--epochs", "1", "--hidden", "8", "--out",
                     str(tmp_path / "run")]) == 0
    settings = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert (settings["inputs"], settings["train_samples"], settings["validation_samples"],
            settings["test_samples"]) == (784, 54, 6, 20)


def test_train_on_missing_mnist_offline_is_one_line_naming_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", str(empty), "--no-download",
                     "--quiet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert str(empty) in err and "train-images-idx3-ubyte.gz" in err
    # a mirror that refuses the connection: the download fails, the same one line
    monkeypatch.setenv("MINIFW_MNIST_MIRROR", "http://127.0.0.1:9/")
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", str(empty), "--quiet",
                     "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "download failed" in err
    assert not (tmp_path / "run").exists()


def test_a_diverging_run_is_one_line_saying_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["train", "--quiet", "--optimizer", "sgd", "--lr", "1e300", "--out",
                     str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "training stopped at epoch 1" in err


BAD_ARGUMENTS = [
    [],
    ["frobnicate"],
    ["train", "--epochs", "-1"],
    ["train", "--epochs", "0"],
    ["train", "--epochs", "1.5"],
    ["train", "--lr", "0"],
    ["train", "--lr", "-0.1"],
    ["train", "--lr", "nan"],
    ["train", "--batch-size", "0"],
    ["train", "--hidden", "0"],
    ["train", "--dataset", "cifar"],
    ["train", "--activation", "swish"],
    ["train", "--loss", "hinge"],
    ["train", "--optimizer", "lbfgs"],
    ["train", "--gradient", "symbolic"],
    ["train", "--bogus"],
    ["gradcheck"],
    ["gradcheck", "no_colon_here"],
    ["gradcheck", "minifw_no_such_module_xyz:Layer"],
    ["gradcheck", "minifw.layers:NoSuchLayer"],
    ["gradcheck", "minifw.layers:ACTIVATIONS"],
    ["gradcheck", "minifw.layers:Linear"],  # needs arguments
    ["gradcheck", "does/not/exist.py:Layer"],
    ["gradcheck", "minifw.layers:ReLU", "--examples", "0"],
    ["gradcheck", "minifw.layers:ReLU", "--dtype", "float16"],
    ["plot", "nonsense"],
    ["plot", "all", "--out", "x.png"],
    ["plot", "training_curves", "--history", "/no/such/history.json"],
]


@pytest.mark.parametrize("argv", BAD_ARGUMENTS, ids=" ".join)
def test_bad_arguments_exit_2_with_one_line_on_stderr(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # gradcheck puts the cwd on sys.path
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" or argv[0] == "gradcheck"  # gradcheck may say what it checks first
    assert_one_line_error(err)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_train_out_that_is_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "taken"
    target.write_text("mine")
    assert cli.main(["train", "--quiet", "--out", str(target)]) == 2
    assert_one_line_error(capsys.readouterr().err)
    assert target.read_text() == "mine"


@pytest.mark.parametrize("argv", [["train", "--epochs", "-1"], ["gradcheck", "x"], ["nope"]])
def test_bad_arguments_in_a_fresh_process(argv: list[str], tmp_path: Path) -> None:
    result = run_minifw(*argv, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result.stderr)


# --- gradcheck --------------------------------------------------------------------------------


LAYERS_MODULE = '''
import minifw as mf


@mf.primitive
def cube(x):
    return x ** 3


mf.defvjp(cube, lambda ans, x: lambda g: g * 3 * x ** 2)


@mf.primitive
def wrong_cube(x):
    return x ** 3


mf.defvjp(wrong_cube, lambda ans, x: lambda g: g * 2 * x ** 2)  # should be 3 x**2


class Cube(mf.Layer):
    def forward(self, params, x):
        return cube(x)


class WrongCube(mf.Layer):
    def forward(self, params, x):
        return wrong_cube(x)


class Scale(mf.Layer):
    def __init__(self, in_features):
        self.in_features = in_features

    def init(self, rng):
        return {"s": rng.standard_normal(self.in_features)}

    def forward(self, params, x):
        return x * params["s"]


class Broken(mf.Layer):
    def forward(self, params, x):
        raise RuntimeError("this layer is broken")


good = Cube()
wrong = WrongCube()
net = mf.Sequential(mf.Linear(3, 2), Cube())


def make_scale():
    return Scale(5)
'''


@pytest.fixture
def layers_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_layers.py"
    path.write_text(textwrap.dedent(LAYERS_MODULE))
    return path


@pytest.mark.parametrize("name", ["good", "Cube", "net", "make_scale"])
@pytest.mark.parametrize("mode", ["full", "projection"])
def test_gradcheck_on_a_correct_layer_exits_0_and_prints_the_report(
    name: str, mode: str, layers_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["gradcheck", f"{layers_file}:{name}", "--mode", mode, "--examples",
                     "10"]) == 0
    out = capsys.readouterr().out
    assert f"gradient check ({mode} mode, float64): OK" in out
    assert "path" in out and "autograd" in out and "numerical" in out


def test_gradcheck_on_a_wrong_vjp_exits_1_and_says_the_gradient_is_wrong(
    layers_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for mode in ("full", "projection"):
        assert cli.main(["gradcheck", f"{layers_file}:wrong", "--mode", mode,
                         "--examples", "10"]) == 1
        out = capsys.readouterr().out
        assert "FAILED" in out and "the gradient is wrong" in out


def test_gradcheck_float32(layers_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gradcheck", f"{layers_file}:Cube", "--dtype", "float32",
                     "--examples", "10"]) == 0
    assert "float32, checked in float64): OK" in capsys.readouterr().out


def test_gradcheck_in_features_option(layers_file: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Scale(5) declares its width; an explicit width that does not fit fails, with the input
    assert cli.main(["gradcheck", f"{layers_file}:make_scale", "--in-features", "5",
                     "--examples", "5"]) == 0
    capsys.readouterr()
    assert cli.main(["gradcheck", f"{layers_file}:make_scale", "--in-features", "3",
                     "--examples", "5"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "the layer raised" in out and "(shape (1, 3))" in out


def test_gradcheck_a_dotted_module_from_the_current_folder(
    layers_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = tmp_path_factory.mktemp("cache")
    good = run_minifw("gradcheck", "my_layers:good", "--examples", "5", cwd=layers_file.parent,
                      HYPOTHESIS_STORAGE_DIRECTORY="", XDG_CACHE_HOME=str(cache))
    assert good.returncode == 0, good.stderr
    assert "OK" in good.stdout
    # hypothesis keeps its cache under the user's cache folder, not in the current one
    assert not (layers_file.parent / ".hypothesis").exists()
    assert (cache / "minifw" / "hypothesis").is_dir()
    wrong = run_minifw("gradcheck", "my_layers:wrong", "--examples", "5", cwd=layers_file.parent)
    assert wrong.returncode == 1, wrong.stderr
    assert "FAILED" in wrong.stdout and "Traceback" not in wrong.stderr


def test_gradcheck_a_layer_that_raises_fails_with_the_input(
    layers_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an error on a drawn input is a failure of the layer, not a pass and not a usage error
    assert cli.main(["gradcheck", f"{layers_file}:Broken", "--examples", "3"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "the layer raised RuntimeError: this layer is broken on the " \
        "input x = [[" in out


def test_gradcheck_a_module_that_raises_on_import_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad_module.py").write_text("raise ImportError('missing dependency foo')\n")
    assert cli.main(["gradcheck", f"{tmp_path / 'bad_module.py'}:X"]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "missing dependency foo" in err


# --- bench ------------------------------------------------------------------------------------


def test_bench_without_the_benchmarks_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "benchmark_script", lambda: tmp_path / "benchmarks" / "run.py")
    assert cli.main(["bench", "--quick"]) == 2
    assert_one_line_error(capsys.readouterr().err)


def test_bench_runs_the_script_with_the_arguments(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "run.py"
    script.write_text("import sys\nprint('ARGS', sys.argv[1:])\nsys.exit(3)\n")
    monkeypatch.setattr(cli, "benchmark_script", lambda: script)
    assert cli.main(["bench", "--quick", "--out", "r.json", "--repeat", "2"]) == 3
    assert "ARGS ['--quick', '--out', 'r.json', '--repeat', '2']" in capfd.readouterr().out


def test_bench_looks_in_the_checkout() -> None:
    assert cli.benchmark_script() == Path(mf.__file__).resolve().parents[1] / "benchmarks" / (
        "run.py")


# --- plot -------------------------------------------------------------------------------------


def test_plot_all_writes_every_picture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plot", "all", "--out-dir", str(tmp_path / "docs"), "--dpi", "50"]) == 0
    written = sorted(p.name for p in (tmp_path / "docs").iterdir())
    assert written == sorted(f"{name}.png" for name in cli.PLOT_NAMES)
    for name in written:
        assert_png(tmp_path / "docs" / name)
    assert capsys.readouterr().out.count("wrote ") == len(cli.PLOT_NAMES)


def test_plot_one_picture_and_training_curves_from_a_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plot", "gradient_descent", "--out", str(tmp_path / "gd.png")]) == 0
    assert_png(tmp_path / "gd.png")
    history = tmp_path / "history.json"
    history.write_text(json.dumps(mf.History(loss=[1.0, 0.4], accuracy=[0.5, 0.9]).to_dict()))
    assert cli.main(["plot", "training_curves", "--history", str(history), "--out",
                     str(tmp_path / "tc.png")]) == 0
    assert_png(tmp_path / "tc.png")
    history.write_text("[1, 2]")
    assert cli.main(["plot", "training_curves", "--history", str(history)]) == 2
    assert_one_line_error(capsys.readouterr().err)


# --- help -------------------------------------------------------------------------------------


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("train", "gradcheck", "bench", "plot"):
        assert f"    {command}" in out


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_each_command_help_lists_its_options(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: minifw {command}")
    for option in OPTIONS[command]:
        assert option in out, option


def test_help_and_version_in_a_fresh_process() -> None:
    result = run_minifw("--help")
    assert result.returncode == 0 and "gradcheck" in result.stdout and result.stderr == ""
    result = run_minifw("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"minifw {mf.__version__}"

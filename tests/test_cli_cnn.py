"""``minifw train --model cnn`` and the training-aid flags: in a fresh process on a tiny
configuration, on MNIST files the test writes itself (no network), and the errors."""

import json
from pathlib import Path

import numpy as onp
import pytest
from test_cli import assert_one_line_error, assert_png, run_minifw, write_small_mnist

import minifw as mf
from minifw import cli
from minifw.datasets import load_digits
from minifw.tree import leaves


def test_train_a_cnn_in_a_fresh_process(tmp_path: Path) -> None:
    result = run_minifw("train", "--model", "cnn", "--filters", "2", "--hidden", "8",
                        "--epochs", "2", "--batch-size", "64", "--out", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "training cnn on digits: conv 2 3x3 padding 1, 2x2 max pooling" in result.stdout
    assert "test accuracy" in result.stdout
    settings = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert settings["network"] == "cnn" and settings["model"].startswith(
        "Sequential(Conv2D(in_channels=1, out_channels=2, kernel_size=(3, 3)")
    assert settings["inputs"] == 64 and settings["epochs_done"] == 2
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["val_accuracy"]) == 2
    assert_png(tmp_path / "run" / "curves.png")
    for name in ("model.npz", "best_model.npz"):  # a cnn's model files load and predict
        saved = mf.load_model(tmp_path / "run" / name)
        assert saved.info["input_shape"] == [1, 8, 8]
        assert saved.info["settings"]["network"] == "cnn"
    result = run_minifw("evaluate", "run", cwd=tmp_path)
    assert result.returncode == 0 and "digits test: accuracy" in result.stdout, result.stderr
    onp.save(tmp_path / "digits.npy", load_digits()[1][0][:3])
    result = run_minifw("predict", "run", "digits.npy", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.count("probability") == 3, result.stderr


def test_the_book_simple_conv_net_on_mnist_files(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    write_small_mnist(tmp_path / "mnist", onp.random.default_rng(0))
    assert cli.main(["train", "--model", "cnn", "--dataset", "mnist", "--data-dir",
                     str(tmp_path / "mnist"), "--no-download", "--epochs", "1", "--lr", "0.001",
                     "--out", str(tmp_path / "run")]) == 0  # 0.01 diverges on these noise images
    settings = json.loads((tmp_path / "run" / "settings.json").read_text())
    # the book's SimpleConvNet: 30 filters 5x5, no padding, 2x2 pooling, 100 hidden
    assert (settings["filters"], settings["kernel_size"], settings["padding"],
            settings["hidden"]) == (30, 5, 0, [100])
    assert "Linear(in_features=4320, out_features=100" in settings["model"]
    # 10% of the training data held out for validation
    assert (settings["train_samples"], settings["validation_samples"],
            settings["test_samples"]) == (54, 6, 20)
    assert "test accuracy" in capsys.readouterr().out


def test_training_aid_flags_reach_the_optimizer_and_fit(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert cli.main(["train", "--quiet", "--hidden", "8", "--optimizer", "momentum",
                     "--lr", "0.3", "--nesterov", "--weight-decay", "0.001", "--schedule",
                     "step", "--lr-step", "1", "--lr-gamma", "0.9", "--warmup", "1", "--clip-norm",
                     "5", "--early-stopping", "1", "--epochs", "30",
                     "--out", str(tmp_path / "run")]) == 0
    settings = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert settings["optimizer_settings"] == (
        "Momentum(lr=WarmUp(StepDecay(lr=0.3, step_size=41, gamma=0.9), steps=41), "
        "weight_decay=0.001, clip_norm=5.0, momentum=0.9, nesterov=True)")
    # 10% held out (--validation-split's default): 1438 - 144 samples train, 41 batches of 32
    # an epoch
    assert settings["train_samples"] == 1294 and settings["validation_samples"] == 144
    assert settings["epochs_done"] == settings["best_epoch"] + 1 < 30  # patience 1: it stopped
    out = capsys.readouterr().out
    assert f"kept the parameters of epoch {settings['best_epoch']}" in out
    # model.npz holds the best epoch's parameters, as fit left them
    model, best = (mf.load_model(tmp_path / "run" / n) for n in ("model.npz", "best_model.npz"))
    assert model.info["epoch"] == best.info["epoch"] == settings["best_epoch"]
    assert all(onp.array_equal(a, b) for (_, a), (_, b) in zip(leaves(model.params),
                                                               leaves(best.params)))


def test_adamw_keeps_its_own_decay_unless_given(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(["train", "--optimizer", "adamw", "--epochs", "1",
                                          "--hidden", "4", "--quiet"])
    assert cli.train(args).setup.optimizer.weight_decay == 0.01
    args = cli.build_parser().parse_args(["train", "--optimizer", "adamw", "--epochs", "1",
                                          "--hidden", "4", "--quiet", "--weight-decay", "0"])
    assert cli.train(args).setup.optimizer.weight_decay == 0.0


@pytest.mark.parametrize("argv, words", [
    (["--nesterov"], "--nesterov is an option of --optimizer momentum"),
    (["--filters", "4"], "--filters is an option of --model cnn"),
    (["--model", "cnn", "--kernel-size", "9", "--padding", "0"], "too small for 2x2 pooling"),
    (["--model", "cnn", "--gradient", "numerical"], "--gradient numerical is for --model mlp"),
    (["--weight-decay", "-1"], "must be a finite number >= 0"),
    (["--clip-norm", "0"], "must be a finite number > 0"),
    (["--early-stopping", "0"], "must be a whole number >= 1"),
    (["--early-stopping", "2", "--validation-split", "0"], "needs --validation-split above 0"),
])
def test_bad_training_flags_are_one_line(argv: list[str], words: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--quiet", "--epochs", "1", *argv, "--out",
                     str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert words in err
    assert not (tmp_path / "run").exists()

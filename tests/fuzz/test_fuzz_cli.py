"""Fuzzing the command line: ``minifw.cli.main(argv)`` (``minifw train``, ``gradcheck``, ``plot``).

What "correct" means here (decided for issue 6; the CLI's own contract): a bad argument, a
missing or damaged file, or an error the library reports gives exit status 2 and one line on
stderr that says ``error``, never a traceback and never an exception out of ``main``.

Nothing heavy runs: ``minifw.fit`` and the property check are replaced by stubs that raise
:class:`Accepted`, so an argument that should have been refused but was not shows up as that
exception (a finding), and one that is fine costs nothing. ``bench`` (a subprocess running the
benchmarks) is not fuzzed here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile

import numpy as onp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minifw
import minifw.testing
from minifw import cli, runfolder
from minifw.datasets import MNIST_FILES, write_idx

from .harness import record

ENTRY = "minifw (command line)"


class Accepted(Exception):
    """Raised by the stubs: the command got past its argument checks."""


@pytest.fixture(autouse=True, scope="module")
def _stubs():
    mp = pytest.MonkeyPatch()
    mp.setattr(minifw, "fit", _accepted)
    mp.setattr(minifw.testing, "check_layer_property", _accepted)
    yield
    mp.undo()


def _accepted(*args, **kwargs):
    raise Accepted


def run(argv):
    """``(status, stdout, stderr)`` of ``main(argv)``, or ``("accepted", ...)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except Accepted:
            status = "accepted"
    return status, out.getvalue(), err.getvalue()


def refused(argv, *words):
    status, out, err = run(argv)
    assert status == 2, f"{argv}: status {status}, stderr {err!r}"
    assert "Traceback" not in out + err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "error" in lines[0], f"{argv}: stderr {err!r}"
    if words:
        assert any(w.lower() in err.lower() for w in words), f"{argv}: {err!r} names none"


#: Strings no number option accepts.
NOT_NUMBERS = ["nan", "inf", "-inf", "", "abc", "1e309", "0x10", "1,5", "None", "½", "--"]


@given(option=st.sampled_from(["--epochs", "--batch-size", "--seed", "--hidden"]),
       value=st.one_of(st.sampled_from(NOT_NUMBERS + ["-1", "2.5", "1e3"]),
                       st.integers(-10**6, -1).map(str)))
def test_train_refuses_whole_numbers_that_are_not(option, value):
    record(ENTRY, "settings")
    refused(["train", option, value, "--quiet", "--out", tempfile.gettempdir()], option[2:],
            "whole number", "expected", "unrecognized")


@given(value=st.one_of(st.sampled_from(NOT_NUMBERS + ["0", "-0.0", "-1e-3", "1e-400"]),
                       st.floats(max_value=0).map(repr)))
def test_train_refuses_learning_rates_that_are_not_positive_finite(value):
    record(ENTRY, "nonfinite" if value in ("nan", "inf", "-inf", "1e309") else "settings")
    refused(["train", "--lr", value, "--quiet"], "lr", "number")


@given(option=st.sampled_from(["--activation", "--loss", "--optimizer", "--dataset",
                               "--gradient"]),
       value=st.text(min_size=0, max_size=8).filter(lambda v: not v.startswith("-")))
def test_train_refuses_unknown_choices(option, value):
    record(ENTRY, "settings")
    choices = cli.build_parser().commands["train"]._option_string_actions[option].choices
    if value in choices:
        return
    refused(["train", option, value, "--quiet"], "invalid choice", option[2:])


@given(extra=st.lists(st.sampled_from(["--nope", "x", "--lr", "-5", "--epochs"]), min_size=1,
                      max_size=3))
def test_unknown_or_incomplete_arguments_are_refused(extra):
    record(ENTRY, "settings")
    status, out, err = run(["train", "--quiet", *extra])
    if status == "accepted":  # e.g. "--lr -5" is refused; "x" after flags is not allowed
        raise AssertionError(f"accepted {extra}")
    assert status == 2 and "Traceback" not in err and err.count("\n") == 1, err


def _cache(d, damage=None, data=None):
    for prefix in ("train", "t10k"):
        write_idx(os.path.join(d, f"{prefix}-images-idx3-ubyte.gz"), onp.ones((2, 28, 28),
                                                                              onp.uint8))
        write_idx(os.path.join(d, f"{prefix}-labels-idx1-ubyte.gz"), onp.array([1, 7],
                                                                               onp.uint8))
    if damage is not None:
        path = os.path.join(d, damage)
        with open(path, "rb") as fh:
            raw = bytearray(fh.read())
        cut = data.draw(st.integers(0, len(raw) - 1))
        with open(path, "wb") as fh:
            fh.write(bytes(raw[:cut]))


@settings(max_examples=10)
@given(damage=st.sampled_from(sorted(MNIST_FILES.values())), data=st.data())
def test_train_on_damaged_mnist_files_names_the_file(damage, data):
    record(ENTRY, "files")
    with tempfile.TemporaryDirectory() as d:
        _cache(d, damage, data)
        refused(["train", "--dataset", "mnist", "--data-dir", d, "--no-download", "--quiet",
                 "--out", os.path.join(d, "out")], damage)


@settings(max_examples=5)
@given(missing=st.sampled_from(sorted(MNIST_FILES.values())))
def test_train_on_missing_mnist_files_without_download_names_them(missing):
    record(ENTRY, "files")
    with tempfile.TemporaryDirectory() as d:
        _cache(d)
        os.remove(os.path.join(d, missing))
        refused(["train", "--dataset", "mnist", "--data-dir", d, "--no-download", "--quiet"],
                missing)


@pytest.mark.parametrize("kind", ["file", "missing-parent-file"])
def test_train_refuses_an_output_that_is_a_file(kind):
    record(ENTRY, "files")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "taken")
        with open(path, "w") as fh:
            fh.write("x")
        out = path if kind == "file" else os.path.join(path, "sub")
        refused(["train", "--quiet", "--out", out], "out", "folder", "not a directory")


TARGETS = ["", ":", "x", "nosuchmodule_zz:Layer", "os:path", "minifw.layers:Linear",
           "minifw.layers:Nope", "minifw.layers:", ":Linear", "/no/such/file.py:L",
           "minifw.layers:ACTIVATIONS", "json:loads", "minifw:np", "minifw.layers:Layer.init"]


@given(target=st.one_of(st.sampled_from(TARGETS), st.text(max_size=12)))
def test_gradcheck_refuses_targets_that_are_not_layers(target):
    record(ENTRY, "settings")
    if target.startswith("-"):
        target = "x" + target
    status, out, err = run(["gradcheck", target])
    if status == "accepted":  # a real layer was found (e.g. "minifw.layers:ReLU")
        return
    assert status == 2 and "Traceback" not in out + err, (target, status, err)
    assert err.count("\n") == 1 and "error" in err, (target, err)


SOURCES = {
    "syntax": "def (:\n",
    "raises": "raise RuntimeError('boom at import')\n",
    "no layer": "X = 3\n",
    "init raises": "import minifw as mf\nclass L(mf.Layer):\n    def __init__(self):\n"
                   "        raise ValueError('no')\n",
    "exit": "import sys\nsys.exit(3)\n",
}


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_gradcheck_of_a_broken_user_file_is_one_line(kind):
    record(ENTRY, "files")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mine.py")
        with open(path, "w") as fh:
            fh.write(SOURCES[kind])
        refused(["gradcheck", f"{path}:L"])


@given(option=st.sampled_from(["--examples", "--seed", "--in-features"]),
       value=st.sampled_from(NOT_NUMBERS + ["-1", "0.5"]))
def test_gradcheck_refuses_bad_numbers(option, value):
    record(ENTRY, "settings")
    if option == "--seed" and value == "0":
        return
    refused(["gradcheck", "minifw.layers:ReLU", option, value], option[2:], "expected",
            "whole number")


HISTORIES = {
    "not json": "{loss: [1, 2",
    "empty": "",
    "list": "[1, 2, 3]",
    "no loss": '{"accuracy": [0.5]}',
    "loss not list": '{"loss": "low"}',
    "loss of strings": '{"loss": ["a", "b"]}',
    "loss nan": '{"loss": [NaN, Infinity]}',
    "loss nested": '{"loss": [[1, 2], [3]]}',
    "loss empty": '{"loss": []}',
    "val longer": '{"loss": [1.0, 0.5], "val_loss": [1, 2, 3]}',
    "accuracy strings": '{"loss": [1.0], "accuracy": ["x"]}',
    "binary": "\x00\xff\xfe",
}


@settings(max_examples=len(HISTORIES) + 2)
@given(kind=st.sampled_from(sorted(HISTORIES) + ["missing", "folder"]))
def test_plot_with_a_bad_history_file_is_one_line(kind):
    record(ENTRY, "files")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "history.json")
        if kind == "folder":
            path = d
        elif kind != "missing":
            with open(path, "w", encoding="latin-1") as fh:
                fh.write(HISTORIES[kind])
        status, out, err = run(["plot", "training_curves", "--history", path, "--out",
                                os.path.join(d, "c.png")])
        assert "Traceback" not in out + err, (kind, err)
        assert status == 2, (kind, status, err)  # issue 15: none of these is a history
        assert err.count("\n") == 1 and "error" in err, (kind, err)
        assert not os.path.exists(os.path.join(d, "c.png")), kind


@given(name=st.text(max_size=10), dpi=st.sampled_from(["110", "0", "-5", "nan", "1e9x"]))
def test_plot_refuses_unknown_names_and_bad_dpi(name, dpi):
    record(ENTRY, "settings")
    if name in (*cli.PLOT_NAMES, "all") and dpi == "110":
        return
    if name.startswith("-"):
        name = "x" + name
    refused(["plot", name, "--dpi", dpi])


@pytest.mark.parametrize("history", [json.dumps({"loss": [1.0, 0.5]})])
def test_plot_to_an_unwritable_place_is_one_line(history):
    record(ENTRY, "files")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "h.json")
        with open(path, "w") as fh:
            fh.write(history)
        refused(["plot", "training_curves", "--history", path, "--out",
                 os.path.join(path, "c.png")])  # a "folder" that is a file


# --- issue 15 ---------------------------------------------------------------------------------

BAD_VALUES = [None, "0.5", [0.5], {"a": 1}, True, float("nan"), float("inf"), -float("inf")]


@given(key=st.sampled_from(["loss", "accuracy", "val_loss", "val_accuracy"]),
       bad=st.sampled_from(BAD_VALUES + [1.5, -0.1]), at=st.integers(0, 2))
def test_plot_refuses_a_history_with_a_bad_value_anywhere(key, bad, at):
    record(ENTRY, "files")
    if "accuracy" not in key and bad in (1.5, -0.1):
        bad = None  # a loss of 1.5 is a loss
    history = {"loss": [1.0, 0.5, 0.25], "accuracy": [0.1, 0.5, 0.9]}
    history[key] = list(history.get(key, [0.5, 0.5, 0.5]))
    history[key][at] = bad
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "h.json")
        with open(path, "w") as fh:
            json.dump(history, fh)
        refused(["plot", "training_curves", "--history", path, "--out",
                 os.path.join(d, "c.png")], key)
        assert not os.path.exists(os.path.join(d, "c.png"))


@given(option=st.sampled_from([["train", "--out"], ["train", "--data-dir"],
                               ["plot", "activations", "--out"], ["plot", "all", "--out-dir"],
                               ["plot", "training_curves", "--history"]]),
       value=st.sampled_from(["", "a\0b"]))
def test_empty_paths_are_refused(option, value):
    record(ENTRY, "settings")
    refused([*option, value], "expected a path")


@given(names=st.lists(st.sampled_from(["notes.txt", ".DS_Store", "model.npz.bak", "old",
                                       "model.npz", "params.npz", "curves.png"]), min_size=1,
                      unique=True))
def test_train_refuses_an_output_folder_holding_what_it_did_not_write(names):
    record(ENTRY, "faults")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "run")
        os.mkdir(out)
        for name in names:
            with open(os.path.join(out, name), "w") as fh:
                fh.write("mine")
        status, _, err = run(["train", "--quiet", "--out", out])
        if set(names) <= set(runfolder.KNOWN):  # params.npz: of a run before model files
            assert status == "accepted", err  # a previous run's outputs: replaced
        else:
            assert status == 2 and "did not write" in err and err.count("\n") == 1, err
        assert sorted(os.listdir(out)) == sorted(names)


@given(hidden=st.lists(st.integers(10**7, 10**9), min_size=1, max_size=3))
def test_train_refuses_a_network_beyond_memory_in_one_line(hidden):
    record(ENTRY, "settings")
    with tempfile.TemporaryDirectory() as d:
        refused(["train", "--quiet", "--hidden", *map(str, hidden), "--out",
                 os.path.join(d, "run")], "out of memory")
        assert os.listdir(d) == []

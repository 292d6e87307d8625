"""Model files (``mf.save_model``/``mf.load_model``) and the architecture as data.

A model comes back as the same layers with the same parameters, bit for bit, and computes the
same outputs; a user's layer written by the convention (constructor arguments kept as
attributes of the same names) needs nothing more, tuples, state and nesting included. What
cannot be kept faithfully is refused before a byte is written; a file that names a class that
is not a ``minifw.Layer``, a module that is not imported, or parameters that do not fit is
refused on loading, and loading imports nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as onp
import pytest

import minifw as mf
from minifw import files
from minifw.architecture import ArchitectureError, build, describe
from minifw.modelfile import ModelFileError
from minifw.tree import leaves

RNG = onp.random.default_rng(0)


class Scale(mf.Layer):
    """A layer in the shape of those to come (convolution, batch norm): a tuple argument,
    keyword-only options, a nested layer, and state kept beside its parameters."""

    def __init__(self, shape: tuple[int, int], inner: mf.Layer | None = None, *,
                 mode: str = "mul", eps: float = 1e-5):
        self.shape, self.inner, self.mode, self.eps = tuple(shape), inner, mode, eps

    def init(self, rng):
        return {"s": rng.standard_normal(self.shape)}

    def forward(self, params, x):
        y = x * params["s"].sum() if self.mode == "mul" else x + params["s"].sum()
        return y if self.inner is None else self.inner({}, y)


def _bytes(tree):
    return {p: (a.dtype.str, a.shape, a.tobytes()) for p, a in leaves(tree)}


MODELS = {
    "mlp": mf.Sequential(mf.Linear(4, 3), mf.ReLU(), mf.Linear(3, 2), mf.Softmax()),
    "every activation": mf.Sequential(mf.Linear(4, 4, weight_init=0.3), mf.Identity(), mf.Step(),
                                      mf.Sigmoid(), mf.Tanh(), mf.LeakyReLU(alpha=0.2),
                                      mf.Linear(4, 2, weight_init="book")),
    "nested": mf.Sequential(mf.Sequential(mf.Linear(4, 4), mf.Tanh()), mf.Linear(4, 1)),
    "one layer": mf.Linear(4, 5),
    "a layer of the user's": mf.Sequential(Scale((2, 3), mf.Tanh(), mode="add", eps=1e-3),
                                           Scale((1, 1))),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_model_comes_back_as_it_was_saved(name: str, tmp_path: Path) -> None:
    model = MODELS[name]
    params = model.init(RNG)
    state = {"mean": onp.arange(3.0), "count": onp.array(7)}
    mf.save_model(tmp_path / "m.npz", model, params, state=state, info={"epochs": 3})
    saved = mf.load_model(tmp_path / "m.npz")
    again, params2 = saved
    assert repr(again) == repr(model) and type(again) is type(model)
    assert _bytes(params2) == _bytes(params) and _bytes(saved.state) == _bytes(state)
    assert saved.info == {"epochs": 3}
    x = RNG.standard_normal((5, 4))
    onp.testing.assert_array_equal(again(params2, x), model(params, x))
    assert os.listdir(tmp_path) == ["m.npz"]


def test_the_file_is_an_ordinary_npz_with_a_json_header(tmp_path: Path) -> None:
    model = MODELS["mlp"]
    mf.save_model(tmp_path / "m.npz", model, model.init(RNG))
    with onp.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        header = json.loads(npz["model"].tobytes())
        assert "params.0.W" in npz.files
    assert header["format"] == "minifw model" and header["version"] == 1
    assert header["model"] == describe(model)
    assert header["model"]["args"]["layers"][0] == {"layer": {
        "class": "minifw:Linear",
        "args": {"in_features": 4, "out_features": 3, "weight_init": "he"}}}


def test_tuples_dicts_and_non_finite_floats_survive_as_data() -> None:
    layer = Scale((2, 3), mode="x", eps=float("inf"))
    spec = describe(layer)
    assert spec["args"]["shape"] == {"tuple": [2, 3]}
    assert spec["args"]["eps"] == {"float": "inf"}
    again = build(json.loads(json.dumps(spec)))
    assert again.shape == (2, 3) and again.eps == float("inf") and again.inner is None


class NoAttribute(mf.Layer):
    def __init__(self, width: int):
        self.w = width


class TakesKwargs(mf.Layer):
    def __init__(self, **options):
        self.options = options


class HoldsAnArray(mf.Layer):
    def __init__(self, kernel):
        self.kernel = kernel


class Changes(mf.Layer):
    def __init__(self, n: int):
        self.n = n + 1  # rebuilt from n + 1, it would hold n + 2


def _local_layer():
    class Local(mf.Layer):
        pass

    return Local()


@pytest.mark.parametrize("model, words", [
    (NoAttribute(3), "has no attribute 'width'"),
    (TakesKwargs(a=1), r"takes \*\*options"),
    (HoldsAnArray(onp.ones(2)), "must be None, booleans, numbers"),
    (mf.Sequential(mf.Linear(2, 2), Changes(1)), "does not rebuild"),
    (_local_layer(), "defined inside a function"),
])
def test_what_cannot_be_kept_as_data_is_refused_before_writing(model, words: str,
                                                               tmp_path: Path) -> None:
    with pytest.raises(ArchitectureError, match=words):
        mf.save_model(tmp_path / "m.npz", model, model.init(RNG))
    assert list(tmp_path.iterdir()) == []


def test_params_that_do_not_fit_the_model_are_refused_before_writing(tmp_path: Path) -> None:
    model = MODELS["mlp"]
    params = model.init(RNG)
    params["0"]["W"] = onp.ones((4, 4))
    with pytest.raises(ValueError, match=r"'0.W' is of shape \(4, 4\), the model makes \(4, 3\)"):
        mf.save_model(tmp_path / "m.npz", model, params)
    del params["0"]
    with pytest.raises(ValueError, match="'0.W' is missing"):
        mf.save_model(tmp_path / "m.npz", model, params)
    with pytest.raises(ValueError, match="info must be JSON data"):
        mf.save_model(tmp_path / "m.npz", model, model.init(RNG), info={"x": onp.ones(2)})
    assert list(tmp_path.iterdir()) == []


def _write(path: Path, header: dict, params: dict | None = None) -> None:
    raw = onp.frombuffer(json.dumps(header).encode(), dtype=onp.uint8)
    files.save(path, {"model": raw, "params": params or {}, "state": {}})


def _header(model_spec: dict, **extra) -> dict:
    return {"format": "minifw model", "version": 1, "model": model_spec, "minifw": "0.1.0",
            "info": {}, **extra}


@pytest.mark.parametrize("header, words", [
    (_header({"class": "os:system", "args": {}}), "'os:system' is not a minifw.Layer class"),
    (_header({"class": "minifw:NoSuchLayer", "args": {}}), "has no 'NoSuchLayer'"),
    (_header({"class": "minifw:Linear", "args": {"in_features": 2}}),
     "needs the argument 'out_features'"),
    (_header({"class": "minifw:Linear", "args": {"in_features": 2, "out_features": 0}}),
     "refused the saved arguments"),
    (_header({"class": "minifw:ReLU", "args": {"oops": 1}}), "takes no argument 'oops'"),
    (_header({"class": "minifw:ReLU", "args": {}}, version=2), "reads version 1"),
    ({"format": "something else"}, "not a minifw model header"),
    (_header("Linear"), "a layer is described as"),
])
def test_a_file_that_does_not_describe_a_minifw_model_is_refused(header: dict, words: str,
                                                                 tmp_path: Path) -> None:
    _write(tmp_path / "m.npz", header)
    with pytest.raises(ModelFileError, match=words) as caught:
        mf.load_model(tmp_path / "m.npz")
    assert str(tmp_path / "m.npz") in str(caught.value)


def test_a_file_of_params_alone_or_with_params_that_do_not_fit_is_refused(tmp_path: Path) -> None:
    mf.save(tmp_path / "p.npz", {"0": {"W": onp.ones((2, 2))}})
    with pytest.raises(ModelFileError, match="not a model file.*use minifw.load"):
        mf.load_model(tmp_path / "p.npz")
    _write(tmp_path / "m.npz", _header(describe(mf.Linear(2, 3))),
           {"W": onp.ones((2, 2)), "b": onp.ones(3)})
    with pytest.raises(ModelFileError, match=r"'W' is of shape \(2, 2\), the model makes"):
        mf.load_model(tmp_path / "m.npz")
    (tmp_path / "t.npz").write_text("not a zip")
    with pytest.raises(ModelFileError, match="load_model: .*t.npz.* is not an .npz"):
        mf.load_model(tmp_path / "t.npz")
    with pytest.raises(FileNotFoundError, match="no model file"):
        mf.load_model(tmp_path / "none.npz")


LAYER_MODULE = '''
import minifw as mf


class Doubler(mf.Layer):
    def __init__(self, factor=2.0):
        self.factor = factor

    def forward(self, params, x):
        return self.factor * x
'''


def test_a_users_layer_loads_once_its_module_is_imported_and_loading_imports_nothing(
        tmp_path: Path) -> None:
    (tmp_path / "my_layers.py").write_text(textwrap.dedent(LAYER_MODULE))
    save = ("import sys, minifw as mf, my_layers\n"
            "mf.save_model('m.npz', mf.Sequential(my_layers.Doubler(3.0)), {})\n")
    subprocess.run([sys.executable, "-c", save], cwd=tmp_path, check=True)
    load = ("import sys, minifw as mf\n"
            "try:\n"
            "    mf.load_model('m.npz')\n"
            "except ValueError as e:\n"
            "    print(e)\n"
            "print('my_layers' in sys.modules)\n"
            "import my_layers\n"
            "print(mf.load_model('m.npz').model)\n")
    out = subprocess.run([sys.executable, "-c", load], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert "its module 'my_layers' is not imported; import it first" in out[0]
    assert out[1] == "False" and out[2] == "Sequential(Doubler(factor=3.0))"


def test_custom_layers_stand_in_for_a_class_saved_from_main(tmp_path: Path) -> None:
    script = textwrap.dedent(LAYER_MODULE) + (
        "\nmf.save_model('m.npz', Doubler(4.0), {})\n")
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
    with pytest.raises(ModelFileError, match="pass custom_layers"):
        mf.load_model(tmp_path / "m.npz")

    class Doubler(mf.Layer):
        def __init__(self, factor=2.0):
            self.factor = factor

    assert mf.load_model(tmp_path / "m.npz", custom_layers=[Doubler]).model.factor == 4.0
    with pytest.raises(TypeError, match="custom_layers must be minifw.Layer subclasses"):
        mf.load_model(tmp_path / "m.npz", custom_layers=[dict])

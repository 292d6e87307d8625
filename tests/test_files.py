"""save/load: exact roundtrip, exactly the path given, atomic writes, pickles refused."""

import os
import pathlib
import pickle
import zipfile

import numpy as onp
import pytest
from file_helpers import assert_same_tree

import minifw as mf
from minifw import files


def _params():
    rng = onp.random.default_rng(0)
    return {
        "0": {"W": rng.standard_normal((2, 3)), "b": onp.array([-0.0, 5e-324, onp.pi])},
        "2": {"W": rng.standard_normal((3, 1)).astype(onp.float32), "n": onp.arange(4)},
        "extra": {"deep": {"scalar": onp.array(1.5), "mask": onp.array([True, False])}},
    }


def test_roundtrip_keeps_nested_keys_arrays_and_dtypes(tmp_path):
    params = _params()
    path = tmp_path / "params.npz"
    mf.save(path, params)
    assert_same_tree(params, mf.load(path))


def test_roundtrip_of_a_trained_model(tmp_path):
    model = mf.Sequential(mf.Linear(3, 4), mf.ReLU(), mf.Linear(4, 2))
    params = model.init(onp.random.default_rng(1))
    mf.save(str(tmp_path / "m.npz"), params)
    loaded = mf.load(str(tmp_path / "m.npz"))
    x = onp.random.default_rng(2).standard_normal((5, 3))
    assert onp.array_equal(model(loaded, x), model(params, x))


def test_file_is_written_at_exactly_the_path_with_no_leftovers(tmp_path):
    path = tmp_path / "weights.bin"
    mf.save(path, _params())
    assert sorted(os.listdir(tmp_path)) == ["weights.bin"]
    assert zipfile.is_zipfile(path)
    assert_same_tree(_params(), mf.load(path))


def test_overwrite_replaces_the_file(tmp_path):
    path = tmp_path / "p.npz"
    mf.save(path, {"a": onp.zeros(2)})
    mf.save(path, {"b": onp.ones(3)})
    loaded = mf.load(path)
    assert list(loaded) == ["b"] and loaded["b"].tolist() == [1.0, 1.0, 1.0]
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]


def test_saved_file_gets_the_usual_permissions(tmp_path):
    # like open(path, "w"): 0666 minus the umask, not a temporary file's private 0600
    old = os.umask(0o022)
    try:
        mf.save(tmp_path / "p.npz", {"a": onp.zeros(1)})
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "p.npz").st_mode & 0o777 == 0o644
    # overwriting keeps an existing file's mode, as open(path, "w") does
    os.chmod(tmp_path / "p.npz", 0o640)
    mf.save(tmp_path / "p.npz", {"a": onp.ones(1)})
    assert os.stat(tmp_path / "p.npz").st_mode & 0o777 == 0o640


@pytest.mark.parametrize("bad, error, message", [
    ({"a": {"w": "text"}}, TypeError, r"'a.w'.*numeric"),
    ({"a": onp.array([object()])}, TypeError, r"'a'.*numeric"),
    ({"a": [onp.zeros(2)]}, TypeError, r"'a'.*list"),
    ({"a.b": onp.zeros(2)}, ValueError, r"'a.b'"),
    ({"": onp.zeros(2)}, ValueError, "keys"),
    ({1: onp.zeros(2)}, ValueError, "keys"),
    (onp.zeros(2), TypeError, "dict"),
])
def test_failed_save_leaves_existing_file_untouched(tmp_path, bad, error, message):
    path = tmp_path / "p.npz"
    mf.save(path, {"keep": onp.arange(3.0)})
    before = path.read_bytes()
    with pytest.raises(error, match=message):
        mf.save(path, bad)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]


def test_failure_while_writing_leaves_existing_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    mf.save(path, {"keep": onp.arange(3.0)})
    before = path.read_bytes()

    def half_written(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(files.onp, "savez", half_written)
    with pytest.raises(OSError, match="disk full"):
        mf.save(path, {"new": onp.zeros(2)})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]
    with pytest.raises(OSError):
        mf.save(tmp_path / "fresh.npz", {"new": onp.zeros(2)})
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]


class Evil:
    """Unpickling this creates a directory: proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_pickled_arrays_inside_npz_are_refused_unexecuted(tmp_path):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.npz"
    evil = onp.empty(1, dtype=object)
    evil[0] = Evil(marker)
    onp.savez(path, W=onp.zeros(2), evil=evil)
    with pytest.raises(ValueError, match="evil.npz"):
        mf.load(path)
    assert not os.path.exists(marker)


def test_a_plain_pickle_is_refused_unexecuted(tmp_path):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "params.npz"
    path.write_bytes(pickle.dumps({"W": Evil(marker)}))
    with pytest.raises(ValueError, match="params.npz"):
        mf.load(path)
    assert not os.path.exists(marker)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        mf.load(path)
    with pytest.raises(ValueError, match="nope.npz"):
        mf.load(path)
    with pytest.raises(FileNotFoundError):
        mf.load(tmp_path)  # a directory is not a parameters file


def test_truncated_file(tmp_path):
    path = tmp_path / "p.npz"
    mf.save(path, _params())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="p.npz.*not a readable"):
        mf.load(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="p.npz"):
        mf.load(path)


def _npy(fh):
    onp.save(fh, onp.ones(3))  # a .npy, not an .npz


def _strings(fh):
    onp.savez(fh, names=onp.array(["a", "b"]))  # text, not numbers


def _conflict(fh):
    onp.savez(fh, **{"a.b": onp.ones(1), "a": onp.ones(1)})  # "a": a leaf and a subtree


def _text(fh):
    fh.write(b"W = [1, 2, 3]\n")


@pytest.mark.parametrize("write", [_text, _npy, _strings, _conflict])
def test_files_that_are_not_params_give_clear_errors(tmp_path, write):
    path = tmp_path / "p.npz"
    with open(path, "wb") as fh:
        write(fh)
    with pytest.raises(ValueError, match="p.npz"):
        mf.load(path)


def test_pathlike_and_str_paths(tmp_path):
    p = pathlib.Path(tmp_path) / "x.npz"
    mf.save(p, {"w": onp.ones(2)})
    assert mf.load(str(p))["w"].tolist() == [1.0, 1.0]


# --- keys: refused before anything is written (issue 15, items 1 and 10) ----------------------


@pytest.mark.parametrize("bad, message", [
    ({"a\0b": onp.ones(1)}, "NUL"),
    ({"0": {"W\0": onp.ones(1)}}, "NUL"),
    ({"\0": {}}, "NUL"),
    ({"a\ud800": onp.ones(1)}, "UTF-8"),
    ({"k" * 70_000: onp.ones(1)}, "zip member name"),
    ({"0": {"é" * 33_000: onp.ones(1)}}, "zip member name"),  # 66,000 bytes in UTF-8
    ({"allow_pickle": onp.ones(1)}, "savez"),
    ({"file": onp.ones(1)}, "savez"),
])
def test_keys_a_zip_cannot_hold_are_refused_before_writing(tmp_path, bad, message):
    path = tmp_path / "p.npz"
    mf.save(path, {"keep": onp.arange(3.0)})
    before = path.read_bytes()
    with pytest.raises(ValueError, match=message):
        mf.save(path, bad)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["p.npz"]


def test_the_longest_name_a_zip_holds_round_trips(tmp_path):
    key = "k" * (files.MAX_NAME_BYTES - len(".npy"))
    mf.save(tmp_path / "p.npz", {key: onp.ones(2)})
    assert list(mf.load(tmp_path / "p.npz")) == [key]


def test_reserved_names_may_sit_below_the_top(tmp_path):
    params = {"allow_pickle": {"file": onp.ones(2)}, "file": {}}
    mf.save(tmp_path / "p.npz", params)
    assert_same_tree(params, mf.load(tmp_path / "p.npz"))


def test_odd_but_faithful_keys_round_trip(tmp_path):
    params = {"é": {"W 1": onp.ones(1)}, "\U0001f600": onp.zeros(2), "tab\there": onp.ones(1),
              "a/b": onp.ones(1), "-": {}}
    mf.save(tmp_path / "p.npz", params)
    assert_same_tree(params, mf.load(tmp_path / "p.npz"))


def test_deep_and_self_containing_dicts_get_a_clear_error(tmp_path):
    deep = leaf = {}
    for _ in range(5000):  # far beyond the recursion limit: the walk has its own stack
        leaf["a"] = leaf = {}
    leaf["W"] = onp.ones(1)
    mf.save(tmp_path / "deep.npz", deep)
    loaded = mf.load(tmp_path / "deep.npz")
    for _ in range(5000):
        loaded = loaded["a"]
    assert loaded["W"].tolist() == [1.0]
    loop = {"W": onp.ones(1)}
    loop["b"] = {"c": loop}
    with pytest.raises(ValueError, match="'b.c' is a dict that contains itself"):
        mf.save(tmp_path / "loop.npz", loop)
    shared = {"W": onp.ones(1)}
    mf.save(tmp_path / "shared.npz", {"a": shared, "b": shared})  # shared, not a cycle
    assert list(mf.load(tmp_path / "shared.npz")) == ["a", "b"]
    assert not (tmp_path / "loop.npz").exists()


def test_load_limits_must_be_positive_numbers(tmp_path):
    mf.save(tmp_path / "p.npz", {"a": onp.ones(1)})
    for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="max_bytes"):
            mf.load(tmp_path / "p.npz", max_bytes=bad)
    for bad in (0.5, float("nan"), float("inf"), "100", True):
        with pytest.raises(ValueError, match="max_ratio"):
            mf.load(tmp_path / "p.npz", max_ratio=bad)
    assert mf.load(tmp_path / "p.npz", max_bytes=None, max_ratio=None)["a"].tolist() == [1.0]


def test_a_path_with_nul_is_refused(tmp_path):
    for fn in (lambda p: mf.save(p, {"a": onp.ones(1)}), mf.load):
        with pytest.raises(ValueError, match="NUL"):
            fn(str(tmp_path / "p\0.npz"))
    assert os.listdir(tmp_path) == []

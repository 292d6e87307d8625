"""Parameter trees: leaves and dotted paths, tree_map, unflatten, copy_float, check_like."""

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minifw.tree import check_like, copy_float, flat, leaves, tree_map, unflatten, zip_like


def test_leaves_depth_first_in_insertion_order():
    tree = {"1": {"W": 1, "b": 2}, "0": {"deep": {"x": 3}}, "c": 4}
    assert list(leaves(tree)) == [("1.W", 1), ("1.b", 2), ("0.deep.x", 3), ("c", 4)]
    assert list(leaves(onp.zeros(2)))[0][0] == ""
    assert list(leaves({})) == []


def test_leaves_refuse_non_string_keys():
    with pytest.raises(TypeError, match="strings, got 0 at a"):
        list(leaves({"a": {0: 1.0}}))


def test_flat_is_leaves_without_paths_and_refuses_the_same_keys():
    tree = {"1": {"W": 1, "b": {"c": 2}}, "0": 3}
    assert flat(tree) == [a for _, a in leaves(tree)] == [1, 2, 3]
    assert flat(5.0) == [5.0] and flat({}) == []
    with pytest.raises(TypeError, match="strings, got 0 at a.b"):
        flat({"a": {"b": {0: 1.0}}})


def test_zip_like_pairs_leaves_and_names_what_differs():
    params = {"a": {"w": onp.zeros((2, 3))}, "b": onp.zeros(2), "c": 1.0}
    grads = {"a": {"w": onp.ones((2, 3))}, "b": [1.0, 2.0], "c": 2.0}
    assert [(p, onp.shape(g)) for p, _, g in zip_like(params, grads, "g")] == [
        ("a.w", (2, 3)), ("b", (2,)), ("c", ())]
    with pytest.raises(ValueError, match=r"g at 'a.w' has shape \(3, 2\), expected \(2, 3\)"):
        zip_like(params, {**grads, "a": {"w": onp.ones((3, 2))}}, "g")
    with pytest.raises(ValueError, match=r"g at 'b' has shape \(3,\)"):
        zip_like(params, {**grads, "b": [1.0, 2.0, 3.0]}, "g")
    with pytest.raises(TypeError, match="strings, got 0"):
        zip_like({0: onp.zeros(1)}, {0: onp.zeros(1)}, "g")


def test_tree_map_with_several_trees():
    a = {"x": 1.0, "y": {"z": 2.0}}
    b = {"x": 10.0, "y": {"z": 20.0}}
    assert tree_map(lambda u, v: u + v, a, b) == {"x": 11.0, "y": {"z": 22.0}}
    assert tree_map(lambda u: u * 2, 3.0) == 6.0


keys = st.text(alphabet="abcW01", min_size=1, max_size=3)
trees = st.recursive(
    st.integers(-5, 5),
    lambda children: st.dictionaries(keys, children, min_size=1, max_size=3),
    max_leaves=8,
).filter(lambda t: isinstance(t, dict))


@given(tree=trees)
def test_unflatten_inverts_leaves(tree):
    assert unflatten(dict(leaves(tree))) == tree


@pytest.mark.parametrize("items", [{"a.b": 1, "a": 2}, {"a": 2, "a.b": 1}])
def test_unflatten_refuses_a_path_that_is_leaf_and_subtree(items):
    with pytest.raises(ValueError, match="'a"):
        unflatten(items)


def test_copy_float_is_deep_and_never_truncates():
    tree = {"i": onp.array([1, 2]), "f32": onp.ones(2, dtype=onp.float32), "l": [0.5, 1]}
    copy = copy_float(tree)
    assert copy["i"].dtype == onp.float64 and copy["i"].tolist() == [1.0, 2.0]
    assert copy["f32"].dtype == onp.float32
    assert copy["l"].dtype == onp.float64
    copy["f32"][0] = 7.0
    assert tree["f32"][0] == 1.0
    with pytest.raises(TypeError, match="object"):
        copy_float({"o": onp.array([None])})


def test_check_like_names_missing_extra_and_shapes():
    ref = {"0": {"W": onp.zeros((2, 3)), "b": onp.zeros(3)}}
    check_like(ref, {"0": {"W": onp.ones((2, 3)), "b": onp.ones(3)}}, "grads")
    with pytest.raises(ValueError, match=r"grads.*missing \['0.b'\], extra \['0.c'\]"):
        check_like(ref, {"0": {"W": onp.ones((2, 3)), "c": onp.ones(3)}}, "grads")
    with pytest.raises(ValueError, match=r"grads at '0.W' has shape \(3, 2\), expected \(2, 3\)"):
        check_like(ref, {"0": {"W": onp.ones((3, 2)), "b": onp.ones(3)}}, "grads")

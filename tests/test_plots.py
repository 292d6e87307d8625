"""minifw.plots: every picture is a valid PNG, and the numbers behind each are right."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as onp
import pytest

import minifw as mf
from minifw import numerical as N
from minifw import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    """``path`` is a PNG that matplotlib (through Pillow) reads as a non-empty image."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # not a blank canvas


FIGURES = {
    **{name: make for name, make in plots.PLOTS.items()},
    "training_curves": lambda: plots.training_curves_figure(
        mf.History(loss=[1.0, 0.5, 0.3], accuracy=[0.6, 0.8, 0.9], val_loss=[1.1, 0.7, 0.5],
                   val_accuracy=[0.5, 0.7, 0.85]), val_label="test"),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_figure_saves_as_a_valid_png(name: str, tmp_path: Path) -> None:
    path = plots.save_figure(FIGURES[name](), tmp_path / f"{name}.png", dpi=60)
    assert_png(path)
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{name}.png"]  # no temp files


def test_save_figure_with_an_unknown_format_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a.notaformat"
    with pytest.raises(ValueError):
        plots.save_figure(plots.gradient_descent_figure(step_num=2), target)
    assert list(tmp_path.iterdir()) == []


def test_save_figure_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.png"
    target.write_bytes(b"old")
    plots.save_figure(plots.gradient_descent_figure(step_num=2), target, dpi=30)
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_save_figure_makes_no_folder_and_no_giant_picture(tmp_path: Path) -> None:
    fig = plots.gradient_descent_figure(step_num=2)
    with pytest.raises(ValueError, match="no folder"):
        plots.save_figure(fig, tmp_path / "missing" / "f.png")
    with pytest.raises(ValueError, match=r"dpi=5000 would make a picture of .* at most dpi="):
        plots.save_figure(fig, tmp_path / "f.png", dpi=5000)
    assert list(tmp_path.iterdir()) == []


# --- activations ------------------------------------------------------------------------------


def test_activation_derivatives_from_autograd_match_central_differences() -> None:
    x = onp.linspace(-4, 4, 81) + 0.0123  # no point on the kink at 0
    for name, (y, dy) in plots.activation_curves(x).items():
        f = plots.ACTIVATION_FUNCTIONS[name]
        numerical = onp.array([N.numerical_diff(f, xi, h=1e-6) for xi in x])
        onp.testing.assert_allclose(dy, numerical, atol=1e-7, err_msg=name)
        onp.testing.assert_allclose(y, onp.asarray(f(x)), err_msg=name)


def test_activation_curves_at_the_kink_and_known_values() -> None:
    c = plots.activation_curves(onp.array([-1.0, 0.0, 1.0]))
    assert c["sigmoid"][1][1] == 0.25
    assert c["relu"][1].tolist() == [0.0, 0.0, 1.0]
    assert c["leaky_relu"][1].tolist() == [0.1, 0.1, 1.0]
    assert c["step"][1].tolist() == [0.0, 0.0, 0.0]
    onp.testing.assert_allclose(c["softmax"][0], c["sigmoid"][0])  # softmax([x, 0])[0]
    assert set(c) == set(mf.layers.ACTIVATIONS)


# --- finite differences -----------------------------------------------------------------------


HS = onp.logspace(-20, -1, 381)


def loglog_slope(h: onp.ndarray, err: onp.ndarray, lo: float, hi: float) -> float:
    keep = (h >= lo) & (h <= hi) & (err > 0)
    return float(onp.polyfit(onp.log10(h[keep]), onp.log10(err[keep]), 1)[0])


def test_truncation_error_slopes_are_one_for_forward_and_two_for_central() -> None:
    e = plots.finite_difference_errors(onp.sin, onp.cos(1.0), 1.0, HS)
    assert loglog_slope(HS, e["central"], 1e-4, 1e-1) == pytest.approx(2.0, abs=0.05)
    assert loglog_slope(HS, e["forward"], 1e-6, 1e-1) == pytest.approx(1.0, abs=0.05)


def test_rounding_error_grows_like_one_over_h() -> None:
    e = plots.finite_difference_errors(onp.sin, onp.cos(1.0), 1.0, HS)
    assert loglog_slope(HS, e["forward"], 1e-15, 1e-10) == pytest.approx(-1.0, abs=0.25)
    assert loglog_slope(HS, e["central"], 1e-15, 1e-8) == pytest.approx(-1.0, abs=0.25)
    # the sweet spots: near sqrt(eps) for forward, eps**(1/3) for central
    best_forward = HS[onp.argmin(e["forward"])]
    assert 1e-10 < best_forward < 1e-6
    assert e["central"].min() < 1e-10 < e["forward"].min()


def test_the_books_h_1e50_gives_a_forward_difference_of_zero() -> None:
    assert plots.forward_difference(plots.book_function, 5.0, 1e-50) == 0.0
    assert plots.central_difference(plots.book_function, 5.0, 1e-50) == 0.0
    # every step below eps * x vanishes in x + h: the error is the whole derivative
    e = plots.finite_difference_errors(plots.book_function, 0.2, 5.0, HS)
    assert onp.all(e["forward"][HS < 1e-16] == pytest.approx(0.2))


def test_the_books_quadratic_has_no_central_truncation_error() -> None:
    e = plots.finite_difference_errors(plots.book_function, 0.2, 5.0, HS)
    assert e["central"][HS > 1e-3].max() < 1e-12
    assert e["forward"][-1] == pytest.approx(0.01 * HS[-1], rel=1e-6)  # exactly h f''/2


# --- gradient descent -------------------------------------------------------------------------


def test_gradient_descent_paths_follow_the_book_and_each_rate_behaves() -> None:
    paths = plots.gradient_descent_paths(lrs=(0.01, 0.1, 0.95, 1.02), step_num=20)
    onp.testing.assert_allclose(paths[0.1][:3], [[-3, 4], [-2.4, 3.2], [-1.92, 2.56]],
                                rtol=1e-6)
    dist = {lr: onp.linalg.norm(p, axis=1) for lr, p in paths.items()}
    assert onp.all(onp.diff(dist[0.1]) < 0) and onp.all(onp.diff(dist[0.01]) < 0)
    assert dist[0.01][-1] > dist[0.95][-1] > dist[0.1][-1]
    assert onp.all(onp.diff(dist[1.02]) > 0)  # diverges
    assert onp.all(onp.sign(paths[0.95][:, 0]) == [-1, 1] * 10 + [-1])  # overshoots each step
    for lr, p in paths.items():  # each step multiplies x by 1 - 2 lr
        onp.testing.assert_allclose(p[1:], p[:-1] * (1 - 2 * lr), rtol=1e-6, err_msg=str(lr))


# --- one sigmoid neuron -----------------------------------------------------------------------


def test_neuron_losses_and_gradients_match_formulas_and_differences() -> None:
    ws = onp.linspace(-8, 8, 33)
    c = plots.neuron_loss_curves(ws)
    y = 1 / (1 + onp.exp(-ws))
    onp.testing.assert_allclose(c["mse"], 0.5 * (y - 1) ** 2, rtol=1e-12)
    onp.testing.assert_allclose(c["cross_entropy"], -onp.log(y + 1e-7), rtol=1e-9)
    onp.testing.assert_allclose(c["mse_grad"], (y - 1) * y * (1 - y), atol=1e-12)
    onp.testing.assert_allclose(c["cross_entropy_grad"], (y - 1) * y / (y + 1e-7), atol=1e-9)
    for key in ("mse", "cross_entropy"):
        numerical = [N.numerical_diff(lambda w: plots.neuron_loss_curves([w])[key][0], w)
                     for w in ws[::4]]
        onp.testing.assert_allclose(c[f"{key}_grad"][::4], numerical, atol=1e-7)


def test_squared_error_goes_flat_where_the_neuron_is_most_wrong() -> None:
    c = plots.neuron_loss_curves([-8.0, -6.0])
    assert abs(c["mse_grad"][0]) < 1e-3 and abs(c["mse"][0] - c["mse"][1]) < 0.01
    assert abs(c["cross_entropy_grad"][0]) > 0.99 and c["cross_entropy"][0] - c[
        "cross_entropy"][1] > 1.9


# --- vanishing gradients ----------------------------------------------------------------------


def test_sigmoid_gradients_vanish_with_depth_and_relu_gradients_do_not() -> None:
    sig = plots.layer_gradient_norms("sigmoid", depth=8, seed=0)
    relu = plots.layer_gradient_norms("relu", depth=8, seed=0)
    assert onp.all(onp.diff(sig) > 0)  # shrinking at every layer toward the input
    assert sig[0] / sig[-1] < 1e-3
    assert relu[0] / relu[-1] > 0.1
    assert sig[0] / sig[-1] < 1e-2 * (relu[0] / relu[-1])


def test_layer_gradient_norms_are_reproducible_from_the_seed() -> None:
    a = plots.layer_gradient_norms("tanh", depth=3, seed=7)
    assert onp.array_equal(a, plots.layer_gradient_norms("tanh", depth=3, seed=7))
    assert not onp.array_equal(a, plots.layer_gradient_norms("tanh", depth=3, seed=8))


# --- training curves --------------------------------------------------------------------------


def test_training_curves_take_a_history_or_its_dict_and_label_the_lines() -> None:
    h = mf.History(loss=[1.0, 0.5], accuracy=[0.6, 0.9], val_loss=[1.2, 0.7],
                   val_accuracy=[0.5, 0.8])
    for source in (h, h.to_dict()):
        fig = plots.training_curves_figure(source, val_label="test")
        loss_ax, acc_ax = fig.axes
        assert [line.get_label() for line in acc_ax.lines] == ["train", "test"]
        assert list(acc_ax.lines[1].get_ydata()) == [0.5, 0.8]
        assert list(loss_ax.lines[0].get_ydata()) == [1.0, 0.5]
        assert "test accuracy 0.8000" in fig.get_suptitle()


def test_training_curves_without_accuracy_say_so() -> None:
    fig = plots.training_curves_figure(mf.History(loss=[2.0, 1.0]))
    assert len(fig.axes[0].lines) == 1 and len(fig.axes[1].lines) == 0
    assert "no accuracy recorded" in [t.get_text() for t in fig.axes[1].texts]

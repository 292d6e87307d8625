"""Model summaries, and the tables that histories, summaries and gradient-check reports show,
in text and in Jupyter."""

from __future__ import annotations

import copy

import numpy as onp
import pytest

import minifw as mf
from minifw.tree import leaves

MODEL = mf.Sequential(mf.Linear(64, 32), mf.ReLU(),
                      mf.Sequential(mf.Linear(32, 16), mf.Tanh()), mf.Linear(16, 10))


def test_rows_give_each_layers_output_shape_and_parameter_count() -> None:
    s = mf.summary(MODEL, onp.zeros((7, 64)))
    assert [(r.path, r.output_shape, r.parameters, r.depth) for r in s.rows] == [
        ("0", (7, 32), 64 * 32 + 32, 0), ("1", (7, 32), 0, 0), ("2", (7, 16), 32 * 16 + 16, 0),
        ("2.0", (7, 16), 32 * 16 + 16, 1), ("2.1", (7, 16), 0, 1), ("3", (7, 10), 170, 0)]
    assert s.parameters == 2080 + 528 + 170 and s.nbytes == 8 * s.parameters
    text = str(s)
    assert text.splitlines()[0] == "Sequential: 2,778 parameters (21.7 KiB), input (N, 64)"
    assert "  Linear(in_features=32, out_features=16, weight_init='he')" in text
    assert "(N, 16)" in text and "    2,080" in text


def test_a_summary_changes_no_layer_and_uses_the_params_given() -> None:
    before = copy.deepcopy(vars(MODEL))
    params = MODEL.init(onp.random.default_rng(3))
    snapshot = [(p, a.copy()) for p, a in leaves(params)]
    s = mf.summary(MODEL, onp.ones((1, 64)), params)
    assert repr(vars(MODEL)) == repr(before)
    assert all(onp.array_equal(a, b) for (_, a), (_, b) in zip(leaves(params), snapshot))
    assert s.rows[-1].output_shape == (1, 10)


def test_a_layer_that_is_not_a_sequential_is_one_row_and_a_sample_without_batch_axis() -> None:
    s = mf.summary(mf.Linear(4, 2), onp.zeros(4))
    assert len(s.rows) == 1 and s.rows[0].output_shape == (2,) and s.parameters == 10
    assert "input (4,)" in str(s)


def test_a_layer_that_refuses_its_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"summary: layer 0, Linear\(in_features=64.*shape "
                                         r"\(1, 3\)"):
        mf.summary(MODEL, onp.zeros((1, 3)))


def test_summaries_and_histories_display_as_html_tables() -> None:
    html = mf.summary(MODEL, onp.zeros((1, 64)))._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == 7
    assert "Linear(in_features=64, out_features=32, weight_init=&#x27;he&#x27;)" in html
    h = mf.History(loss=[0.9, 0.4], accuracy=[0.7, 0.9], val_loss=[1.0, 0.5],
                   val_accuracy=[0.6, 0.8], initial_loss=2.3, best_epoch=2)
    html = h._repr_html_()
    assert "<caption>" in html and html.count("<tr>") == 4  # the header, epochs 0, 1 and 2
    assert "<td style=\"text-align: right\">0.5000</td>" in html and ">best<" in html
    assert str(h).splitlines()[0].split() == ["epoch", "loss", "accuracy", "val_loss",
                                              "val_accuracy"]


def test_gradient_check_reports_display_as_html_tables() -> None:
    report = mf.check_layer(mf.Linear(3, 2), onp.ones((4, 3)))
    html = report._repr_html_()
    assert html.startswith("<table>\n<caption>gradient check (full mode, float64): OK; h=")
    assert html.count("<tr>") == 4  # the header, x, W and b
    assert [line.split()[0] for line in str(report).splitlines()[1:]] == ["path", "x", "W", "b"]
    from minifw.gradcheck import GradCheckReport, GradCheckRow

    row = GradCheckRow("W", (2,), False, (1,), 1.0, 2.0, 1.0, 0.5, 0, 2, 1,
                       verdict="flat in h: a wrong gradient")
    wrong = GradCheckReport([row], "full", "float64", 1e-6, 1e-6, 1e-9, notes=["x < 0 <kink>"])
    html = wrong._repr_html_()
    assert "<td>FAIL(1)</td>" in html and "FAILED" in html
    assert html.endswith("</table>\n<p>W: flat in h: a wrong gradient</p>\n"
                         "<p>x &lt; 0 &lt;kink&gt;</p>")


def test_fit_keeps_a_copy_of_the_best_epochs_params() -> None:
    rng = onp.random.default_rng(0)
    x = rng.standard_normal((64, 2))
    t = (x[:, 0] > 0).astype(int)
    model = mf.Sequential(mf.Linear(2, 2))
    params = model.init(rng)
    h = mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.SGD(lr=0.5), params, x, t, epochs=5,
               batch_size=16, rng=rng, validation=(x[:16], t[:16]), progress=False)
    assert h.best_epoch == 1 + int(onp.argmin(h.val_loss))
    assert h.best_params is not params and h.best_params["0"]["W"] is not params["0"]["W"]
    loss = mf.SoftmaxCrossEntropy()(model(h.best_params, x[:16]), t[:16])
    assert float(loss) == pytest.approx(min(h.val_loss), rel=1e-12)
    assert h.initial_loss > h.final_loss and not h.diverged

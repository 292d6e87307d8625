"""The checker's second round: precision, integer inputs, several inputs and outputs, shapes,
second derivatives, blame, and layers that raise. Every layer here is written in the test."""

import numpy as onp
import pytest

import minifw as mf
from minifw import np
from minifw.testing import check_layer_property, input_shape_of


def _primitive(forward, *vjps):
    prim = mf.primitive(forward)
    mf.defvjp(prim, *[(lambda ans, *a, v=v: lambda g: v(g, ans, *a)) for v in vjps])
    return prim


class Scale(mf.Layer):
    """``x * w``, a user's layer around a primitive given at construction."""

    def __init__(self, op):
        self.op = op

    def init(self, rng):
        return {"w": rng.standard_normal(3)}

    def __call__(self, params, x):
        return self.op(x, params["w"])


# --- precision --------------------------------------------------------------------------------

def test_a_float16_input_beside_float64_params_is_checked_in_float64_and_a_sign_bug_fails():
    sigmoid = _primitive(lambda x: 1 / (1 + onp.exp(-x)), lambda g, y, x: -g * y * (1 - y))
    x16 = onp.array([0.5, -1.0, 2.0], onp.float16)
    report = mf.check_grads(lambda p, x: np.sum(sigmoid(p * x)), onp.ones(3), x16)
    assert not report.ok and report.checked_in == "float64" and report.dtype == "float16"


def test_a_function_that_only_computes_in_float16_is_refused():
    with pytest.raises(ValueError, match="float16.*no power"):
        mf.check_grads(lambda p: np.sum(np.tanh(p.astype(onp.float16))),
                       onp.ones(2, onp.float16))


# --- inputs and outputs -----------------------------------------------------------------------

class Embedding(mf.Layer):
    def init(self, rng):
        return {"E": rng.standard_normal((5, 2))}

    def __call__(self, params, idx):
        return params["E"][idx]


def test_integer_inputs_are_not_differentiated_and_the_report_says_so():
    report = mf.check_layer(Embedding(), onp.array([0, 1, 1, 4]))
    x = next(row for row in report.rows if row.path == "x")
    assert report.ok and x.skipped and "not differentiated" in str(report)
    assert next(row for row in report.rows if row.path == "E").checked == 10


class Gate(mf.Layer):
    """Two inputs: values and a boolean mask; two outputs."""

    def init(self, rng):
        return {}

    def __call__(self, params, xs):
        x, m = xs
        return np.tanh(x) * m, np.sin(x)


def test_several_inputs_a_mask_and_several_outputs():
    x, m = onp.linspace(-1, 1, 6).reshape(2, 3), onp.array([[True, False, True]] * 2)
    report = mf.check_layer(Gate(), (x, m))
    assert report.ok and [r.path for r in report.rows] == ["x0", "x1"]
    assert report.rows[1].skipped
    with pytest.raises(ValueError, match="2 outputs but 1 cotangents"):
        mf.check_layer(Gate(), (x, m), cotangent=onp.ones((2, 3)))


def test_the_cotangent_and_the_directions_are_the_callers():
    wrong_in_column_2 = _primitive(lambda x, w: x * w,
                                   lambda g, y, x, w: g * w * onp.array([1, 1, 2]),
                                   lambda g, y, x, w: (g * x).sum(0))
    x = onp.linspace(0.5, 1, 6).reshape(2, 3)
    p = {"w": onp.ones(3)}
    blind = onp.ones((2, 3)) * onp.array([1.0, 1.0, 0.0])  # G hides column 2
    assert mf.check_layer(Scale(wrong_in_column_2), x, p, cotangent=blind).ok
    assert not mf.check_layer(Scale(wrong_in_column_2), x, p, cotangent=onp.ones((2, 3))).ok
    report = mf.check_layer(Scale(wrong_in_column_2), x, p, mode="projection", directions=3)
    assert not report.ok


@pytest.mark.parametrize("returned", ["wrong shape", "None"])
def test_a_vjp_of_the_wrong_shape_is_named_with_both_shapes(returned):
    bad = (lambda g, y, x, w: (g * x).sum(0)[:2]) if returned == "wrong shape" else (
        lambda g, y, x, w: None)
    op = _primitive(lambda x, w: x * w, lambda g, y, x, w: g * w, bad)
    with pytest.raises(ValueError, match=r"argument 1 \(the parameter 'w'\) returns "
                                         rf"{'shape' if returned == 'wrong shape' else 'None'}"
                                         r".*shape \(3,\)"):
        mf.check_layer(Scale(op), onp.ones((2, 3)))


# --- the report -------------------------------------------------------------------------------

def test_the_worst_element_shows_its_input_and_its_own_errors():
    cube = _primitive(lambda x: x ** 3,
                      lambda g, y, x: 3 * x ** 2 * g * onp.where(x == x.flat[4], 1.1, 1.0))
    x = onp.linspace(0.5, 2.0, 6)
    row = mf.check_grads(lambda x: np.sum(cube(x)), x).rows[0]
    assert row.index == (4,) and row.value == x[4]
    assert row.abs_error == pytest.approx(abs(row.autograd - row.numerical))
    assert row.max_abs_error == pytest.approx(row.abs_error)


def test_a_row_judged_all_on_kinks_says_so_and_how():
    report = mf.check_layer(mf.ReLU(), onp.zeros((1, 3)), cotangent=onp.ones((1, 3)))
    row = report.rows[0]
    assert report.ok and row.kinks == 3 and "every element judged was on a kink" in row.verdict
    assert "D- = 0" in row.verdict and "D+ = 1" in row.verdict


def test_reports_show_as_html_tables():
    html = mf.check_grads(lambda x: np.sum(x ** 2), onp.ones(2))._repr_html_()
    assert html.count("<tr>") == 2 and "OK" in html and "<caption>" in html


# --- second derivatives -----------------------------------------------------------------------

def test_second_derivatives_of_a_differentiable_backward_pass():
    report = mf.check_layer(mf.Sequential(mf.Linear(3, 2), mf.Tanh()), onp.ones((2, 3)),
                            order=2)
    assert report.ok and any(row.path.endswith("(Hv)") for row in report.rows)


def test_a_wrong_second_derivative_fails():
    # the VJP of tanh is itself a primitive, whose own VJP forgets a factor
    @mf.primitive
    def dtanh(x):
        return 1 - onp.tanh(x) ** 2

    mf.defvjp(dtanh, lambda ans, x: lambda g: g * onp.tanh(x))  # should be -2 tanh (1 - tanh^2)
    tanh = _primitive(onp.tanh, lambda g, y, x: g * dtanh(x))
    report = mf.check_grads(lambda x: np.sum(tanh(x)), onp.linspace(-1, 1, 4), order=2)
    assert report.rows[0].ok and not report.ok and "second derivatives" in str(report)


def test_a_backward_pass_autograd_cannot_differentiate_is_said():
    # a gradient constant in the parameters (a lookup is linear in E): H v = 0, checked
    report = mf.check_layer(Embedding(), onp.array([0, 1]), order=2)
    assert report.ok and [row.path for row in report.rows][-1] == "E (Hv)"
    sq = _primitive(lambda x: x ** 2, lambda g, y, x: 2 * onp.array(x, dtype=float) * g)
    report = mf.check_grads(lambda x: np.sum(sq(x)), onp.ones(2), order=2)
    assert "second derivatives not checked" in str(report)


# --- blame ------------------------------------------------------------------------------------

class Doubler(mf.Layer):
    """``2 x``, whose VJP says 3 (a user's layer with a backward pass)."""

    def init(self, rng):
        return {}

    def forward(self, params, x):
        return 2 * x

    def backward(self, params, x, y, g):
        return 3 * g, {}


def test_blame_names_the_layer_whose_backward_is_wrong_in_the_network():
    model = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), Doubler(), mf.Linear(4, 2))
    params = model.init(onp.random.default_rng(0))
    x, t = onp.ones((5, 3)), onp.array([0, 1, 0, 1, 1])
    report = mf.check_grads(lambda p: mf.SoftmaxCrossEntropy()(model(p, x), t), params)
    assert not report.ok and len(report.blame) == 1 and "Doubler" in report.blame[0]


# --- property checks --------------------------------------------------------------------------

class RaisesOnZero(mf.Layer):
    def init(self, rng):
        return {}

    def __call__(self, params, x):
        assert onp.all(getattr(x, "_value", x) != 0), "zero input"
        return np.tanh(x)


class Exits(mf.Layer):
    def init(self, rng):
        return {}

    def __call__(self, params, x):
        raise SystemExit(0)


@pytest.mark.parametrize("layer, error", [(RaisesOnZero(), "AssertionError: zero input"),
                                          (Exits(), "SystemExit")])
def test_a_layer_that_raises_on_some_inputs_fails_with_the_input(layer, error):
    report = check_layer_property(layer, max_examples=20)
    assert not report.ok and f"the layer raised {error}" in str(report)
    assert "on the input x = [[" in str(report)


class NoWidth(mf.Layer):
    def init(self, rng):
        return {"W": rng.standard_normal((5, 2))}

    def __call__(self, params, x):
        return np.tanh(x @ params["W"])


class Conv(mf.Layer):
    """A user's 4-D layer: a 1x1 convolution over channels."""

    def init(self, rng):
        return {"W": rng.standard_normal((2, 3, 1, 1))}

    def __call__(self, params, x):
        return np.einsum("nchw,fc->nfhw", x, params["W"][:, :, 0, 0])


def test_the_input_width_is_inferred_from_the_weights_and_the_guess_is_said():
    assert input_shape_of(NoWidth())[0] == (5,)
    report = check_layer_property(NoWidth(), max_examples=5)
    assert report.ok and "guessed from W's shape (5, 2)" in str(report)


def test_4d_layers_are_property_checked_with_an_input_shape():
    assert input_shape_of(Conv())[0] == (3, 8, 8)
    assert check_layer_property(Conv(), max_examples=5, input_shape=(3, 2, 2)).ok
    with pytest.raises(ValueError, match="input_shape"):
        check_layer_property(Conv(), input_shape=(3, 0))


def test_the_command_line_checks_a_4d_layer_with_an_input_shape(tmp_path, capsys):
    from minifw import cli

    (tmp_path / "conv_layers.py").write_text(
        "import minifw as mf\nfrom minifw import np\n\n"
        "class Conv(mf.Layer):\n"
        "    def init(self, rng):\n"
        "        return {'W': rng.standard_normal((2, 3, 1, 1))}\n\n"
        "    def __call__(self, params, x):\n"
        "        return np.einsum('nchw,fc->nfhw', x, params['W'][:, :, 0, 0])\n")
    target = f"{tmp_path / 'conv_layers.py'}:Conv"
    assert cli.main(["gradcheck", target, "--input-shape", "3,2,2", "--examples", "3"]) == 0
    assert "OK" in capsys.readouterr().out
    assert cli.main(["gradcheck", target, "--input-shape", "3,0"]) == 2
    assert "--input-shape: must be a whole number >= 1, got 0" in capsys.readouterr().err

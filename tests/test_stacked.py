"""The stacked numerical engine (minifw.stacked) against the per-element loop.

Both compute the same central differences, (f(w + s) - f(w - s)) / ((w + s) - (w - s)) with
the same steps; they differ only in rounding: each value of f is off by a few eps |f|, so a
difference of two, divided by the step, by a few eps |f| / step. Every comparison below is
held to 64 eps max(1, |f|) / step per element, the checker's rounding tolerance, on networks
of every built-in kind, users' layers of every form, float64 and float32, inputs at kinks.
"""

import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minifw as mf
from minifw import np, testing
from minifw.numerical import central_differences as loop
from minifw.numerical import default_step
from minifw.stacked import Probe, central_differences, chain_of
from minifw.tree import leaves


def assert_same_differences(f, params, args, dtype=onp.float64, chained=True):
    """The engine's central differences equal the loop's to within rounding, and the
    engine (not the loop) computed them when ``chained``."""
    h = default_step(dtype)
    assert (chain_of(f, params, args) is not None) == chained
    fast = central_differences(f, params, args, h)
    slow = loop(lambda p: f(p, *args), params, h, relative=True)
    value = abs(float(f(params, *args)))
    eps = float(onp.finfo(dtype).eps)
    for (path, a), (_, b), (_, w) in zip(leaves(fast), leaves(slow), leaves(params)):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        bound = 64 * eps * max(1.0, value) / (h * onp.maximum(1.0, onp.abs(w)))
        excess = onp.abs(a.astype(float) - b) / bound
        assert excess.max(initial=0) <= 1, (path, excess.max(), a, b)


@pytest.mark.parametrize("dtype", [onp.float64, onp.float32])
@given(data=st.data())
def test_every_built_in_network_and_loss(dtype, data):
    problem = data.draw(testing.problems(dtype=dtype))
    assert_same_differences(problem["f"], problem["params"], (problem["x"], problem["t"]),
                            dtype)


class Swish(mf.Layer):
    """x * sigmoid(x) with its own backward pass; sample b depends on sample b only."""

    per_sample = True

    def forward(self, params, x):
        return x * mf.functions.sigmoid(x)

    def backward(self, params, x, y, g):
        s = mf.functions.sigmoid(x)
        return g * (s + x * s * (1 - s)), {}


class Affine(mf.Layer):
    """A user's fully connected layer with its own backward pass and parameters."""

    per_sample = True

    def __init__(self, n_in, n_out):
        self.n_in, self.n_out = n_in, n_out

    def init(self, rng):
        return {"W": rng.standard_normal((self.n_in, self.n_out)) / 2, "b": rng.random(self.n_out)}

    def forward(self, params, x):
        return x @ params["W"] + params["b"]

    def backward(self, params, x, y, g, need_x=True):
        grads = {"W": x.T @ g, "b": g.sum(axis=0)}
        return (g @ params["W"].T if need_x else None), grads


class Centre(mf.Layer):
    """Subtracts the batch mean: samples are not independent (no ``per_sample``)."""

    def forward(self, params, x):
        return x - np.mean(x, axis=0)

    def backward(self, params, x, y, g):
        return g - np.mean(g, axis=0), {}


class ForwardOnly(mf.Layer):
    """A user's layer with no backward pass: autograd traces its forward, whose two calls
    (tanh, times 1.5) are in the chain as NumPy's own."""

    def forward(self, params, x):
        return np.tanh(x) * 1.5


def _swish_derivative(x, y):  # d/dx x s(x) = s + x s (1 - s)
    s = mf.functions.sigmoid(x)
    return s + x * s * (1 - s)


SWISH = mf.Elementwise("swish", lambda x: x * mf.functions.sigmoid(x), _swish_derivative)


class ElementwiseSwish(mf.Layer):
    def forward(self, params, x):
        return SWISH(x)


class NumpyAffine(Affine):
    """``x @ W + b`` and a ReLU, all NumPy's own calls (no backward): the product's weight on
    fitted lines, as an affine op's, with kinks on them."""

    backward = None
    per_sample = False

    def forward(self, params, x):
        return np.maximum(x @ params["W"] + params["b"], 0.0)


class NumpyDotScale(Affine):
    """``np.dot`` with a matrix, then a product with data aligned with the batch (the same
    number of axes: not elementwise over samples, so the rest runs on whole batches)."""

    backward = None
    per_sample = False

    def forward(self, params, x):
        scale = onp.linspace(0.5, 1.5, x.shape[0] * x.shape[1]).reshape(x.shape)
        return np.tanh(np.dot(x, params["W"])) * scale + params["b"]


class NumpyCentre(mf.Layer):
    """Centre's batch statistics in NumPy's own calls: a mean over samples ends the rows."""

    def forward(self, params, x):
        return x - np.mean(x, axis=0)


USERS = {
    "own backward, per sample": (Swish(), True),
    "own elementwise op": (ElementwiseSwish(), True),
    "own parameters and backward": (Affine(5, 5), True),
    "batch statistics": (Centre(), True),
    "no backward": (ForwardOnly(), True),
    "NumPy product, bias and maximum": (NumpyAffine(5, 5), True),
    "NumPy dot, then data of the batch's shape": (NumpyDotScale(5, 5), True),
    "NumPy batch statistics": (NumpyCentre(), False),
}


@pytest.mark.parametrize("dtype", [onp.float64, onp.float32])
@pytest.mark.parametrize("name", list(USERS))
@given(seed=st.integers(0, 2**16), kinks=st.booleans())
def test_a_users_layer_in_the_chain(name, dtype, seed, kinks):
    layer, chained = USERS[name]
    model = mf.Sequential(mf.Linear(4, 5), mf.ReLU(), layer, mf.Linear(5, 3))
    rng = onp.random.default_rng(seed)
    params = _cast(model.init(rng), dtype)
    x = rng.standard_normal((6, 4)).astype(dtype)
    if kinks:  # inputs at and beside the kink of the ReLU, and a hidden unit exactly at 0
        x[:, 0] = testing.KINK_VALUES[seed % 5]
        params["0"]["b"][0] = -(x[0] @ params["0"]["W"][:, 0])
    t = rng.integers(0, 3, 6)

    def f(p, x, t):
        return mf.SoftmaxCrossEntropy()(model(p, x), t)

    assert_same_differences(f, params, (x, t), dtype, chained)


def _cast(tree, dtype):
    return {k: _cast(v, dtype) if isinstance(v, dict) else v.astype(dtype) for k, v in tree.items()}


@pytest.mark.parametrize("dtype", [onp.float64, onp.float32])
@pytest.mark.parametrize("layer", [mf.Linear(4, 3), mf.Sequential(mf.Linear(4, 3), mf.Tanh()),
                                   Swish(), Centre(), mf.Softmax(), NumpyAffine(4, 3),
                                   NumpyDotScale(4, 4)], ids=repr)
def test_the_input_and_parameters_of_check_layers_objective(layer, dtype):
    # check_layer's scalar: sum(layer(p, x) * G), differentiated in {"x": x, **params}
    rng = onp.random.default_rng(3)
    params = _cast(layer.init(rng), dtype)
    x = rng.standard_normal((5, 4)).astype(dtype)
    G = rng.standard_normal(onp.shape(layer(params, x))).astype(dtype)

    def f(tree):
        return mf.gradcheck.COTANGENT(layer({k: v for k, v in tree.items() if k != "x"},
                                            tree["x"]), G)

    assert_same_differences(f, {"x": x, **params}, (), dtype)


def test_an_affine_input_with_more_axes_and_a_loss_over_them():
    model = mf.Sequential(mf.Linear(3, 4), mf.Sigmoid(), mf.Linear(4, 2))
    rng = onp.random.default_rng(1)
    params, x, t = model.init(rng), rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 3, 2))

    def f(p, x, t):
        return mf.SumSquaresError()(model(p, x), t)

    assert_same_differences(f, params, (x, t))


@pytest.mark.parametrize("f, why", [
    (lambda p, x, t: mf.SoftmaxCrossEntropy()(mf.Linear(3, 2)(p, x), t) + np.sum(p["b"]),
     "a side branch"),
    (lambda p, x, t: 2.0 * mf.SoftmaxCrossEntropy()(mf.Linear(3, 2)(p, x), t),
     "something after the loss"),
    (lambda p, x, t: mf.SoftmaxCrossEntropy()(x @ p["W"] + p["b"] * p["b"], t),
     "a parameter used twice"),
])
def test_what_is_not_a_chain_takes_the_loop_with_the_same_result(f, why):
    rng = onp.random.default_rng(2)
    params = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    x, t = rng.standard_normal((4, 3)), onp.array([0, 1, 1, 0])
    assert_same_differences(f, params, (x, t), chained=False)


def test_a_steep_function_falls_back_to_exact_points_on_its_lines():
    # sigmoid(z / 1e-4) has a length scale near the step: the fitted lines fail their check
    steep = mf.Elementwise("steep", lambda x: mf.functions.sigmoid(x / 1e-4),
                           lambda x, y: y * (1 - y) / 1e-4)

    class Steep(mf.Layer):
        def forward(self, params, x):
            return steep(x)

    model = mf.Sequential(mf.Linear(3, 3), Steep(), mf.Linear(3, 2))
    rng = onp.random.default_rng(4)
    params, x = model.init(rng), rng.standard_normal((4, 3)) * 1e-4
    t = onp.array([0, 1, 0, 1])

    def f(p, x, t):
        return mf.SoftmaxCrossEntropy()(model(p, x), t)

    assert_same_differences(f, params, (x, t))


def test_the_caller_params_are_unchanged_and_not_perturbed_in_place():
    model = mf.Sequential(mf.Linear(3, 4), mf.ReLU(), mf.Linear(4, 2))
    params = model.init(onp.random.default_rng(0))
    before = {p: a.copy() for p, a in leaves(params)}
    seen = []

    def f(p, x, t):
        seen.append(float(p["0"]["W"][0, 0]) if not hasattr(p["0"]["W"], "_value") else None)
        return mf.SoftmaxCrossEntropy()(model(p, x), t)

    central_differences(f, params, (onp.ones((2, 3)), onp.array([0, 1])), 1e-5)
    assert all(onp.array_equal(a, before[p]) for p, a in leaves(params))
    assert len(seen) == 1  # f is traced once; the engine runs the calls, not f


def test_the_probe_gives_f_at_moved_points_and_along_lines():
    model = mf.Sequential(mf.Linear(3, 4), mf.Tanh(), mf.Linear(4, 2))
    rng = onp.random.default_rng(5)
    params, x, t = model.init(rng), rng.standard_normal((5, 3)), onp.array([0, 1, 1, 0, 1])

    def f(p, x, t):
        return mf.SoftmaxCrossEntropy()(model(p, x), t)

    probe = Probe.of(f, params, (x, t))
    for path, a in leaves(params):
        u = rng.standard_normal(a.shape)
        moved = {k: {n: (v + 0.3 * u if f"{k}.{n}" == path else v) for n, v in d.items()}
                 for k, d in params.items()}
        assert probe.line(a, u)(0.3) == pytest.approx(float(f(moved, x, t)), rel=1e-14)
        idx = (0,) * a.ndim
        want = mf.numerical.evaluate_at(lambda p: f(p, x, t), params, a, idx, a[idx] + 0.7)
        assert probe.at(a, idx, a[idx] + 0.7) == pytest.approx(float(want), rel=1e-14)


def test_the_probe_along_lines_of_numpys_product():
    # x @ W written with minifw.np: lines of x, of W (also given as an outer product) and of
    # the bias after it, each f(leaf + s u) as f itself computes it
    layer = NumpyAffine(3, 4)
    rng = onp.random.default_rng(6)
    tree = {"x": rng.standard_normal((5, 3)), **layer.init(rng)}
    G = rng.standard_normal((5, 4))

    def f(p):
        return mf.gradcheck.COTANGENT(layer({"W": p["W"], "b": p["b"]}, p["x"]), G)

    probe = Probe.of(f, tree, ())
    for name, a in tree.items():
        u = rng.standard_normal(a.shape)
        moved = {k: v + 0.3 * u if k == name else v for k, v in tree.items()}
        assert probe.line(a, u)(0.3) == pytest.approx(float(f(moved)), rel=1e-13)
    v, w = rng.standard_normal(3), rng.standard_normal(4)
    moved = {**tree, "W": tree["W"] + 0.3 * onp.outer(v, w)}
    assert probe.line(tree["W"], onp.outer(v, w), (v, w))(0.3) == pytest.approx(
        float(f(moved)), rel=1e-13)


def test_numpys_own_calls_that_keep_samples_apart():
    # of NumPy's functions in a chain: an elementwise ufunc whose other arguments broadcast
    # over the batch, and a product with a matrix, keep samples apart; data shaped like the
    # batch, a mean over it, or a product with a vector do not
    from minifw.stacked import _product, _samplewise
    from minifw.tape import trace

    x, W, b = onp.ones((3, 4)), onp.ones((4, 2)), onp.ones(2)
    data = onp.ones((3, 2))
    cases = {
        (lambda p: np.sum(np.tanh(x @ p["W"] + p["b"]) * 2.0)): [True, True, True, True, False],
        (lambda p: np.sum(np.dot(x, p["W"]) * data)): [True, False, False],
        (lambda p: np.sum(np.mean(x @ p["W"], axis=0))): [True, False, False],
        (lambda p: np.sum(x @ p["v"])): [False, False],
    }
    for f, want in cases.items():
        node = trace(f, {"W": W, "b": b, "v": onp.ones(4)}, record=True).end
        got = []
        while node is not None and node.fun is not None:
            parent = next((q for q, at in zip(node.parents, node.argnums) if at == 0),
                          node.parents[0])
            call = mf.tape.Call(node.fun.fun, None, list(node.args), node.options, node.out)
            got.append(_samplewise(call))
            node = parent
        assert got[::-1] == want, (got[::-1], want)
    assert _product(mf.tape.Call(onp.matmul, None, [x, W], {}, x @ W))
    assert not _product(mf.tape.Call(onp.matmul, None, [x, onp.ones(4)], {}, x @ onp.ones(4)))

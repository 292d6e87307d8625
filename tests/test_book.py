"""The book's own snippets, chapters 3 to 5 of "Deep Learning from Scratch", through
``minifw.book``, give the numbers the book prints.

Each snippet is the book's code as printed (its imports replaced by ``from minifw.book
import *``), run in a namespace of its own; the expected values are the book's printed output.
Departures, each said where it happens: the book draws ``simpleNet``'s weights with the
global ``np.random.randn`` and prints them, so here they are the printed values; with
``lr=10.0`` gradient descent stops, warning, where ``x`` outgrows the step ``h`` (about
``1e12``) instead of wandering in rounding noise to the book's ``-2.6e13``; and the book's
``simpleNet`` numbers were printed without the ``1e-7`` its ``cross_entropy_error`` adds.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import minifw as mf
from minifw.divergence import DivergenceWarning


def run_book(code: str) -> dict:
    """Run a snippet of the book with the book's imports; its namespace."""
    namespace: dict = {}
    exec(compile("import numpy as np\nfrom minifw.book import *\n" + textwrap.dedent(code),
                 "the book", "exec"), namespace)
    return namespace


# --- chapter 3 --------------------------------------------------------------------------------


def test_3_2_step_sigmoid_and_relu():
    ns = run_book("""
        x = np.array([-1.0, 1.0, 2.0])
        a = step_function(x)
        b = sigmoid(x)
        c = relu(np.array([-1.0, 0.0, 2.0]))
    """)
    assert ns["a"].tolist() == [0, 1, 1] and ns["a"].dtype.kind == "i"
    np.testing.assert_allclose(ns["b"], [0.26894142, 0.73105858, 0.88079708], atol=5e-9)
    assert ns["c"].tolist() == [0.0, 0.0, 2.0]


def test_3_4_the_three_layer_network():
    ns = run_book("""
        X = np.array([1.0, 0.5])
        W1 = np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]])
        B1 = np.array([0.1, 0.2, 0.3])
        A1 = np.dot(X, W1) + B1
        Z1 = sigmoid(A1)

        def init_network():
            network = {}
            network['W1'] = np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]])
            network['b1'] = np.array([0.1, 0.2, 0.3])
            network['W2'] = np.array([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]])
            network['b2'] = np.array([0.1, 0.2])
            network['W3'] = np.array([[0.1, 0.3], [0.2, 0.4]])
            network['b3'] = np.array([0.1, 0.2])
            return network

        def forward(network, x):
            W1, W2, W3 = network['W1'], network['W2'], network['W3']
            b1, b2, b3 = network['b1'], network['b2'], network['b3']
            a1 = np.dot(x, W1) + b1
            z1 = sigmoid(a1)
            a2 = np.dot(z1, W2) + b2
            z2 = sigmoid(a2)
            a3 = np.dot(z2, W3) + b3
            y = identity_function(a3)
            return y

        network = init_network()
        x = np.array([1.0, 0.5])
        y = forward(network, x)
    """)
    np.testing.assert_allclose(ns["A1"], [0.3, 0.7, 1.1], atol=1e-12)
    np.testing.assert_allclose(ns["Z1"], [0.57444252, 0.66818777, 0.75026011], atol=5e-9)
    np.testing.assert_allclose(ns["y"], [0.31682708, 0.69627909], atol=5e-9)


def test_3_5_softmax_and_its_overflow():
    ns = run_book("""
        a = np.array([0.3, 2.9, 4.0])
        y = softmax(a)
        total = np.sum(y)
        big = softmax(np.array([1010, 1000, 990]))
    """)
    np.testing.assert_allclose(ns["y"], [0.01821127, 0.24519181, 0.73659691], atol=5e-9)
    assert ns["total"] == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(ns["big"], [9.99954600e-01, 4.53978686e-05, 2.06106005e-09],
                               rtol=1e-8)


# --- chapter 4 --------------------------------------------------------------------------------


def test_4_2_mean_squared_error_and_cross_entropy_error():
    ns = run_book("""
        t = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
        mse_right = mean_squared_error(np.array(y), np.array(t))
        cee_right = cross_entropy_error(np.array(y), np.array(t))
        y = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]
        mse_wrong = mean_squared_error(np.array(y), np.array(t))
        cee_wrong = cross_entropy_error(np.array(y), np.array(t))
        sse = sum_squared_error(np.array(y), np.array(t))
    """)
    # the book prints 0.097500000000000031 and 0.59750000000000003
    assert float(ns["mse_right"]) == 0.097500000000000031
    assert float(ns["mse_wrong"]) == 0.59750000000000003 == float(ns["sse"])
    assert float(ns["cee_right"]) == pytest.approx(0.51082545709933802, rel=1e-15)
    assert float(ns["cee_wrong"]) == pytest.approx(2.3025840929945458, rel=1e-15)


def test_4_2_the_book_means_sum_over_a_batch_where_minifw_takes_the_mean():
    y, t = np.full((4, 3), 0.5), np.zeros((4, 3))
    assert float(mf.book.mean_squared_error(y, t)) == 4 * 0.375
    assert float(mf.functions.sum_squares_error(y, t)) == 0.375
    assert float(mf.functions.mean_squared_error(y, t)) == 0.25


def test_4_3_numerical_diff_and_partial_derivatives():
    ns = run_book("""
        def function_1(x):
            return 0.01*x**2 + 0.1*x

        def function_tmp1(x0):
            return x0*x0 + 4.0**2.0

        def function_tmp2(x1):
            return 3.0**2.0 + x1*x1

        d5 = numerical_diff(function_1, 5)
        d10 = numerical_diff(function_1, 10)
        p1 = numerical_diff(function_tmp1, 3.0)
        p2 = numerical_diff(function_tmp2, 4.0)
    """)
    assert ns["d5"] == pytest.approx(0.1999999999990898, abs=1e-15)
    assert ns["d10"] == pytest.approx(0.2999999999986347, abs=1e-15)
    assert ns["p1"] == pytest.approx(6.00000000000378, abs=1e-13)
    assert ns["p2"] == pytest.approx(7.999999999999119, abs=1e-13)


def test_4_4_numerical_gradient_and_gradient_descent():
    ns = run_book("""
        def function_2(x):
            return x[0]**2 + x[1]**2

        g1 = numerical_gradient(function_2, np.array([3.0, 4.0]))
        g2 = numerical_gradient(function_2, np.array([0.0, 2.0]))
        g3 = numerical_gradient(function_2, np.array([3.0, 0.0]))

        init_x = np.array([-3.0, 4.0])
        good = gradient_descent(function_2, init_x=init_x, lr=0.1, step_num=100)
        init_x = np.array([-3.0, 4.0])
        small = gradient_descent(function_2, init_x=init_x, lr=1e-10, step_num=100)
    """)
    np.testing.assert_allclose(ns["g1"], [6.0, 8.0], atol=1e-9)
    np.testing.assert_allclose(ns["g2"], [0.0, 4.0], atol=1e-9)
    np.testing.assert_allclose(ns["g3"], [6.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(ns["good"], [-6.11110793e-10, 8.14814391e-10], rtol=1e-8)
    np.testing.assert_allclose(ns["small"], [-2.99999994, 3.99999992], atol=5e-9)


def test_4_4_a_rate_too_large_diverges_with_a_warning_naming_lr():
    with pytest.warns(DivergenceWarning, match=r"lr=10 is too large") as caught:
        ns = run_book("""
            def function_2(x):
                return x[0]**2 + x[1]**2

            init_x = np.array([-3.0, 4.0])
            large = gradient_descent(function_2, init_x=init_x, lr=10.0, step_num=100)
        """)
    # the book prints array([-2.58983747e+13, -1.29524862e+12]): diverged to about 1e13
    assert 1e11 < np.abs(ns["large"]).max() < 1e14
    assert "larger h" not in str(caught[0].message)
    assert "stopped before step 10 of 100" in str(caught[0].message)


def test_4_4_simple_net_loss_and_its_numerical_gradient():
    ns = run_book("""
        class simpleNet:
            def __init__(self):
                # the book: self.W = np.random.randn(2,3), and it prints these values
                self.W = np.array([[0.47355232, 0.9977393, 0.84668094],
                                   [0.85557411, 0.03563661, 0.69422093]])

            def predict(self, x):
                return np.dot(x, self.W)

            def loss(self, x, t):
                z = self.predict(x)
                y = softmax(z)
                loss = cross_entropy_error(y, t)
                return loss

        net = simpleNet()
        x = np.array([0.6, 0.9])
        p = net.predict(x)
        label = np.argmax(p)
        t = np.array([0, 0, 1])
        loss = net.loss(x, t)

        def f(W):
            return net.loss(x, t)

        dW = numerical_gradient(f, net.W)
    """)
    np.testing.assert_allclose(ns["p"], [1.05414809, 0.63071653, 1.1328074], atol=5e-8)
    assert ns["label"] == 2
    # the book prints 0.92806853663411326, -log(y) without the 1e-7 its cross_entropy_error
    # adds inside the log (y = 0.395 here: log(y + 1e-7) is 2.5e-7 less); so do its dW
    assert float(ns["loss"]) == pytest.approx(0.92806853663411326 - 1e-7 / 0.3953, abs=1e-8)
    np.testing.assert_allclose(ns["dW"], [[0.21924763, 0.14356247, -0.36281009],
                                          [0.32887144, 0.2153437, -0.54421514]], atol=2e-7)


# --- chapter 5 --------------------------------------------------------------------------------


def test_5_4_buying_apples_and_oranges():
    ns = run_book("""
        apple = 100
        apple_num = 2
        orange = 150
        orange_num = 3
        tax = 1.1

        mul_apple_layer = MulLayer()
        mul_orange_layer = MulLayer()
        add_apple_orange_layer = AddLayer()
        mul_tax_layer = MulLayer()

        apple_price = mul_apple_layer.forward(apple, apple_num)
        orange_price = mul_orange_layer.forward(orange, orange_num)
        all_price = add_apple_orange_layer.forward(apple_price, orange_price)
        price = mul_tax_layer.forward(all_price, tax)

        dprice = 1
        dall_price, dtax = mul_tax_layer.backward(dprice)
        dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
        dorange, dorange_num = mul_orange_layer.backward(dorange_price)
        dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    """)
    # the book prints 715; 110 2.2 3.3 165 650
    got = [ns[k] for k in ("price", "dapple_num", "dapple", "dorange", "dorange_num", "dtax")]
    assert got == pytest.approx([715, 110, 2.2, 3.3, 165, 650])


def test_5_5_relu_and_sigmoid_layers():
    ns = run_book("""
        x = np.array([[1.0, -0.5], [-2.0, 3.0]])
        mask = (x <= 0)
        relu_layer = Relu()
        out = relu_layer.forward(x)
        dx = relu_layer.backward(np.ones_like(x))
        sigmoid_layer = Sigmoid()
        s = sigmoid_layer.forward(np.array([0.0]))
        ds = sigmoid_layer.backward(np.array([1.0]))
    """)
    assert ns["mask"].tolist() == [[False, True], [True, False]]
    assert ns["out"].tolist() == [[1.0, 0.0], [0.0, 3.0]]
    assert ns["dx"].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert ns["s"].tolist() == [0.5] and ns["ds"].tolist() == [0.25]


def test_5_6_affine_for_a_batch():
    ns = run_book("""
        X_dot_W = np.array([[0, 0, 0], [10, 10, 10]])
        B = np.array([1, 2, 3])
        Y = X_dot_W + B
        dY = np.array([[1, 2, 3], [4, 5, 6]])
        dB = np.sum(dY, axis=0)

        W = np.arange(6.0).reshape(2, 3)
        b = np.array([1.0, 2.0, 3.0])
        affine = Affine(W, b)
        out = affine.forward(np.array([[1.0, 0.0], [0.0, 1.0]]))
        dx = affine.backward(dY.astype(float))
    """)
    assert ns["Y"].tolist() == [[1, 2, 3], [11, 12, 13]] and ns["dB"].tolist() == [5, 7, 9]
    assert ns["out"].tolist() == [[1.0, 3.0, 5.0], [4.0, 6.0, 8.0]]
    assert ns["affine"].db.tolist() == [5.0, 7.0, 9.0]
    assert ns["affine"].dW.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    np.testing.assert_allclose(ns["dx"], ns["dY"] @ ns["W"].T)


def test_5_7_the_two_layer_net_by_backprop_agrees_with_the_numerical_gradient():
    # the book's TwoLayerNet of 5.7.2 and its gradient check (5.7.3), on the 8x8 digits
    # instead of MNIST, with a Generator instead of the global np.random
    ns = run_book("""
        from collections import OrderedDict
        from minifw.datasets import load_digits

        class TwoLayerNet:
            def __init__(self, input_size, hidden_size, output_size, rng,
                         weight_init_std=0.01):
                self.params = {}
                self.params['W1'] = weight_init_std * rng.standard_normal(
                    (input_size, hidden_size))
                self.params['b1'] = np.zeros(hidden_size)
                self.params['W2'] = weight_init_std * rng.standard_normal(
                    (hidden_size, output_size))
                self.params['b2'] = np.zeros(output_size)
                self.layers = OrderedDict()
                self.layers['Affine1'] = Affine(self.params['W1'], self.params['b1'])
                self.layers['Relu1'] = Relu()
                self.layers['Affine2'] = Affine(self.params['W2'], self.params['b2'])
                self.lastLayer = SoftmaxWithLoss()

            def predict(self, x):
                for layer in self.layers.values():
                    x = layer.forward(x)
                return x

            def loss(self, x, t):
                y = self.predict(x)
                return self.lastLayer.forward(y, t)

            def numerical_gradient(self, x, t):
                loss_W = lambda W: self.loss(x, t)
                grads = {}
                for key in ('W1', 'b1', 'W2', 'b2'):
                    grads[key] = numerical_gradient(loss_W, self.params[key])
                return grads

            def gradient(self, x, t):
                self.loss(x, t)
                dout = 1
                dout = self.lastLayer.backward(dout)
                layers = list(self.layers.values())
                layers.reverse()
                for layer in layers:
                    dout = layer.backward(dout)
                grads = {}
                grads['W1'] = self.layers['Affine1'].dW
                grads['b1'] = self.layers['Affine1'].db
                grads['W2'] = self.layers['Affine2'].dW
                grads['b2'] = self.layers['Affine2'].db
                return grads

        (x_train, t_train), _ = load_digits(one_hot_label=True)
        network = TwoLayerNet(input_size=64, hidden_size=10, output_size=10,
                              rng=np.random.default_rng(0))
        x_batch = x_train[:3]
        t_batch = t_train[:3]
        grad_numerical = network.numerical_gradient(x_batch, t_batch)
        grad_backprop = network.gradient(x_batch, t_batch)
        diff = {key: np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
                for key in grad_numerical.keys()}
    """)
    # the book prints differences of 1e-10 to 1e-13; the loss adds 1e-7 inside its log and
    # the backward pass (y - t) / batch_size does not, which moves b2's gradient by 1e-7
    assert all(d < 1e-6 for d in ns["diff"].values()), ns["diff"]
    assert ns["diff"]["W1"] < 1e-8

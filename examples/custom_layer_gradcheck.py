"""Write your own layer with a hand-written backward pass, and let minifw catch its bug.

A "parametric softplus" layer, y = log(1 + exp(beta * x)) / beta with a learnable beta per
feature, written as an autograd primitive with its own VJPs. The first version forgets a term
in d y / d beta; the checker fails it, its table points at "beta", and its verdict says the
disagreement does not follow the step: the gradient is wrong. The fixed version passes, in
both modes and as a property over many drawn inputs (including inputs exactly at 0).

Run: python examples/custom_layer_gradcheck.py
"""

import numpy as onp

import minifw as mf


def softplus(x, beta):
    return onp.logaddexp(0.0, beta * x) / beta


def sigmoid(z):
    return 0.5 * (1 + onp.tanh(z / 2))


def make_layer(correct: bool) -> mf.Layer:
    @mf.primitive
    def psoftplus(x, beta):
        return softplus(x, beta)

    def vjp_x(ans, x, beta):
        return lambda g: g * sigmoid(beta * x)

    def vjp_beta(ans, x, beta):
        # dy/dbeta = x sigmoid(beta x) / beta - y / beta; the buggy version drops "- y / beta"
        def vjp(g):
            d = x * sigmoid(beta * x) / beta - (ans / beta if correct else 0.0)
            return (g * d).reshape(-1, beta.size).sum(axis=0)
        return vjp

    mf.defvjp(psoftplus, vjp_x, vjp_beta)

    class ParametricSoftplus(mf.Layer):
        def __init__(self, features: int):
            self.features = features
            self.in_features = features

        def init(self, rng):
            return {"beta": 1.0 + 0.5 * rng.random(self.features)}

        def forward(self, params, x):
            return psoftplus(x, params["beta"])

    return ParametricSoftplus(5)


def main() -> None:
    rng = onp.random.default_rng(0)
    x = rng.standard_normal((8, 5))

    buggy = make_layer(correct=False)
    report = mf.check_layer(buggy, x, rng=rng)
    print("The first version:\n")
    print(report, "\n")
    assert not report.ok and [r.path for r in report.rows if not r.ok] == ["beta"]

    fixed = make_layer(correct=True)
    print("After the fix:\n")
    for mode in ("full", "projection"):
        report = mf.check_layer(fixed, x, mode=mode, rng=rng)
        print(report, "\n")
        assert report.ok
    prop = mf.testing.check_layer_property(fixed, max_examples=50)
    print(f"property check over 50 drawn inputs and parameters: {'OK' if prop.ok else 'FAILED'}")
    assert prop.ok


if __name__ == "__main__":
    main()

"""Draw every picture of minifw.plots into a folder (default: ./minifw_plots).

- activations.png: every activation with its derivative from autograd;
- finite_differences.png: error of forward and central differences against the step h;
- gradient_descent.png: gradient-descent paths on x0**2 + x1**2 for a few learning rates;
- neuron_loss.png: one sigmoid neuron's loss and gradient under MSE and cross-entropy;
- vanishing_gradients.png: gradient norm per layer, deep sigmoid against deep ReLU networks;
- training_curves.png: loss and accuracy per epoch of a two-layer network on the digits.

The same pictures come from the command line: minifw plot all --out-dir DIR.

Run: python examples/plots.py [OUT_DIR]
"""

import sys
from pathlib import Path

import numpy as onp

import minifw as mf
from minifw import plots
from minifw.datasets import load_digits


def digits_history() -> mf.History:
    (x, t), (x_test, t_test) = load_digits()
    rng = onp.random.default_rng(0)
    model = mf.Sequential(mf.Linear(64, 64), mf.ReLU(), mf.Linear(64, 10))
    params = model.init(rng)
    return mf.fit(model, mf.SoftmaxCrossEntropy(), mf.optim.Adam(lr=0.01), params, x, t,
                  epochs=20, batch_size=32, rng=rng, validation=(x_test, t_test),
                  progress=False)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "minifw_plots")
    out.mkdir(exist_ok=True)
    figures = {name: make() for name, make in plots.PLOTS.items()}
    figures["training_curves"] = plots.training_curves_figure(digits_history(),
                                                              val_label="test")
    for name, fig in figures.items():
        print(f"wrote {plots.save_figure(fig, out / f'{name}.png')}")

    # The numbers behind two of the pictures.
    at_1e50 = plots.forward_difference(plots.book_function, 5.0, 1e-50)
    print(f"forward difference of 0.01x**2 + 0.1x at x = 5 with h = 1e-50: {at_1e50}")
    for activation in ("sigmoid", "relu"):
        norms = plots.layer_gradient_norms(activation, depth=8)
        print(f"{activation}: gradient norm, layer 1 / layer 8 = {norms[0] / norms[-1]:.2e}")


if __name__ == "__main__":
    main()

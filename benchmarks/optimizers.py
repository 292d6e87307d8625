"""Each optimizer's ``update`` against its rule written by hand, the book's way.

The hand rule changes its state in place and checks nothing; minifw's ``update`` checks the
gradients' structure, refuses a step that is not finite before writing anything, and keeps
its state unchanged when it refuses. Both update the same arrays with the same gradients, on
two networks' parameters: the digits network 64-50-10 (small arrays, where fixed costs
show) and 784-50-10 (where the passes over memory do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as onp
from baselines import HandRule
from run import Figure, Mode, interleaved, median

import minifw as mf
from minifw.tree import flat

KINDS = {"sgd": mf.optim.SGD, "momentum": mf.optim.Momentum, "adagrad": mf.optim.AdaGrad,
         "rmsprop": mf.optim.RMSProp, "adam": mf.optim.Adam}


def update_figures(mode: Mode, rng: onp.random.Generator) -> list[Figure]:
    """``opt.update`` / the hand rule, for every optimizer, on both networks' parameters."""
    figures = []
    for widths in ([64, 50, 10], [mode.inputs, mode.hidden, 10]):
        size = "-".join(map(str, widths))
        for kind, make in KINDS.items():
            fig = Figure(f"{make.__name__}.update, the parameters of {size}: minifw / the "
                         "book's rule by hand", "<= 1.3", "minifw", "hand")
            params = mf.Sequential(mf.Linear(widths[0], widths[1]), mf.ReLU(),
                                   mf.Linear(widths[1], widths[2])).init(rng)
            grads: Any = {k: {n: 1e-3 * rng.standard_normal(a.shape) for n, a in v.items()}
                          for k, v in params.items()}
            opt, hand = make(lr=0.001), HandRule(kind)
            arrays, hand_arrays = flat(params), [a.copy() for a in flat(params)]
            contenders: dict[str, Callable[[], Any]] = {
                "minifw": lambda opt=opt, grads=grads: opt.update(params, grads),
                "hand": lambda hand=hand, g=flat(grads): hand.update(hand_arrays, g)}
            times = interleaved(contenders, mode.rounds, 20)
            fig.minifw_s, fig.peer_s = median(times["minifw"]), median(times["hand"])
            fig.note = f"{len(arrays)} arrays"
            figures.append(fig)
    return figures

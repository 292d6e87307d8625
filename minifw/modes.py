"""Training and evaluation: what dropout and batch norm do, and the state batch norm keeps.

A layer call is plain maths unless a block of this module is active:

- **No block** (what :func:`minifw.check_layer` checks): ``BatchNorm`` normalises by the
  batch's own statistics, ``Dropout`` is the identity.
- ``with training(rng, state) as run:`` a training step. ``Dropout`` draws its mask from
  ``rng`` once per call site (its path in the model) and reuses it for every further
  evaluation in the block, so the numerical gradient, autograd's trace and the gradient
  checker all see the same mask. ``BatchNorm`` normalises by the batch's statistics and
  ``run`` collects its updated running statistics (from the first evaluation in the block
  only) into ``run.state``, a new tree the caller keeps; ``state`` itself is not changed.
- ``with evaluation(state):`` ``BatchNorm`` normalises by the running statistics in
  ``state``; ``Dropout`` is the identity.

State is plain data, a nested dict of arrays keyed like the parameters
(``{"3": {"mean": ..., "var": ...}}``), from ``model.init_state()``; ``mf.save`` stores it as
it stores parameters. Masks and statistics enter the ops as explicit inputs, so every
backward pass stays a pure function of its arguments. A :class:`~minifw.Sequential` keeps
the path of the layer it is calling while a block is active (and does nothing extra when none
is); a layer called on its own has the root path ``""``.

>>> import numpy as onp, minifw as mf
>>> model = mf.Sequential(mf.Linear(3, 4), mf.BatchNorm(4), mf.Dropout(0.5))
>>> params, state = model.init(onp.random.default_rng(0)), model.init_state()
>>> x = onp.random.default_rng(1).standard_normal((8, 3))
>>> with training(onp.random.default_rng(2), state) as run:
...     y = model(params, x)
>>> state = run.state
>>> sorted(state["1"]), bool((y == 0).any())
(['mean', 'var'], True)
>>> with evaluation(state):
...     y = model(params, x)
>>> y.shape
(8, 4)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import numpy as onp
from autograd.tracer import getval

State = dict[str, Any]


class Mode:
    """What is active: the path of the layer being called (kept by ``Sequential``)."""

    def __init__(self) -> None:
        self.path: list[str] = []

    def where(self) -> str:
        """The dotted path of the layer being called (``""`` at the root)."""
        return ".".join(self.path)

    def call(self, key: str, layer: Any, params: Any, x: Any) -> Any:
        """``layer(params, x)`` with ``key`` appended to the path while it runs."""
        self.path.append(key)
        try:
            return layer(params, x)
        finally:
            self.path.pop()


class Training(Mode):
    """A training step: the generator dropout draws from, and the state being collected."""

    def __init__(self, rng: onp.random.Generator, state: State):
        super().__init__()
        self.rng, self.old = rng, state
        self.masks: dict[str, onp.ndarray] = {}
        self.updates: dict[tuple[str, ...], State] = {}

    def mask(self, shape: tuple[int, ...], draw: Callable[[onp.random.Generator], onp.ndarray]
             ) -> onp.ndarray:
        """The mask of the call site being run: ``draw(rng)`` at its first call, then the
        same array (a ``ValueError`` if the input's shape changed within the step)."""
        where = self.where()
        mask = self.masks.get(where)
        if mask is None:
            mask = self.masks[where] = draw(self.rng)
        elif mask.shape != shape:
            raise ValueError(f"Dropout at {where or 'the root'!r}: input of shape {shape} after "
                             f"{mask.shape} in the same training block; a block is one step "
                             "(one batch), its masks are drawn once")
        return mask

    def previous(self, default: Callable[[], State]) -> State:
        """The entry at the current path in the given state (``default()`` if it has none)."""
        return _find(self.old, self.path) or default()

    def record(self, update: Callable[[], State]) -> None:
        """Keep ``update()`` as the new entry at the current path, if none is kept yet (the
        first evaluation in the block counts; later ones, e.g. a numerical gradient's, not)."""
        key = tuple(self.path)
        if key not in self.updates:
            self.updates[key] = update()

    @property
    def state(self) -> State:
        """The new state: the given one with every collected entry replaced."""
        out: Any = _copy(self.old)
        for path, entry in self.updates.items():
            if not path:
                return entry
            node = out
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = entry
        return out


class Evaluation(Mode):
    """Evaluation: the running statistics batch norm normalises by."""

    def __init__(self, state: State):
        super().__init__()
        self.state = state

    def entry(self, what: str) -> State:
        """The state entry at the current path; ``what`` names the layer in the error."""
        found = _find(self.state, self.path)
        if found is None:
            where = self.where() or "the root"
            raise ValueError(
                f"{what} at {where!r} finds no entry in the evaluation state (top-level keys "
                f"{sorted(self.state)}): pass model.init_state(), or the state of a training "
                "block (run.state)")
        return found


_ACTIVE: contextvars.ContextVar[Mode | None] = contextvars.ContextVar("minifw_modes",
                                                                     default=None)


def active() -> Mode | None:
    """The active :class:`Training` or :class:`Evaluation`, or ``None`` outside any block."""
    return _ACTIVE.get()


@contextlib.contextmanager
def _entered(mode: Mode) -> Iterator[Any]:
    if _ACTIVE.get() is not None:
        raise RuntimeError(f"a {type(_ACTIVE.get()).__name__.lower()} block is already active; "
                           "blocks do not nest")
    token = _ACTIVE.set(mode)
    try:
        yield mode
    finally:
        _ACTIVE.reset(token)


def training(rng: onp.random.Generator,
             state: State | None = None) -> contextlib.AbstractContextManager[Training]:
    """A training step: dropout draws from ``rng``, batch norm uses batch statistics and
    collects new running statistics into the yielded ``run.state``.

    Arguments:
        rng: the ``numpy.random.Generator`` dropout masks are drawn from (one mask per call
            site per block).
        state: the running statistics so far (``model.init_state()``; ``None``: start from
            each layer's initial state). Never changed.

    Returns:
        A context manager yielding a :class:`Training`, whose ``state`` is the new state.

    >>> import numpy as onp, minifw as mf
    >>> with training(onp.random.default_rng(0)) as run:
    ...     y = mf.Dropout(0.5)({}, onp.ones((2, 3)))
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    """
    if not isinstance(rng, onp.random.Generator):
        raise TypeError(f"training: rng must be a numpy.random.Generator (one for the whole "
                        f"run, so that every step draws new masks), got {rng!r}")
    return _entered(Training(rng, _checked(state, "training")))


def evaluation(state: State | None = None) -> contextlib.AbstractContextManager[Evaluation]:
    """Evaluation: batch norm normalises by the running statistics in ``state``, dropout is
    the identity.

    Arguments:
        state: the running statistics (a training block's ``run.state``, or
            ``model.init_state()``); ``None`` for a model without any.

    Returns:
        A context manager yielding an :class:`Evaluation`.

    >>> import numpy as onp, minifw as mf
    >>> with evaluation():
    ...     mf.Dropout(0.5)({}, onp.ones(2))
    array([1., 1.])
    """
    return _entered(Evaluation(_checked(state, "evaluation")))


def _checked(state: Any, name: str) -> State:
    if state is None:
        return {}
    if not isinstance(state, dict):
        raise TypeError(f"{name}: state must be a dict (model.init_state()), got "
                        f"{type(state).__name__}")
    return state


def _find(state: State, path: list[str]) -> State | None:
    node: Any = state
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, dict) and node else None


def _copy(tree: Any) -> Any:
    return {k: _copy(v) for k, v in tree.items()} if isinstance(tree, dict) else tree


def plain(x: Any) -> onp.ndarray:
    """``x``'s value as a plain array (an autograd box's value while traced)."""
    return onp.asarray(getval(x))

"""Hypothesis strategies and one-line gradient properties, for minifw's tests and for users'.

Arrays have bounded shapes and values, and are seeded with the values where gradients are
hard: exactly 0 (the kink of ReLU, leaky ReLU and step), just beside it (``+-1e-9``), and
plain numbers. Layers, losses and small networks are drawn from every built-in kind.

Turn "this layer's gradients are right" into a property test in one line::

    test_my_layer = gradient_property(MyLayer(3, 4))

>>> import minifw as mf
>>> check_layer_property(mf.Tanh(), max_examples=5).ok
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as onp
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minifw.gradcheck import MODES, GradCheckReport, GradCheckRow, check_layer
from minifw.layers import ACTIVATIONS, Layer, Linear, Sequential, Softmax
from minifw.losses import LOSSES, CrossEntropyError, Loss

#: Values where gradients are hard: the kink itself and its immediate neighbours.
KINK_VALUES = (0.0, 1e-9, -1e-9, 1e-12, -1e-12)


def values(min_value: float = -3.0, max_value: float = 3.0,
           width: Literal[16, 32, 64] = 64) -> st.SearchStrategy:
    """Floats in ``[min_value, max_value]`` mixed with :data:`KINK_VALUES`.

    >>> from hypothesis import find
    >>> find(values(), lambda v: v == 0.0)
    0.0
    """
    plain = st.floats(min_value, max_value, allow_nan=False, width=width)
    return st.one_of(st.sampled_from(KINK_VALUES), plain)


def arrays(
    shape: tuple[int, ...] | st.SearchStrategy | None = None,
    *,
    dtype: Any = onp.float64,
    min_value: float = -3.0,
    max_value: float = 3.0,
    max_dims: int = 2,
    max_side: int = 4,
) -> st.SearchStrategy[onp.ndarray]:
    """Arrays of bounded shape and values, seeded with values at and beside kinks.

    Arguments:
        shape: a fixed shape, a strategy of shapes, or ``None`` for 1 to ``max_dims`` axes of
            1 to ``max_side`` elements.
        dtype: float64 or float32.
        min_value, max_value: the range of the plain values.

    >>> from hypothesis import find
    >>> find(arrays((2, 3)), lambda a: True).shape
    (2, 3)
    """
    dtype = onp.dtype(dtype)
    if shape is None:
        shape = hnp.array_shapes(min_dims=1, max_dims=max_dims, max_side=max_side)
    elements = values(min_value, max_value, width=64 if dtype.itemsize == 8 else 32)
    return hnp.arrays(dtype, shape, elements=elements)


def activations() -> st.SearchStrategy[Layer]:
    """Every built-in activation layer (leaky ReLU with a few slopes)."""
    plain = [cls() for name, cls in ACTIVATIONS.items() if name != "leaky_relu"]
    leaky = st.sampled_from([0.01, 0.1, 0.5]).map(ACTIVATIONS["leaky_relu"])
    return st.one_of(st.sampled_from(plain), leaky)


def losses() -> st.SearchStrategy[Loss]:
    """Every built-in loss."""
    return st.sampled_from([cls() for cls in LOSSES.values()])


@st.composite
def networks(draw: Any, in_features: int | None = None, max_width: int = 5,
             max_hidden: int = 2) -> Sequential:
    """Small networks: ``[activation] (Linear, activation)* Linear``, widths 1..max_width.

    The first activation acts on the input itself, so inputs at a kink meet it directly.
    """
    widths = [in_features or draw(st.integers(1, max_width))]
    widths += draw(st.lists(st.integers(1, max_width), min_size=1, max_size=max_hidden + 1))
    layers: list[Layer] = [draw(activations())]
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        layers.append(Linear(n_in, n_out, weight_init=draw(st.sampled_from(["xavier", "he"]))))
        if i < len(widths) - 2:
            layers.append(draw(activations()))
    return Sequential(*layers)


@st.composite
def problems(draw: Any, dtype: Any = onp.float64, max_batch: int = 4) -> dict[str, Any]:
    """A network, a loss, parameters, inputs and fitting targets: a whole gradient problem.

    Returns a dict with ``model``, ``loss``, ``params``, ``x``, ``t`` and ``f(params, x, t)``.
    A cross-entropy on probabilities gets a softmax output layer; labels or one-hot targets
    for the cross-entropies, real targets for the squared errors.
    """
    model = draw(networks())
    loss = draw(losses())
    if isinstance(loss, CrossEntropyError):
        model = Sequential(*model.layers, Softmax())
    n_in = next(layer.in_features for layer in model.layers if isinstance(layer, Linear))
    n_out = [layer.out_features for layer in model.layers if isinstance(layer, Linear)][-1]
    batch = draw(st.integers(1, max_batch))
    rng = onp.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = _cast(model.init(rng), dtype)
    x = draw(arrays((batch, n_in), dtype=dtype))
    if loss.__class__.__name__ in ("SoftmaxCrossEntropy", "CrossEntropyError"):
        labels = draw(hnp.arrays(onp.int64, (batch,), elements=st.integers(0, n_out - 1)))
        t = labels if draw(st.booleans()) else onp.eye(n_out, dtype=dtype)[labels]
    else:
        t = draw(arrays((batch, n_out), dtype=dtype))

    def f(p: Any, x: Any, t: Any) -> Any:
        return loss(model(p, x), t)

    return {"model": model, "loss": loss, "params": params, "x": x, "t": t, "f": f}


def _cast(params: dict[str, Any], dtype: Any) -> dict[str, Any]:
    return {k: _cast(v, dtype) if isinstance(v, dict) else v.astype(dtype)
            for k, v in params.items()}


def input_width(layer: Layer) -> int | None:
    """The input width ``layer`` declares: its ``in_features``, or its first layer's.

    >>> input_width(Sequential(Softmax(), Linear(3, 2))), input_width(Softmax())
    (3, None)
    """
    width = getattr(layer, "in_features", None)
    if isinstance(width, int):
        return width
    if isinstance(layer, Sequential):
        # activations keep the width, so the first layer that declares one says it
        declared = [w for w in map(input_width, layer.layers) if w is not None]
        return declared[0] if declared else None
    return None


def input_shape_of(layer: Layer, rng: onp.random.Generator | None = None
                   ) -> tuple[tuple[int, ...], str]:
    """The shape of one input sample for ``layer`` (without the batch axis), and how it was
    found: the declared width (:func:`input_width`), else a guess from the parameters that
    ``layer.init`` draws (a 2-D weight ``(in, out)`` takes ``in`` features, a 4-D filter
    ``(filters, channels, kh, kw)`` an image of ``channels`` x 8 x 8), else 4 features.

    >>> import minifw as mf
    >>> input_shape_of(mf.Linear(3, 2))
    ((3,), '')
    >>> input_shape_of(mf.Tanh())[0]
    (4,)
    """
    width = input_width(layer)
    if width is not None:
        return (width,), ""
    params = layer.init(rng if rng is not None else onp.random.default_rng(0))
    for name, a in (params.items() if isinstance(params, dict) else ()):
        shape = onp.shape(a)
        if len(shape) == 2:
            return (shape[0],), f"the input width {shape[0]} was guessed from {name}'s shape " \
                                f"{shape}; pass in_features= or input_shape= to set it"
        if len(shape) == 4:
            guess = (shape[1], max(8, 2 * shape[2]), max(8, 2 * shape[3]))
            return guess, f"the input shape {guess} was guessed from {name}'s shape {shape}; " \
                          "pass input_shape= to set it"
    return (4,), ("the layer declares no in_features and has no weights to tell its input "
                  "width: 4 features were guessed; pass in_features= or input_shape= to set it")


def _raised(error: BaseException, x: onp.ndarray, mode: str, dtype: Any,
            notes: list[str]) -> GradCheckReport:
    """The report of a check whose layer raised (or exited) on the input ``x``."""
    text = onp.array2string(x, precision=6, threshold=40)
    row = GradCheckRow("layer", tuple(x.shape), False, None, 0.0, 0.0, 0.0, 0.0, 0, 0, 1,
                       verdict=f"the layer raised {type(error).__name__}: {error} on the input "
                               f"x = {text} (shape {x.shape})")
    return GradCheckReport([row], mode, str(onp.dtype(dtype)), 0.0, 0.0, 0.0, notes)


def check_layer_property(
    layer: Layer,
    *,
    mode: str = "full",
    max_examples: int = 50,
    seed: int = 0,
    in_features: int | None = None,
    input_shape: tuple[int, ...] | None = None,
    dtype: Any = onp.float64,
) -> GradCheckReport:
    """Check ``layer`` on many drawn inputs and parameter draws; the first failure's report.

    Inputs have shape ``(batch, *input_shape)``: ``input_shape`` if given (e.g. ``(1, 8, 8)``
    for a convolution on one-channel images), else ``(in_features,)``, else what
    :func:`input_shape_of` finds (a guess is noted in the report); values at and beside
    kinks; parameters come from ``layer.init`` with a drawn seed. A layer that raises (or
    calls ``sys.exit``) on a drawn input fails, and the report shows that input. Hypothesis
    shrinks a failure to a small example.

    Returns:
        The report of the (shrunk) first failing example, or of the last example if all pass.

    >>> import minifw as mf
    >>> check_layer_property(mf.Linear(2, 3), max_examples=3).ok
    True
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    notes: list[str] = []
    if input_shape is not None:
        shape = tuple(int(n) for n in input_shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"input_shape must be whole numbers >= 1, got {input_shape!r}")
    elif in_features is not None:
        shape = (in_features,)
    else:
        shape, guessed = input_shape_of(layer)
        notes += [guessed] if guessed else []
    last: list[GradCheckReport] = []

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: Any) -> None:
        batch = data.draw(st.integers(1, 3), label="batch")
        x = data.draw(arrays((batch, *shape), dtype=dtype), label="x")
        rng = onp.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
        try:
            params = _cast(layer.init(rng), dtype)
            report = check_layer(layer, x, params, mode=mode, rng=rng)
        except (Exception, SystemExit) as error:  # the layer's own failure, not a pass
            report = _raised(error, x, mode, dtype, notes)
        report.notes[:0] = [n for n in notes if n not in report.notes]
        last[:] = [report]
        assert report.ok, str(report)

    try:
        run()
    except AssertionError:
        pass
    return last[0]


def gradient_property(
    layer: Layer | Callable[[], Layer],
    *,
    modes: tuple[str, ...] = MODES,
    in_features: int | None = None,
    input_shape: tuple[int, ...] | None = None,
    dtype: Any = onp.float64,
) -> Callable[[], None]:
    """A pytest test function asserting that ``layer``'s gradients are right, in one line.

    ``test_mine = gradient_property(MyLayer(3, 4))`` in a test module makes pytest check
    ``MyLayer`` on drawn inputs (with values at kinks) and parameters, in every mode, with
    the current hypothesis profile's number of examples; a failure shows the report's table.

    >>> import minifw as mf
    >>> gradient_property(mf.Sigmoid())()
    """
    def test() -> None:
        instance = layer() if isinstance(layer, type) or not isinstance(layer, Layer) else layer
        n = settings().max_examples
        for mode in modes:
            report = check_layer_property(instance, mode=mode, max_examples=n,
                                          in_features=in_features, input_shape=input_shape,
                                          dtype=dtype)
            assert report.ok, f"{instance!r} in {mode} mode:\n{report}"

    return test

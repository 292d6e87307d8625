"""Model files: the architecture (as data) with its parameters, in one ``.npz``, no pickle.

``save_model(path, model, params)`` writes, through :func:`minifw.save` (atomic, checked),
an ordinary ``.npz`` holding three trees:

- ``model``: a JSON header, stored as bytes (a ``uint8`` array): the format and its version,
  the architecture (:func:`minifw.architecture.describe`), the minifw version and ``info``,
  any JSON data the caller adds (``minifw train`` puts the data set, the loss, the epoch and
  the accuracies there);
- ``params``: the parameters, one ``.npy`` member per dotted path (``params.0.W``);
- ``state``: arrays a model keeps beside its parameters (running statistics), if any.

``load_model(path)`` reads it with :func:`minifw.load` (every check it makes), rebuilds the
layers with :func:`minifw.architecture.build` (only ``minifw.Layer`` subclasses, no code
imported but minifw's own) and checks that the parameters fit them: the structure and shapes
``model.init`` makes. What it returns unpacks as ``model, params``.

>>> import numpy as onp, tempfile, os, minifw as mf
>>> model = mf.Sequential(mf.Linear(4, 3), mf.ReLU(), mf.Linear(3, 2))
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> save_model(path, model, model.init(onp.random.default_rng(0)), info={"note": "hi"})
>>> model2, params = load_model(path)
>>> model2, params["2"]["W"].shape, load_model(path).info
(Sequential(Linear(in_features=4, out_features=3, weight_init='he'), ReLU(), \
Linear(in_features=3, out_features=2, weight_init='he')), (3, 2), {'note': 'hi'})
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as onp

from minifw.architecture import ArchitectureError, build, check_rebuilds
from minifw.files import ParamsFileError, ParamsFileNotFoundError, load, save
from minifw.layers import Layer
from minifw.limits import MAX_BYTES, MAX_RATIO
from minifw.tree import leaves

#: What the header's ``format`` says, and the version of the layout this module writes.
FORMAT, VERSION = "minifw model", 1

#: The most bytes the JSON header may take (it holds names and numbers, not arrays).
MAX_HEADER_BYTES = 1 << 20


class ModelFileError(ParamsFileError):
    """A file that is not a model file minifw can load (a ``ValueError``); names the file."""


@dataclass
class SavedModel:
    """What :func:`load_model` returns: unpacks as ``model, params``.

    Attributes:
        model: the rebuilt layer (usually a ``Sequential``).
        params: its parameters.
        state: arrays kept beside the parameters (``{}`` if none).
        info: the JSON data saved with it.
    """

    model: Layer
    params: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.params))


def save_model(path: str | os.PathLike[str], model: Layer, params: dict[str, Any], *,
               state: dict[str, Any] | None = None, info: dict[str, Any] | None = None) -> None:
    """Write ``model`` (its architecture) and ``params`` to the ``.npz`` file ``path``, atomically.

    Arguments:
        path: the file, used exactly as given (as :func:`minifw.save`).
        model: a :class:`minifw.Layer` whose constructor arguments are its attributes of the
            same names (every built-in layer is).
        params: its parameters: the structure and shapes ``model.init`` makes.
        state: arrays the model keeps beside its parameters, saved and returned as they are.
        info: JSON data to keep with the model (e.g. what it was trained on).

    Raises:
        ArchitectureError: the model cannot be described as data (see
            :func:`minifw.architecture.describe`), or does not rebuild as the same model.
        ValueError: ``params`` do not fit the model (a path or a shape differs), or ``info``
            is not JSON data; and whatever :func:`minifw.save` raises. Nothing is written.
    """
    spec = check_rebuilds(model, [type(layer) for layer in _layers(model)])
    _check_fit(model, params, "save_model: params")
    header = {"format": FORMAT, "version": VERSION, "model": spec,
              "minifw": _version(), "info": {} if info is None else info}
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"save_model: info must be JSON data (no NaN), got: {e}") from None
    save(path, {"model": onp.frombuffer(text.encode(), dtype=onp.uint8), "params": params,
                "state": {} if state is None else state})


def load_model(path: str | os.PathLike[str], *, custom_layers: Iterable[type] = (),
               max_bytes: int | None = MAX_BYTES,
               max_ratio: float | None = MAX_RATIO) -> SavedModel:
    """Read a model file written by :func:`save_model`: ``model, params = load_model(path)``.

    Arguments:
        path: the file.
        custom_layers: layer classes of your own that the file names, when their module is not
            imported (e.g. defined in the script that saved the model).
        max_bytes, max_ratio: the limits of :func:`minifw.load`.

    Returns:
        A :class:`SavedModel` (``model``, ``params``, ``state``, ``info``).

    Raises:
        ParamsFileNotFoundError: no file at ``path`` (a ``FileNotFoundError``).
        ModelFileError: (a ``ValueError``) not a model file, a header that is not the one this
            minifw writes, an architecture that does not rebuild (a class not found or not a
            ``minifw.Layer``, arguments its constructor refuses), or params that do not fit it;
            and every other error of :func:`minifw.load`. Each names the file.
    """
    where = f"load_model: {os.fspath(path)!r}"
    if not os.path.lexists(path):
        raise ParamsFileNotFoundError(f"load_model: no model file at {os.fspath(path)!r}")
    try:
        tree = load(path, max_bytes=max_bytes, max_ratio=max_ratio)
    except ParamsFileError as e:  # said as load_model's, not load's
        raise ModelFileError(f"load_model: {str(e).removeprefix('load: ')}") from e
    if set(tree) != {"model", "params", "state"} or not isinstance(tree["model"], onp.ndarray):
        raise ModelFileError(f"{where} is not a model file (it holds {sorted(tree)[:4]}; "
                             "model files hold model, params and state): for parameters alone "
                             "use minifw.load")
    header = _header(tree["model"], where)
    try:
        model = build(header["model"], custom_layers)
    except ArchitectureError as e:
        raise ModelFileError(f"{where}: {e}") from e
    params, state = tree["params"], tree["state"]
    try:
        _check_fit(model, params, "its params")
    except ValueError as e:
        raise ModelFileError(f"{where}: {e}") from e
    return SavedModel(model, params, state, header["info"])


def _header(raw: onp.ndarray, where: str) -> dict[str, Any]:
    if raw.dtype != onp.uint8 or raw.ndim != 1 or raw.size > MAX_HEADER_BYTES:
        raise ModelFileError(f"{where}: its model header is not JSON bytes")
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelFileError(f"{where}: its model header is not JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{where}: its header is not a minifw model header")
    if header.get("version") != VERSION:
        raise ModelFileError(f"{where} has model file version {header.get('version')!r:.20}; "
                             f"this minifw ({_version()}) reads version {VERSION}")
    if not isinstance(header.get("info"), dict):
        raise ModelFileError(f"{where}: its header's info is not a dict")
    return header


def _check_fit(model: Layer, params: Any, what: str) -> None:
    """``params`` have exactly the paths and shapes of ``model.init``; else ``ValueError``."""
    if not isinstance(params, dict):
        raise ValueError(f"{what} must be a dict of arrays, got {type(params).__name__}")
    want = {p: onp.shape(a) for p, a in leaves(model.init(onp.random.default_rng(0)))}
    got = {p: onp.shape(a) for p, a in leaves(params)}
    for p in [*want, *(p for p in got if p not in want)]:
        if want.get(p) != got.get(p):
            shown = "missing" if p not in got else f"of shape {got[p]}"
            made = "has no such parameter" if p not in want else f"makes {want[p]}"
            raise ValueError(f"{what} do not fit the model: {p!r} is {shown}, the model "
                             f"{made}")


def _layers(layer: Any) -> Iterator[Layer]:
    """``layer`` and every layer inside it (in its attributes, lists and tuples)."""
    if isinstance(layer, Layer):
        yield layer
        for value in vars(layer).values():
            yield from _layers(value)
    elif isinstance(layer, (list, tuple)):
        for item in layer:
            yield from _layers(item)


def _version() -> str:
    import minifw

    return minifw.__version__

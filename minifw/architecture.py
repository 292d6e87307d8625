"""A model's architecture as data: the layer classes and their constructor arguments, no pickle.

Every layer follows one convention: its constructor's arguments are kept as its attributes of
the same names (``Linear(in_features, out_features, weight_init)`` has ``layer.in_features``
...; ``Sequential(*layers)`` keeps ``layer.layers``). So a layer is described by its class and
those attributes, and rebuilt by calling the class with them: :func:`describe` and
:func:`build`. A layer written this way, a user's included, needs nothing more to be saved.

A description is JSON: ``{"class": "minifw:Linear", "args": {"in_features": 64, ...}}``. A
class is named by ``module:qualname`` (a class that ``minifw`` exports, by ``minifw:Name``, so
that files outlive a move between minifw's modules). Arguments may be ``None``, booleans,
numbers, strings, lists, and, tagged, layers (``{"layer": ...}``), tuples (``{"tuple":
[...]}``), dicts with string keys (``{"dict": {...}}``) and non-finite floats (``{"float":
"inf"}``).

:func:`build` constructs only subclasses of :class:`minifw.Layer`, and imports no code a
description names other than minifw's own: a user's layer class is found in its module if that
module is already imported, or among the ``custom_layers`` passed in.

>>> import minifw as mf
>>> spec = describe(mf.Sequential(mf.Linear(2, 3), mf.LeakyReLU(0.1)))
>>> spec["class"], spec["args"]["layers"][1]
('minifw:Sequential', {'layer': {'class': 'minifw:LeakyReLU', 'args': {'alpha': 0.1}}})
>>> build(spec)
Sequential(Linear(in_features=2, out_features=3, weight_init='he'), LeakyReLU(alpha=0.1))
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
from collections.abc import Iterable
from typing import Any

import numpy as onp

from minifw.layers import Layer

#: How deep a description may nest (layers in layers, lists in lists) before it is refused.
MAX_DEPTH = 64

_TAGS = ("layer", "tuple", "dict", "float")


class ArchitectureError(ValueError):
    """A layer that cannot be described as data, or a description that cannot be rebuilt."""


def class_name(cls: type) -> str:
    """The name a description gives ``cls``: ``minifw:Name`` if minifw exports it, else
    ``module:qualname``.

    >>> import minifw as mf
    >>> class_name(mf.Linear), class_name(ArchitectureError)
    ('minifw:Linear', 'minifw.architecture:ArchitectureError')
    """
    import minifw

    if getattr(minifw, cls.__name__, None) is cls:
        return f"minifw:{cls.__name__}"
    return f"{cls.__module__}:{cls.__qualname__}"


def describe(layer: Layer) -> dict[str, Any]:
    """``layer`` as JSON-ready data: its class and its constructor arguments.

    Arguments:
        layer: a :class:`minifw.Layer` whose constructor arguments are its attributes of the
            same names.

    Returns:
        ``{"class": "module:qualname", "args": {name: value}}``.

    Raises:
        ArchitectureError: the layer keeps no attribute for a constructor argument, takes
            ``**kwargs``, is a class defined inside a function, or holds an argument that is
            not data (an array, a function, an object).

    >>> import minifw as mf
    >>> describe(mf.Linear(4, 2, weight_init=0.5))
    {'class': 'minifw:Linear', 'args': {'in_features': 4, 'out_features': 2, 'weight_init': 0.5}}
    """
    return _describe(layer, type(layer).__name__, 0)


def _describe(layer: Any, where: str, depth: int) -> dict[str, Any]:
    cls = type(layer)
    if not isinstance(layer, Layer):
        raise ArchitectureError(f"{where} is {layer!r:.60}, not a minifw.Layer")
    if "<locals>" in cls.__qualname__:
        raise ArchitectureError(f"{cls.__qualname__} is defined inside a function; define it "
                                "at the top of a module to save it")
    args = {}
    for name, p in inspect.signature(cls).parameters.items():
        if p.kind is p.VAR_KEYWORD:
            raise ArchitectureError(f"{cls.__name__} takes **{name}, which cannot be saved: "
                                    "name each constructor argument")
        if not hasattr(layer, name):
            raise ArchitectureError(
                f"cannot describe {cls.__name__}: its constructor takes {name!r}, but the layer "
                f"has no attribute {name!r} (minifw keeps a layer's constructor arguments as its "
                "attributes of the same names)")
        value = getattr(layer, name)
        if p.kind is p.VAR_POSITIONAL:  # *layers: a list of arguments, whatever holds them
            value = list(value) if isinstance(value, (list, tuple)) else value
        args[name] = _encode(value, f"{where}.{name}", depth + 1)
    return {"class": class_name(cls), "args": args}


def _encode(value: Any, where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ArchitectureError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, onp.bool_):
        return bool(value)
    if isinstance(value, (int, onp.integer)):
        return int(value)
    if isinstance(value, (float, onp.floating)):
        return float(value) if math.isfinite(value) else {"float": repr(float(value))}
    if isinstance(value, Layer):
        return {"layer": _describe(value, where, depth)}
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(v, f"{where}[{k!r}]", depth + 1) for k, v in value.items()}}
    raise ArchitectureError(f"{where} is {type(value).__name__} {value!r:.60}: a layer's "
                            "constructor arguments must be None, booleans, numbers, strings, "
                            "lists, tuples, dicts or layers to be saved")


def build(spec: Any, custom_layers: Iterable[type] = ()) -> Layer:
    """The layer a :func:`describe` description stands for, constructed anew.

    Arguments:
        spec: the description.
        custom_layers: layer classes to use for the names a description gives that are not
            minifw's and whose modules are not imported (matched by ``module:qualname``, by
            ``qualname`` or by name), e.g. a class a script defined in ``__main__``.

    Returns:
        The layer.

    Raises:
        ArchitectureError: the description is malformed, names a class that is not found or
            is not a :class:`minifw.Layer` subclass, or its constructor refuses the arguments.

    >>> build({"class": "os:system", "args": {}})
    Traceback (most recent call last):
    ...
    minifw.architecture.ArchitectureError: 'os:system' is not a minifw.Layer class
    """
    custom = {}
    for cls in custom_layers:
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise TypeError(f"custom_layers must be minifw.Layer subclasses, got {cls!r:.60}")
        for key in (f"{cls.__module__}:{cls.__qualname__}", cls.__qualname__, cls.__name__):
            custom[key] = cls
    return _build(spec, custom, "the model", 0)


def _build(spec: Any, custom: dict[str, type], where: str, depth: int) -> Layer:
    if not (isinstance(spec, dict) and set(spec) == {"class", "args"}
            and isinstance(spec["class"], str) and isinstance(spec["args"], dict)):
        raise ArchitectureError(f"{where}: a layer is described as {{'class': ..., 'args': "
                                f"{{...}}}}, got {spec!r:.80}")
    cls = _find_class(spec["class"], custom)
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    args = dict(spec["args"])
    name = spec["class"].rpartition(":")[2]
    for arg, p in inspect.signature(cls).parameters.items():
        if arg not in args:
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise ArchitectureError(f"{where}: {name} needs the argument {arg!r}, which "
                                        "the description does not give")
            continue
        value = _decode(args.pop(arg), custom, f"{where}.{arg}", depth + 1)
        if p.kind is p.VAR_POSITIONAL:
            if not isinstance(value, (list, tuple)):
                raise ArchitectureError(f"{where}: {name}'s *{arg} must be a list, got "
                                        f"{value!r:.60}")
            positional.extend(value)
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional.append(value)
        else:
            keywords[arg] = value
    if args:
        raise ArchitectureError(f"{where}: {name} takes no argument {sorted(args)[0]!r}")
    try:
        return cls(*positional, **keywords)  # type: ignore[no-any-return]
    except Exception as e:
        raise ArchitectureError(f"{where}: {name}(...) refused the saved arguments: "
                                f"{type(e).__name__}: {e}") from e


def _find_class(text: str, custom: dict[str, type]) -> type:
    module_name, _, qualname = text.partition(":")
    if not module_name or not qualname:
        raise ArchitectureError(f"{text!r} is not a class name of the form module:qualname")
    if text in custom or qualname in custom:
        return custom.get(text) or custom[qualname]
    module = sys.modules.get(module_name)
    if module is None and (module_name == "minifw" or module_name.startswith("minifw.")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
    if module is None:
        raise ArchitectureError(
            f"the layer class {text!r} is not found: its module {module_name!r} is not "
            f"imported; import it first, or pass custom_layers=[{qualname.split('.')[-1]}] "
            "(loading imports no code a file names, other than minifw's own)")
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if obj is None:
        raise ArchitectureError(
            f"the layer class {text!r} is not found: module {module_name!r} has no "
            f"{qualname!r}; pass custom_layers=[{qualname.split('.')[-1]}]")
    if not (isinstance(obj, type) and issubclass(obj, Layer)):
        raise ArchitectureError(f"{text!r} is not a minifw.Layer class")
    return obj


def _decode(value: Any, custom: dict[str, type], where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ArchitectureError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, custom, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TAGS:
        tag, inner = next(iter(value.items()))
        if tag == "layer":
            return _build(inner, custom, where, depth + 1)
        if tag == "tuple" and isinstance(inner, list):
            return tuple(_decode(v, custom, f"{where}[{i}]", depth + 1)
                         for i, v in enumerate(inner))
        if tag == "dict" and isinstance(inner, dict):
            return {k: _decode(v, custom, f"{where}[{k!r}]", depth + 1) for k, v in inner.items()}
        if tag == "float" and inner in ("inf", "-inf", "nan"):
            return float(inner)
    raise ArchitectureError(f"{where}: {value!r:.60} is not a saved argument")


def check_rebuilds(layer: Layer, custom_layers: Iterable[type] = ()) -> dict[str, Any]:
    """``describe(layer)``, after checking that :func:`build` gives back a layer of the same
    description (so a file written from it loads as the same layer).

    Raises:
        ArchitectureError: as :func:`describe`, or the rebuilt layer differs.

    >>> import minifw as mf
    >>> check_rebuilds(mf.ReLU())
    {'class': 'minifw:ReLU', 'args': {}}
    """
    spec = describe(layer)
    again = describe(build(spec, custom_layers))
    if again != spec:
        raise ArchitectureError(f"{type(layer).__name__} does not rebuild from its constructor "
                                f"arguments: {spec!r:.120} came back as {again!r:.120}")
    return spec

"""Your own architecture: a function that builds the body of a model, named by import path in `architectures:`
(``"models/conv.py:conv_body"`` or ``"package.module:function"``). rnncompare calls it with the Keras tensor after
its input layers and adds the same head, loss, optimizer and metrics as for every built-in cell."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from rnncompare.core.errors import UserError


def split_spec(spec: str) -> tuple[str, str]:
    """("models/conv.py", "conv_body") from "models/conv.py:conv_body"."""
    location, _, function = spec.rpartition(":")
    return location, function


def source_file(spec: str) -> Path | None:
    """The file that holds the body's function (to log beside its runs), or None where it has none."""
    location, _ = split_spec(spec)
    if location.endswith(".py"):
        return Path(location).resolve()
    found = importlib.util.find_spec(location)
    return Path(found.origin) if found is not None and found.origin else None


@functools.cache
def load_body(spec: str, name: str) -> Callable:
    """The function `spec` names; any problem is one `UserError` naming the architecture `name`."""
    location, function_name = split_spec(spec)
    where = f"architectures: {name}: {spec}"
    try:
        if location.endswith(".py"):
            path = Path(location)
            if not path.is_file():
                raise UserError(f"{where}: file {location} not found")
            digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            module_name = f"rnncompare_body_{path.stem}_{digest}"
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
        else:
            if "" not in sys.path:  # the current folder, as for `task.function`
                sys.path.insert(0, "")
            module = importlib.import_module(location)
    except UserError:
        raise
    except Exception as exc:  # the user's code: whatever it raises is their mistake to see
        raise UserError(f"{where}: cannot import {location} ({type(exc).__name__}: {exc})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserError(f"{where}: {location} has no function {function_name!r}")
    return function


def apply_body(spec: str, name: str, inputs, units: int, dropout: float, layers: int):
    """The body's output for `inputs`: a 2-D Keras tensor (batch, features), or a `UserError` saying why not."""
    function = load_body(spec, name)
    try:
        output = function(inputs=inputs, units=units, dropout=dropout, layers=layers)
    except Exception as exc:
        raise UserError(f"architectures: {name}: {spec} raised {type(exc).__name__}: {exc}") from None
    shape = getattr(output, "shape", None)
    if shape is None or len(shape) != 2:
        got = f"shape {tuple(shape)}" if shape is not None else type(output).__name__
        raise UserError(f"architectures: {name}: {spec} must return a 2-D Keras tensor (batch, features), got {got}")
    return output

"""The user's own data, named by `task.path` (or `task.function`): npz arrays, CSV tables, text, Python.

Every check here happens before anything is trained, and each failure is one line naming the file and the
problem: wrong rank, mismatched lengths, NaN or infinite values, an empty or unreadable file, a missing column.
"""

from __future__ import annotations

import importlib
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rnncompare.core.errors import UserError
from rnncompare.tasks.base import RawTask, Split, TaskInfo, pad_sequences

SPLIT_SUFFIXES = {"train": "_train", "validation": "_val", "test": "_test"}


def _existing(path_text: str | None) -> Path:
    if not path_text:
        raise UserError("task.path: this task reads a file; set task.path")
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"task.path: {path}: file not found")
    if path.stat().st_size == 0:
        raise UserError(f"task.path: {path}: the file is empty")
    return path


def infer_kind(y: np.ndarray, configured: str | None) -> str:
    """`task.kind` when set; otherwise regression for non-integer numbers, classification for everything else."""
    if configured:
        return configured
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and not np.all(np.mod(y, 1) == 0):
        return "regression"
    return "classification"


def check_arrays(x: Any, y: Any, lengths: Any, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """x as float32 (samples, steps, features), y 1-D, lengths 1-D ints within the steps; else a `UserError`.

    A 2-D x is read as (samples, steps) with one feature.
    """
    try:
        x = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise UserError(f"{where}: x must be numeric") from None
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise UserError(
            f"{where}: x must have rank 3 (samples, steps, features) or 2 (samples, steps), got shape {x.shape}"
        )
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise UserError(f"{where}: x is empty (shape {x.shape})")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UserError(f"{where}: y must have rank 1 (one label or target per sample), got shape {y.shape}")
    if len(y) != len(x):
        raise UserError(f"{where}: x and y have different lengths ({len(x)} and {len(y)})")
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise UserError(f"{where}: x holds NaN or infinite values (first at sample {bad[0]}, step {bad[1]})")
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (len(x),) or lengths.dtype.kind not in "iu":
            raise UserError(f"{where}: lengths must be {len(x)} integers, got shape {lengths.shape} of {lengths.dtype}")
        if lengths.min() < 1 or lengths.max() > x.shape[1]:
            raise UserError(
                f"{where}: lengths must lie in [1, {x.shape[1]}] (the steps of x), "
                f"got {lengths.min()} to {lengths.max()}"
            )
        lengths = lengths.astype(np.int32)
        x = x.copy()
        x[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0.0
    return x, y, lengths


def npz(task_config, seed: int) -> RawTask:
    """NumPy .npz: `x` and `y` (optional `lengths`), or ready-made `x_train`/`y_train`, `x_test`/`y_test` and
    optionally `x_val`/`y_val` (with `lengths_train`, ... where lengths vary)."""
    path = _existing(task_config.path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"task.path: {path}: not a readable .npz file ({exc})") from None
    where = f"task.path: {path}"
    if "x" in arrays:
        if "y" not in arrays:
            raise UserError(f"{where}: has x but no y; arrays there: {', '.join(sorted(arrays))}")
        x, y, lengths = check_arrays(arrays["x"], arrays["y"], arrays.get("lengths"), where)
        return _raw(x, y, lengths, task_config, str(path))
    if "x_train" not in arrays or "x_test" not in arrays:
        raise UserError(
            f"{where}: needs arrays x and y, or x_train, y_train, x_test and y_test; "
            f"arrays there: {', '.join(sorted(arrays)) or 'none'}"
        )
    splits: dict[str, Split] = {}
    for split, suffix in SPLIT_SUFFIXES.items():
        if f"x{suffix}" not in arrays:
            continue
        if f"y{suffix}" not in arrays:
            raise UserError(f"{where}: has x{suffix} but no y{suffix}")
        splits[split] = check_arrays(
            arrays[f"x{suffix}"], arrays[f"y{suffix}"], arrays.get(f"lengths{suffix}"), f"{where} ({split} split)"
        )
    widths = {split: (part[0].shape[1], part[0].shape[2]) for split, part in splits.items()}
    features = {shape[1] for shape in widths.values()}
    if len(features) > 1:
        raise UserError(f"{where}: the splits have different numbers of features: {widths}")
    steps = max(shape[0] for shape in widths.values())
    padded = {split: _pad_steps(part, steps) for split, part in splits.items()}
    x, y, lengths = padded["train"]
    raw = _raw(x, y, lengths, task_config, str(path))
    raw.fixed_test = padded["test"]
    raw.fixed_validation = padded.get("validation")
    return raw


def _pad_steps(part: Split, steps: int) -> Split:
    x, y, lengths = part
    if x.shape[1] == steps:
        return part
    if lengths is None:
        lengths = np.full(len(x), x.shape[1], dtype=np.int32)
    return np.pad(x, ((0, 0), (0, steps - x.shape[1]), (0, 0))), y, lengths


def _raw(x, y, lengths, task_config, source: str) -> RawTask:
    kind = infer_kind(y, task_config.kind)
    return RawTask(x, y, kind, source, lengths=lengths)


def _read_table(path: Path):
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise UserError(f"task.path: {path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise UserError(f"task.path: {path}: not a readable CSV file ({str(exc).strip().splitlines()[0]})") from None
    if table.empty:
        raise UserError(f"task.path: {path}: has a header but no rows")
    return table


def _require_columns(table, names: list[str], path: Path, option: str) -> None:
    missing = [name for name in names if name not in table.columns]
    if missing:
        raise UserError(
            f"{option}: {path} has no column {missing[0]!r}; columns there: {', '.join(map(str, table.columns))}"
        )


def csv(task_config, seed: int) -> RawTask:
    """CSV, long format (`task.layout: long`: one row per step, columns id, step, features, label; every other
    column is a feature unless `task.features` names them) or wide
    (`task.layout: wide`: one row per sequence, the label column and one column per step)."""
    path = _existing(task_config.path)
    table = _read_table(path)
    columns = task_config.columns
    where = f"task.path: {path}"
    if (task_config.layout or "long") == "wide":
        _require_columns(table, [columns.label], path, "task.columns.label")
        steps = [name for name in table.columns if name != columns.label]
        values = table[steps].apply(_numeric_column(path)).to_numpy(dtype=np.float32)
        x, y, lengths = check_arrays(values, table[columns.label].to_numpy(), None, where)
        return _raw(x, y, lengths, task_config, str(path))
    _require_columns(table, [columns.id, columns.step, columns.label], path, "task.columns")
    features = task_config.features or [
        name for name in table.columns if name not in (columns.id, columns.step, columns.label)
    ]
    _require_columns(table, features, path, "task.features")
    if not features:
        raise UserError(
            f"task.features: {path} has no feature column besides {columns.id}, {columns.step} and {columns.label}"
        )
    table[features] = table[features].apply(_numeric_column(path))
    table = table.sort_values([columns.id, columns.step], kind="stable")
    sequences, labels = [], []
    for sequence_id, rows in table.groupby(columns.id, sort=False):
        distinct = rows[columns.label].unique()
        if len(distinct) != 1:
            raise UserError(
                f"task.columns.label: {path}: sequence {sequence_id!r} has more than one label "
                f"({', '.join(map(str, distinct[:3]))})"
            )
        sequences.append(rows[features].to_numpy(dtype=np.float32))
        labels.append(distinct[0])
    x, lengths = pad_sequences(sequences, len(features))
    variable = bool(np.any(lengths < x.shape[1]))
    x, y, lengths = check_arrays(x, np.asarray(labels), lengths if variable else None, where)
    return _raw(x, y, lengths, task_config, str(path))


def _numeric_column(path: Path):
    import pandas as pd

    def convert(column):
        numbers = pd.to_numeric(column, errors="coerce")
        bad = numbers.isna() & column.notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise UserError(
                f"task.path: {path}: column {column.name!r} holds a non-number "
                f"({column.iloc[row]!r}, data row {row + 1})"
            )
        if numbers.isna().any():
            row = int(numbers.isna().to_numpy().nonzero()[0][0])
            raise UserError(f"task.path: {path}: column {column.name!r} has an empty value (data row {row + 1})")
        return numbers

    return convert


def text_csv(task_config, seed: int) -> RawTask:
    """CSV with a text column and a label column; tokenized into words or characters after the split, as Keras
    `TextVectorization` does (`data.tokenize`), learning its vocabulary from the training texts only."""
    path = _existing(task_config.path)
    table = _read_table(path)
    columns = task_config.columns
    _require_columns(table, [columns.text, columns.label], path, "task.columns")
    texts = table[columns.text]
    if texts.isna().any():
        row = int(texts.isna().to_numpy().nonzero()[0][0])
        raise UserError(f"task.path: {path}: column {columns.text!r} is empty in data row {row + 1}")
    labels = table[columns.label]
    if labels.isna().any():
        row = int(labels.isna().to_numpy().nonzero()[0][0])
        raise UserError(f"task.path: {path}: column {columns.label!r} is empty in data row {row + 1}")
    return RawTask(
        texts.astype(str).to_numpy(dtype=object),
        labels.to_numpy(),
        "classification",
        f"{path} ({task_config.tokens or 'words'})",
        text=True,
    )


def python(task_config, seed: int) -> RawTask:
    """`task.function: module:function`, called with no arguments; returns (x, y), (x, y, lengths) or a dict
    with keys x, y and optionally lengths. The current folder is importable."""
    spec = task_config.function
    if not spec:
        raise UserError("task.function: the python task needs task.function: module:function")
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise UserError(f"task.function: must be module:function, got {spec!r}")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"task.function: cannot import module {module_name!r} ({exc})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserError(f"task.function: module {module_name!r} has no function {function_name!r}")
    try:
        returned = function()
    except Exception as exc:  # the user's code failed: one line naming it, not our traceback
        raise UserError(f"task.function: {spec} raised {type(exc).__name__}: {exc}") from None
    where = f"task.function: {spec}"
    if isinstance(returned, dict):
        if "x" not in returned or "y" not in returned:
            raise UserError(f"{where} must return a dict with keys x and y, got keys {sorted(returned)}")
        parts = (returned["x"], returned["y"], returned.get("lengths"))
    elif isinstance(returned, tuple) and len(returned) in (2, 3):
        parts = (*returned, None) if len(returned) == 2 else returned
    else:
        raise UserError(f"{where} must return (x, y), (x, y, lengths) or a dict, got {type(returned).__name__}")
    x, y, lengths = check_arrays(*parts, where)
    return _raw(x, y, lengths, task_config, spec)


TASKS = {
    "npz": TaskInfo(
        npz,
        "classification or regression",
        "x: samples x steps x features (task.path)",
        "y: labels or targets",
        "your .npz file",
        options=("path", "kind"),
        required=("path",),
    ),
    "csv": TaskInfo(
        csv,
        "classification or regression",
        "long (id, step, features) or wide rows (task.path)",
        "label column",
        "your CSV file",
        options=("path", "layout", "features", "kind"),
        required=("path",),
    ),
    "text_csv": TaskInfo(
        text_csv,
        "classification",
        "text tokenized into words or characters (task.path)",
        "label column",
        "your CSV file",
        options=("path", "tokens", "length", "embedding_dim"),
        required=("path",),
    ),
    "python": TaskInfo(
        python,
        "classification or regression",
        "arrays from task.function",
        "y: labels or targets",
        "your module:function",
        options=("function", "kind"),
        required=("function",),
    ),
}

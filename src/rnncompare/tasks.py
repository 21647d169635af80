"""Tasks: data that loads offline, split and scaled the same way for every architecture.

A task returns plain NumPy arrays and two specs (what goes in, what comes out); nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from rnncompare.errors import UserError


def derive_seed(seed: int, purpose: str) -> int:
    """A seed for one purpose (data split, tuner, ...), computed from the study seed, never from the clock."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


@dataclass(frozen=True)
class InputSpec:
    """What the model reads: sequences of `steps` steps with `features` values each."""

    steps: int
    features: int


@dataclass(frozen=True)
class OutputSpec:
    """What the model predicts. Only classification for now; `kind` is the switch the metrics follow."""

    kind: Literal["classification"]
    classes: int
    class_names: tuple[str, ...]


@dataclass
class TaskData:
    """A task's splits and specs. Arrays are float32 (x: samples, steps, features) and int64 labels."""

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_spec: InputSpec
    output_spec: OutputSpec
    split_sizes: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.split_sizes = {"train": len(self.x_train), "validation": len(self.x_val), "test": len(self.x_test)}

    def digest(self) -> str:
        """A short content hash of every split, so runs on different data are never silently compared."""
        hasher = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            hasher.update(np.ascontiguousarray(array).tobytes())
        return hasher.hexdigest()[:16]

    def describe(self) -> str:
        """One line for the terminal: sizes, shape, classes."""
        sizes = " / ".join(f"{count} {split}" for split, count in self.split_sizes.items())
        return (
            f"{self.name}: {sizes}; {self.input_spec.steps} steps x {self.input_spec.features} features; "
            f"{self.output_spec.classes} classes"
        )


def _digits() -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Each 8x8 image read row by row: 8 steps of 8 pixel intensities.
    x = digits.images.astype(np.float32)
    y = digits.target.astype(np.int64)
    names = tuple(str(name) for name in digits.target_names)
    return x, y, names, "scikit-learn load_digits (UCI optical recognition of handwritten digits, 8x8)"


# name -> (loader, one-line description for `rnncompare tasks`)
BUILTIN_TASKS: dict[str, tuple[Callable[[], tuple], str]] = {
    "digits": (_digits, "classification; 8 steps x 8 features; 10 classes; scikit-learn (offline)"),
}


def load_task(task_config, seed: int) -> TaskData:
    """Load a task by `task_config.name`, split it (seeded, stratified) and scale it on the training split only."""
    if task_config.name not in BUILTIN_TASKS:
        raise UserError(f"task.name: unknown task {task_config.name!r}; known: {', '.join(sorted(BUILTIN_TASKS))}")
    loader, _ = BUILTIN_TASKS[task_config.name]
    x, y, class_names, source = loader()
    splits = split_stratified(
        x, y, task_config.validation_fraction, task_config.test_fraction, derive_seed(seed, "split")
    )
    x_train, y_train, x_val, y_val, x_test, y_test = splits
    mean, std = fit_feature_scaling(x_train)
    return TaskData(
        name=task_config.name,
        source=source,
        x_train=(x_train - mean) / std,
        y_train=y_train,
        x_val=(x_val - mean) / std,
        y_val=y_val,
        x_test=(x_test - mean) / std,
        y_test=y_test,
        input_spec=InputSpec(steps=x.shape[1], features=x.shape[2]),
        output_spec=OutputSpec(kind="classification", classes=len(class_names), class_names=class_names),
    )


def split_stratified(
    x: np.ndarray, y: np.ndarray, validation_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, ...]:
    """Seeded, stratified train/validation/test split. Returns x_train, y_train, x_val, y_val, x_test, y_test."""
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(y, return_counts=True)
    needed = int(np.ceil(1 / min(validation_fraction, test_fraction)))
    if counts.min() < 3 or len(y) < needed:
        raise UserError(
            f"task: too few samples to split ({len(y)} samples, smallest class {counts.min()}); "
            "each class needs at least 3 (train, validation, test)"
        )
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=validation_fraction / (1 - test_fraction), stratify=y_rest, random_state=seed
    )
    return x_train, y_train, x_val, y_val, x_test, y_test


def fit_feature_scaling(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over all training samples and steps (constant features keep std 1)."""
    mean = x_train.mean(axis=(0, 1), keepdims=True)
    std = x_train.std(axis=(0, 1), keepdims=True)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    return mean.astype(np.float32), std

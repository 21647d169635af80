"""What a task loader returns (`RawTask`) and how it is registered (`TaskInfo`): the part every loader shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

Split = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # x, y, lengths


@dataclass
class RawTask:
    """What a loader returns: every sample, before labels are encoded, splits drawn and scaling fitted.

    `x` is float (samples, steps, features), or a 1-D array of strings for text. `lengths` marks variable-length
    sequences (zero-padded at the end). `fixed_test` / `fixed_validation` are splits that come with the data
    (an archive's test split, or the user's own); the rest is split from `x`. `order="time"` splits in time
    order (forecasting). `scale=False` keeps inputs as they are (one-hot symbols, the adding problem's values).
    """

    x: np.ndarray
    y: np.ndarray
    kind: Literal["classification", "regression"]
    source: str
    lengths: np.ndarray | None = None
    fixed_test: Split | None = None
    fixed_validation: Split | None = None
    order: Literal["shuffled", "time"] = "shuffled"
    scale: bool = True
    text: bool = False
    note: str = ""


@dataclass(frozen=True)
class TaskInfo:
    """A registered task: its loader and the one line `rnncompare tasks` prints."""

    loader: Callable[..., RawTask]
    kind: str
    shape: str
    target: str
    source: str
    options: tuple[str, ...] = ()  # the task.* options it reads; setting any other is an error
    required: tuple[str, ...] = ()  # the options it cannot do without

    def line(self) -> str:
        """kind; shape; classes or target; source."""
        return f"{self.kind}; {self.shape}; {self.target}; {self.source}"


def pad_sequences(sequences: list[np.ndarray], features: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad variable-length (steps, features) arrays at the end; returns (samples, steps, features), lengths."""
    lengths = np.asarray([len(sequence) for sequence in sequences], dtype=np.int32)
    x = np.zeros((len(sequences), int(lengths.max()), features), dtype=np.float32)
    for index, sequence in enumerate(sequences):
        x[index, : len(sequence)] = sequence
    return x, lengths

"""Tasks: data that loads offline, split and scaled the same way for every architecture.

A loader (built-in in `builtin`, synthetic in `synthetic`, the user's own in `user`) returns a `RawTask`: every
sample, before labels are encoded, splits drawn and scaling fitted. `load_task` does the rest the same way for
all of them: seeded splits (stratified for classification, in time order for forecasting), a check that every
test class was seen in training, scaling fitted on the training split only, a constant-predictor baseline, and
the specs the model builder reads. Nothing here imports TensorFlow or Keras (the text tokenizer gives Keras's
`TextVectorization` ids without it).
"""

from __future__ import annotations

from rnncompare.core.errors import UserError
from rnncompare.tasks import builtin, synthetic, user
from rnncompare.tasks.base import RawTask, Split, TaskInfo, pad_sequences
from rnncompare.tasks.prepare import (
    InputSpec,
    OutputSpec,
    TaskData,
    bootstrapped,
    constant_baseline,
    finish,
    fit_feature_scaling,
    split,
    tokenize,
)

__all__ = [
    "InputSpec",
    "OutputSpec",
    "RawTask",
    "Split",
    "SplitDraws",
    "TaskData",
    "TaskInfo",
    "constant_baseline",
    "finish",
    "fit_feature_scaling",
    "load_task",
    "pad_sequences",
    "registry",
    "split",
    "tokenize",
]


def registry() -> dict[str, TaskInfo]:
    """Every task `task.name` accepts, built-in and user-data formats, in the order `rnncompare tasks` lists."""
    return {**builtin.TASKS, **synthetic.TASKS, **user.TASKS}


def load_task(task_config, seed: int) -> TaskData:
    """Load the task `task_config.name`, split it (seeded), scale it on the training split, check it.

    Raises `UserError` (one line naming the file or option) for anything wrong with the data.
    """
    return finish(task_config.name, _raw(task_config, seed), task_config, seed)


def _raw(task_config, seed: int) -> RawTask:
    tasks = registry()
    if task_config.name not in tasks:
        raise UserError(f"task.name: unknown task {task_config.name!r}; known: {', '.join(tasks)}")
    return tasks[task_config.name].loader(task_config, seed)


class SplitDraws:
    """A task's data for each split seed of `evaluation.vary: split` (`TaskData.resampling`): a new seeded split
    where its splits are drawn, its training split bootstrapped where they are fixed. The data is read again once,
    at the first resplit."""

    def __init__(self, task_config, seed: int, task: TaskData):
        self.task_config, self.seed, self.task = task_config, seed, task
        self._raw: RawTask | None = None

    def draw(self, split_seed: int) -> TaskData:
        """The task's data as split seed `split_seed` draws it."""
        if self.task.resampling == "resplit":
            self._raw = self._raw or _raw(self.task_config, self.seed)
            return finish(self.task_config.name, self._raw, self.task_config, self.seed, split_seed)
        if self.task.resampling == "bootstrap":
            return bootstrapped(self.task, split_seed)
        raise ValueError(f"task {self.task.name} cannot draw another split")

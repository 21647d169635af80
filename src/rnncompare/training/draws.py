"""What each seed run draws (`evaluation.vary`): its initial weights' and data order's seeds and its split, the
same for run i of every architecture, so seed runs pair across architectures (Bouthillier et al. 2021)."""

from __future__ import annotations

from dataclasses import dataclass

from rnncompare.core.errors import UserError
from rnncompare.core.seeds import VARIANCE_SOURCES, seed_run_seeds
from rnncompare.tasks import SplitDraws, TaskData

# the tags each seed run carries, by source
SEED_TAGS = {source: f"rnncompare.{source}_seed" for source in VARIANCE_SOURCES}


def varied_sources(config, task: TaskData) -> tuple[str, ...]:
    """The sources of variance the seed runs draw anew (`evaluation.vary`, `auto` resolved for `task`). Raises
    `UserError` where the config asks for a split the task cannot draw."""
    setting = config.evaluation.vary
    if setting == "auto":
        return tuple(source for source in VARIANCE_SOURCES if source != "split" or task.resampling is not None)
    if "split" in setting and task.resampling is None:
        raise UserError(
            f"evaluation.vary: split: task {task.name} builds its vocabulary from its training split, so another "
            "split would be another model (neither a resplit nor a bootstrap keeps it); allowed here: init, order"
        )
    return tuple(source for source in VARIANCE_SOURCES if source in setting)


@dataclass(frozen=True)
class SeedDraw:
    """One seed run's draws: its id (the evaluation seed), the seeds of its initial weights (and dropout masks), its
    data order and its split, and its data."""

    seed: int
    init_seed: int
    order_seed: int
    split_seed: int
    task: TaskData

    @property
    def tags(self) -> dict[str, str]:
        """The run's tags saying what it drew."""
        return {
            SEED_TAGS["init"]: str(self.init_seed),
            SEED_TAGS["order"]: str(self.order_seed),
            SEED_TAGS["split"]: str(self.split_seed),
        }


class SeedDraws:
    """The draws of a study's seed runs: `draw(seed)` for each evaluation seed."""

    def __init__(self, config, task: TaskData):
        self.config, self.task = config, task
        self.varied = varied_sources(config, task)
        self._splits = SplitDraws(config.task, config.seed, task) if "split" in self.varied else None

    def draw(self, seed: int) -> SeedDraw:
        seeds = seed_run_seeds(self.config.seed, seed, self.varied)
        task = self._splits.draw(seeds["split"]) if self._splits is not None else self.task
        return SeedDraw(seed, seeds["init"], seeds["order"], seeds["split"], task)

    def describe(self) -> str:
        """In words, for the report and the terminal: what differs between seed runs."""
        words = {"init": "initial weights and dropout masks", "order": "data order"}
        parts = [words[source] for source in ("init", "order") if source in self.varied]
        if "split" in self.varied:
            parts.append(
                "the split (a new seeded split per run"
                + (", stratified" if self.task.kind == "classification" else "")
                + ")"
                if self.task.resampling == "resplit"
                else "the training data (a bootstrap of the fixed training split per run; validation and test kept)"
            )
        return ", ".join(parts) if parts else "nothing"

"""The study config's schema: every section and key, its type and range, checked by pydantic. The task options
each task reads come from the task registry, the one owner of that fact."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_serializer, field_validator, model_validator

from rnncompare.config.names import ArchitectureName, architecture_entry, show_value
from rnncompare.core.metrics import OBJECTIVE_DIRECTIONS
from rnncompare.core.seeds import default_round
from rnncompare.tasks import registry

TUNER_ALGORITHMS = ("random", "bayesian", "hyperband", "grid")
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
SET_ORIGIN = "--set"


class _Section(BaseModel):
    # No defaults here: configs/default.yaml is the one place that holds them, with their comments.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Range(_Section):
    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class IntRange(_Range):
    min: Annotated[int, Field(ge=1)]
    max: Annotated[int, Field(ge=1)]
    step: Annotated[int, Field(ge=1)]


class DropoutRange(_Range):
    min: Annotated[float, Field(ge=0.0, lt=1.0)]
    max: Annotated[float, Field(ge=0.0, lt=1.0)]
    step: Annotated[float, Field(gt=0.0, lt=1.0)]


class LearningRateRange(_Section):
    min: Annotated[float, Field(gt=0.0, le=1.0)]
    max: Annotated[float, Field(gt=0.0, le=1.0)]
    sampling: Literal["log", "linear"]

    @model_validator(mode="after")
    def _ordered(self):
        if self.min >= self.max:
            raise ValueError(
                f"min ({self.min}) must be below max ({self.max}); to fix the learning rate, set "
                "training.learning_rate and leave search.learning_rate null"
            )
        return self


TASKS = registry()
TASK_NAMES = tuple(TASKS)


class ColumnsConfig(_Section):
    id: Annotated[str, Field(min_length=1)]
    step: Annotated[str, Field(min_length=1)]
    label: Annotated[str, Field(min_length=1)]
    text: Annotated[str, Field(min_length=1)]


class TaskConfig(_Section):
    name: Literal[TASK_NAMES]
    validation_fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    length: Annotated[int, Field(ge=1, le=100_000)] | None
    samples: Annotated[int, Field(ge=20, le=10_000_000)] | None
    window: Annotated[int, Field(ge=1)] | None
    path: Annotated[str, Field(min_length=1)] | None
    layout: Literal["long", "wide"] | None
    columns: ColumnsConfig
    features: Annotated[list[str], Field(min_length=1)] | None
    tokens: Literal["words", "characters"] | None
    embedding_dim: Annotated[int, Field(ge=1, le=4096)] | None
    function: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")] | None
    kind: Literal["classification", "regression"] | None

    @model_validator(mode="after")
    def _room_for_training(self) -> TaskConfig:
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"validation_fraction + test_fraction must be below 0.9 to leave data for training, "
                f"got {self.validation_fraction} + {self.test_fraction}"
            )
        return self


class SearchConfig(_Section):
    units: IntRange
    dropout: DropoutRange
    layers: IntRange
    learning_rate: LearningRateRange | None


class TrainingConfig(_Section):
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)]
    patience: Annotated[int, Field(ge=1)]
    min_delta: Annotated[float, Field(ge=0.0)]


class TunerConfig(_Section):
    algorithm: Literal[TUNER_ALGORITHMS]
    max_trials: Annotated[int, Field(ge=1)]
    epochs: Annotated[int, Field(ge=1)]
    batch_size: Annotated[int, Field(ge=1)]
    objective: Literal[tuple(OBJECTIVE_DIRECTIONS)]
    max_consecutive_failures: Annotated[int, Field(ge=1)]
    dir: str


MAX_SEEDS = 100


class SeedSchedule(_Section):
    """Seeds added until each pair settles (`analysis.sequential`): `min` first, then `round` more at a time to
    architectures in open pairs, never more than `max`."""

    min: int
    max: int
    round: int | None = None  # None: half of min, rounded up

    @property
    def step(self) -> int:
        return self.round or default_round(self.min)


class EvaluationConfig(_Section):
    seeds: int | SeedSchedule
    rope: Annotated[float, Field(ge=0.0)] | None
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)]
    aso_threshold: Annotated[float, Field(gt=0.0, le=0.5)]
    aso_bootstrap: Annotated[int, Field(ge=10, le=100_000)]
    min_skill: Annotated[float, Field(gt=0.0, lt=1.0)]
    match_params: bool
    reference: str | None
    vary: Literal["auto"] | Annotated[list[Literal["init", "order", "split"]], Field(min_length=1)]

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_or_schedule(cls, value: Any) -> Any:
        allowed = (
            f"a count from 0 to {MAX_SEEDS}, or {{min: M, max: N}} (optionally round: R) with 2 <= M <= N <= "
            f"{MAX_SEEDS} and R >= 1"
        )
        if type(value) is int:
            if not 0 <= value <= MAX_SEEDS:
                raise ValueError(f"must be {allowed}, got {value}")
            return value
        if (
            not isinstance(value, dict)
            or "min" not in value
            or "max" not in value
            or set(value) - {"min", "max", "round"}
        ):
            raise ValueError(f"must be {allowed}, got {show_value(value)}")
        if any(type(number) is not int for key, number in value.items() if not (key == "round" and number is None)):
            raise ValueError(f"must be {allowed}, got {show_value(value)}: whole numbers only")
        low, high, step = value["min"], value["max"], value.get("round")
        if not 2 <= low <= high <= MAX_SEEDS or (step is not None and step < 1):
            raise ValueError(f"must be {allowed}, got {show_value(value)}")
        return value

    @property
    def sequential(self) -> bool:
        """Whether seeds are added until each pair settles (`seeds: {min, max}`)."""
        return isinstance(self.seeds, SeedSchedule)

    @property
    def initial_seeds(self) -> int:
        """The seeds every model runs first: the count, or the schedule's min."""
        return self.seeds.min if isinstance(self.seeds, SeedSchedule) else self.seeds

    @property
    def max_seeds(self) -> int:
        """The most seeds any model may run: the count, or the schedule's max."""
        return self.seeds.max if isinstance(self.seeds, SeedSchedule) else self.seeds

    @field_validator("vary", mode="before")
    @classmethod
    def _auto_or_sources(cls, value: Any) -> Any:
        if value == "auto":
            return value
        allowed = "auto or a list of one or more of init, order, split"
        if not isinstance(value, list) or not value:
            raise ValueError(f"must be {allowed}, got {show_value(value)}")
        unknown = [item for item in value if item not in ("init", "order", "split")]
        if unknown:
            raise ValueError(f"must be {allowed}, got {show_value(unknown[0])}")
        if len(set(value)) < len(value):
            raise ValueError(f"names a source twice: {show_value(value)}")
        return value


class TrackingConfig(_Section):
    uri: str | None
    log_models: bool
    register_models: bool


class ReportConfig(_Section):
    dir: str


class ExecutionConfig(_Section):
    workers: Literal["auto"] | int
    backend: Literal["auto", "tensorflow", "jax"]
    worker_timeout: Annotated[float, Field(ge=3)]  # three heartbeats (distributed.worker.HEARTBEAT_SECONDS)
    compile_cache: Annotated[str, Field(min_length=1)] | None
    vectorize: Literal["auto"] | bool

    @field_validator("vectorize", mode="before")
    @classmethod
    def _auto_or_switch(cls, value: Any) -> Any:
        if value != "auto" and not isinstance(value, bool):
            raise ValueError(f"must be auto, true or false, got {show_value(value)}")
        return value

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_or_count(cls, value: Any) -> Any:
        if value != "auto" and not (type(value) is int and 1 <= value <= 256):
            raise ValueError(f"must be auto or a number from 1 to 256, got {show_value(value)}")
        return value


SweepValue = Annotated[int, Field(strict=True)] | float | str | bool


class StudyConfig(_Section):
    study: str
    seed: Annotated[int, Field(ge=0, lt=2**31)]
    sweep: dict[str, Annotated[list[SweepValue], Field(min_length=1)]]
    suite: list[dict[str, Any]] | None
    task: TaskConfig
    architectures: Annotated[list[Annotated[Any, BeforeValidator(architecture_entry)]], Field(min_length=1)]
    search: SearchConfig
    training: TrainingConfig
    tuner: TunerConfig
    evaluation: EvaluationConfig
    tracking: TrackingConfig
    report: ReportConfig
    execution: ExecutionConfig

    @field_validator("study")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        # The name becomes a folder and an MLflow experiment: no path separators, no leading dot.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", value):
            raise ValueError(
                f"must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit, got {value!r}"
            )
        return value

    @field_validator("sweep")
    @classmethod
    def _sweepable(cls, value: dict[str, list]) -> dict[str, list]:
        for key in value:
            if key.split(".")[0] in ("study", "sweep", "tracking", "report", "execution") or not re.fullmatch(
                r"[a-z_]+(\.[a-z_]+)+|seed", key
            ):
                raise ValueError(f"can vary a dotted key such as task.length or seed, not {key!r}")
        return value

    @field_validator("suite", mode="before")
    @classmethod
    def _suite_of_tasks(cls, value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, list) or not value:
            raise ValueError(f"must list one or more tasks ({{name: digits}}, ...), got {show_value(value)}")
        seen = []
        for index, entry in enumerate(value):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ValueError(
                    f"must list tasks with a name, such as {{name: digits}}, got {show_value(entry)} (entry {index + 1})"
                )
            if entry in seen:
                raise ValueError(
                    f"names task {show_value(entry)} twice with the same options (entries {seen.index(entry) + 1} "
                    f"and {index + 1})"
                )
            seen.append(entry)
        return value

    @model_validator(mode="after")
    def _suite_or_sweep(self) -> StudyConfig:
        if self.suite is not None and self.sweep:
            raise ValueError(
                "suite cannot go with a sweep: each task of a suite is one study; sweep a suite's tasks by running "
                "one suite per value"
            )
        return self

    @model_validator(mode="after")
    def _rope_needs_rounds(self) -> StudyConfig:
        rope = self.evaluation.rope
        if rope is not None and not self.evaluation.sequential:
            raise ValueError(
                f"evaluation.rope ({rope:g}) decides when a pair is practically equivalent, which only seeds added "
                "until each pair settles do: set evaluation.seeds to {min: M, max: N}, or rope to null"
            )
        return self

    @field_serializer("architectures")
    def _as_written(self, value: list[ArchitectureName]) -> list:
        return [name.entry() for name in value]

    def body_of(self, architecture: str) -> str | None:
        """The import path of `architecture`'s body, for the user's own; None for a built-in."""
        return next((name.body for name in self.architectures if name == architecture), None)

    @field_validator("architectures")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"must not repeat an architecture, got {', '.join(repeated)} twice")
        return value

    @model_validator(mode="after")
    def _reference_is_compared(self) -> StudyConfig:
        reference = self.evaluation.reference
        if reference is not None and reference not in self.architectures:
            raise ValueError(
                f"evaluation.reference must be one of the architectures "
                f"({', '.join(self.architectures)}), got {reference!r}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (what is logged as config.yaml)."""
        return self.model_dump(mode="json")

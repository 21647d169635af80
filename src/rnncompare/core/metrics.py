"""Which metrics a task kind speaks in, end to end: training curves, tuner objective, test scores, report.

Classification tracks accuracy (and macro F1 on test); regression tracks MSE (the loss) and MAE. Every other
module asks `for_kind(kind)` instead of naming a metric itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindMetrics:
    """Metric names and directions for one task kind."""

    kind: str
    score: str  # the per-epoch metric logged beside the loss
    score_higher_is_better: bool
    headline: str  # the test metric that ranks architectures and that the significance tests compare
    headline_higher_is_better: bool
    headline_label: str
    test: tuple[str, ...]  # every test metric logged for a selected model or a seed run
    objectives: tuple[str, ...]  # allowed `tuner.objective` values

    @property
    def epoch(self) -> tuple[str, ...]:
        """Per-epoch series: loss and score, on train and validation."""
        return ("loss", "val_loss", self.score, f"val_{self.score}")

    @property
    def gap(self) -> str:
        """Name of the train/validation gap in the score, positive when the model overfits."""
        return f"gap_{self.score}"


CLASSIFICATION = KindMetrics(
    kind="classification",
    score="accuracy",
    score_higher_is_better=True,
    headline="test_accuracy",
    headline_higher_is_better=True,
    headline_label="test accuracy",
    test=("test_loss", "test_accuracy", "test_f1_macro"),
    objectives=("val_loss", "val_accuracy"),
)
REGRESSION = KindMetrics(
    kind="regression",
    score="mae",
    score_higher_is_better=False,
    headline="test_mse",
    headline_higher_is_better=False,
    headline_label="test MSE",
    test=("test_loss", "test_mse", "test_mae"),
    objectives=("val_loss", "val_mae"),
)
ALL_EPOCH_METRICS = tuple(dict.fromkeys(CLASSIFICATION.epoch + REGRESSION.epoch))
ALL_TEST_METRICS = tuple(dict.fromkeys(CLASSIFICATION.test + REGRESSION.test))
OBJECTIVE_DIRECTIONS = {"val_loss": "min", "val_accuracy": "max", "val_mae": "min"}


def for_kind(kind: str) -> KindMetrics:
    """The metric set of a task kind (classification or regression)."""
    return {"classification": CLASSIFICATION, "regression": REGRESSION}[kind]


def score_higher_is_better(score: str) -> bool:
    """Whether a per-epoch score (accuracy, mae) improves upwards."""
    return {kind.score: kind.score_higher_is_better for kind in (CLASSIFICATION, REGRESSION)}[score]

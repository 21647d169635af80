"""Readable progress on stderr: one line per stage and per trial (architecture, trial k of n, elapsed, remaining)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}:{seconds:02d}"


class Progress:
    """Prints study progress with rich; `enabled=False` keeps it silent (the default from Python)."""

    def __init__(self, enabled: bool = True):
        from rich.console import Console

        self.enabled = enabled
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.started = time.monotonic()
        self.trials_total = 0
        self.trials_done = 0

    def _print(self, text: str) -> None:
        if self.enabled:
            self.console.print(text)

    def stage(self, name: str, text: str) -> None:
        """One line for a stage of the study."""
        self._print(f"[bold]{name:<9}[/bold] {text}")

    def begin_search(self, architectures: list[str], trials_per_architecture: int) -> None:
        """Announce the search and start the clock for remaining-time estimates."""
        self.trials_per_architecture = trials_per_architecture
        self.trials_total = len(architectures) * trials_per_architecture
        self.search_started = time.monotonic()

    def trial_observer(self, architecture: str):
        """A `TrialObserver` printing one line per finished trial."""
        return _TrialLines(self, architecture)

    def architecture_done(self, architecture: str, outcome) -> None:
        """One line with the selected trial and its test accuracy."""
        if outcome.best_trial_id is None:
            self._print(f"[red]{architecture}: every trial failed[/red]")
            return
        hp = ", ".join(f"{k}={v}" for k, v in outcome.best_hyperparameters.items())
        self._print(
            f"[bold]{architecture}[/bold] best trial {outcome.best_trial_id} ({hp}): "
            f"test accuracy {outcome.test_metrics['test_accuracy']:.3f}"
        )

    def summary(self, summary: dict[str, Any], report_dir: Path) -> None:
        """The closing table and where the report is."""
        if not self.enabled:
            return
        from rich.table import Table

        table = Table(title=f"study {summary['study']}")
        for column in ("architecture", "test acc", "val acc", "params", "units", "dropout", "gap acc", "s/epoch"):
            table.add_column(column, justify="right" if column != "architecture" else "left", no_wrap=True)
        for name in summary["ranking_by_test_accuracy"]:
            row = summary["architectures"][name]
            table.add_row(
                name, f"{row['test_accuracy']:.3f}", f"{row['val_accuracy']:.3f}", f"{row['params_total']:,}",
                str(row["hyperparameters"].get("units")), f"{row['hyperparameters'].get('dropout', 0):.2f}",
                f"{row['gap_accuracy']:+.3f}", f"{row['seconds_per_epoch']:.3f}",
            )
        self.console.print(table)
        self._print(f"[bold]report[/bold]    {report_dir / 'report.html'}  (elapsed {_clock(time.monotonic() - self.started)})")


class _TrialLines:
    def __init__(self, progress: Progress, architecture: str):
        self.progress = progress
        self.architecture = architecture
        self.index = 0

    def trial_started(self, trial_id, hyperparameters):
        self.index += 1

    def epoch_ended(self, trial_id, epoch, metrics):
        pass

    def trial_ended(self, result):
        progress = self.progress
        progress.trials_done += 1
        elapsed = time.monotonic() - progress.search_started
        remaining = elapsed / progress.trials_done * max(progress.trials_total - progress.trials_done, 0)
        hp = " ".join(f"{k}={v}" for k, v in result.hyperparameters.items())
        if result.status == "FINISHED":
            m = result.metrics
            outcome = f"val_acc {m['val_accuracy']:.3f} best epoch {int(m['best_epoch'])}/{int(m['epochs_run'])}"
        else:
            outcome = f"[red]FAILED[/red] {result.failure_reason}"
        progress._print(
            f"  {self.architecture:<10} trial {self.index}/{progress.trials_per_architecture} "
            f"{hp:<34} {outcome}  [dim]elapsed {_clock(elapsed)}, about {_clock(remaining)} left[/dim]"
        )

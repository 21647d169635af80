"""Readable progress on stderr: one line per stage and per trial (architecture, trial k of n, elapsed, remaining)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rnncompare.analysis.diagnostics import last_epoch, limits
from rnncompare.core.status import RunStatus
from rnncompare.report.verdict import headline


def _values(hyperparameters: dict[str, Any], separator: str) -> str:
    # keras-tuner's float steps carry binary noise (0.1 * 3 = 0.30000000000000004): print them as typed
    return separator.join(
        f"{name}={round(value, 6) if isinstance(value, float) else value}" for name, value in hyperparameters.items()
    )


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

    def begin_search(self, architectures: list[str], trials_per_architecture: int, kind_metrics) -> None:
        """Announce the search and start the clock for remaining-time estimates."""
        self.metrics = kind_metrics
        self.trials_per_architecture = trials_per_architecture
        self.trials_total = len(architectures) * trials_per_architecture
        self.search_started = time.monotonic()

    def trial_observer(self, architecture: str, shared: bool = False):
        """A `TrialObserver` printing one line per finished trial; `shared`: other workers run the same search,
        so lines name the trial id and make no time estimate."""
        return _TrialLines(self, architecture, shared=shared)

    def seed_observer(self, architecture: str, seeds: int):
        """A `TrialObserver` printing one line per seed run."""
        return _TrialLines(self, architecture, label="seed", count=seeds, counts_toward_search=False)

    def served_trial_starter(self, architecture: str):
        """For the chief: a callback printing one line per trial handed to a worker (the trials in flight)."""

        def started(trial_id: str, worker: str, values: dict) -> None:
            searched = {key: value for key, value in values.items() if not key.startswith("tuner/")}
            self._print(f"  {architecture:<10} trial {trial_id} on {worker}: started, {_values(searched, ' ')}")

        return started

    def served_trial_reporter(self, architecture: str, objective: str):
        """For the chief: a callback printing one line per trial that a worker ends."""

        def report(trial_id: str, worker: str, status: str, score: float | None) -> None:
            self.trials_done += 1
            outcome = (
                f"{objective} {score:.3f}" if status == "COMPLETED" and score is not None else f"[red]{status}[/red]"
            )
            self._print(f"  {architecture:<10} trial {trial_id} on {worker or 'a worker'}: {outcome}  {self._timing()}")

        return report

    def _timing(self) -> str:
        elapsed = time.monotonic() - self.search_started
        if not self.trials_done:  # nothing to estimate from (a resumed study whose searches were over)
            return f"[dim]elapsed {_clock(elapsed)}[/dim]"
        remaining = elapsed / self.trials_done * max(self.trials_total - self.trials_done, 0)
        return f"[dim]elapsed {_clock(elapsed)}, about {_clock(remaining)} left in the search[/dim]"

    def architecture_done(self, architecture: str, outcome) -> None:
        """One line with the selected trial, its test score, and the spread over seeds."""
        if not outcome.selected:
            self._print(f"[red]{architecture}: every trial failed[/red]")
            return
        headline, label = self.metrics.headline, self.metrics.headline_label
        hp = _values(outcome.best_hyperparameters, ", ")
        seeds, seed_metrics = "", outcome.seed_metrics
        if seed_metrics and f"{headline}_mean" in seed_metrics:
            seeds = (
                f"; over {int(seed_metrics['seeds_finished'])} seeds {seed_metrics[f'{headline}_mean']:.3f}"
                f" +/- {seed_metrics[f'{headline}_std']:.3f}"
            )
        self._print(
            f"[bold]{architecture}[/bold] best trial id {outcome.best_trial_id} ({hp}): "
            f"{label} {outcome.test_metrics[headline]:.3f}{seeds}"
        )

    def summary(self, summary: dict[str, Any], report_dir: Path) -> None:
        """The closing table and where the report is."""
        if not self.enabled:
            return
        from rich.table import Table

        metrics = summary["metrics"]
        table = Table(title=f"study {summary['study']}")
        for column in (
            "architecture",
            f"{metrics['headline_label']} (seeds)",
            "selected",
            f"val {metrics['score']}",
            "params",
            "units",
            "dropout",
            metrics["gap"].replace("_", " "),
            "s/epoch",
        ):
            table.add_column(column, justify="right" if column != "architecture" else "left", no_wrap=True)
        for name in summary["ranking"]:
            row = summary["architectures"][name]
            selected = row["selected"]
            stats = row["seeds"]["stats"]
            seeds = f"{stats['mean']:.3f} +/- {stats['std']:.3f} (n={stats['n']})" if stats else "-"
            table.add_row(
                name,
                seeds,
                f"{selected[metrics['headline']]:.3f}",
                f"{selected['val_' + metrics['score']]:.3f}",
                f"{row['params_total']:,}",
                str(row["hyperparameters"].get("units")),
                f"{row['hyperparameters'].get('dropout', 0):.2f}",
                f"{selected[metrics['gap']]:+.3f}",
                f"{selected['seconds_per_epoch']:.3f}",
            )
        # A log file or pipe reads as an 80-column terminal to rich: give the table room instead of truncating.
        from rich.console import Console

        console = self.console if self.console.is_terminal else Console(stderr=True, highlight=False, width=160)
        console.print(table)
        self._print(f"[bold]{headline(summary)}[/bold]")
        for pair in summary["comparisons"]:
            if "fixed_count_verdict" in pair:  # a sequential study's decision carries its own evidence
                self._print(f"{pair['a']} vs {pair['b']}: [bold]{pair['verdict']}[/bold]")
                continue
            self._print(
                f"{pair['a']} vs {pair['b']}: [bold]{pair['verdict']}[/bold] (Welch p {pair['welch_p']:.3g}, "
                f"Mann-Whitney p {pair['mann_whitney_p']:.3g}, ASO eps_min {pair['aso_epsilon_min_a_over_b']:.2f}"
                f" / {pair['aso_epsilon_min_b_over_a']:.2f})"
            )
        if summary["comparisons"]:
            # the p-values above are not the bar: it is corrected for the number of pairs
            self._print(f"rule      {summary['comparisons'][0]['rule']}")
            if summary.get("sequential"):
                sequential = summary["sequential"]
                runs = ", ".join(f"{name} {count}" for name, count in sequential["seeds_run"].items())
                self._print(
                    f"seeds     run: {runs} of at most {sequential['max']}; {sequential['fits_saved']} fits saved"
                )
        else:
            for name, row in summary["architectures"].items():
                for phrase in limits(name, row.get("diagnostics") or {}, metrics["headline_label"]):
                    self._print(f"[yellow]limit[/yellow]     {phrase}")
        for entry in summary.get("suggestions", []):
            self._print(f"[yellow]to settle[/yellow] {entry['change']}: set {', '.join(entry['keys'])}")
        self._print(
            f"[bold]report[/bold]    {report_dir / 'report.html'}  (elapsed {_clock(time.monotonic() - self.started)})"
        )


class _TrialLines:
    def __init__(
        self,
        progress: Progress,
        architecture: str,
        label: str = "trial",
        count: int | None = None,
        counts_toward_search: bool = True,
        shared: bool = False,
    ):
        self.progress = progress
        self.shared = shared
        self.architecture = architecture
        self.index = 0
        self.label = label
        self.count = count
        self.counts_toward_search = counts_toward_search

    def trial_started(self, trial_id, hyperparameters, started_at=None):
        self.index += 1

    def epoch_ended(self, trial_id, epoch, metrics):
        pass

    def trial_ended(self, result):
        progress = self.progress
        if self.counts_toward_search:
            progress.trials_done += 1
        hp = _values(result.hyperparameters, " ")
        if result.status == RunStatus.FINISHED:
            m, kind_metrics = result.metrics, progress.metrics
            score = f"val_{kind_metrics.score}"
            outcome = f"{score} {m[score]:.3f} best epoch {int(m['best_epoch'])}/{int(last_epoch(m))}"
            if kind_metrics.headline in m:
                outcome += f" {kind_metrics.headline} {m[kind_metrics.headline]:.3f}"
        else:
            outcome = f"[red]FAILED[/red] {result.failure_reason}"
        if self.shared:
            progress._print(f"  {self.architecture:<10} {self.label} {result.trial_id:<5} {hp:<34} {outcome}")
            return
        if self.counts_toward_search:  # keras-tuner numbers trials from 0: the id is what the report shows
            position = f"{self.label} {self.index}/{progress.trials_per_architecture} (id {result.trial_id})"
            timing = progress._timing()
        else:  # seed runs come after the search: no search estimate
            position = f"{self.label} {self.index}/{self.count}"
            timing = f"[dim]elapsed {_clock(time.monotonic() - progress.search_started)}[/dim]"
        progress._print(f"  {self.architecture:<10} {position} {hp:<34} {outcome}  {timing}")

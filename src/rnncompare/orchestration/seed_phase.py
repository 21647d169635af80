"""After the searches: each architecture's seed runs, and every other architecture retrained at the reference's
parameter budget, as child runs of their architecture (or matched) run."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnncompare.analysis.seed_statistics import seed_statistics
from rnncompare.analysis.sequential import SequentialRule, replay, rule_for, scores_by_index
from rnncompare.core.seeds import evaluation_seeds
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import ArchitectureOutcome, FanOut, TrialResult
from rnncompare.orchestration.context import StudyContext
from rnncompare.training.seed_runs import PendingSeeds, matched_width, start_seeds


def run_budget_matched(context: StudyContext, outcomes: dict[str, ArchitectureOutcome]) -> None:
    """Retrain every other architecture, with the same seeds, at the width closest to the reference's budget."""
    config, progress = context.config, context.progress
    reference = config.evaluation.reference or config.architectures[0]
    if not outcomes[reference].selected:
        progress.stage("budget", f"skipped: {reference} has no selected model to match")
        return
    target = int(outcomes[reference].selected_metrics["params_total"])
    started = []
    for architecture, outcome in outcomes.items():
        previous = context.runs.previous_matched.get(architecture)
        if architecture == reference or not outcome.selected or (previous and previous.finished):
            continue
        hyperparameters, params_total = matched_width(
            architecture, outcome.best_hyperparameters, target, config, context.task
        )
        progress.stage(
            "budget",
            f"{architecture} at {hyperparameters['units']} units: {params_total:,} parameters "
            f"against {reference}'s {target:,}",
        )
        run_id = context.tracker.start_matched(
            context.runs,
            config.study,
            architecture,
            reference,
            {**context.fixed(architecture), **hyperparameters},
            params_total,
        )
        started.append(
            (
                run_id,
                start_seed_runs(
                    context,
                    architecture,
                    hyperparameters,
                    run_id,
                    resumed=previous is not None,
                    label=f"{architecture}*",
                    expected_fit_seconds=fit_seconds(outcome, params_total),
                ),
            )
        )
    for run_id, seeds in started:  # with a seed pool, every matched model's seeds train at once
        context.tracker.finish_matched(run_id, seed_run_statistics(context, seeds)[0])


def fit_seconds(outcome: ArchitectureOutcome, params_total: float | None = None) -> float | None:
    """About how long one seed's fit of the selected model takes alone: the search's median epochs run (the
    selected trial alone is the one that went on longest as often as not) at the selected trial's time per epoch
    (None where it recorded none); at another width (`params_total`), in proportion to the parameters, as these
    fits' arithmetic is."""
    selected = outcome.selected_metrics
    seconds = selected.get("seconds_per_epoch")
    epochs = [t.metrics["epochs_run"] for t in outcome.trials if t.metrics.get("epochs_run")]
    if not seconds or not epochs:
        return None
    scale = params_total / selected["params_total"] if params_total and selected.get("params_total") else 1
    return float(np.median(epochs) * seconds * scale)


def start_seed_runs(
    context: StudyContext,
    architecture: str,
    hyperparameters: dict[str, Any],
    parent_run_id: str,
    *,
    resumed: bool,
    label: str,
    expected_fit_seconds: float | None = None,
    seeds: list[int] | None = None,
) -> PendingSeeds:
    """Begin the evaluation seeds of one model as child runs of `parent_run_id` (keeping those an interrupted
    run finished); `expected_fit_seconds` (`fit_seconds`) decides whether they train together under `auto`."""
    config, tracker, fixed = context.config, context.tracker, context.fixed(architecture)
    observer = FanOut(
        tracker.trial_logger(context.runs, config.study, architecture, fixed, role="seed", parent_run_id=parent_run_id),
        context.progress.seed_observer(label, config.evaluation.max_seeds),
    )
    done = {r.trial_id: r for r in tracker.previous_results(parent_run_id, "seed", fixed)} if resumed else None
    return start_seeds(
        architecture,
        hyperparameters,
        config,
        context.task,
        observer,
        done,
        context.seed_pool,
        expected_fit_seconds,
        seeds,
    )


def seed_run_statistics(context: StudyContext, seeds: PendingSeeds) -> tuple[dict[str, float], list[TrialResult]]:
    """The seed runs' results (waiting for them) and their statistics."""
    results = seeds.results()
    if seeds.note:
        context.progress.stage("seeds", f"{seeds.architecture}: {seeds.note}")
    return seed_statistics(results, context.config.evaluation.confidence, context.task.output_spec.metrics), results


def run_seed_rounds(
    context: StudyContext,
    started: dict[str, tuple[ArchitectureOutcome, PendingSeeds | None]],
    finished_seeds: dict[str, list[TrialResult]],
) -> SequentialRule | None:
    """A sequential study's rounds (`evaluation.seeds: {min, max}`): look at every pair after the first seeds, then
    add a round of seeds to the architectures of the pairs still open, until each settles or `max` is reached.
    `finished_seeds`: the seed runs of architectures an interrupted study already closed (their rounds were over).
    The rule decides from the scores alone, so a resumed study replays the same rounds and reruns only what is
    missing. Returns the rule, with each pair's decision (None where fewer than two architectures have seeds)."""
    config, progress = context.config, context.progress
    evaluation, headline = config.evaluation, context.task.output_spec.metrics.headline
    all_seeds = evaluation_seeds(config.seed, evaluation.max_seeds)
    pending = {name: seeds for name, (_, seeds) in started.items() if seeds is not None}

    def scores() -> dict[str, list[float | None]]:
        found = {name: seeds.finished_results() for name, seeds in pending.items()}
        found.update(finished_seeds)
        return {
            name: scores_by_index(
                [int(r.trial_id) for r in results if r.status == RunStatus.FINISHED],
                [r.metrics[headline] for r in results if r.status == RunStatus.FINISHED],
                all_seeds,
            )
            for name, results in found.items()
        }

    current = scores()
    rule = rule_for(
        config.to_dict()["evaluation"]["seeds"],
        current,
        confidence=evaluation.confidence,
        higher_is_better=context.task.output_spec.metrics.headline_higher_is_better,
        rope=evaluation.rope,
    )
    if rule is None:
        return None

    def train(names: list[str], count: int) -> dict[str, list[float | None]]:
        progress.stage(
            "seeds",
            f"round to {count} seeds: {', '.join(names)} "
            f"(open: {', '.join(f'{p.a} vs {p.b}' for p in rule.open_pairs())})",
        )
        for name in names:
            if name in pending:
                outcome = started[name][0]
                pending[name].add(all_seeds[:count], context.seed_pool, fit_seconds(outcome))
        return scores()

    replay(rule, current, train)
    for pair in rule.pairs:
        settled = f"settled at {pair.settled_at} seeds" if pair.settled_at else f"open at {evaluation.max_seeds} seeds"
        decision = {"a_better": f"{pair.a} better", "b_better": f"{pair.b} better"}.get(pair.decision, pair.decision)
        progress.stage("seeds", f"{pair.a} vs {pair.b}: {decision}, {settled}")
    return rule


def closed_seed_runs(context: StudyContext, started: dict) -> dict[str, list]:
    """The seed runs of the architectures an interrupted sequential study had already closed."""
    closed = {}
    for name, (outcome, seeds) in started.items():
        previous = context.runs.previous_architectures.get(name)
        if seeds is None and previous and previous.finished and outcome.selected:
            closed[name] = context.tracker.previous_results(previous.run_id, "seed", context.fixed(name))
    return closed


def seed_count_words(evaluation) -> str:
    """'5', or for a sequential study '3, then rounds of 2 until each pair settles (at most 12)'."""
    if not evaluation.sequential:
        return str(evaluation.seeds)
    rope = f", equivalence within +/- {evaluation.rope:g}" if evaluation.rope is not None else ""
    return (
        f"{evaluation.seeds.min}, then rounds of {evaluation.seeds.step} until each pair settles{rope} "
        f"(at most {evaluation.seeds.max})"
    )

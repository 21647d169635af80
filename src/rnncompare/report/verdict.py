"""A study's summary in words: the headline sentence, the verdict sentence by sentence, the MLflow run
descriptions, and the numbers the study run carries so its row reads without opening it."""

from __future__ import annotations

from typing import Any

from rnncompare.analysis.diagnostics import CEILING_SKILL, limits, stopped_short_words
from rnncompare.report.summary import MATCHED_SUFFIX

COUNT_WORDS = {2: "both", 3: "all three", 4: "all four", 5: "all five"}


def _names(names: list[str], total: int) -> str:
    """'lstm', 'lstm and gru', or 'all three' when the names are every architecture of the study."""
    if len(names) == total and total > 1:
        return COUNT_WORDS.get(total, f"all {total}")
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def headline(summary: dict[str, Any]) -> str:
    """The study's outcome in one sentence, what limits it and what to change first: the line a reader sees
    before the detailed verdict, e.g. "No pair differs at this budget: all three were still improving; raise
    tuner.epochs."."""
    ranked, rows = summary["ranking"], summary["architectures"]
    if not ranked:
        return "No architecture finished a trial, so there is nothing to compare."
    diagnostics = {name: rows[name].get("diagnostics") or {} for name in ranked}
    label = summary["metrics"]["headline_label"]
    comparisons = summary["comparisons"]
    settled = any(pair["winner"] is not None for pair in comparisons)
    if len(ranked) > 1 and not settled and all(diagnostics[name].get("at_ceiling") for name in ranked):
        return (
            f"No pair differs: {_names(ranked, len(ranked))} reached the ceiling ({label} within "
            f"{1 - CEILING_SKILL:.0%} of perfect), so this task does not separate them."
        )
    not_learned = [name for name in ranked if diagnostics[name].get("learned") is False]
    improving = [name for name in ranked if diagnostics[name].get("budget_limited")]
    stopped = [name for name in ranked if diagnostics[name].get("stopped_short")]
    limited = bool(not_learned or improving or stopped)
    winners = [pair for pair in comparisons if pair["winner"] is not None]
    equivalent = [pair for pair in comparisons if pair.get("decision") == "equivalent"]
    if not comparisons:
        outcome = f"{ranked[0]} ranks first from one run each, which is no verdict"
    elif winners or equivalent:
        budget = " at this budget" if limited else ""
        outcome = "; ".join(
            f"{pair['winner']} is better than {pair['b'] if pair['winner'] == pair['a'] else pair['a']}{budget}"
            for pair in winners
        )
        outcome = "; ".join(
            filter(None, [outcome, *(f"{pair['a']} and {pair['b']} are practically equivalent" for pair in equivalent)])
        )
        outcome = outcome[0].upper() + outcome[1:] if not winners else outcome
        rest = len(comparisons) - len(winners) - len(equivalent)
        if rest:
            outcome += f"; {rest} other pair(s) " + (
                "are not settled" if summary.get("sequential") else "do not differ"
            )
    elif summary.get("sequential"):
        outcome = f"No pair settled within {summary['sequential']['max']} seeds" + (
            " at this budget" if limited else ""
        )
    else:
        outcome = "No pair differs at this budget" if limited else "No pair differs at this number of seeds"
    reasons = []
    if not_learned:
        verb = "does" if len(not_learned) == 1 else "do"
        reasons.append(f"{_names(not_learned, len(ranked))} {verb} not reliably beat the constant predictor")
    for name in stopped:
        reasons.append(stopped_short_words(name, diagnostics[name], label))
    if improving:
        verb = "was" if len(improving) == 1 else "were"
        reasons.append(f"{_names(improving, len(ranked))} {verb} still improving")
    actions = []
    if improving:
        actions.append("raise tuner.epochs")
    if stopped:
        actions.append("raise training.patience (or lower training.min_delta)")
    elif not_learned and not improving:
        actions.append("search the learning rate (search.learning_rate) and wait longer (training.patience)")
    open_pairs = [pair for pair in comparisons if pair.get("decision") == "unsettled"]
    if summary.get("sequential") and open_pairs and not improving and not stopped:
        actions.append(f"raise evaluation.seeds.max (now {summary['sequential']['max']}) to settle the rest")
    if not actions and not comparisons:
        actions.append("set evaluation.seeds to 5 or more")
    elif not actions and not winners and not equivalent and comparisons[0].get("seeds_needed"):
        actions.append(f"about {comparisons[0]['seeds_needed']} seeds each would separate them")
    tail = "; ".join(reasons + actions)
    return f"{outcome}: {tail}." if tail else f"{outcome}."


def verdict(summary: dict[str, Any]) -> str:
    """Plain-words reading of the comparison, with the numbers behind it; never a winner from a single run, never
    a plain winner over a model that did not learn or was still improving."""
    return " ".join(verdict_sentences(summary))


def verdict_sentences(summary: dict[str, Any]) -> list[str]:
    """The verdict, one sentence (ranking, constant predictor, each pair, rule, equal budget, limits) per item."""
    ranked = summary["ranking"]
    rows = summary["architectures"]
    label, gap = summary["metrics"]["headline_label"], summary["metrics"]["gap"]
    if not ranked:
        return ["No architecture finished a trial, so there is nothing to compare."]
    parts = []
    for name in ranked:
        stats, row = rows[name]["seeds"]["stats"], rows[name]
        if stats:
            parts.append(
                f"{name} {stats['mean']:.3f} +/- {stats['std']:.3f} {label} over {stats['n']} seeds "
                f"({summary['evaluation']['confidence']:.0%} interval {stats['ci_low']:.3f} to {stats['ci_high']:.3f}; "
                f"{row['params_total']:,} parameters, {gap.replace('_', ' ')} {row['selected'][gap]:+.3f})"
            )
        else:
            parts.append(
                f"{name} {row['selected'][summary['metrics']['headline']]:.3f} {label} from one run "
                f"({row['params_total']:,} parameters)"
            )
    lines = ["Ranked by " + summary["ranked_by"] + ": " + "; ".join(parts) + "."]
    baseline = summary["baseline"].get(summary["metrics"]["headline"])
    if baseline is not None:
        predictor = "the training majority class" if summary["kind"] == "classification" else "the training mean"
        lines.append(f"A constant predictor ({predictor}) scores {baseline:.3f} {label}.")
    if summary["comparisons"]:
        lines += [_pair_sentence(pair) for pair in summary["comparisons"]]
        lines.append(f"Rule: {summary['comparisons'][0]['rule']}.")
        if summary.get("sequential"):
            sequential = summary["sequential"]
            runs = ", ".join(f"{name} {count}" for name, count in sequential["seeds_run"].items())
            lines.append(
                f"Seeds run: {runs} (at most {sequential['max']} each): {sequential['fits_saved']} fits saved against "
                f"running {sequential['max']} seeds for all."
            )
        if "bouthillier_rule" in summary["comparisons"][0]:
            lines.append(f"Beside it, on the paired seed runs: {summary['comparisons'][0]['bouthillier_rule']}.")
        matched = summary.get("matched")
        if matched and matched["comparisons"]:
            lines.append(f"At {matched['reference']}'s budget of {matched['reference_params']:,} parameters:")
            for pair in matched["comparisons"]:
                name = pair["b"].removesuffix(MATCHED_SUFFIX)
                row = matched["architectures"][name]
                lines.append(
                    f"{name} resized to {row['units']} units ({row['params_total']:,} parameters) scores "
                    f"{pair['mean_b']:.3f} against {pair['mean_a']:.3f}: {pair['verdict']} "
                    f"(Welch p = {pair['welch_p']:.3g})."
                )
    else:
        lines.append(
            "With fewer than two seeds per architecture there is no test: this is a ranking of one run, "
            "not a verdict. Set evaluation.seeds to 5 or more."
        )
        found = [phrase for name in ranked for phrase in limits(name, rows[name]["diagnostics"] or {}, label)]
        if found:
            lines.append("Limits: " + "; ".join(found) + ".")
    if summary.get("suggestions"):
        lines.append(
            "To settle it: "
            + "; ".join(f"{entry['change']} ({', '.join(entry['keys'])})" for entry in summary["suggestions"])
            + "."
        )
    return lines


def _pair_sentence(pair: dict[str, Any]) -> str:
    """One pair's verdict sentence, with the numbers behind it and what limits it."""
    caveat = f"; but {'; '.join(pair['limits'])}" if pair.get("limits") else ""
    if "fixed_count_verdict" in pair:  # the sequential rule's decision, with its own evidence
        return f"{pair['a']} vs {pair['b']}: {pair['verdict']}."
    caveat += _rules_disagree(pair)
    if pair["winner"] is not None:
        loser = pair["b"] if pair["winner"] == pair["a"] else pair["a"]
        budget = " at this budget" if caveat else ""
        return (
            f"{pair['winner']} is better than {loser}{budget} "
            f"(Welch p = {pair['welch_p']:.3g}, ASO epsilon_min = "
            f"{min(pair['aso_epsilon_min_a_over_b'], pair['aso_epsilon_min_b_over_a']):.2f}){caveat}."
        )
    needed = (
        f"; about {pair['seeds_needed']} seeds each would be needed to separate them" if pair["seeds_needed"] else ""
    )
    return (
        f"{pair['a']} vs {pair['b']}: no significant difference at {pair['n_a']} seeds "
        f"(Welch p = {pair['welch_p']:.3g}{needed}){caveat}."
    )


def run_notes(summary: dict[str, Any]) -> dict[str, str]:
    """Markdown descriptions for the MLflow UI: the study run's (key ``""``: the verdict, its limits and where the
    report is) and one line per architecture run (keyed by architecture)."""
    label, headline = summary["metrics"]["headline_label"], summary["metrics"]["headline"]
    notes = {}
    rows = []
    for name, row in summary["architectures"].items():
        stats, diagnostics = row["seeds"]["stats"], row.get("diagnostics") or {}
        score = (
            f"{stats['mean']:.3f} +/- {stats['std']:.3f} over {stats['n']} seeds"
            if stats
            else f"{row['selected'][headline]:.3f} from the selected trial"
            if row["selected"][headline] is not None
            else "no finished trial"
        )
        learned = {True: "yes", False: "**no**", None: "-"}[diagnostics.get("learned")]
        improving = f"{diagnostics['still_improving']} of {diagnostics['fits']}" if diagnostics else "-"
        edges = ", ".join(f"{key} at its {edge}" for key, edge in diagnostics.get("search_edges", {}).items())
        rows.append(
            f"| {name} | {score} | {learned} | {improving} | {edges or 'none'} | {row['params_total'] or 0:,} |"
        )
        found = limits(name, diagnostics, label)
        hyperparameters = ", ".join(
            f"{key}={value}" for key, value in row["hyperparameters"].items() if key != "architecture"
        )
        notes[name] = f"**{name}**: {label} {score}; {hyperparameters}; {row['params_total'] or 0:,} parameters. " + (
            f"Limits: {'; '.join(found)}." if found else "No budget or learning limits found."
        )
    table = "\n".join(
        [
            f"| architecture | {label} | learned | still improving (fits) | search edge | parameters |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    sentences = "\n".join(f"- {sentence}" for sentence in verdict_sentences(summary))
    notes[""] = (
        f"**Verdict**\n\n{sentences}\n\n{table}\n\n"
        "Full report: `report/report.html` in this run's artifacts (figures, tests, trials)."
    )
    return notes


def study_run_numbers(summary: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """What the study run carries beside its description, so that its row in the MLflow runs table (collapsed, or
    beside other studies' runs) reads without opening it: per architecture ``<architecture>/<metric>`` metrics
    (the headline score's seed mean and std, or the selected trial's without seeds, parameters, seconds per
    epoch), and per pair ``<a>_vs_<b>`` its verdict with the limits it names."""
    headline = summary["metrics"]["headline"]
    metrics = {}
    for name, row in summary["architectures"].items():
        stats = row["seeds"]["stats"]
        if stats:
            metrics.update({f"{name}/{headline}_mean": stats["mean"], f"{name}/{headline}_std": stats["std"]})
        elif row["selected"][headline] is not None:
            metrics[f"{name}/{headline}"] = row["selected"][headline]
        if row["params_total"] is not None:
            metrics[f"{name}/params_total"] = row["params_total"]
        if row["selected"].get("seconds_per_epoch") is not None:
            metrics[f"{name}/seconds_per_epoch"] = row["selected"]["seconds_per_epoch"]
    verdicts = {f"{pair['a']}_vs_{pair['b']}": pair["verdict"] for pair in summary["comparisons"]}
    return metrics, verdicts


def architecture_run_numbers(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """What each architecture run carries beside its own metrics: ``importance_<hyperparameter>``, each searched
    hyperparameter's fANOVA share (where there is one)."""
    return {
        name: {f"importance_{hyperparameter}": share for hyperparameter, share in (row.get("importance") or {}).items()}
        for name, row in summary["architectures"].items()
    }


def bouthillier_words(pair: dict[str, Any]) -> str:
    """Bouthillier's rule on a pair, in words: whom it finds better, or that it decides nothing."""
    decision = pair.get("bouthillier_a_better")
    return "no decision" if decision is None else f"{pair['a'] if decision else pair['b']} better"


def _rules_disagree(pair: dict[str, Any]) -> str:
    """Where Bouthillier's rule on the paired runs decides otherwise than the verdict's rule: that, in words."""
    if "bouthillier_a_better" not in pair:
        return ""
    decision = pair["bouthillier_a_better"]
    agreed = (pair["winner"] is None and decision is None) or (
        pair["winner"] is not None and decision == (pair["winner"] == pair["a"])
    )
    if agreed:
        return ""
    low, high = pair["p_a_better_ci"]
    return (
        f"; Bouthillier's rule on the paired runs says {bouthillier_words(pair)} "
        f"(P({pair['a']} > {pair['b']}) = {pair['p_a_better']:.2f}, interval {low:.2f} to {high:.2f})"
    )

"""How a sequential study's pairs settled, for the summary: the rule of `analysis.sequential` replayed over the
seed scores read back from the tracking store, and each pair's decision in words."""

from __future__ import annotations

from typing import Any

from rnncompare.analysis.sequential import replay, rule_for, scores_by_index, summary_of
from rnncompare.core.seeds import evaluation_seeds


def sequential_summary(config: dict[str, Any], architectures: dict[str, Any], metrics) -> dict[str, Any] | None:
    """A sequential study's rule replayed over its stored seed scores (`analysis.sequential`; the same rounds the
    study ran, since the rule reads nothing else): the schedule, seeds run, fits saved, and each pair's state."""
    evaluation = config["evaluation"]
    if not isinstance(evaluation.get("seeds"), dict):
        return None
    all_seeds = evaluation_seeds(config["seed"], evaluation["seeds"]["max"])
    scores = {
        name: scores_by_index(row["seeds"]["seeds"], row["seeds"]["scores"], all_seeds)
        for name, row in architectures.items()
        if row["seeds"]["seeds"]
    }
    rule = rule_for(
        evaluation["seeds"],
        scores,
        confidence=evaluation["confidence"],
        higher_is_better=metrics.headline_higher_is_better,
        rope=evaluation.get("rope"),
    )
    if rule is None:
        return None
    replay(rule, scores)
    summary = summary_of(rule, evaluation["seeds"]["max"] * len(rule.names))
    summary["pairs"] = {
        f"{pair.a} vs {pair.b}": {
            "decision": pair.decision,
            "settled_at": pair.settled_at,
            "paired_runs": pair.paired_runs,
            "p_a_better_sequence": list(pair.p_a_better(rule.sequence_alpha)),
            "mean_difference_sequence": None if pair.mean_difference is None else list(pair.mean_difference),
        }
        for pair in rule.pairs
    }
    return summary


def pair_decision(pair: dict[str, Any], sequential: dict[str, Any] | None) -> dict[str, Any]:
    """The pair's `decision` (a_better, b_better, equivalent, unsettled) and `settled_at` (seeds): the sequential
    rule's where the study ran one (its winner and verdict then are the rule's), else the fixed-count verdict's."""
    state = (sequential or {}).get("pairs", {}).get(f"{pair['a']} vs {pair['b']}")
    if state is None:
        decision = "unsettled" if pair["winner"] is None else "a_better" if pair["winner"] == pair["a"] else "b_better"
        return {"decision": decision, "settled_at": pair["n_a"] if pair["winner"] else None}
    decision, settled_at = state["decision"], state["settled_at"]
    winner = {"a_better": pair["a"], "b_better": pair["b"]}.get(decision)
    low, high = state["p_a_better_sequence"]
    evidence = f"P({pair['a']} > {pair['b']}) in {low:.2f} to {high:.2f} over {state['paired_runs']} paired runs"
    if state["mean_difference_sequence"] is not None:
        low, high = state["mean_difference_sequence"]
        evidence += f"; mean difference in {low:.3g} to {high:.3g}"
    if decision in ("a_better", "b_better"):
        verdict = f"{winner} better, settled at {settled_at} seeds ({evidence})"
    elif decision == "equivalent":
        verdict = (
            f"practically equivalent (within +/- {sequential['rope']:g}), settled at {settled_at} seeds ({evidence})"
        )
    else:
        verdict = f"not settled at {sequential['max']} seeds, the most allowed ({evidence})"
    return {
        "decision": decision,
        "settled_at": settled_at,
        "winner": winner,
        "verdict": verdict,
        "rule": sequential["rule"],
        "seeds_needed": None,
        "fixed_count_verdict": pair["verdict"],
    }

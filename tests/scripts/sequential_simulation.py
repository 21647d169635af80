"""Simulated sequential studies (no training): how often the stopping rule of `analysis.sequential` decides
falsely, against the same looks with a plain Welch test repeated at each.

Run as a script it writes docs/images/sequential-false-decisions.png and prints the rates:
    .venv/bin/python tests/scripts/sequential_simulation.py [studies]
tests/test_sequential.py runs `false_decisions` itself (slow test).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats

from rnncompare.analysis.sequential import Schedule, SequentialRule, replay

CONFIDENCE = 0.95
SCHEDULE = Schedule(3, 30, 2)
ROPE = 0.02
NAMES = ("a", "b")  # two identical architectures: one pair, its whole error budget on it


def bimodal(rng: np.random.Generator, count: int) -> np.ndarray:
    """A cell that solves the task in 60% of its seeds (accuracy about 0.95) and stops on the plateau (about
    0.2) in the rest: the issue's delayed-recall LSTM."""
    solved = rng.random(count) < 0.6
    return np.clip(np.where(solved, rng.normal(0.95, 0.02, count), rng.normal(0.2, 0.05, count)), 0, 1)


def converged(rng: np.random.Generator, count: int) -> np.ndarray:
    """A cell whose every seed converges (the quickstart: 0.964 +/- 0.013)."""
    return np.clip(rng.normal(0.964, 0.013, count), 0, 1)


SCENARIOS = {
    "identical bimodal cells": lambda rng, count: {name: bimodal(rng, count) for name in NAMES},
    "identical converged cells": lambda rng, count: {name: converged(rng, count) for name in NAMES},
}


def _welch_looks(scores: dict[str, np.ndarray], alpha: float) -> int | None:
    """The first look at which a plain Welch test, repeated, finds some pair different (None: never); every look
    and pair at once (scipy's t distribution, Welch's statistic and degrees of freedom)."""
    pairs = [(a, b) for index, a in enumerate(NAMES) for b in NAMES[index + 1 :]]
    looks = np.array(SCHEDULE.looks())
    first = None
    for a, b in pairs:
        stats = []
        for values in (scores[a], scores[b]):
            sums, squares = np.cumsum(values)[looks - 1], np.cumsum(values**2)[looks - 1]
            means = sums / looks
            stats.append((means, (squares - looks * means**2) / (looks - 1) / looks))
        (mean_a, var_a), (mean_b, var_b) = stats
        spread = np.sqrt(var_a + var_b)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (mean_a - mean_b) / spread
            degrees = (var_a + var_b) ** 2 / (var_a**2 / (looks - 1) + var_b**2 / (looks - 1))
        p = 2 * scipy_stats.t.sf(np.abs(t), degrees)
        found = looks[np.nan_to_num(p, nan=1.0) < alpha / len(pairs)]
        if len(found):
            first = int(found[0]) if first is None else min(first, int(found[0]))
    return first


def false_decisions(studies: int, scenario: str, seed: int = 0, welch: bool = True) -> dict:
    """`studies` simulated studies of `scenario` (identical architectures, so any winner is false): the share with
    a false decision by the rule and by the repeated Welch test, each by the seed count it was made at, and the
    rule's share of pairs settled as equivalent within `ROPE`, and its mean seeds run."""
    rng = np.random.default_rng(seed)
    rule_at, welch_at, equivalent, seeds = [], [], 0, []
    for _ in range(studies):
        scores = SCENARIOS[scenario](rng, SCHEDULE.maximum)
        rule = replay(
            SequentialRule(list(NAMES), SCHEDULE, CONFIDENCE, True, ROPE), {k: list(v) for k, v in scores.items()}
        )
        wrong = [pair.settled_at for pair in rule.pairs if pair.decision in ("a_better", "b_better")]
        rule_at.append(min(wrong) if wrong else None)
        equivalent += sum(pair.decision == "equivalent" for pair in rule.pairs) / len(rule.pairs)
        seeds.append(np.mean(list(rule.seeds_run.values())))
        welch_at.append(_welch_looks(scores, 1 - CONFIDENCE) if welch else None)
    looks = SCHEDULE.looks()

    def by_look(found: list) -> list[float]:
        return [sum(at is not None and at <= count for at in found) / studies for count in looks]

    return {
        "looks": looks,
        "rule": by_look(rule_at),
        "welch": by_look(welch_at),
        "rule_rate": sum(at is not None for at in rule_at) / studies,
        "welch_rate": sum(at is not None for at in welch_at) / studies,
        "equivalent_share": equivalent / studies,
        "mean_seeds": float(np.mean(seeds)),
    }


def main(studies: int = 2000) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(SCENARIOS), figsize=(10, 3.6), sharey=True)
    for axis, scenario in zip(axes, SCENARIOS):
        found = false_decisions(studies, scenario)
        print(
            f"{scenario}: rule {found['rule_rate']:.4f}, repeated Welch {found['welch_rate']:.4f}, equivalent "
            f"{found['equivalent_share']:.3f} of pairs, {found['mean_seeds']:.1f} seeds run on average"
        )
        axis.step(found["looks"], found["welch"], where="post", label="Welch's test repeated at each look")
        axis.step(found["looks"], found["rule"], where="post", label="rnncompare's anytime-valid rule")
        axis.axhline(1 - CONFIDENCE, color="grey", linestyle="--", label="1 - confidence")
        axis.set_title(f"{scenario}\n({studies:,} simulated studies of two)", fontsize=9)
        axis.set_xlabel("seeds per architecture (looks at 3, 5, ..., 30)")
    axes[0].set_ylabel("studies with a false winner so far")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    out = Path(__file__).resolve().parents[2] / "docs" / "images" / "sequential-false-decisions.png"
    figure.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)

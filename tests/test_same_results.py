"""A study gives the same trials, scores and summary.json as before the middle layer's redesign.

tests/data/before_redesign/ holds what the tiny study of conftest.TINY_STUDY wrote on the commit before the
redesign (8a75761). Training on CPU is deterministic here (the same seeds give the same weights), so everything
but run ids and wall-clock timings must match, up to floating-point noise.
"""

import csv
import json
import math
from pathlib import Path

import pytest

from rnncompare.analysis.stats import NO_DIFFERENCE

pytestmark = pytest.mark.slow

BEFORE = Path(__file__).parent / "data" / "before_redesign"
# keys whose values differ from run to run by design
VOLATILE = {"run_id", "study_run_id", "seconds_per_epoch"}
# keys added to summary.json since: stats.compare's `winner` (which the verdict now reads), the diagnostics with the
# verdicts they qualify, the config keys search.learning_rate and evaluation.min_skill, the Keras backend, and each
# architecture's fANOVA importance (with its note), and each pair's paired statistics (Bouthillier et al., 2021)
ADDED = {
    "winner", "diagnostics", "suggestions", "qualified", "limits", "learning_rate", "min_skill", "backend",
    "importance", "importance_note", "paired_runs", "paired_difference", "paired_t_p", "wilcoxon_p", "p_a_better",
    "p_a_better_ci", "bouthillier_a_better", "bouthillier_rule", "vary", "min_delta", "varied", "varied_words",
    "seeds_needed_unpaired", "interval", "sequential", "decision", "settled_at", "rope",
}  # fmt: skip
# 0.4.0: a mean's interval is a percentile bootstrap, inside the scores' range; the t-intervals recorded here ran
# from -0.608 to 1.227 for an accuracy (test_every_interval_stays_inside_its_scores_range checks the new ones)
RECOMPUTED = {"ci_low", "ci_high"}
# counted over paired runs where runs pair; the two-sample count it was is now `seeds_needed_unpaired`
RECOUNTED = {"seeds_needed": "seeds_needed_unpaired"}
# the verdict's text now carries its qualifications, its winner compared instead; the rule spells out the corrected p
REWORDED = {"verdict", "rule"}


def _differences(before, after, path="") -> list[str]:
    if isinstance(before, dict):
        found = (
            [f"{path}: added {sorted(set(after) - set(before) - ADDED)}"] if set(after) - set(before) - ADDED else []
        )
        for key in before:
            if key in VOLATILE | REWORDED | RECOMPUTED:
                continue
            if key not in after:
                found.append(f"{path}.{key}: missing")
            else:
                now = after.get(RECOUNTED.get(key), after[key])
                found += _differences(before[key], now, f"{path}.{key}")
        return found
    if isinstance(before, list):
        if len(before) != len(after):
            return [f"{path}: {len(before)} items before, {len(after)} after"]
        return [
            line for index, (b, a) in enumerate(zip(before, after)) for line in _differences(b, a, f"{path}[{index}]")
        ]
    if isinstance(before, float) and isinstance(after, (int, float)):
        return [] if math.isclose(before, after, rel_tol=1e-5, abs_tol=1e-7) else [f"{path}: {before} -> {after}"]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def summary_differences(report_dir: Path) -> list[str]:
    """How a tiny study's summary.json differs from the one written before the redesign (none: the same), its
    verdicts' winners included."""
    before = json.loads((BEFORE / "summary.json").read_text())
    after = json.loads((report_dir / "summary.json").read_text())
    found = _differences(before, after)
    # the same winners as the verdicts recorded before
    pairs = zip(
        before["comparisons"] + before["matched"]["comparisons"], after["comparisons"] + after["matched"]["comparisons"]
    )
    for old, new in pairs:
        if old["verdict"] != (f"{new['winner']} better" if new["winner"] else NO_DIFFERENCE):
            found.append(f"{old['a']} vs {old['b']}: {old['verdict']!r} -> winner {new['winner']!r}")
        if not new["verdict"].startswith(old["verdict"] if not new["winner"] else f"{new['winner']} better"):
            found.append(f"{old['a']} vs {old['b']}: verdict {new['verdict']!r}")
    return found


def trial_differences(report_dir: Path) -> list[str]:
    """How a tiny study's runs.csv differs from the one written before the redesign, trial by trial."""

    def rows(path: Path) -> list[dict]:
        with path.open() as handle:
            return [{key: value for key, value in row.items() if key not in VOLATILE} for row in csv.DictReader(handle)]

    before, after = rows(BEFORE / "runs.csv"), rows(report_dir / "runs.csv")
    if [(r["architecture"], r["trial_id"]) for r in after] != [(r["architecture"], r["trial_id"]) for r in before]:
        return ["other trials"]
    found = []
    for old, new in zip(before, after):
        for key in old:
            try:
                same = math.isclose(float(old[key]), float(new.get(key, "nan")), rel_tol=1e-5, abs_tol=1e-7)
            except ValueError:
                same = old[key] == new.get(key)
            if not same:
                found.append(f"{old['architecture']} trial {old['trial_id']} {key}: {old[key]} -> {new.get(key)}")
    return found


def test_the_summary_is_the_one_written_before_the_redesign(tiny_study):
    assert summary_differences(tiny_study["report_dir"]) == []


def test_every_interval_stays_inside_its_scores_range(tiny_study):
    after = json.loads((tiny_study["report_dir"] / "summary.json").read_text())
    rows = [*after["architectures"].values(), *after["matched"]["architectures"].values()]
    for row in rows:
        stats = row["seeds"]["stats"]
        assert stats["min"] <= stats["ci_low"] <= stats["mean"] <= stats["ci_high"] <= stats["max"]


def test_every_trial_has_the_same_hyperparameters_and_scores_as_before(tiny_study):
    assert len((BEFORE / "runs.csv").read_text().splitlines()) == 7  # 6 trials
    assert trial_differences(tiny_study["report_dir"]) == []

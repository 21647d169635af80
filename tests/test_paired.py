"""`analysis.paired`: paired seed runs compared as Bouthillier et al. (2021) recommend: P(A > B) with a bootstrap
interval, and their rule (A better when the interval lies above 0.5 and reaches gamma = 0.75)."""

import pytest

from rnncompare.analysis.paired import paired_scores, paired_statistics


def stats(a, b, higher_is_better=True):
    return paired_statistics(a, b, higher_is_better=higher_is_better, confidence=0.95, seed=0)


def test_a_that_wins_every_pair_is_better_by_bouthilliers_rule():
    result = stats([0.90, 0.92, 0.91, 0.95, 0.93, 0.94], [0.88, 0.90, 0.90, 0.90, 0.91, 0.92])
    assert result["p_a_better"] == 1.0 and result["p_a_better_ci"] == [1.0, 1.0]
    assert result["bouthillier_a_better"] is True
    assert result["paired_difference"] == pytest.approx(0.0233, abs=1e-4)
    assert result["paired_t_p"] < 0.01 and result["wilcoxon_p"] == pytest.approx(0.03125)


def test_lower_is_better_turns_the_difference_and_the_decision_to_b():
    result = stats([0.30, 0.32, 0.31, 0.35], [0.20, 0.21, 0.22, 0.25], higher_is_better=False)
    assert result["p_a_better"] == 0.0 and result["bouthillier_a_better"] is False
    assert result["paired_difference"] < 0


def test_mixed_pairs_give_no_decision_and_p_lies_inside_its_interval():
    result = stats([1.0, 1.0, 1.0, 0.13, 0.13], [1.0, 1.0, 1.0, 1.0, 1.0])
    low, high = result["p_a_better_ci"]
    assert low <= result["p_a_better"] <= high and 0.0 <= low <= high <= 1.0
    assert result["p_a_better"] == pytest.approx(0.3)  # three ties (half each), two losses
    assert result["bouthillier_a_better"] is None
    equal = stats([0.5, 0.5], [0.5, 0.5])
    assert (equal["p_a_better"], equal["paired_t_p"], equal["wilcoxon_p"], equal["bouthillier_a_better"]) == (
        0.5, 1.0, 1.0, None
    )  # fmt: skip


def test_runs_pair_by_the_seed_they_drew_not_by_their_position():
    a, b = paired_scores([7, 8, 9], [0.1, 0.2, 0.3], [9, 7], [0.9, 0.7])
    assert (a, b) == ([0.1, 0.3], [0.7, 0.9])  # seed 8 finished only for A

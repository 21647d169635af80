import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from rnncompare.analysis.stats import NO_DIFFERENCE, aso_epsilon, compare, describe, seeds_needed

# deepsig's default of 1000 bootstrap iterations takes seconds per call; these tests check no bootstrap detail
BOOTSTRAP = 100
WELL_SEPARATED = ([0.90, 0.91, 0.92, 0.90, 0.93], [0.80, 0.82, 0.81, 0.79, 0.80])


def test_describe_matches_a_hand_computation():
    values = [0.8, 0.9, 1.0]
    stats = describe(values, 0.95)
    assert stats["mean"] == pytest.approx(0.9)
    assert stats["std"] == pytest.approx(0.1)  # sample standard deviation (ddof=1)
    # the 27 equally likely resamples of three scores: the mean 0.8 and the mean 1.0 each have 1/27 > 2.5%, so the
    # percentile interval is the whole range (a t-interval would read 0.652 to 1.148, past a perfect score)
    assert (stats["ci_low"], stats["ci_high"]) == pytest.approx((0.8, 1.0))
    assert (stats["min"], stats["max"], stats["n"]) == (0.8, 1.0, 3)


def test_an_interval_over_bimodal_seeds_stays_inside_the_metric_range():
    # the case: seeds that solved the task or stopped on its plateau, a t-interval of 0.721 to 1.108
    scores = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.14, 0.0]
    _, high = scipy_stats.t.interval(0.95, 9, loc=np.mean(scores), scale=np.std(scores, ddof=1) / np.sqrt(10))
    assert high > 1.0  # what the report printed before
    stats = describe(scores, 0.95)
    assert 0.0 <= stats["ci_low"] < stats["mean"] < stats["ci_high"] <= 1.0
    assert stats["ci_high"] == 1.0  # a resample of eight solved seeds in ten reaches it
    assert describe(scores, 0.95) == stats  # seeded: the same scores, the same interval


def test_identical_score_lists_give_no_difference():
    scores = [0.9, 0.91, 0.92, 0.9, 0.93]
    result = compare(
        "lstm",
        scores,
        "gru",
        list(scores),
        confidence=0.95,
        pairs=1,
        aso_threshold=0.2,
        seed=0,
        aso_bootstrap=BOOTSTRAP,
    )
    assert result["verdict"] == NO_DIFFERENCE and result["winner"] is None
    assert result["welch_p"] == pytest.approx(1.0) and result["mann_whitney_p"] == 1.0
    assert result["seeds_needed"] is None  # no observed difference: no number of seeds separates them


@pytest.mark.parametrize("flip", [False, True])
def test_well_separated_lists_give_the_right_winner(flip):
    good, bad = WELL_SEPARATED
    a, b = (bad, good) if flip else (good, bad)
    result = compare("lstm", a, "gru", b, confidence=0.95, pairs=3, aso_threshold=0.2, seed=0, aso_bootstrap=BOOTSTRAP)
    assert result["verdict"] == ("gru better" if flip else "lstm better")
    assert result["winner"] == ("gru" if flip else "lstm")
    assert result["welch_p"] < 0.05 / 3
    assert result["rule"] == (
        "ASO epsilon_min < 0.2 and Welch's t-test p < 0.0167 (0.05 after Bonferroni over 3 pair(s))"
    )


def test_welch_p_is_scipys():
    good, bad = WELL_SEPARATED
    result = compare("a", good, "b", bad, confidence=0.95, pairs=1, aso_threshold=0.2, seed=0, aso_bootstrap=BOOTSTRAP)
    assert result["welch_p"] == pytest.approx(scipy_stats.ttest_ind(good, bad, equal_var=False).pvalue)


@pytest.mark.parametrize("sizes", [(5, 5), (2, 3), (7, 4)])
def test_aso_equals_deepsig_on_the_same_scores(sizes):
    from deepsig import aso

    rng = np.random.default_rng(sum(sizes))
    good, bad = list(rng.normal(0.9, 0.02, sizes[0])), list(rng.normal(0.89, 0.03, sizes[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # deepsig's own (slow) quantile function: aso_epsilon swaps in a vectorized one only during its call
        expected = aso(
            good,
            bad,
            confidence_level=0.95,
            num_comparisons=3,
            seed=7,
            show_progress=False,
            num_bootstrap_iterations=BOOTSTRAP,
        )
    assert aso_epsilon(good, bad, 0.95, 3, 7, bootstrap=BOOTSTRAP) == expected
    assert 0.0 <= expected <= 1.0


def test_aso_leaves_tensorflow_unimported_in_a_process_without_it():
    # deepsig imports TensorFlow if it can (3 s), only to accept its tensors
    script = Path(__file__).parent / "scripts" / "aso_without_tensorflow.py"
    completed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "False"


def test_close_lists_say_how_many_seeds_would_be_needed():
    a, b = [0.90, 0.92, 0.88, 0.91, 0.89], [0.89, 0.91, 0.87, 0.90, 0.90]
    result = compare("lstm", a, "gru", b, confidence=0.95, pairs=1, aso_threshold=0.2, seed=0, aso_bootstrap=BOOTSTRAP)
    assert result["verdict"] == NO_DIFFERENCE
    assert result["seeds_needed"] == seeds_needed(a, b, 0.05) > 5


def test_seeds_needed_matches_the_textbook_t_test_sample_size():
    # Cohen's d = 1 at alpha 0.05 and power 0.8 needs 17 per group (d = 0.5 needs 64).
    root2 = 2**0.5
    assert seeds_needed([0.0, 2.0], [root2, 2 + root2], 0.05) == 17
    assert seeds_needed([0.0, 2.0], [root2 / 2, 2 + root2 / 2], 0.05) == 64
    # never fewer than one more than already run: those seeds did not separate the pair
    assert seeds_needed([0.30, 0.31], [0.10, 0.12], 0.05) == 3

"""`analysis.sequential`: the confidence sequences, the rule's rounds, and (by simulation, no training) its error
rate at any number of looks."""

import math
import sys

import numpy as np
import pytest

from rnncompare.analysis.sequential import (
    Schedule,
    SequentialRule,
    confidence_sequence,
    excludes,
    replay,
    rule_for,
    scores_by_index,
    summary_of,
    t_confidence_sequence,
)

from conftest import SCRIPTS

sys.path.insert(0, str(SCRIPTS))
from sequential_simulation import false_decisions


def test_a_pair_won_in_every_run_is_told_apart_once_chance_could_not_explain_it():
    # wins count 1: with bets truncated at 3/4, the capital against P = 1/2 grows 1.75-fold a run, and reaches
    # 1 / alpha (hedged over both sides) at 7 runs at alpha 0.05
    assert not excludes([1.0] * 6, 0.05, 0.5)
    assert excludes([1.0] * 7, 0.05, 0.5)
    low, high = confidence_sequence([1.0] * 7, 0.05)
    assert 0.5 < low < 0.53 and high == 1.0
    # a loss in between costs the bettor: a pair won 6 of 7 times is not yet settled
    assert not excludes([1, 1, 1, 0, 1, 1, 1], 0.05, 0.5)
    # ties count half and carry no evidence either way
    assert confidence_sequence([0.5] * 12, 0.05)[0] < 0.5 < confidence_sequence([0.5] * 12, 0.05)[1]


def test_the_t_sequence_excludes_nothing_until_enough_runs_could_and_is_wider_than_a_t_interval():
    # its Bayes factor's largest value at n runs is 7^(5/2) > 40 first at n = 6 (g = 1, alpha 0.025)
    assert t_confidence_sequence([0.0] * 5, 0.025) == (-math.inf, math.inf)
    assert t_confidence_sequence([0.0] * 6, 0.025) == (0.0, 0.0)
    rng = np.random.default_rng(3)
    differences = rng.normal(0.003, 0.01, 40)
    low, high = t_confidence_sequence(differences, 0.05)
    half_t = 2.0227 * differences.std(ddof=1) / math.sqrt(40)  # the fixed-n t-interval's half-width at 40
    assert low < differences.mean() - half_t and high > differences.mean() + half_t
    assert low < 0.003 < high


def test_seeds_go_only_to_the_architectures_of_open_pairs_and_each_pair_keeps_its_look():
    rule = SequentialRule(["lstm", "gru", "simple_rnn"], Schedule(3, 12, 2), 0.95, True)
    trained = []

    def train(names, count):
        trained.append((tuple(names), count))
        return scores

    # gru beats lstm and simple_rnn in every run; lstm and simple_rnn take turns
    scores = {
        "gru": [0.95] * 12,
        "lstm": [0.6, 0.7] * 6,
        "simple_rnn": [0.7, 0.6] * 6,
    }
    replay(rule, scores, train)
    decisions = {(p.a, p.b): (p.decision, p.settled_at) for p in rule.pairs}
    # Bonferroni over 3 pairs: alpha 0.0167, 1.75^n >= 2 / 0.0167 first at n = 9 (a look at 9)
    assert decisions == {
        ("lstm", "gru"): ("b_better", 9),
        ("lstm", "simple_rnn"): ("unsettled", None),
        ("gru", "simple_rnn"): ("a_better", 9),
    }
    assert trained == [(("lstm", "gru", "simple_rnn"), 5), (("lstm", "gru", "simple_rnn"), 7),
                       (("lstm", "gru", "simple_rnn"), 9), (("lstm", "simple_rnn"), 11),
                       (("lstm", "simple_rnn"), 12)]  # fmt: skip
    assert rule.seeds_run == {"lstm": 12, "gru": 9, "simple_rnn": 12}
    summary = summary_of(rule, 12 * 3)
    assert (summary["fits_saved"], summary["alpha_per_pair"], summary["round"]) == (3, 0.0166666667, 2)


def test_a_rope_settles_equivalence_and_replaying_the_stored_scores_gives_the_same_rounds():
    rng = np.random.default_rng(0)
    scores = {"lstm": list(rng.normal(0.96, 0.005, 20)), "gru": list(rng.normal(0.96, 0.005, 20))}
    run = replay(SequentialRule(["lstm", "gru"], Schedule(4, 20, 2), 0.95, True, rope=0.02), scores)
    [pair] = run.pairs
    assert pair.decision == "equivalent" and -0.02 < pair.mean_difference[0] < pair.mean_difference[1] < 0.02
    # what a report replays from the store (only the runs that ran), the same rounds and the same decision
    ran = {name: values[: run.seeds_run[name]] + [None] * (20 - run.seeds_run[name]) for name, values in scores.items()}
    again = replay(SequentialRule(["lstm", "gru"], Schedule(4, 20, 2), 0.95, True, rope=0.02), ran)
    assert (again.pairs[0].decision, again.pairs[0].settled_at, again.seeds_run) == (
        pair.decision,
        pair.settled_at,
        run.seeds_run,
    )


def test_the_rule_reads_runs_by_their_seed_and_leaves_out_architectures_without_a_finished_run():
    all_seeds = [11, 22, 33, 44]
    assert scores_by_index([33, 11], [0.5, 0.9], all_seeds) == [0.9, None, 0.5, None]
    scores = {"lstm": [0.9, 0.8, None, None], "gru": [None, None, None, None], "tcn": [0.7, 0.6, None, None]}
    rule = rule_for({"min": 2, "max": 4, "round": None}, scores, confidence=0.9, higher_is_better=True, rope=None)
    assert (rule.names, rule.schedule) == (["lstm", "tcn"], Schedule(2, 4, 1))
    assert (
        rule_for({"min": 2, "max": 4}, {"lstm": [0.9, 0.8]}, confidence=0.9, higher_is_better=True, rope=None) is None
    )


def test_an_error_metric_is_oriented_so_the_lower_wins():
    rule = replay(SequentialRule(["gru", "simple_rnn"], Schedule(3, 12, 2), 0.95, False), {
        "gru": [0.001] * 12, "simple_rnn": [0.15] * 12})  # fmt: skip
    assert (rule.pairs[0].decision, rule.pairs[0].settled_at) == ("a_better", 7)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["identical bimodal cells", "identical converged cells"])
def test_two_identical_architectures_are_told_apart_falsely_in_at_most_one_minus_confidence_of_2000_studies(
    scenario,
):
    # 2,000 simulated studies each, looks at 3, 5, ..., 30 seeds; the repeated Welch test beside it (see the docs'
    # figure, tests/scripts/sequential_simulation.py) errs in about a fifth
    found = false_decisions(2000, scenario, seed=1, welch=False)
    assert found["rule_rate"] <= 0.05
    assert found["rule"] == sorted(found["rule"])  # by look: a running share
    if scenario == "identical converged cells":
        assert found["equivalent_share"] > 0.9  # and the rope lets most of them settle, well before 30 seeds
        assert found["mean_seeds"] < 25

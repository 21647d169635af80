"""Diagnostics from hand-built fit summaries: did it learn, was the budget enough, a plateau stop, search edges."""

import pytest

from rnncompare.analysis.diagnostics import (
    diagnose,
    learned,
    limits,
    qualify,
    search_edges,
    skill,
    still_improving,
    suggestions,
)

CONSTANT_MSE = 0.167
BUDGET = dict(max_epochs=40, patience=8, min_skill=0.1, confidence=0.95)


def fit(score: float, best_epoch: float, epochs_run: float, first_epoch: int = 1) -> dict:
    return {
        "test_mse": score,
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
        "epochs_after_best": first_epoch + epochs_run - 1 - best_epoch,
    }


def test_skill_is_zero_at_the_constant_predictor_and_one_when_perfect():
    assert skill(CONSTANT_MSE, CONSTANT_MSE, higher_is_better=False) == 0.0
    assert skill(0.0, CONSTANT_MSE, higher_is_better=False) == 1.0
    assert skill(0.156, CONSTANT_MSE, higher_is_better=False) == pytest.approx(0.0659, abs=1e-4)
    assert skill(0.55, 0.1, higher_is_better=True) == pytest.approx(0.5)
    assert skill(0.05, 0.1, higher_is_better=True) < 0


def test_a_fit_is_still_improving_only_when_it_ran_to_the_cap_with_its_best_among_the_last_epochs():
    assert still_improving(best_epoch=40, last_epoch=40, max_epochs=40, patience=8)
    assert still_improving(best_epoch=37, last_epoch=40, max_epochs=40, patience=8)  # last tenth: 37..40
    assert not still_improving(best_epoch=36, last_epoch=40, max_epochs=40, patience=8)
    assert not still_improving(best_epoch=12, last_epoch=20, max_epochs=40, patience=8)  # early stopping fired
    assert still_improving(best_epoch=2, last_epoch=2, max_epochs=2, patience=5)
    assert not still_improving(best_epoch=1, last_epoch=2, max_epochs=2, patience=5)


def test_a_hyperband_trial_that_went_on_from_a_checkpoint_reached_the_cap_though_it_ran_fewer_epochs():
    # Hyperband's last bracket: epochs 37 to 40 on top of another trial's 36, best at 40, 4 epochs run
    continued = [fit(0.02, best_epoch=40, epochs_run=4, first_epoch=37) for _ in range(3)]
    found = diagnose(continued, "test_mse", CONSTANT_MSE, False, **BUDGET)
    assert (found["budget_limited"], found["still_improving"]) == (True, 3)
    # nor is one that ended on the plateau at the cap a plateau stop: nothing stopped it early
    flat = diagnose(
        [fit(0.166, best_epoch=39, epochs_run=4, first_epoch=37) for _ in range(3)],
        "test_mse",
        CONSTANT_MSE,
        False,
        **BUDGET,
    )
    assert (flat["learned"], flat["plateau_stop"], flat["plateau_stopped"]) == (False, False, 0)


def test_scores_at_the_constant_predictor_did_not_learn_even_when_the_test_is_significant():
    # the LSTM of the adding problem at length 100: a hair below the constant predictor, every seed alike
    plateau = learned([0.156, 0.1561, 0.1559, 0.156, 0.156], CONSTANT_MSE, False, 0.1, 0.95)
    assert plateau["learned"] is False and plateau["runs_above_min_skill"] == 0
    assert plateau["test"] == "one-sided t-test of skill > 0.1 over 5 seeds at alpha 0.05"
    solved = learned([0.006, 0.004, 0.009, 0.003, 0.008], CONSTANT_MSE, False, 0.1, 0.95)
    assert solved["learned"] is True and solved["p"] < 1e-6 and solved["skill_mean"] == pytest.approx(0.964, abs=1e-3)
    single = learned([0.9], 0.1, True, 0.1, 0.95)
    assert (single["learned"], single["p"], single["test"]) == (True, None, "one run's skill against 0.1 (no test)")


def test_half_the_seeds_learning_is_not_learned():
    mixed = learned([0.01, 0.165, 0.012, 0.166], CONSTANT_MSE, False, 0.1, 0.95)
    assert mixed["learned"] is False and mixed["runs_above_min_skill"] == 2


def test_a_cell_stopped_early_on_the_plateau_is_diagnosed_so():
    fits = [fit(0.156, best_epoch=2, epochs_run=10) for _ in range(5)]
    found = diagnose(fits, "test_mse", CONSTANT_MSE, False, **BUDGET)
    assert (found["learned"], found["plateau_stop"], found["plateau_stopped"]) == (False, True, 5)
    assert (found["budget_limited"], found["still_improving"]) == (False, 0)


def test_fits_that_all_peak_at_the_last_epoch_are_budget_limited():
    fits = [fit(0.02, best_epoch=40, epochs_run=40) for _ in range(4)] + [fit(0.03, best_epoch=30, epochs_run=38)]
    found = diagnose(fits, "test_mse", CONSTANT_MSE, False, **BUDGET)
    assert (found["budget_limited"], found["still_improving"], found["still_improving_fraction"]) == (True, 4, 0.8)
    assert found["learned"] is True and found["plateau_stop"] is False


def test_without_a_constant_predictor_only_the_budget_is_diagnosed():
    found = diagnose([fit(0.02, 40, 40)], "test_mse", None, False, **BUDGET)
    assert found["learned"] is None and found["plateau_stop"] is None and found["budget_limited"] is True


def test_a_selected_value_at_a_movable_edge_of_the_space_is_reported():
    space = {
        "units": {"min": 16, "max": 64, "step": 16},
        "dropout": {"min": 0.0, "max": 0.2, "step": 0.1},
        "layers": {"min": 1, "max": 1, "step": 1},
        "learning_rate": {"min": 0.0001, "max": 0.01, "sampling": "log"},
    }
    assert search_edges({"units": 64, "dropout": 0.0, "layers": 1, "learning_rate": 0.0095}, space) == {
        "units": "max",
        "learning_rate": "max",
    }
    assert search_edges({"units": 16, "dropout": 0.2, "layers": 1, "learning_rate": 0.001}, space) == {
        "units": "min",
        "dropout": "max",
    }
    assert search_edges({"units": 32, "dropout": 0.1, "layers": 1, "learning_rate": 0.00011}, space) == {
        "learning_rate": "min"
    }


def test_a_verdict_against_a_cell_that_did_not_learn_is_qualified_with_the_change_that_would_settle_it():
    plateau = diagnose([fit(0.156, 2, 10)] * 5, "test_mse", CONSTANT_MSE, False, **BUDGET)
    solved = diagnose([fit(0.006, 25, 33)] * 5, "test_mse", CONSTANT_MSE, False, **BUDGET)
    pair = {"a": "lstm", "b": "gru", "winner": "gru", "verdict": "gru better"}
    qualified = qualify(pair, plateau, solved, "test MSE")
    assert qualified["qualified"] is True
    assert qualified["verdict"] == (
        "gru better at this budget; lstm did not learn (test MSE 0.156 at the constant predictor's 0.167, skill 0.07); "
        "early stopping ended 5 of 5 lstm fits on the constant predictor's plateau"
    )
    assert qualify(pair, solved, solved, "test MSE") == {**pair, "qualified": False, "limits": []}
    [learning_rate, samples] = suggestions({"lstm": plateau, "gru": solved})
    assert learning_rate["keys"] == ["search.learning_rate", "training.patience"]
    assert (samples["keys"], samples["architectures"]) == (["task.samples"], ["lstm"])


def test_a_cell_that_diverged_is_said_to_score_worse_than_the_constant_predictor_not_at_it():
    # a SimpleRNN at learning rate 1 on the adding problem: test MSE 43.8 against the constant predictor's 0.167
    diverged = diagnose([fit(16.59, 20, 40), fit(70.92, 20, 40)], "test_mse", CONSTANT_MSE, False, **BUDGET)
    [phrase] = limits("simple_rnn", diverged, "test MSE")
    assert phrase.startswith("simple_rnn did not learn (test MSE 43.755 worse than the constant predictor's 0.167, ")
    # stopped early so far below it, it was not on the constant predictor's plateau
    stopped = diagnose([fit(16.59, 2, 10), fit(70.92, 2, 10)], "test_mse", CONSTANT_MSE, False, **BUDGET)
    assert (stopped["learned"], stopped["plateau_stop"], stopped["plateau_stopped"]) == (False, False, 0)


def test_a_cell_that_learned_in_some_seeds_only_is_not_said_to_sit_at_the_constant_predictor():
    mixed = diagnose(
        [fit(0.01, 20, 30), fit(0.165, 3, 11), fit(0.012, 22, 30), fit(0.166, 2, 10)],
        "test_mse",
        CONSTANT_MSE,
        False,
        **BUDGET,
    )
    [learning, stopped] = qualify(
        {"a": "lstm", "b": "gru", "winner": None, "verdict": "no significant difference"}, mixed, None, "test MSE"
    )["limits"]
    assert learning == (
        "lstm did not learn reliably (skill 0.47 over 4 seeds is not significantly above 0.1: 2 of 4 seeds above it)"
    )
    # the two seeds stopped on the plateau, far below the 0.010 its best seed reached, are early stopping's doing
    assert stopped == (
        "early stopping (patience 8) ended 2 of 4 lstm fits far below the test MSE 0.010 that lstm reached on this task"
    )


# The delayed-recall LSTM (eight symbols, chance 0.125): 10 seeds, patience 5 of 60 epochs, a bimodal outcome
# (0.490 +/- 0.285); each seed stopped 5 epochs after a best epoch of 8 +/- 6; its selected trial reached 0.747.
RECALL_BUDGET = dict(max_epochs=60, patience=5, min_skill=0.1, confidence=0.95)
RECALL_SEEDS = [0.95, 0.91, 0.33, 0.27, 0.30, 0.62, 0.29, 0.31, 0.56, 0.36]


def recall_fit(score: float, best_epoch: int) -> dict:
    return {"test_accuracy": score, "best_epoch": best_epoch, "epochs_after_best": 5}


def test_the_delayed_recall_lstm_stopped_by_early_stopping_far_below_its_best_is_caught():
    fits = [recall_fit(score, best) for score, best in zip(RECALL_SEEDS, [14, 20, 3, 2, 4, 11, 2, 3, 12, 9])]
    found = diagnose(fits, "test_accuracy", 0.125, True, **RECALL_BUDGET, selected_score=0.747)
    # best 0.95 (skill 0.94): the fits below skill 0.69 (accuracy 0.73), early stopping's doing
    assert (found["stopped_short"], found["best_score"], found["patience"]) == (8, 0.95, 5)
    assert (found["still_improving"], found["budget_limited"], found["plateau_stop"]) == (0, False, False)
    assert limits("lstm", found, "test accuracy") == [
        "early stopping (patience 5) ended 8 of 10 lstm fits far below the test accuracy 0.950 that lstm reached on "
        "this task"
    ]
    [settle] = [entry for entry in suggestions({"lstm": found}) if "training.min_delta" in entry["keys"]]
    assert settle["keys"] == ["training.patience", "training.min_delta"]
    # the selected trial alone sets the bar where every seed stopped low
    low = diagnose([recall_fit(0.3, 3)] * 4, "test_accuracy", 0.125, True, **RECALL_BUDGET, selected_score=0.747)
    assert low["stopped_short"] == 4


def test_seeds_that_converged_together_are_not_stopped_short():
    # the quickstart's seed runs: 0.964 +/- 0.013 on digits, its selected trial 0.985, each stopped by patience 3
    quickstart = [recall_fit(score, 12) for score in (0.952, 0.958, 0.961, 0.969, 0.980)]
    found = diagnose(quickstart, "test_accuracy", 0.1, True, **RECALL_BUDGET, selected_score=0.985)
    assert (found["stopped_short"], found["budget_limited"], found["at_ceiling"]) == (0, False, False)
    assert limits("lstm", found, "test accuracy") == []
    # a seed that stopped low but close to its best is noise, not a limit: 0.75 skill-gap rule, 0.2 apart
    close = diagnose(
        [recall_fit(0.9, 10), recall_fit(0.72, 4)], "test_accuracy", 0.1, True, **RECALL_BUDGET, selected_score=0.9
    )
    assert close["stopped_short"] == 0


def test_any_fit_still_improving_below_the_ceiling_limits_the_cell_and_the_ceiling_does_not():
    # patience 30: three of ten fits still improving at the cap; before, the cell read "no: 3 of 10 fits"
    fits = [fit(0.02, 40, 40)] * 3 + [fit(0.02, 20, 30)] * 7
    found = diagnose(fits, "test_mse", CONSTANT_MSE, False, **BUDGET)
    assert (found["budget_limited"], found["still_improving"]) == (True, 3)
    # every seed at 1.000 accuracy, its loss still falling at the cap: at the ceiling, nothing left to improve
    perfect = [recall_fit(1.0, 60) | {"epochs_after_best": 0}] * 5
    found = diagnose(perfect, "test_accuracy", 0.5, True, **RECALL_BUDGET)
    assert (found["budget_limited"], found["still_improving"], found["at_ceiling"]) == (False, 0, True)
    assert limits("lstm_nfg", found, "test accuracy") == []
    # an error has no ceiling: lstm_nfg's test MSE of 0.037 on reset_sum is 9 times gru's 0.004, both skill 0.99+
    near_zero = diagnose([fit(0.004, 40, 40)] * 5, "test_mse", 2.3, False, **BUDGET)
    assert (near_zero["at_ceiling"], near_zero["budget_limited"], near_zero["still_improving"]) == (False, True, 5)

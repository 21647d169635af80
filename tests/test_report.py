"""The report's numbers from hand-built study records: no training, no tracking store."""

import pandas as pd
import pytest

from rnncompare.core.errors import UserError
from rnncompare.report import build_comparison, build_summary, study_run_numbers, trials_table, verdict
from rnncompare.report.figures import baseline_in_view, label_axis, pareto_front, save, side_by_side

from records import BETTER, WORSE, record


def test_the_summary_ranks_by_the_seed_mean_and_names_the_winner():
    summary = build_summary(record(lstm=WORSE, gru=BETTER))
    assert summary["ranking"] == ["gru", "lstm"]
    assert summary["ranked_by"] == "mean test accuracy over seeds"
    assert summary["baseline"] == {"test_accuracy": 0.1}
    gru = summary["architectures"]["gru"]
    assert gru["seeds"]["scores"] == BETTER and gru["seeds"]["stats"]["mean"] == pytest.approx(0.904)
    assert gru["seeds"]["spread"]["gap_accuracy"] == {"mean": pytest.approx(0.05), "std": pytest.approx(0.0)}
    assert (gru["params_total"], gru["trials_finished"], gru["trials_failed"]) == (3418, 2, 1)
    assert gru["failed_trials"] == [{"trial_id": "1", "reason": "FailedTrial: loss became NaN or infinite at epoch 1"}]
    [pair] = summary["comparisons"]
    assert (pair["a"], pair["b"], pair["winner"], pair["verdict"]) == ("lstm", "gru", "gru", "gru better")


def test_the_verdict_says_who_is_better_and_by_which_test():
    text = verdict(build_summary(record(lstm=WORSE, gru=BETTER)))
    assert text.startswith("Ranked by mean test accuracy over seeds: gru 0.904 +/- 0.011 test accuracy over 5 seeds")
    assert "gru is better than lstm (Welch p = " in text
    assert "A constant predictor (the training majority class) scores 0.100 test accuracy." in text


def test_close_scores_are_no_verdict_and_say_how_many_seeds_would_tell():
    text = verdict(build_summary(record(lstm=[0.80, 0.82, 0.79], gru=[0.81, 0.80, 0.82])))
    assert "lstm vs gru: no significant difference at 3 seeds (Welch p = " in text


def test_the_study_run_carries_each_architectures_score_and_each_pairs_verdict():
    summary = build_summary(record(lstm=WORSE, gru=BETTER))
    metrics, verdicts = study_run_numbers(summary)
    assert metrics == {
        "gru/test_accuracy_mean": pytest.approx(0.904),
        "gru/test_accuracy_std": pytest.approx(0.011401754),
        "gru/params_total": 3418,
        "gru/seconds_per_epoch": 0.2,
        "lstm/test_accuracy_mean": pytest.approx(0.704),
        "lstm/test_accuracy_std": pytest.approx(0.011401754),
        "lstm/params_total": 3418,
        "lstm/seconds_per_epoch": 0.2,
    }
    assert verdicts == {"lstm_vs_gru": summary["comparisons"][0]["verdict"]} == {"lstm_vs_gru": "gru better"}
    # no seeds: no test, and the selected trial's score stands in for the seed mean
    metrics, verdicts = study_run_numbers(build_summary(record(lstm=[], gru=[])))
    assert metrics["lstm/test_accuracy"] == 0.79 and "lstm/test_accuracy_mean" not in metrics and verdicts == {}


def test_one_seed_is_a_ranking_not_a_verdict():
    summary = build_summary(record(lstm=[0.8], gru=[0.9]))
    assert summary["comparisons"] == []
    assert verdict(summary).endswith("this is a ranking of one run, not a verdict. Set evaluation.seeds to 5 or more.")


def test_the_trials_table_has_one_row_per_trial_with_its_hyperparameters():
    table = trials_table(record(lstm=WORSE, gru=BETTER))
    assert list(table["architecture"]) == ["lstm", "lstm", "gru", "gru"]
    assert list(table["is_best"]) == [True, False, True, False]
    assert table.loc[1, "failure_reason"] == "FailedTrial: loss became NaN or infinite at epoch 1"
    assert table.loc[0, "hp_units"] == 24


def test_the_pareto_front_keeps_trials_nothing_beats_on_both_counts():
    trials = pd.DataFrame({"params_total": [100, 200, 300, 150, 400], "score": [0.5, 0.7, 0.6, 0.4, 0.9]})
    assert list(pareto_front(trials, "score", higher_is_better=True)["params_total"]) == [100, 200, 400]
    assert list(pareto_front(trials, "score", higher_is_better=False)["params_total"]) == [100, 150]


def test_a_figure_title_wider_than_its_figure_breaks_onto_lines_inside_it(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(4, 3))
    label_axis(axis, "x", "y", "a title much wider than the four inches of its figure, which must stay inside it")
    fig.tight_layout()
    title = axis.title.get_window_extent(fig.canvas.get_renderer())
    assert fig.bbox.x0 <= title.x0 and title.x1 <= fig.bbox.x1 and title.y1 <= fig.bbox.y1
    assert title.height > 1.5 * axis.xaxis.label.get_window_extent().height  # two lines or more
    save(fig, tmp_path / "wide.png")


def test_an_epoch_axis_ticks_whole_epochs():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots()
    axis.plot([3, 4, 5, 6], [0.7, 0.9, 0.8, 0.6])  # a Hyperband trial that went on from another's epoch 2
    label_axis(axis, "epoch", "loss")
    ticks = [tick for tick in axis.get_xticks() if 3 <= tick <= 6]
    assert ticks == [3, 4, 5, 6]
    plt.close(fig)


def test_equal_seed_scores_are_drawn_side_by_side():
    # the quickstart's GRU: 0.978, 0.970, 0.985, 0.985, 0.978 (a 270-sample test split)
    assert side_by_side([0.978, 0.970, 0.985, 0.985, 0.978]) == pytest.approx([-0.02, 0.0, -0.02, 0.02, 0.02])
    assert side_by_side([0.5, 0.5, 0.5]) == pytest.approx([-0.04, 0.0, 0.04]) and side_by_side([]) == []


def test_the_constant_predictor_is_drawn_beside_seed_scores_only_where_it_does_not_flatten_them():
    # the quickstart: every architecture at 0.96 to 0.99 accuracy, the majority class at 0.10
    assert not baseline_in_view([0.963, 0.985, 0.970, 0.981], 0.100)
    # the adding problem: a SimpleRNN on the constant predictor's plateau beside a GRU that solved it
    assert baseline_in_view([0.0001, 0.0002, 0.1667, 0.1672], 0.169)
    assert baseline_in_view([0.5, 0.9], 0.1) and not baseline_in_view([0.5, 0.9], 0.09)


def test_a_comparison_puts_a_swept_value_on_the_axis_in_order():
    summaries = [
        build_summary(record(WORSE, BETTER, sweep={"task.length": 50})),
        build_summary(record(BETTER, WORSE, sweep={"task.length": 10})),
    ]
    comparison = build_comparison(summaries)
    assert comparison["axis"] == "task.length"
    assert [study["x"] for study in comparison["studies"]] == [10, 50]
    assert comparison["studies"][0]["architectures"]["lstm"]["mean"] == pytest.approx(0.904)
    assert comparison["studies"][1]["verdicts"][0].startswith("lstm vs gru: gru better (Welch p = ")
    assert comparison["architectures"] == ["lstm", "gru"]


def test_studies_of_different_kinds_are_not_compared():
    classification = build_summary(record(WORSE, BETTER))
    regression = {**classification, "study": "other", "kind": "regression"}
    with pytest.raises(
        UserError,
        match=r"^compare: the studies measure different things: hand \(classification\), "
        r"other \(regression\)$",
    ):
        build_comparison([classification, regression])


def regression_record(lstm: list[float], gru: list[float], best_epoch: float, epochs_run: float) -> dict:
    built = record(lstm=lstm, gru=gru, kind="regression")
    built["config"]["task"] = {"name": "adding"}
    built["dataset"] = {"kind": "regression", "baseline_test_mse": "0.167", "baseline_test_mae": "0.33"}
    built["config"]["tuner"]["epochs"] = 40
    built["config"]["training"]["patience"] = 8
    built["config"]["search"] = {"units": {"min": 16, "max": 64, "step": 16}}
    for entry in built["architectures"]:
        entry["params"]["units"] = 64
        entry["metrics"].update(
            {"test_mse": entry["metrics"]["test_accuracy"], "gap_mae": 0.0, "val_mae": 0.1, "gap_mae_last": 0.0}
        )
        for run in entry["seeds"]:
            score = run["metrics"]["test_accuracy"]
            run["metrics"] = {
                "test_mse": score,
                "test_loss": score,
                "test_mae": score,
                "gap_mae": 0.0,
                "gap_loss": 0.0,
                "epochs_after_best": epochs_run - best_epoch,
                "val_loss_rise": 0.0,
                "best_epoch": best_epoch,
                "epochs_run": epochs_run,
            }
    return built


def test_a_winner_over_a_cell_on_the_plateau_is_qualified_in_the_summary_and_the_verdict():
    # the adding problem at length 100 on its old budget: GRU solves it, LSTM stops early at the constant predictor
    built = regression_record(
        lstm=[0.156, 0.1561, 0.1559, 0.156, 0.1562],
        gru=[0.006, 0.004, 0.009, 0.003, 0.008],
        best_epoch=3,
        epochs_run=11,
    )
    summary = build_summary(built)
    lstm = summary["architectures"]["lstm"]["diagnostics"]
    assert (lstm["learned"], lstm["plateau_stop"], lstm["budget_limited"]) == (False, True, False)
    assert summary["architectures"]["gru"]["diagnostics"]["learned"] is True
    [pair] = summary["comparisons"]
    assert pair["winner"] == "gru" and pair["qualified"] is True
    assert pair["verdict"].startswith(
        "gru better at this budget; lstm did not learn (test MSE 0.156 at the constant predictor's 0.167, skill 0.07)"
    )
    text = verdict(summary)
    assert "gru is better than lstm at this budget (Welch p = " in text
    assert "; but lstm did not learn" in text and "gru is better than lstm (" not in text
    assert "To settle it: search the learning rate" in text and "(search.learning_rate, training.patience)" in text
    assert "more training sequences (task.samples)" in text  # the adding problem generates as many as asked
    # a task whose data is what it is (a built-in set, the user's file) has no key for more of it
    built["config"]["task"] = {"name": "sunspots"}
    assert ["task.samples"] not in [entry["keys"] for entry in build_summary(built)["suggestions"]]


def test_a_study_cut_short_while_improving_says_so():
    built = regression_record(lstm=[0.05, 0.06, 0.055], gru=[0.02, 0.021, 0.019], best_epoch=40, epochs_run=40)
    summary = build_summary(built)
    assert all(row["diagnostics"]["budget_limited"] for row in summary["architectures"].values())
    assert summary["architectures"]["gru"]["diagnostics"]["still_improving_fraction"] == 1.0
    [pair] = summary["comparisons"]
    assert pair["verdict"] == (
        "gru better at this budget; lstm was still improving at the last epoch in 3 of 3 fits; "
        "gru was still improving at the last epoch in 3 of 3 fits"
    )
    changes = {entry["change"].split(":")[0]: entry["keys"] for entry in summary["suggestions"]}
    assert changes["more epochs"] == ["tuner.epochs"]
    assert changes["widen the search"] == ["search.units.max"]  # both selected the widest model searched

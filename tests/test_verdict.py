"""`report.verdict.headline`: the one sentence the report and the console open with: what the study found, what
limits it, what to change first."""

from rnncompare.report.verdict import headline


def summary(comparisons, diagnostics):
    names = list(diagnostics)
    return {
        "ranking": names,
        "architectures": {name: {"diagnostics": found} for name, found in diagnostics.items()},
        "comparisons": comparisons,
        "metrics": {"headline_label": "test accuracy"},
    }


def pair(a, b, winner=None, seeds_needed=None):
    return {"a": a, "b": b, "winner": winner, "seeds_needed": seeds_needed}


def test_no_difference_with_every_cell_still_improving_says_raise_the_epochs():
    improving = {"learned": True, "budget_limited": True}
    found = summary([pair("lstm", "gru"), pair("lstm", "simple_rnn"), pair("gru", "simple_rnn")],
                    {"lstm": improving, "gru": improving, "simple_rnn": improving})  # fmt: skip
    assert headline(found) == "No pair differs at this budget: all three were still improving; raise tuner.epochs."


def test_each_winner_is_qualified_by_the_budget_and_the_cells_that_did_not_learn_are_named():
    found = summary(
        [pair("lstm", "conv", winner="lstm"), pair("gru", "conv", winner="gru"), pair("lstm", "gru")],
        {"lstm": {"learned": True}, "gru": {"learned": True}, "conv": {"learned": False}},
    )
    assert headline(found) == (
        "lstm is better than conv at this budget; gru is better than conv at this budget; 1 other pair(s) do not "
        "differ: conv does not reliably beat the constant predictor; search the learning rate (search.learning_rate) "
        "and wait longer (training.patience)."
    )


def test_a_clean_win_and_a_ranking_of_one_run_read_as_what_they_are():
    clean = summary(
        [pair("gru", "simple_rnn", winner="gru")], {"gru": {"learned": True}, "simple_rnn": {"learned": True}}
    )
    assert headline(clean) == "gru is better than simple_rnn."
    single = summary([], {"gru": {}, "lstm": {}})
    assert (
        headline(single) == "gru ranks first from one run each, which is no verdict: set evaluation.seeds to 5 or more."
    )
    undecided = summary([pair("lstm", "gru", seeds_needed=12)], {"lstm": {"learned": True}, "gru": {"learned": True}})
    assert headline(undecided) == "No pair differs at this number of seeds: about 12 seeds each would separate them."


STOPPED = {"stopped_short": 8, "fits": 10, "patience": 5, "best_score": 0.95, "learned": True}


def test_a_win_over_a_cell_early_stopping_held_back_is_qualified_and_names_the_patience():
    # the delayed-recall study: gru 0.914, lstm 0.490 over 10 seeds, 8 of lstm's stopped on the plateau
    found = summary([pair("lstm", "gru", winner="gru")], {"gru": {"learned": True}, "lstm": STOPPED})
    assert headline(found) == (
        "gru is better than lstm at this budget: early stopping (patience 5) ended 8 of 10 lstm fits far below the "
        "test accuracy 0.950 that lstm reached on this task; raise training.patience (or lower training.min_delta)."
    )


def test_every_cell_at_the_ceiling_says_the_task_does_not_separate_them():
    ceiling = {"learned": True, "at_ceiling": True}
    found = summary([pair("lstm", "gru"), pair("lstm", "nfg"), pair("gru", "nfg")],
                    {"lstm": ceiling, "gru": ceiling, "nfg": ceiling})  # fmt: skip
    assert headline(found) == (
        "No pair differs: all three reached the ceiling (test accuracy within 1% of perfect), so this task does not "
        "separate them."
    )
    # one cell below it: the usual verdict
    found["architectures"]["nfg"]["diagnostics"] = {"learned": True}
    assert headline(found).startswith("No pair differs at this number of seeds")


def test_a_sequential_study_names_how_its_pairs_settled():
    settled = {**pair("lstm", "gru", winner="gru"), "decision": "b_better"}
    equivalent = {**pair("lstm", "simple_rnn"), "decision": "equivalent"}
    still_open = {**pair("gru", "simple_rnn"), "decision": "unsettled"}
    found = summary(
        [settled, equivalent, still_open], {"lstm": {"learned": True}, "gru": {"learned": True}, "simple_rnn": {}}
    )
    found["sequential"] = {"max": 12}
    assert headline(found) == (
        "gru is better than lstm; lstm and simple_rnn are practically equivalent; 1 other pair(s) are not settled: "
        "raise evaluation.seeds.max (now 12) to settle the rest."
    )
    found["comparisons"] = [still_open]
    assert headline(found) == "No pair settled within 12 seeds: raise evaluation.seeds.max (now 12) to settle the rest."

"""`report.verdict.headline`: the one sentence the report and the console open with: what the study found, what
limits it, what to change first."""

from rnncompare.report.verdict import headline


def summary(comparisons, diagnostics):
    names = list(diagnostics)
    return {
        "ranking": names,
        "architectures": {name: {"diagnostics": found} for name, found in diagnostics.items()},
        "comparisons": comparisons,
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

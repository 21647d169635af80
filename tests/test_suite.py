"""Suites: one comparison across several tasks (`analysis.suite`, `report.suite`, `run_sweep` with `suite:`):
average ranks, Friedman's test, Nemenyi's critical difference, the Bayesian signed-rank test, and `compare`."""

import json
import math

import pytest
from scipy import stats as scipy_stats

from rnncompare.analysis.suite import suite_statistics


def study(task, means, higher_is_better=True, baseline=0.1, headline="test_accuracy"):
    return {
        "study": f"s-{task}",
        "task": task,
        "sweep": {},
        "metrics": {"headline": headline, "higher_is_better": higher_is_better},
        "baseline": {headline: baseline},
        "architectures": {
            name: {"seeds": {"stats": {"mean": mean, "std": 0.01}, "seeds": [1, 2, 3]}, "selected": {}}
            for name, mean in means.items()
        },
    }


FOUR_TASKS = [
    study("digits", {"lstm": 0.97, "gru": 0.98, "simple_rnn": 0.95}),
    study("italy_power", {"lstm": 0.90, "gru": 0.93, "simple_rnn": 0.91}),
    study("japanese_vowels", {"lstm": 0.96, "gru": 0.97, "simple_rnn": 0.90}),
    # an error: lower is better, so simple_rnn's 0.30 ranks first here
    study("sunspots", {"lstm": 0.40, "gru": 0.35, "simple_rnn": 0.30}, False, 1.0, "test_mse"),
]


def test_ranks_follow_each_tasks_direction_and_the_tests_are_demsars():
    suite = suite_statistics(FOUR_TASKS)
    assert [task["ranks"] for task in suite["tasks"]][3] == {"lstm": 3.0, "gru": 2.0, "simple_rnn": 1.0}
    assert suite["ranks"] == {"gru": pytest.approx(1.25), "lstm": pytest.approx(2.5), "simple_rnn": pytest.approx(2.25)}
    assert list(suite["ranks"]) == ["gru", "simple_rnn", "lstm"]  # best first
    expected = scipy_stats.friedmanchisquare([2, 2, 2, 3], [1, 1, 1, 2], [3, 3, 3, 1])
    assert suite["friedman_p"] == pytest.approx(expected.pvalue)
    # Nemenyi at 95% for 3 architectures over 4 tasks: q = 2.343 (Demsar's table), CD = q * sqrt(3 * 4 / (6 * 4))
    assert suite["critical_difference"] == pytest.approx(2.343 * math.sqrt(12 / 24), abs=1e-3)
    assert suite["nemenyi_p"]["gru"]["lstm"] == suite["nemenyi_p"]["lstm"]["gru"] < 1
    assert suite["weak"].startswith("4 tasks are few for these tests")


def test_each_pair_gets_bayesian_probabilities_on_skill_with_the_stated_rope():
    suite = suite_statistics(FOUR_TASKS, rope=0.01, seed=3)
    pairs = {(pair["a"], pair["b"]): pair for pair in suite["pairs"]}
    assert sorted(pairs) == [("gru", "simple_rnn"), ("lstm", "gru"), ("lstm", "simple_rnn")]
    for pair in pairs.values():
        assert pair["p_a_better"] + pair["p_rope"] + pair["p_b_better"] == pytest.approx(1.0)
    # gru's skill is higher than lstm's on all four tasks
    assert pairs[("lstm", "gru")]["p_b_better"] > 0.9 and pairs[("lstm", "gru")]["mean_skill_difference"] < 0
    assert suite["rope"] == 0.01
    assert suite_statistics(FOUR_TASKS, rope=0.01, seed=3) == suite  # seeded: a rebuilt report is the same


def test_too_few_tasks_or_architectures_run_no_friedman_test_and_say_why():
    two = suite_statistics(FOUR_TASKS[:2])
    assert two["friedman_p"] is None and two["critical_difference"] is None
    assert two["friedman_absent"] == (
        "no Friedman test: it needs at least 3 tasks and 3 architectures, and the suite has 2 task(s) and 3 "
        "architecture(s) in every task"
    )
    assert two["weak"].endswith("the ranks are descriptive only")
    pair_only = suite_statistics([study(s["task"], {"lstm": 0.5, "gru": 0.6}) for s in FOUR_TASKS])
    assert pair_only["friedman_p"] is None and len(pair_only["pairs"]) == 1


def limited(summary, name, **diagnostics):
    summary["architectures"][name]["diagnostics"] = {"learned": True, "fits": 10, "patience": 5, **diagnostics}
    return summary


def test_each_tasks_limits_are_carried_and_a_ranking_over_the_tasks_free_of_them_stands_beside():
    tasks = [study(s["task"], {k: v["seeds"]["stats"]["mean"] for k, v in s["architectures"].items()},
                   s["metrics"]["higher_is_better"], s["baseline"][s["metrics"]["headline"]],
                   s["metrics"]["headline"]) for s in FOUR_TASKS]  # fmt: skip
    tasks.append(study("delayed_recall", {"lstm": 0.46, "gru": 0.91, "simple_rnn": 0.30}, baseline=0.125))
    limited(tasks[4], "lstm", stopped_short=8)
    limited(tasks[4], "simple_rnn", learned=False, skill_mean=0.2)
    limited(tasks[1], "gru", search_edges={"units": "max"})
    suite = suite_statistics(tasks)
    recall = suite["tasks"][4]
    assert recall["limited"] == ["lstm", "simple_rnn"]
    assert recall["scores"]["lstm"]["limits"] == {
        "stopped_by_early_stopping": "8 of 10 fits far below its best, patience 5"
    }
    assert recall["scores"]["simple_rnn"]["limits"] == {"did_not_learn": "skill 0.20"}
    assert recall["scores"]["gru"]["limits"] == {}
    assert suite["limited_tasks"] == ["italy_power", "delayed_recall"]
    unlimited = suite["unlimited"]
    assert unlimited["tasks"] == ["digits", "japanese_vowels", "sunspots"]
    # digits and japanese_vowels: gru 1, lstm 2, simple_rnn 3; sunspots: simple_rnn 1, gru 2, lstm 3
    assert unlimited["ranks"] == {"gru": pytest.approx(4 / 3), "simple_rnn": pytest.approx(7 / 3), "lstm": 7 / 3}
    assert unlimited["friedman_p"] == pytest.approx(
        scipy_stats.friedmanchisquare([2, 2, 3], [1, 1, 2], [3, 3, 1]).pvalue
    )
    assert suite["headline"] == (
        "Average ranks over 5 tasks: gru 1.20, lstm 2.40, simple_rnn 2.40. It rests on limited cells on 2 task(s): "
        "italy_power (gru: search edge); delayed_recall (lstm: stopped by early stopping, simple_rnn: did not learn). "
        "Over the 3 task(s) with no limited cell: gru 1.33, lstm 2.33, simple_rnn 2.33."
    )
    assert suite_statistics(FOUR_TASKS)["headline"].endswith(
        "no cell is limited by its budget, its learning or its search."
    )


def test_scores_equal_at_the_metrics_resolution_tie_and_share_their_ranks():
    # float32 accuracies summed: gru's 0.7499999851 and lstm's 0.75 over 4 seeds are the same score
    suite = suite_statistics([study("langid", {"gru": 0.7499999851, "lstm": 0.75, "simple_rnn": 0.5})])
    assert suite["tasks"][0]["ranks"] == {"gru": 1.5, "lstm": 1.5, "simple_rnn": 3.0}
    # a real difference in the sixth decimal still ranks
    apart = suite_statistics([study("langid", {"gru": 0.750001, "lstm": 0.75, "simple_rnn": 0.5})])
    assert apart["tasks"][0]["ranks"] == {"gru": 1.0, "lstm": 2.0, "simple_rnn": 3.0}


def test_a_task_label_from_a_path_uses_the_files_name():
    from rnncompare.config.loading import suite_label

    entry = {"name": "text_csv", "path": "/some/dir/langid.csv", "tokens": "characters"}
    assert suite_label(entry) == "text_csv-pathlangid.csv-tokenscharacters"
    assert suite_label({"name": "adding", "length": 30}) == "adding-length30"


SUITE = """\
study: suite3
suite:
  - {name: digits}
  - {name: italy_power}
  - {name: sunspots, window: 10}
architectures: [lstm, gru, simple_rnn]
search: {units: {min: 8, max: 8, step: 8}}
tuner: {max_trials: 1, epochs: 2}
evaluation: {seeds: 2}
"""


@pytest.mark.slow
def test_a_three_task_suite_writes_its_report_and_compare_rebuilds_it_from_the_store(tmp_path, cli):
    (tmp_path / "s.yaml").write_text(SUITE)
    completed = cli("run", "s.yaml", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    folder = tmp_path / "mlruns" / "reports" / "suite3"
    suite = json.loads((folder / "suite.json").read_text())
    assert suite["studies"] == ["suite3-digits", "suite3-italy_power", "suite3-sunspots-window10"]
    assert [task["task"] for task in suite["tasks"]] == ["digits", "italy_power", "sunspots-window10"]
    assert sorted(suite["ranks"]) == ["gru", "lstm", "simple_rnn"]
    assert sum(suite["ranks"].values()) == pytest.approx(6.0)  # 1 + 2 + 3 on average
    assert 0 <= suite["friedman_p"] <= 1 and suite["critical_difference"] == pytest.approx(1.9136, abs=1e-3)
    assert len(suite["pairs"]) == 3 and all(pair["p_rope"] is not None for pair in suite["pairs"])
    html = (folder / "suite.html").read_text()
    assert 'alt="critical difference diagram" src="data:image/png;base64,' in html
    assert "3 tasks are few for these tests" in html
    assert (folder / "figures" / "critical_difference.png").stat().st_size > 5000
    # each task has its own study and report
    assert (tmp_path / "mlruns" / "reports" / "suite3-sunspots-window10" / "report.html").exists()

    again = cli(
        "compare", "suite3-digits", "suite3-italy_power", "suite3-sunspots-window10", "--out", "c", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "suite: c/suite.html"
    rebuilt = json.loads((tmp_path / "c" / "suite.json").read_text())
    assert rebuilt == suite


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "study: s\ntask: {name: digits}\nsuite: [{name: italy_power}]\n",
            "error: s.yaml: suite and task.name together: a suite names its tasks itself; put the task in the suite, "
            "or drop the suite",
        ),
        (
            "study: s\nsuite: [{name: digits}]\nsweep: {seed: [1, 2]}\n",
            "error: s.yaml: suite cannot go with a sweep: each task of a suite is one study; sweep a suite's tasks "
            "by running one suite per value",
        ),
        ("study: s\nsuite: []\n", "error: s.yaml: suite must list one or more tasks ({name: digits}, ...), got []"),
        (
            "study: s\nsuite: [{name: adding, length: 5}, {name: digits}, {name: adding, length: 5}]\n",
            "error: s.yaml: suite names task {length: 5, name: adding} twice with the same options (entries 1 and 3)",
        ),
        (
            "study: s\nsuite: [{name: digits}, {name: adding, lenght: 5}]\n",
            "error: suite entry 2 (adding-lenght5): unknown key task.lenght (did you mean task.length?); allowed "
            "here: columns, embedding_dim, features, function, kind, layout, length, name, path, samples, "
            "test_fraction, tokens, validation_fraction, window",
        ),
    ],
)
def test_a_bad_suite_is_one_line_exit_2_and_nothing_written(tmp_path, cli, text, message):
    (tmp_path / "s.yaml").write_text(text)
    completed = cli("run", "s.yaml", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "mlruns").exists()


def test_a_suite_is_not_run_by_a_chief_or_worker_which_run_one_study(tmp_path, cli):
    (tmp_path / "s.yaml").write_text("study: s\nsuite: [{name: digits}, {name: italy_power}]\n")
    completed = cli(
        "run",
        "s.yaml",
        "--chief",
        "--oracle",
        "127.0.0.1:8123",
        "--set",
        "tracking.uri=http://127.0.0.1:9",
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "error: suite: --chief and --worker run one study, and s is a suite of 2 tasks; run each task as its own "
        "study (--set suite=null --set task={name: ...} --set study=NAME), then `rnncompare compare` them"
    ]
    assert not (tmp_path / "mlruns").exists()

"""`training.draws`: what each seed run draws (`evaluation.vary`): its initial weights, data order and split, the
same for run i of every architecture, so runs pair (Bouthillier et al., 2021)."""

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from rnncompare.config import load_config
from rnncompare.core.errors import UserError
from rnncompare.core.seeds import derive_seed, evaluation_seeds, seed_run_seeds
from rnncompare.tasks import load_task
from rnncompare.training.draws import SeedDraws, varied_sources


def draws_of(task, *overrides):
    config = load_config({"task": task}, list(overrides))
    return config, SeedDraws(config, load_task(config.task, config.seed))


def test_vary_auto_is_every_source_the_task_allows_and_an_unknown_one_is_one_line():
    config, draws = draws_of({"name": "digits"})
    assert config.evaluation.vary == "auto" and draws.varied == ("init", "order", "split")
    with pytest.raises(UserError) as caught:
        load_config(None, ["evaluation.vary=[init, weather]"])
    assert str(caught.value) == (
        "--set: evaluation.vary must be auto or a list of one or more of init, order, split, got 'weather'"
    )
    with pytest.raises(UserError) as caught:
        load_config(None, ["evaluation.vary=[]"])
    assert (
        str(caught.value)
        == "--set: evaluation.vary must be auto or a list of one or more of init, order, split, got []"
    )
    with pytest.raises(UserError) as caught:
        load_config(None, ["evaluation.vary=[split, split]"])
    assert str(caught.value) == "--set: evaluation.vary names a source twice: [split, split]"


def test_a_text_task_cannot_draw_a_split_auto_leaves_it_out_and_asking_for_it_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text(
        "text,label\n" + "".join(f"{'good fine nice' if i % 2 else 'bad poor awful'} {i},{i % 2}\n" for i in range(60))
    )
    task = {"name": "text_csv", "path": str(tmp_path / "t.csv")}
    _, draws = draws_of(task)
    assert draws.varied == ("init", "order")
    config = load_config({"task": task}, ["evaluation.vary=[init, split]"])
    with pytest.raises(UserError) as caught:
        varied_sources(config, load_task(config.task, config.seed))
    assert str(caught.value) == (
        "evaluation.vary: split: task text_csv builds its vocabulary from its training split, so another split "
        "would be another model (neither a resplit nor a bootstrap keeps it); allowed here: init, order"
    )


def test_sources_held_fixed_take_the_studys_seeds_and_a_varied_split_one_derived_from_the_runs():
    assert seed_run_seeds(7, 100, ("init", "order", "split")) == {
        "init": 100,
        "order": 100,
        "split": derive_seed(100, "split"),
    }
    # held fixed: the split the search used, and one initialisation and one order for every run
    assert seed_run_seeds(7, 100, ("order",)) == {
        "init": derive_seed(7, "init"),
        "order": 100,
        "split": derive_seed(7, "split"),
    }


def test_a_resplit_is_a_new_stratified_partition_of_the_same_sizes():
    config, draws = draws_of({"name": "digits"})
    first, second = (draws.draw(seed) for seed in evaluation_seeds(config.seed, 2))
    assert first.split_seed != second.split_seed
    assert first.task.split_sizes == second.task.split_sizes == draws.task.split_sizes
    assert not np.array_equal(first.task.x_test, second.task.x_test)
    # stratified: each class's share of the test split within one sample of the whole's
    classes = np.bincount(second.task.y_test, minlength=10)
    expected = np.bincount(draws.task.y_train, minlength=10) / len(draws.task.y_train) * len(second.task.y_test)
    assert np.all(np.abs(classes - expected) <= 1.5)
    assert "the split (a new seeded split per run, stratified)" in draws.describe()


def test_a_fixed_split_is_bootstrapped_its_validation_and_test_kept():
    config, draws = draws_of({"name": "japanese_vowels"})
    draw = draws.draw(evaluation_seeds(config.seed, 1)[0])
    assert draws.task.resampling == "bootstrap"
    np.testing.assert_array_equal(draw.task.x_test, draws.task.x_test)
    np.testing.assert_array_equal(draw.task.x_val, draws.task.x_val)
    assert len(draw.task.x_train) == len(draws.task.x_train)
    rows = {row.tobytes() for row in draw.task.x_train}
    assert len(rows) < len(draw.task.x_train)  # drawn with replacement: some rows twice
    assert rows <= {row.tobytes() for row in draws.task.x_train}
    assert "a bootstrap of the fixed training split" in draws.describe()


VARY_STUDY = """\
study: vary
task: {name: digits}
architectures: [lstm, gru]
search: {units: {min: 8, max: 8, step: 8}}
tuner: {max_trials: 1, epochs: 2}
evaluation: {seeds: 3, vary: [init, order, split]}
"""


@pytest.mark.slow
def test_seed_runs_draw_their_own_splits_paired_across_architectures(tmp_path, cli):
    (tmp_path / "s.yaml").write_text(VARY_STUDY)
    completed = cli("run", "s.yaml", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "each draws its own initial weights and dropout masks, data order, the split" in completed.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("vary")
    drawn = {}
    for run in client.search_runs([experiment.experiment_id], "tags.`rnncompare.role` = 'seed'"):
        tags = run.data.tags
        drawn[(tags["rnncompare.architecture"], tags["rnncompare.seed"])] = (
            tags["rnncompare.split_seed"],
            tags["rnncompare.order_seed"],
            tags["rnncompare.init_seed"],
        )
    seeds = [str(seed) for seed in evaluation_seeds(load_config(yaml.safe_load(VARY_STUDY)).seed, 3)]
    assert sorted(drawn) == sorted((name, seed) for name in ("lstm", "gru") for seed in seeds)
    assert len({drawn[("lstm", seed)][0] for seed in seeds}) == 3  # a split of its own for each run
    for seed in seeds:
        assert drawn[("lstm", seed)] == drawn[("gru", seed)]  # run i of both drew the same
        assert drawn[("lstm", seed)][1:] == (seed, seed)
    summary = yaml.safe_load((tmp_path / "mlruns" / "reports" / "vary" / "summary.json").read_text())
    (pair,) = summary["comparisons"]
    low, high = pair["p_a_better_ci"]
    assert 0.0 <= low <= pair["p_a_better"] <= high <= 1.0
    assert pair["bouthillier_a_better"] in (True, False, None) and "bouthillier_a_better" in pair
    assert summary["dataset"]["varied"] == "init,order,split"
    report = (tmp_path / "mlruns" / "reports" / "vary" / "report.md").read_text()
    assert "Each run drew its own initial weights and dropout masks, data order, the split" in report


def test_vary_split_on_a_task_that_cannot_draw_one_is_one_line_and_writes_nothing(tmp_path, cli):
    (tmp_path / "t.csv").write_text(
        "text,label\n" + "".join(f"{'good fine nice' if i % 2 else 'bad poor awful'} {i},{i % 2}\n" for i in range(60))
    )
    (tmp_path / "s.yaml").write_text("study: t\ntask: {name: text_csv, path: t.csv}\nevaluation: {vary: [split]}\n")
    completed = cli("run", "s.yaml", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith("error: evaluation.vary: split: task text_csv builds")
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()

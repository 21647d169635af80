import re
from pathlib import Path

import pytest
import yaml

from rnncompare.config import StudyConfig, default_config_path, expand_sweep, load_config, parse_overrides
from rnncompare.core.architectures import ARCHITECTURES
from rnncompare.core.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_holds_only_differences_and_inherits_the_rest():
    config = load_config(REPO / "experiments" / "quickstart.yaml")
    assert config.study == "quickstart"
    assert config.tuner.max_trials == 4
    assert config.search.units.max == 128
    assert (config.training.learning_rate, config.training.min_delta, config.tuner.epochs) == (0.01, 0.002, 60)
    # not in the experiment file: comes from configs/default.yaml
    assert config.tuner.batch_size == 64
    assert config.search.layers.min == config.search.layers.max == 1
    assert config.tracking.uri is None


def test_set_overrides_win_over_the_file_and_parse_as_yaml():
    config = load_config(
        REPO / "experiments" / "quickstart.yaml",
        ["tuner.epochs=3", "architectures=[gru, lstm]", "search.dropout.max=0.3", "tracking.uri=sqlite:///x.db"],
    )
    assert config.tuner.epochs == 3
    assert config.architectures == ["gru", "lstm"]
    assert config.search.dropout.max == 0.3
    assert config.tracking.uri == "sqlite:///x.db"


def test_a_dict_study_with_dict_overrides():
    config = load_config({"study": "nb", "tuner": {"max_trials": 2}}, {"tuner.epochs": 4})
    assert (config.study, config.tuner.max_trials, config.tuner.epochs) == ("nb", 2, 4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["search.dropout.max=1.5"], "--set: search.dropout.max must be less than 1, got 1.5"),
        (
            ["tuner.max_trail=3"],
            "--set: unknown key tuner.max_trail (did you mean tuner.max_trials?); allowed here: "
            "algorithm, batch_size, dir, epochs, max_consecutive_failures, max_trials, objective",
        ),
        (
            ["tuner.algorithm=sobol"],
            "--set: tuner.algorithm must be 'random', 'bayesian', 'hyperband' or 'grid', got 'sobol'",
        ),
        (["tuner.max_trials='3'"], "--set: tuner.max_trials must be a valid integer, got '3'"),
        (["tuner.epochs=0"], "--set: tuner.epochs must be greater than or equal to 1, got 0"),
        (
            ["architectures=[lstm, cnn]"],
            "--set: architectures[1] must be a built-in architecture or your own ('file.py:function', or "
            "{name: NAME, body: 'file.py:function'}), got 'cnn'; built-in: " + ", ".join(ARCHITECTURES),
        ),
        (["architectures=[]"], "--set: architectures must list at least 1 item(s), got []"),
        (["architectures=[gru, gru]"], "--set: architectures must not repeat an architecture, got gru twice"),
        (["search.units.min=200"], "--set: search.units: min (200) must not exceed max (128)"),
        (
            ["study=../etc"],
            "--set: study must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit, got '../etc'",
        ),
        (["task=3"], "--set: task must be a mapping of keys, got 3"),
        (
            ["task.name=imagenet"],
            "--set: task.name must be 'digits', 'digits_pixels', 'japanese_vowels', "
            "'italy_power', 'sunspots', 'adding', 'reset_sum', 'delayed_recall', 'reber', 'npz', 'csv', "
            "'text_csv' or 'python', got 'imagenet'",
        ),
        (
            ["task.name=adding", "task.window=5"],
            "--set: task.window does not apply to task adding (adding takes "
            "length, samples; window is for sunspots), got 5",
        ),
        (["seed=-1"], "--set: seed must be greater than or equal to 0, got -1"),
        # a lease shorter than three heartbeats takes trials off workers that are alive (distributed.worker)
        (["execution.worker_timeout=2"], "--set: execution.worker_timeout must be greater than or equal to 3, got 2"),
        (["epochs"], "--set expects dotted.key=value, got 'epochs'"),
        (
            ["evaluation.seeds={min: 0}"],
            "--set: evaluation.seeds must be a count from 0 to 100, or {min: M, max: N} (optionally round: R) with 2 <= M <= N <= 100 and R >= 1, got {min: 0}",
        ),
        (
            ["evaluation.seeds={min: 0, max: 10}"],
            "--set: evaluation.seeds must be a count from 0 to 100, or {min: M, max: N} (optionally round: R) with 2 <= M <= N <= 100 and R >= 1, got {max: 10, min: 0}",
        ),
        (
            ["evaluation.seeds={min: 5, max: 3}"],
            "--set: evaluation.seeds must be a count from 0 to 100, or {min: M, max: N} (optionally round: R) with 2 <= M <= N <= 100 and R >= 1, got {max: 3, min: 5}",
        ),
        (
            ["evaluation.seeds={max: 10}"],
            "--set: evaluation.seeds must be a count from 0 to 100, or {min: M, max: N} (optionally round: R) with 2 <= M <= N <= 100 and R >= 1, got {max: 10}",
        ),
        (
            ["evaluation.seeds={min: 2.5, max: 10}"],
            "--set: evaluation.seeds must be a count from 0 to 100, or {min: M, max: N} (optionally round: R) with 2 <= M <= N <= 100 and R >= 1, got {max: 10, min: 2.5}: whole numbers only",
        ),
        (
            ["evaluation.seeds={min: 3, max: 9, round: 0}"],
            "--set: evaluation.seeds must be a count from 0 to 100, or {min: M, max: N} (optionally round: R) with 2 <= M <= N <= 100 and R >= 1, got {max: 9, min: 3, round: 0}",
        ),
        (
            ["evaluation.seeds=five"],
            "--set: evaluation.seeds must be a count from 0 to 100, or {min: M, max: N} (optionally round: R) with 2 <= M <= N <= 100 and R >= 1, got 'five'",
        ),
        (
            ["evaluation.seeds=101"],
            "--set: evaluation.seeds must be a count from 0 to 100, or {min: M, max: N} (optionally round: R) with 2 <= M <= N <= 100 and R >= 1, got 101",
        ),
        (
            ["evaluation.seeds={min: 3, max: 9, rounds: 2}"],
            "--set: evaluation.seeds must be a count from 0 to 100, or {min: M, max: N} (optionally round: R) with 2 <= M <= N <= 100 and R >= 1, got {max: 9, min: 3, rounds: 2}",
        ),
        (
            ["evaluation.seeds={min: 3, max: 9}", "evaluation.rope=-0.01"],
            "--set: evaluation.rope must be greater than or equal to 0, got -0.01",
        ),
        (
            ["evaluation.rope=0.01"],
            "--set: evaluation.rope (0.01) decides when a pair is practically equivalent, which only seeds added "
            "until each pair settles do: set evaluation.seeds to {min: M, max: N}, or rope to null",
        ),
    ],
)
def test_each_bad_value_gives_one_line_naming_origin_key_value_and_allowed(overrides, message):
    with pytest.raises(UserError) as caught:
        load_config(REPO / "experiments" / "quickstart.yaml", overrides)
    assert str(caught.value) == message


def test_errors_name_the_file_the_bad_key_came_from(tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("tuner:\n  epochs: 5\n  patience: 3\n")
    with pytest.raises(UserError, match=re.escape(f"{experiment}: unknown key tuner.patience")):
        load_config(experiment)
    experiment.write_text("search:\n  dropout: {min: 0.0, max: 1.5, step: 0.1}\n")
    with pytest.raises(UserError, match=re.escape(f"{experiment}: search.dropout.max must be less than 1, got 1.5")):
        load_config(experiment)


@pytest.mark.parametrize(
    "text, message",
    [
        ("tuner: [1, 2", "not valid YAML at line 1, column 13"),
        ("- a\n- b\n", "must hold a mapping of config keys, got list"),
    ],
)
def test_unreadable_experiment_files(tmp_path, text, message):
    experiment = tmp_path / "bad.yaml"
    experiment.write_text(text)
    with pytest.raises(UserError, match=re.escape(f"{experiment}: {message}")):
        load_config(experiment)


def test_missing_experiment_file():
    with pytest.raises(UserError, match=r"^nowhere\.yaml: file not found$"):
        load_config("nowhere.yaml")


def test_overrides_build_nested_dicts():
    assert parse_overrides(["a.b=1", "a.c=x", "d=[1, 2]"]) == {"a": {"b": 1, "c": "x"}, "d": [1, 2]}


def _schema_keys(model, prefix=""):
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            keys |= _schema_keys(annotation, f"{prefix}{name}.")
    return keys


def _yaml_keys(mapping, prefix=""):
    keys = set()
    for name, value in mapping.items():
        keys.add(prefix + name)
        if isinstance(value, dict):
            keys |= _yaml_keys(value, f"{prefix}{name}.")
    return keys


def test_every_key_has_a_default_and_every_default_is_documented():
    path = default_config_path()
    defaults = yaml.safe_load(path.read_text())
    # The schema has no defaults of its own: the file must set every key it knows, and nothing else.
    assert _yaml_keys(defaults) == _schema_keys(StudyConfig)
    StudyConfig.model_validate(defaults)
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^\s*[A-Za-z_]+:", line):
            documented = "#" in line or lines[number - 1].strip().startswith("#")
            assert documented, f"configs/default.yaml line {number + 1} has no comment: {line!r}"


def test_every_shipped_experiment_is_valid_and_named_after_its_file():
    experiments = sorted((REPO / "experiments").glob("*.yaml"))
    assert {"quickstart.yaml", "memory_length.yaml"} <= {path.name for path in experiments}
    for experiment in experiments:
        base, studies = expand_sweep(experiment)
        assert base.study == experiment.stem
        assert studies and all(study.study.startswith(experiment.stem) for _, study in studies)


def test_a_learning_rate_search_needs_an_open_range_and_a_known_sampling():
    searched = load_config({"search": {"learning_rate": {"min": 0.0003, "max": 0.01, "sampling": "log"}}})
    assert (searched.search.learning_rate.min, searched.search.learning_rate.sampling) == (0.0003, "log")
    assert load_config({}).search.learning_rate is None
    with pytest.raises(
        UserError,
        match=re.escape(
            "--set: search.learning_rate: min (0.01) must be below max (0.001); to fix the learning rate, set "
            "training.learning_rate and leave search.learning_rate null"
        ),
    ):
        load_config({}, ["search.learning_rate={min: 0.01, max: 0.001, sampling: log}"])
    with pytest.raises(
        UserError, match=re.escape("--set: search.learning_rate.sampling must be 'log' or 'linear', got 'reverse'")
    ):
        load_config({}, ["search.learning_rate={min: 0.001, max: 0.01, sampling: reverse}"])
    with pytest.raises(UserError, match=re.escape("--set: evaluation.min_skill must be less than 1, got 1.5")):
        load_config({}, ["evaluation.min_skill=1.5"])


def test_seeds_as_a_schedule_read_back_with_their_rounds():
    config = load_config(REPO / "experiments" / "quickstart.yaml", ["evaluation.seeds={min: 3, max: 12}"])
    evaluation = config.evaluation
    assert (evaluation.sequential, evaluation.initial_seeds, evaluation.max_seeds, evaluation.seeds.step) == (
        True,
        3,
        12,
        2,
    )
    assert config.to_dict()["evaluation"]["seeds"] == {"min": 3, "max": 12, "round": None}
    assert load_config(config.to_dict()) == config  # a seed process and a resumed study read it back the same
    fixed = load_config(REPO / "experiments" / "quickstart.yaml").evaluation
    assert (fixed.sequential, fixed.initial_seeds, fixed.max_seeds) == (False, 5, 5)
    stepped = load_config(REPO / "experiments" / "quickstart.yaml", ["evaluation.seeds={min: 4, max: 20, round: 4}"])
    assert stepped.evaluation.seeds.step == 4

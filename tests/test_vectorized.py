"""Seed runs trained together as one vmapped JAX program (`training.vectorized`) against the same seeds fitted one
by one: the same model, step for step."""

import json
import subprocess
import sys

import pytest

from rnncompare.config import load_config
from rnncompare.training.vectorized import vectorize_refusal

from conftest import SCRIPTS, clean_env

SCRIPT = str(SCRIPTS / "vectorized_equals_separate.py")


def _found(*arguments) -> dict:
    completed = subprocess.run(
        [sys.executable, SCRIPT, *map(str, arguments)], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _both(*arguments):
    found = _found(*arguments)
    return found["separate"], found["together"]


@pytest.mark.slow
def test_a_vectorized_seed_run_trains_what_its_own_fit_trains():
    # 3 seeds in two groups of 2 (one slot a copy that does not count), two stacked GRU layers with dropout 0.3:
    # the same initial weights, dropout masks and batch orders, so the same losses epoch by epoch
    found = _found("gru", 3, 5, 0.01)
    separate, together = found["separate"], found["together"]
    assert sorted(together) == sorted(separate) == ["11", "12", "13"]
    for seed, alone in separate.items():
        joint = together[seed]
        assert joint["status"] == alone["status"] == "FINISHED"
        assert joint["epochs_seen"] == alone["epochs_seen"] == [1, 2, 3]
        for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert joint["history"][name] == pytest.approx(alone["history"][name], rel=1e-5, abs=1e-6), (seed, name)
        for name in ("best_epoch", "epochs_run", "params_total"):
            assert joint["metrics"][name] == alone["metrics"][name]
        assert joint["metrics"]["test_accuracy"] == pytest.approx(alone["metrics"]["test_accuracy"], abs=1e-6)
        assert joint["weights"] == pytest.approx(alone["weights"], rel=1e-5)
    # seeds differ from one another (a copy's state leaking into a real seed would make two alike)
    assert len({tuple(run["history"]["loss"]) for run in together.values()}) == 3
    # a study's 5 seeds whose fits take 0.1 s (as the selected trial's did) are fitted one by one, and say why
    assert found["short"] == {
        "note": "fitted one by one: 5 fits of about 0.1 s (as the search's ran), too short to repay compiling "
        "them together on a CPU (execution.vectorize: auto)",
        "finished": ["FINISHED"] * 5,
    }


@pytest.mark.slow
def test_each_vectorized_seed_stops_early_on_its_own_and_keeps_its_best_epoch():
    # patience 1 over 12 epochs: seeds stop at different epochs; a stopped seed's updates are masked, and its
    # test score is its best epoch's, as with Keras's EarlyStopping and its restored weights
    separate, together = _both("lstm", 12, 1, 0.05)
    stopped = {seed: run["metrics"]["epochs_run"] for seed, run in separate.items()}
    assert len(set(stopped.values())) > 1 or min(stopped.values()) < 12, stopped
    for seed, alone in separate.items():
        joint = together[seed]
        assert joint["metrics"]["epochs_run"] == alone["metrics"]["epochs_run"]
        assert joint["metrics"]["best_epoch"] == alone["metrics"]["best_epoch"]
        assert joint["history"]["val_loss"] == pytest.approx(alone["history"]["val_loss"], rel=1e-4, abs=1e-5)
        assert joint["metrics"]["test_accuracy"] == pytest.approx(alone["metrics"]["test_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_a_diverging_vectorized_seed_fails_alone_as_its_own_fit_does():
    separate, together = _both("simple_rnn", 3, 5, 0.001, "huge")
    for seed, alone in separate.items():
        assert together[seed]["status"] == alone["status"]
        assert together[seed]["reason"] == alone["reason"]
    assert {run["status"] for run in together.values()} == {"FAILED"}
    assert all(
        run["reason"].startswith("FailedTrial: loss became NaN or infinite at epoch") for run in together.values()
    )


def test_vectorizing_needs_jax_and_two_seeds_and_can_be_turned_off():
    config = load_config(None)
    assert config.execution.vectorize == "auto"
    assert vectorize_refusal(config, "jax", 5) is None
    assert vectorize_refusal(config, "tensorflow", 5) == (
        "vectorized seed runs need the JAX backend, and this study runs on tensorflow"
    )
    assert vectorize_refusal(config, "jax", 1) == "one seed run has nothing to train beside it"
    off = load_config(None, ["execution.vectorize=false"])
    assert vectorize_refusal(off, "jax", 5) == "execution.vectorize: false"


def test_auto_fits_seeds_one_by_one_where_their_fits_are_too_short_to_repay_the_compile():
    from rnncompare.core.status import RunStatus
    from rnncompare.core.trials import ArchitectureOutcome, TrialResult
    from rnncompare.orchestration.seed_phase import fit_seconds

    config = load_config(None)
    # 2.2 times as fast together, after a compile of 3 s: 5 fits of 1.0 s save 2.7 s, 5 of 1.2 s save 3.3 s
    assert vectorize_refusal(config, "jax", 5, fit_seconds=1.0) == (
        "5 fits of about 1.0 s (as the search's ran), too short to repay compiling them together on a CPU "
        "(execution.vectorize: auto)"
    )
    assert vectorize_refusal(config, "jax", 5, fit_seconds=1.2) is None
    assert vectorize_refusal(config, "jax", 8, fit_seconds=1.0) is None  # 8 fits save 4.4 s
    forced = load_config(None, ["execution.vectorize=true"])
    assert vectorize_refusal(forced, "jax", 5, fit_seconds=0.1) is None

    # the search's median epochs at the selected trial's time per epoch; another width in proportion to its
    # parameters
    def outcome(epochs_run, selected):
        trials = [
            TrialResult(str(i), {}, RunStatus.FINISHED, {"epochs_run": float(n)}) for i, n in enumerate(epochs_run)
        ]
        return ArchitectureOutcome("gru", trials, "1", {}, selected, {})

    selected = {"epochs_run": 29.0, "seconds_per_epoch": 0.05, "params_total": 1000.0}
    assert fit_seconds(outcome([15, 29, 21, 25], selected)) == pytest.approx(23 * 0.05)
    assert fit_seconds(outcome([15, 29, 21, 25], selected), params_total=1500) == pytest.approx(23 * 0.075)
    assert fit_seconds(outcome([15, 29], {"epochs_run": 29.0})) is None  # no epoch times recorded


def test_the_studys_start_says_how_its_seeds_train():
    from rnncompare.training.vectorized import how_seeds_train

    # on this machine (no GPU) `auto` decides per architecture, once its search has timed the fits
    assert how_seeds_train(load_config(None), "jax") == (
        "trained together as one program (execution.vectorize) where their fits are long enough to repay "
        "compiling it, else one by one"
    )
    forced = load_config(None, ["execution.vectorize=true"])
    assert how_seeds_train(forced, "jax") == "trained together as one program (execution.vectorize)"
    assert how_seeds_train(forced, "tensorflow") == (
        "fitted one by one: vectorized seed runs need the JAX backend, and this study runs on tensorflow"
    )


def test_vectorize_takes_auto_true_or_false_only():
    from rnncompare.core.errors import UserError

    with pytest.raises(UserError) as caught:
        load_config(None, ["execution.vectorize=sometimes"])
    assert str(caught.value) == "--set: execution.vectorize must be auto, true or false, got 'sometimes'"

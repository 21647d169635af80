from rnncompare.core.metrics import CLASSIFICATION
from rnncompare.core.trials import ArchitectureOutcome, TrialResult
from rnncompare.orchestration.progress import Progress
from rnncompare.report import build_summary

from records import architecture, record

NOISY = {"units": 8, "dropout": 0.1 * 3}  # 0.30000000000000004, as keras-tuner's float steps give it


def test_a_float_prints_as_typed_even_when_round():
    from rnncompare.orchestration.progress import _values

    assert (
        _values({"dropout": 0.0, "units": 8, "learning_rate": 0.001}, " ") == "dropout=0.0 units=8 learning_rate=0.001"
    )


def test_progress_lines_print_hyperparameters_as_typed_and_name_the_trial_id(capsys):
    progress = Progress(enabled=True)
    progress.begin_search(["lstm"], 4, CLASSIFICATION)
    trials = progress.trial_observer("lstm")
    trials.trial_started("0", NOISY)
    trials.trial_ended(
        TrialResult(
            "0", NOISY, "FINISHED", {"val_accuracy": 0.5, "best_epoch": 2, "epochs_run": 3, "epochs_after_best": 1}
        )
    )
    seeds = progress.seed_observer("lstm", 2)
    seeds.trial_started("1234", NOISY)
    seeds.trial_ended(
        TrialResult(
            "1234",
            NOISY,
            "FINISHED",
            {"val_accuracy": 0.5, "best_epoch": 2, "epochs_run": 3, "epochs_after_best": 1, "test_accuracy": 0.4},
        )
    )
    progress.architecture_done(
        "lstm",
        ArchitectureOutcome(
            "lstm",
            [],
            "0",
            NOISY,
            {},
            {"test_accuracy": 0.4},
            {"seeds_finished": 2.0, "test_accuracy_mean": 0.4, "test_accuracy_std": 0.01},
        ),
    )
    trial_line, seed_line, done_line = capsys.readouterr().err.splitlines()
    assert trial_line.split()[:6] == ["lstm", "trial", "1/4", "(id", "0)", "units=8"]
    assert "dropout=0.3 " in trial_line and "30000000000000004" not in trial_line
    assert "left in the search" in trial_line
    # a seed line counts seeds and makes no estimate for a search that is over
    assert seed_line.split()[:5] == ["lstm", "seed", "1/2", "units=8", "dropout=0.3"]
    assert "left in the search" not in seed_line and "elapsed" in seed_line
    assert done_line == "lstm best trial id 0 (units=8, dropout=0.3): test accuracy 0.400; over 2 seeds 0.400 +/- 0.010"


def test_a_trial_that_went_on_from_a_checkpoint_counts_its_epochs_from_the_start_of_training(capsys):
    # Hyperband: epochs 3 to 6 on top of another trial's first two, best at 5
    progress = Progress(enabled=True)
    progress.begin_search(["gru"], 6, CLASSIFICATION)
    trials = progress.trial_observer("gru")
    trials.trial_started("5", NOISY)
    trials.trial_ended(
        TrialResult(
            "5", NOISY, "FINISHED", {"val_accuracy": 0.5, "best_epoch": 5, "epochs_run": 4, "epochs_after_best": 1}
        )
    )
    assert "val_accuracy 0.500 best epoch 5/6 " in capsys.readouterr().err


def test_the_closing_lines_print_each_pair_and_the_corrected_bar_it_was_held_to(capsys, tmp_path):
    # lstm vs gru at Welch p 0.034: under 0.05, not under 0.05 / 3 for three pairs, which the rule line says
    study = record(lstm=[0.80, 0.81, 0.79, 0.80, 0.81], gru=[0.82, 0.81, 0.81, 0.81, 0.83])
    study["architectures"].append(architecture("simple_rnn", [0.70, 0.71, 0.69, 0.70, 0.72]))
    Progress(enabled=True).summary(build_summary(study), tmp_path)
    lines = capsys.readouterr().err.splitlines()
    [pair] = [line for line in lines if line.startswith("lstm vs gru: ")]
    assert pair.startswith("lstm vs gru: no significant difference at this number of seeds (Welch p 0.034, ")
    assert lines[lines.index(pair) + 3] == (
        "rule      ASO epsilon_min < 0.2 and Welch's t-test p < 0.0167 (0.05 after Bonferroni over 3 pair(s))"
    )

"""Hand-built study records, as `tracking.reader` returns them: for tests of the report and the console, no
training and no tracking store."""

SELECTED = {
    "val_loss": 0.5,
    "val_accuracy": 0.8,
    "test_loss": 0.6,
    "test_accuracy": 0.79,
    "test_f1_macro": 0.78,
    "gap_loss": 0.1,
    "gap_accuracy": 0.05,
    "gap_loss_last": 0.2,
    "gap_accuracy_last": 0.07,
    "val_loss_rise": 0.0,
    "best_epoch": 4.0,
    "epochs_run": 5.0,
    "epochs_after_best": 1.0,
    "seconds_per_epoch": 0.2,
    "params_total": 3418.0,
    "params_trainable": 3418.0,
    "trials_finished": 2.0,
    "trials_failed": 1.0,
}


def seed(value: int, score: float) -> dict:
    metrics = {
        "test_accuracy": score,
        "test_loss": 1 - score,
        "test_f1_macro": score - 0.01,
        "best_epoch": 4.0,
        "epochs_run": 5.0,
        "gap_accuracy": 0.05,
        "gap_loss": 0.1,
        "epochs_after_best": 1.0,
        "val_loss_rise": 0.0,
    }
    return {
        "seed": value,
        "status": "FINISHED",
        "metrics": metrics,
        "trial_id": "",
        "run_id": f"s{value}",
        "hyperparameters": {},
        "failure_reason": None,
        "history": {},
    }


def architecture(name: str, scores: list[float], test_accuracy: float = 0.79) -> dict:
    trials = [
        {
            "trial_id": "0",
            "run_id": f"{name}0",
            "status": "FINISHED",
            "failure_reason": None,
            "hyperparameters": {"units": 24, "dropout": 0.0},
            "metrics": {"params_total": 3418.0, "best_val_accuracy": 0.8},
        },
        {
            "trial_id": "1",
            "run_id": f"{name}1",
            "status": "FAILED",
            "hyperparameters": {"units": 8},
            "metrics": {},
            "failure_reason": "FailedTrial: loss became NaN or infinite at epoch 1",
        },
    ]
    return {
        "name": name,
        "run_id": f"run-{name}",
        "status": "FINISHED",
        "best_trial_id": "0",
        "best_history": {},
        "params": {"architecture": name, "units": 24, "dropout": 0.0, "layers": 1, "learning_rate": 0.001},
        "metrics": {**SELECTED, "test_accuracy": test_accuracy},
        "trials": trials,
        "seeds": [seed(index, score) for index, score in enumerate(scores)],
    }


def record(lstm: list[float], gru: list[float], sweep: dict | None = None, kind: str = "classification") -> dict:
    return {
        "study": "hand",
        "study_run_id": "study-run",
        "config": {
            "seed": 7,
            "task": {"name": "digits"},
            "search": {},
            "training": {"patience": 2},
            "tuner": {"algorithm": "random", "max_trials": 2, "epochs": 5, "batch_size": 32, "objective": "val_loss"},
            "evaluation": {"confidence": 0.95, "aso_threshold": 0.2, "aso_bootstrap": 50},
        },
        "dataset": {"kind": kind, "baseline_test_accuracy": "0.1"},
        "sweep": sweep or {},
        "architectures": [architecture("lstm", lstm), architecture("gru", gru)],
        "matched": [],
    }


WORSE, BETTER = [0.70, 0.71, 0.69, 0.70, 0.72], [0.90, 0.91, 0.89, 0.92, 0.90]

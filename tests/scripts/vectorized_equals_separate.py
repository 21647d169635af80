"""Run by tests/test_vectorized.py in a process of its own under JAX: the same seeds fitted one by one and trained
together (in two vmapped groups, the second filled up with a copy), printed as JSON; for the GRU also what
`start_seeds` says of a study's seeds whose fits are too short to repay compiling them together."""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from rnncompare.orchestration.preflight import check_config_and_data
from rnncompare.training.draws import SeedDraws
from rnncompare.training.seed_runs import SeedModels, start_seeds, train_seeds

architecture, epochs, patience, learning_rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
task_config = {"name": "digits"}
if sys.argv[5:] == ["huge"]:
    # targets near 1e25: their squared error overflows float32, so the loss is infinite at once
    path = Path(tempfile.mkdtemp()) / "huge.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(100, 5, 2)), y=rng.normal(size=100) * 1e25)
    task_config = {"name": "npz", "path": str(path), "kind": "regression"}
config, task = check_config_and_data(
    {
        "task": task_config,
        "execution": {"backend": "jax"},
        "tuner": {"epochs": epochs, "batch_size": 64},
        "training": {"patience": patience},
    }
)
hyperparameters = {
    "architecture": architecture,
    "units": 16,
    "dropout": 0.3,
    "layers": 2,
    "learning_rate": learning_rate,
}


class Epochs:
    def __init__(self):
        self.seen = {}

    def trial_started(self, trial_id, hyperparameters, started_at=None):
        self.seen.setdefault(trial_id, [])

    def epoch_ended(self, trial_id, epoch, metrics):
        self.seen[trial_id].append(epoch)

    def trial_ended(self, result):
        pass


def runs(together):
    observer = Epochs()
    draws = SeedDraws(config, task)
    trained, note = train_seeds(
        SeedModels(hyperparameters, task),
        {},
        [draws.draw(seed) for seed in (11, 12, 13)],
        config,
        observer,
        together,
        threads=2,
    )
    assert note is None, note
    return {
        run.result.trial_id: {
            "status": run.result.status.value,
            "reason": run.result.failure_reason,
            "history": run.result.history,
            "metrics": run.result.metrics,
            "epochs_seen": observer.seen[run.result.trial_id],
            "weights": None if run.weights is None else float(sum(np.abs(w).sum() for w in run.weights)),
        }
        for run in trained
    }


found = {"separate": runs(False), "together": runs(True)}
if architecture == "gru":
    searched = {name: hyperparameters[name] for name in ("units", "dropout", "layers")}
    pending = start_seeds(architecture, searched, config, task, Epochs(), fit_seconds=0.1)
    found["short"] = {"note": pending.note, "finished": [r.status.value for r in pending.results()]}
print(json.dumps(found))

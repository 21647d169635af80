"""kill -9 at any point, run the same command again: the same runs as an uninterrupted study, none doubled.

The kill is the real thing: `killing_env(k)` (tests/scripts/fault_injection) makes the process send itself SIGKILL
at the end of its k-th epoch (trials and seed runs counted together), so nothing gets a chance to clean up.
"""

import json
import re
import shutil
import signal
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from conftest import SCRIPTS, clean_env, killing_env, rnncompare

pytestmark = pytest.mark.slow

STUDY = """\
study: resume
architectures: {architectures}
search:
  units: {{min: 8, max: 16, step: 8}}
  dropout: {{min: 0.0, max: 0.1, step: 0.1}}
tuner: {{algorithm: {algorithm}, max_trials: {trials}, epochs: {epochs}, batch_size: 128}}
evaluation: {{seeds: {seeds}, aso_bootstrap: 200}}
"""


def write_study(folder, algorithm="random", architectures="[lstm, gru]", trials=2, epochs=2, seeds=2):
    folder.mkdir()
    (folder / "study.yaml").write_text(
        STUDY.format(algorithm=algorithm, architectures=architectures, trials=trials, epochs=epochs, seeds=seeds)
    )
    return folder


def killed_run(folder, kill_at_epoch):
    """`rnncompare run study.yaml` in its own process, which kills itself at the end of its k-th epoch."""
    return rnncompare("run", "study.yaml", cwd=folder, env=killing_env(kill_at_epoch))


@pytest.fixture
def run(cli):
    """`rnncompare run study.yaml` run to its end: in this process (cheaper than a new one; nothing kills it)."""

    def run_to_end(folder, *extra):
        return cli("run", "study.yaml", *extra, cwd=folder)

    return run_to_end


# The study that is never interrupted, for the tests that compare an interrupted one with it: run once per test
# process (the tests that use it share an xdist group).
WHOLE: dict = {}


def uninterrupted(tmp_path_factory, run):
    """The folder of `write_study`'s default study run to its end once."""
    if "folder" not in WHOLE:
        folder = write_study(tmp_path_factory.mktemp("whole") / "whole")
        completed = run(folder)
        assert completed.returncode == 0, completed.stderr
        WHOLE["folder"] = folder
    return WHOLE["folder"]


def all_runs(folder):
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("resume")
    return client.search_runs([experiment.experiment_id], max_results=500)


def key(run):
    tags = run.data.tags
    return (
        tags["rnncompare.role"],
        tags.get("rnncompare.architecture"),
        tags.get("rnncompare.trial_id") or tags.get("rnncompare.seed"),
    )


def finished(folder):
    """Every FINISHED run by (role, architecture, trial or seed), with what it chose and scored."""
    table = {}
    for run in all_runs(folder):
        if run.info.status == "FINISHED":
            assert key(run) not in table, f"{key(run)} finished twice"
            metrics = run.data.metrics
            table[key(run)] = (
                run.data.params.get("units"),
                run.data.params.get("dropout"),
                metrics.get("best_val_loss"),
                metrics.get("test_accuracy"),
            )
    return table


@pytest.mark.xdist_group("resume-whole")
def test_kill_9_in_a_trial_and_in_a_seed_run_then_resume_equals_an_uninterrupted_study(tmp_path, tmp_path_factory, run):
    killed = write_study(tmp_path / "killed")
    # epochs 1-2: lstm trial 0; 3: lstm trial 1, epoch 1 -> killed in the middle of a trial
    assert killed_run(killed, 3).returncode == -signal.SIGKILL
    # resumed: epochs 1-2 rerun lstm trial 1; 3-4 lstm seed 1; 5: lstm seed 2, epoch 1 -> killed in a seed run
    second = killed_run(killed, 5)
    assert second.returncode == -signal.SIGKILL
    assert "resume    continuing study run" in second.stderr
    third = run(killed)
    assert third.returncode == 0, third.stderr
    assert "(lstm done)" not in third.stderr  # lstm's seeds were not all done: it was resumed, not skipped
    whole = uninterrupted(tmp_path_factory, run)

    # the same runs, with the same hyperparameters and the same scores, as the study that was never killed
    assert finished(killed) == finished(whole)
    runs = all_runs(killed)
    assert not [run for run in runs if run.info.status == "RUNNING"]
    interrupted = sorted(key(run) for run in runs if run.info.status == "KILLED")
    assert [entry[:2] for entry in interrupted] == [("seed", "lstm"), ("trial", "lstm")]
    assert interrupted[1][2] == "1"
    assert all(
        run.data.tags["rnncompare.failure_reason"].startswith("interrupted")
        for run in runs
        if run.info.status == "KILLED"
    )
    assert len([run for run in runs if key(run)[0] == "study"]) == 1
    # runs reopened and finished by the resume (study, lstm) no longer carry the "interrupted" mark
    assert not [
        key(run) for run in runs if run.info.status == "FINISHED" and "rnncompare.failure_reason" in run.data.tags
    ]

    # and the same report numbers
    def seed_scores(folder):
        summary = json.loads((folder / "mlruns" / "reports" / "resume" / "summary.json").read_text())
        return {name: row["seeds"]["scores"] for name, row in summary["architectures"].items()}

    assert seed_scores(killed) == seed_scores(whole)


@pytest.mark.parametrize(
    "algorithm, expected",
    [
        # keras-tuner 1.4.8's GridSearch loses its trial order on reload: rnncompare persists it (see tuning.py)
        ("grid", {"0": ("8", "0.0"), "1": ("8", "0.1"), "2": ("16", "0.0")}),
        ("bayesian", {"0", "1", "2"}),
        ("hyperband", None),
    ],
)
def test_resume_works_with_every_tuner_algorithm(tmp_path, run, algorithm, expected):
    options = dict(
        algorithm=algorithm, architectures="[gru]", trials=3, epochs=4 if algorithm == "hyperband" else 2, seeds=0
    )
    killed = write_study(tmp_path / "killed", **options)
    assert killed_run(killed, 3).returncode == -signal.SIGKILL
    resumed = run(killed)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr and "Reloading" not in resumed.stdout
    assert [run.info.status for run in all_runs(killed) if run.info.status not in ("FINISHED", "KILLED")] == []
    trials = {entry[2]: values[:2] for entry, values in finished(killed).items() if entry[0] == "trial"}
    if isinstance(expected, set):
        assert set(trials) == expected and len(set(trials.values())) == 3
    elif expected is not None:
        assert trials == expected
    else:  # the reference: the same study never killed
        whole = write_study(tmp_path / "whole", **options)
        assert run(whole).returncode == 0
        assert finished(killed) == finished(whole)


@pytest.mark.xdist_group("resume-whole")
def test_ctrl_c_closes_the_runs_as_killed_says_how_to_resume_and_the_resume_equals_an_uninterrupted_study(
    tmp_path, tmp_path_factory, run
):
    interrupted = write_study(tmp_path / "interrupted")
    study = subprocess.Popen(
        [sys.executable, "-m", "rnncompare", "run", "study.yaml"],
        cwd=interrupted,
        env=clean_env(),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    printed = []
    for line in study.stderr:  # Ctrl-C once the first trial has finished, in the middle of the second
        printed.append(line)
        if " trial 1/2 " in line:
            study.send_signal(signal.SIGINT)
            break
    printed += study.stderr.readlines()
    assert study.wait(timeout=120) == 130, "".join(printed)
    assert printed[-1] == "interrupted: run the same command again to resume (what finished is kept)\n"
    assert "Traceback" not in "".join(printed)
    runs = all_runs(interrupted)
    assert not [key(r) for r in runs if r.info.status == "RUNNING"]
    assert ("study", None, None) in [key(r) for r in runs if r.info.status == "KILLED"]
    assert [key(r) for r in runs if r.info.status == "FINISHED"] == [("trial", "lstm", "0")]

    resumed = run(interrupted)
    assert resumed.returncode == 0, resumed.stderr
    assert "resume    continuing study run" in resumed.stderr
    # every run once, with the same scores
    assert finished(interrupted) == finished(uninterrupted(tmp_path_factory, run))
    # where the Ctrl-C came after the trial's run finished but before keras-tuner recorded it, the tuner ran the
    # trial again: the second run is KILLED, saying which run counts
    for killed in (r for r in all_runs(interrupted) if r.info.status == "KILLED"):
        assert re.match(
            r"interrupted|trial 0 ran twice; run \w+ is the one that counts",
            killed.data.tags["rnncompare.failure_reason"],
        )


def test_sigterm_closes_the_runs_as_ctrl_c_does(tmp_path, run):
    # `kill`, `docker stop`, a scheduler's preemption: the runs were left RUNNING until a resume
    folder = write_study(tmp_path / "terminated", architectures="[gru]", trials=2, seeds=0)
    study = subprocess.Popen(
        [sys.executable, "-m", "rnncompare", "run", "study.yaml"],
        cwd=folder,
        env=clean_env(),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    printed = []
    for line in study.stderr:
        printed.append(line)
        if " trial 1/2 " in line:
            study.terminate()
            break
    printed += study.stderr.readlines()
    assert study.wait(timeout=120) == 143, "".join(printed)
    assert printed[-1] == "terminated: run the same command again to resume (what finished is kept)\n"
    statuses = {key(r): r.info.status for r in all_runs(folder)}
    assert "RUNNING" not in statuses.values() and statuses[("study", None, None)] == "KILLED"
    assert run(folder).returncode == 0


def test_a_search_of_another_config_run_since_the_interruption_is_not_resumed_from(tmp_path, run):
    # config A interrupted; config B of the same study run to its end in the same tuner folder; A again: keras-tuner
    # would go on from B's trials, and A's report would miss its own
    folder = write_study(tmp_path / "two", architectures="[gru]", trials=2, seeds=0)
    assert killed_run(folder, 3).returncode == -signal.SIGKILL
    assert run(folder, "--set", "tuner.epochs=1").returncode == 0
    left = sorted((key(r), r.info.status, r.info.run_id) for r in all_runs(folder))
    refused = run(folder)
    assert refused.returncode == 2
    assert re.fullmatch(
        r"error: tuner.dir: cannot resume resume \(config \w{16}\): mlruns/tuner/resume now holds the "
        r"search of another config of the study \(\w{16}\), run after this one was interrupted; run "
        r"again with --fresh to start this config over\n",
        refused.stderr,
    ), refused.stderr
    assert sorted((key(r), r.info.status, r.info.run_id) for r in all_runs(folder)) == left  # nothing written
    assert run(folder, "--fresh").returncode == 0


HOLD_THE_STUDY = str(SCRIPTS / "hold_the_study.py")


def test_a_study_still_running_in_another_process_is_refused_not_taken_over(tmp_path, run):
    # resume takes over a study run that never finished: one that is still running must not be
    folder = write_study(tmp_path / "busy", architectures="[gru]", trials=1, seeds=0)
    holder = subprocess.Popen(
        [sys.executable, HOLD_THE_STUDY], cwd=folder, env=clean_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "holding\n"
        refused = run(folder)
        assert refused.returncode == 2
        assert re.fullmatch(
            rf"error: study resume is already running \(pid {holder.pid} on [^ ]+ since [-0-9]+ [:0-9]+; its lock is "
            r"mlruns/tuner/resume.lock\): let it finish, or stop it and run the same command again to resume\n",
            refused.stderr,
        ), refused.stderr
        client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
        assert client.get_experiment_by_name("resume") is None  # nothing written to the store
    finally:
        holder.kill()
        holder.wait()
    # the system dropped the lock with the killed process: the study is free to run (or resume)
    completed = run(folder)
    assert completed.returncode == 0, completed.stderr
    # and this process let it go when the study ended
    from rnncompare.config import load_config
    from rnncompare.orchestration.context import StudyLock

    StudyLock(load_config(folder / "study.yaml", ["tuner.dir=" + str(folder / "mlruns" / "tuner")])).release()


def test_fresh_starts_over_and_closes_the_interrupted_run(tmp_path, run):
    folder = write_study(tmp_path / "fresh", architectures="[gru]", trials=1, seeds=0)
    assert killed_run(folder, 1).returncode == -signal.SIGKILL
    shutil.rmtree(folder / "mlruns" / "tuner")
    left_by_the_kill = sorted((key(run), run.info.status) for run in all_runs(folder))
    refused = run(folder)
    assert refused.returncode == 2
    assert refused.stderr == (
        "error: tuner.dir: cannot resume resume: mlruns/tuner/resume/gru is gone; run again "
        "with --fresh to start the study over\n"
    )
    # the refusal is found before anything is written: the interrupted runs are exactly as the kill left them
    assert sorted((key(run), run.info.status) for run in all_runs(folder)) == left_by_the_kill
    completed = run(folder, "--fresh")
    assert completed.returncode == 0, completed.stderr
    assert "continuing study run" not in completed.stderr
    studies = sorted((run.info.start_time, run.info.status) for run in all_runs(folder) if key(run)[0] == "study")
    # the interrupted study run is closed as interrupted (KILLED), never reopened
    assert [status for _, status in studies] == ["KILLED", "FINISHED"]
    assert len(finished(folder)) == 3  # the new study run, its architecture run and its one trial

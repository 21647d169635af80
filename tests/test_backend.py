"""execution.backend: the Keras backend is settled before Keras is imported, logged on every run, and a study
runs end to end under JAX with the same search (trial for trial) as under TensorFlow."""

import csv
import json
import os
import subprocess
import sys

import keras  # this test process runs Keras on TensorFlow (conftest): the mismatch below is real
import pytest
from mlflow.tracking import MlflowClient

from rnncompare.compat import jax as jax_compat
from rnncompare.compat.jax import cheaper_cpu_fusions
from rnncompare.runtime import backend, xla
from rnncompare.runtime.backend import BackendUnavailable, choose_backend, gpu_present, share_gpu_memory
from rnncompare.runtime.xla import cheaper_cpu_compiles

from conftest import REPO, SCRIPTS, TINY_STUDY, clean_env


def test_auto_keeps_the_backend_keras_already_runs_on():
    assert keras.config.backend() == "tensorflow"
    assert choose_backend("auto") == "tensorflow"
    with pytest.raises(
        BackendUnavailable, match="jax asked for, but this process already imported Keras with tensorflow"
    ):
        choose_backend("jax")
    assert os.environ["KERAS_BACKEND"] == "tensorflow"


def test_auto_picks_jax_on_a_cpu_machine_and_tensorflow_beside_a_gpu():
    env = {key: value for key, value in clean_env().items() if key != "KERAS_BACKEND"}
    completed = subprocess.run(
        [sys.executable, "-c", "from rnncompare.runtime.backend import choose_backend; print(choose_backend('auto'))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == ("tensorflow" if gpu_present() else "jax")
    # KERAS_BACKEND (the user's, or a study's handed to its workers) is kept by auto
    completed = subprocess.run(
        [sys.executable, "-c", "from rnncompare.runtime.backend import choose_backend; print(choose_backend('auto'))"],
        env={**env, "KERAS_BACKEND": "tensorflow"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == "tensorflow"


def test_the_processes_of_a_study_take_gpu_memory_as_they_need_it_unless_the_user_says_otherwise(monkeypatch):
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")
    share_gpu_memory()
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"  # JAX would take 75% of the GPU at start
    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH")
    share_gpu_memory()
    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def test_under_jax_on_a_cpu_xla_compiles_at_optimization_level_1_unless_the_user_set_one(monkeypatch):
    monkeypatch.setattr(xla, "gpu_present", lambda: False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setattr(backend, "keras_backend_in_use", lambda: None)  # as in a study's process before Keras
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    cheaper_cpu_compiles()
    cheaper_cpu_compiles()  # a worker started by a study runs it again: the flag once
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_enable_fast_math=false --xla_backend_optimization_level=1"
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    cheaper_cpu_compiles()
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=3"
    monkeypatch.delenv("XLA_FLAGS")
    monkeypatch.setattr(xla, "gpu_present", lambda: True)  # its kernels would be compiled at that level too
    cheaper_cpu_compiles()
    monkeypatch.setattr(xla, "gpu_present", lambda: False)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    cheaper_cpu_compiles()
    assert "XLA_FLAGS" not in os.environ


def test_under_jax_on_a_cpu_xla_uses_its_faster_compiling_fusion_kernels_when_asked_unless_the_user_chose(monkeypatch):
    monkeypatch.setattr(jax_compat, "gpu_present", lambda: False)
    monkeypatch.setattr(jax_compat, "jax_started", lambda: False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setattr(backend, "keras_backend_in_use", lambda: None)
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=1")
    assert cheaper_cpu_fusions() and cheaper_cpu_fusions()  # a worker started by a study asks again: the flag once
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false"
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true")
    assert not cheaper_cpu_fusions() and os.environ["XLA_FLAGS"] == "--xla_cpu_use_fusion_emitters=true"
    monkeypatch.delenv("XLA_FLAGS")
    monkeypatch.setattr(jax_compat, "jax_started", lambda: True)  # too late: its CPU backend read XLA_FLAGS already
    assert not cheaper_cpu_fusions() and "XLA_FLAGS" not in os.environ
    monkeypatch.setattr(jax_compat, "jax_started", lambda: False)
    monkeypatch.setattr(jax_compat, "gpu_present", lambda: True)  # its kernels are not the CPU's
    assert not cheaper_cpu_fusions() and "XLA_FLAGS" not in os.environ
    monkeypatch.setattr(jax_compat, "gpu_present", lambda: False)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert not cheaper_cpu_fusions() and "XLA_FLAGS" not in os.environ


TEXT_TASK_SCRIPT = str(SCRIPTS / "text_task.py")


def test_auto_settles_the_backend_before_a_text_task_and_its_tokenizer_imports_no_tensorflow(tmp_path):
    # Measured on 2 cores (2026-11-29; digits, JapaneseVowels, the adding problem at 100 steps): a new model costs
    # no more under JAX than TensorFlow's tracing, and its epochs are 1.5-9x faster, so on CPU auto is JAX for every
    # study; a text task (whose tokenizer imported Keras) used to settle on TensorFlow by importing it first
    (tmp_path / "reviews.csv").write_text("text,label\n" + "good day,pos\nbad day,neg\n" * 20)
    env = {key: value for key, value in clean_env().items() if key != "KERAS_BACKEND"}
    completed = subprocess.run(
        [sys.executable, TEXT_TASK_SCRIPT, str(tmp_path / "reviews.csv")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # padding, unknown, 3 words; the tokenizer needs no TensorFlow (Keras's own layer did, under either backend)
    on_gpu = gpu_present()
    assert completed.stdout.split() == ["5", "tensorflow" if on_gpu else "jax", str(on_gpu)]


KERAS_SERIALIZES_UNDER_JAX = str(SCRIPTS / "keras_serializes_under_jax.py")


def test_under_jax_a_process_that_logs_models_without_training_them_imports_no_tensorflow():
    # Keras's serialization imports TensorFlow to ask whether it is installed: a chief with workers printed its
    # start-up notices among the progress lines, and paid 2.5 s for them
    completed = subprocess.run(
        [sys.executable, KERAS_SERIALIZES_UNDER_JAX],
        env=clean_env(KERAS_BACKEND="jax"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["jax", "False"]
    assert "absl::InitializeLog" not in completed.stderr


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            "execution.backend=torch",
            "error: --set: execution.backend must be 'auto', 'tensorflow' or 'jax', got 'torch'",
        ),
        (
            "execution.backend=jax",
            "error: execution.backend: jax asked for, but this process already imported Keras "
            "with tensorflow (a Keras backend is fixed at its import): use tensorflow or auto, or "
            "a new process",
        ),
    ],
)
def test_a_backend_that_cannot_run_is_one_line_and_writes_nothing(cli, tmp_path, setting, message):
    completed = cli("run", str(REPO / "experiments" / "quickstart.yaml"), "--set", setting, cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip() == message
    assert list(tmp_path.iterdir()) == []


CLI_THEN_TELL_TENSORFLOW = str(SCRIPTS / "cli_then_tell_tensorflow.py")

LOAD_LOGGED_MODELS = str(SCRIPTS / "load_logged_models.py")


@pytest.mark.slow
def test_a_study_under_jax_searches_the_same_trials_and_logs_its_backend_on_every_run(tmp_path):
    # the tiny study, two architectures of it (each new model compiles for a second or two under JAX); the seed
    # runs of the first train in a second process while the second is searched (on 3 cores, as the run pretends),
    # together as one vmapped program (`true`: `auto` would fit these 2-epoch seeds one by one)
    (tmp_path / "tiny.yaml").write_text(
        TINY_STUDY.replace("[lstm, gru, simple_rnn]", "[lstm, gru]").replace(
            "  match_params: true\n  reference: lstm\n", ""
        )
        + "execution: {backend: jax, vectorize: true}\n"
    )
    completed = subprocess.run(
        [sys.executable, CLI_THEN_TELL_TENSORFLOW],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "the seed runs train in another, beside the next search" in completed.stderr
    assert "seeds     2 per model, trained together as one program (execution.vectorize); " in completed.stderr
    assert "XLA's faster-compiling CPU kernels (short fits)" in completed.stderr  # its fits are 2 epochs
    assert "/step" not in completed.stdout  # no Keras progress bar while a model is logged (from Keras's thread)
    # Keras seeds TensorFlow wherever it can import it: 3 s of every JAX process, for nothing
    assert completed.stdout.strip().splitlines()[-1] == "tensorflow imported: False"

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    roles = sorted({run.data.tags["rnncompare.role"] for run in runs})
    assert roles == ["architecture", "seed", "study", "trial"]
    assert {run.data.tags.get("rnncompare.backend") for run in runs} == {"jax"}
    assert all(run.info.status == "FINISHED" for run in runs)

    # random search draws from the oracle, not from the backend: the same trials, widths and parameter counts as
    # the TensorFlow recording of the same study; the scores are this backend's own
    def trials(path):
        with open(path) as handle:
            return [
                (row["architecture"], row["trial_id"], row["hp_units"], row["hp_dropout"], row["params_total"])
                for row in csv.DictReader(handle)
                if row["architecture"] in ("lstm", "gru")
            ]

    report = tmp_path / "mlruns" / "reports" / "tiny"
    recorded = trials(REPO / "tests" / "data" / "before_redesign" / "runs.csv")
    assert len(recorded) == 4 and trials(report / "runs.csv") == recorded
    summary = json.loads((report / "summary.json").read_text())
    assert summary["backend"] == "jax"
    for row in summary["architectures"].values():
        assert len(row["seeds"]["seeds"]) == 2 and row["seeds"]["failed"] == 0
    assert "Trained with Keras on jax" in (report / "report.md").read_text()

    # the logged models are Keras's own layers (`models.portable_model`): they load and predict where rnncompare
    # was never imported
    architecture_runs = {
        run.data.tags["rnncompare.architecture"]: run
        for run in runs
        if run.data.tags["rnncompare.role"] == "architecture"
    }
    loaded = subprocess.run(
        [
            sys.executable,
            LOAD_LOGGED_MODELS,
            client.tracking_uri,
            *(run.info.run_id for run in architecture_runs.values()),
        ],
        cwd=tmp_path,
        env=clean_env(KERAS_BACKEND="jax"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr
    accuracies = [float(value) for value in loaded.stdout.strip().splitlines()[-1].split()]
    assert accuracies == pytest.approx(
        [run.data.metrics["test_accuracy"] for run in architecture_runs.values()], abs=1e-6
    )

    # the same study again, in the same folder, on the same (pretended) cores: every program comes from the
    # compilation cache (none is added), and every trial and seed scores exactly what it scored the first time (a
    # seed trained on another number of threads scores the same to about 1e-7)
    cache = tmp_path / "mlruns" / "cache" / "jax"
    cached = sorted(path.name for path in cache.iterdir())
    assert len(cached) > 20
    again = subprocess.run(
        [sys.executable, CLI_THEN_TELL_TENSORFLOW],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert again.returncode == 0, again.stderr
    assert "compiled programs kept in mlruns/cache/jax" in again.stderr
    assert sorted(path.name for path in cache.iterdir()) == cached

    def scores(study_run_id):
        children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{study_run_id}'")
        found = {}
        for architecture_run in children:
            for run in client.search_runs(
                [experiment.experiment_id], f"tags.mlflow.parentRunId = '{architecture_run.info.run_id}'"
            ):
                key = (
                    run.data.tags["rnncompare.architecture"],
                    run.data.tags["rnncompare.role"],
                    run.data.tags.get("rnncompare.trial_id") or run.data.tags["rnncompare.seed"],
                )
                found[key] = {name: value for name, value in run.data.metrics.items() if "seconds" not in name}
        return found

    study_runs = client.search_runs(
        [experiment.experiment_id], "tags.`rnncompare.role` = 'study'", order_by=["attributes.start_time ASC"]
    )
    first, second = (scores(run.info.run_id) for run in study_runs)
    assert len(first) == 8 and second == first


SEED_ORDER_SCRIPT = str(SCRIPTS / "seed_order.py")


@pytest.mark.slow
def test_under_jax_a_seed_gives_the_same_weights_whichever_seed_ran_before_it():
    # seed runs share one compiled model; a resumed study reruns only the seeds it lacks, in another order
    completed = subprocess.run(
        [sys.executable, SEED_ORDER_SCRIPT], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert float(completed.stdout.strip().splitlines()[-1]) == 0.0


FLAT_DRAW_SCRIPT = str(SCRIPTS / "flat_draw.py")


@pytest.mark.slow
def test_under_jax_weights_drawn_as_flat_vectors_are_the_bits_keras_draws():
    # `cheaper_jax_initializers`: one compile per power-of-two length instead of one per weight shape, and the
    # orthogonal and constant initializers on the host; the same numbers: every built model's initial weights,
    # plain draws, a draw with another mean and spread (Keras's own), one inside a traced function (Keras's own),
    # orthogonal weights of three dimensions, tall, wide and traced (Keras's own), constants
    completed = subprocess.run(
        [sys.executable, FLAT_DRAW_SCRIPT], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "same 9 11"


BACKGROUND_WRITES_SCRIPT = str(SCRIPTS / "background_writes.py")


@pytest.mark.slow
def test_under_jax_the_main_thread_leaves_its_compile_cache_writes_to_a_thread_that_finishes_them_at_exit(tmp_path):
    completed = subprocess.run(
        [sys.executable, BACKGROUND_WRITES_SCRIPT, str(tmp_path / "cache")],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    result, ahead, writes, cached = completed.stdout.strip().splitlines()[-4:]
    assert result == "[1.5231883525848389, 1.5231883525848389, 1.5231883525848389]"
    assert ahead == "1"  # another thread's compile is written before its compile returns, as JAX writes it
    assert writes == "[('jit_doubled_tanh', 'rnncompare-compile-cache_0'), ('jit_shifted_cos', 'ahead')]"
    assert cached == "['jit_doubled_tanh', 'jit_shifted_cos']"

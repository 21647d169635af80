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

from conftest import REPO, TINY_STUDY, clean_env


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


TEXT_TASK_SCRIPT = """
from rnncompare.orchestration.preflight import check_config_and_data
config, task = check_config_and_data({"study": "reviews", "architectures": ["lstm"],
                                      "task": {"name": "text_csv", "path": %r, "embedding_dim": 4}})
import sys
import keras
print(task.input_spec.vocabulary, keras.config.backend(), "tensorflow" in sys.modules)
"""


def test_auto_settles_the_backend_before_a_text_task_and_its_tokenizer_imports_no_tensorflow(tmp_path):
    # Measured on 2 cores (2026-11-29; digits, JapaneseVowels, the adding problem at 100 steps): a new model costs
    # no more under JAX than TensorFlow's tracing, and its epochs are 1.5-9x faster, so on CPU auto is JAX for every
    # study; a text task (whose tokenizer imported Keras) used to settle on TensorFlow by importing it first
    (tmp_path / "reviews.csv").write_text("text,label\n" + "good day,pos\nbad day,neg\n" * 20)
    env = {key: value for key, value in clean_env().items() if key != "KERAS_BACKEND"}
    completed = subprocess.run(
        [sys.executable, "-c", TEXT_TASK_SCRIPT % str(tmp_path / "reviews.csv")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # padding, unknown, 3 words; the tokenizer needs no TensorFlow (Keras's own layer did, under either backend)
    on_gpu = gpu_present()
    assert completed.stdout.split() == ["5", "tensorflow" if on_gpu else "jax", str(on_gpu)]


KERAS_SERIALIZES_UNDER_JAX = """
import sys
from rnncompare.compat.frameworks import import_deep_learning
import_deep_learning()
import keras
keras.layers.LSTM(4).get_config()  # what logging a model to MLflow calls, in a chief that trained nothing
print(keras.config.backend(), "tensorflow" in sys.modules)
"""


def test_under_jax_a_process_that_logs_models_without_training_them_imports_no_tensorflow():
    # Keras's serialization imports TensorFlow to ask whether it is installed: a chief with workers printed its
    # start-up notices among the progress lines, and paid 2.5 s for them
    completed = subprocess.run(
        [sys.executable, "-c", KERAS_SERIALIZES_UNDER_JAX],
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


CLI_THEN_TELL_TENSORFLOW = """
import sys
from rnncompare.cli import main
from rnncompare.orchestration.distributed import loopback
loopback.available_cores = lambda: 3  # where a JAX study in one process trains its seed runs in a second one
status = main(["run", "tiny.yaml"])
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(status)
"""

LOAD_LOGGED_MODELS = """
import sys
import mlflow
import numpy as np
mlflow.set_tracking_uri(sys.argv[1])
models = [mlflow.pyfunc.load_model(f"runs:/{run_id}/model") for run_id in sys.argv[2:]]
assert not any(name.startswith("rnncompare") for name in sys.modules), "rnncompare was imported"
from rnncompare.config import load_config
from rnncompare.tasks import load_task
config = load_config("tiny.yaml")
task = load_task(config.task, config.seed)
print(*(np.mean(np.argmax(model.predict(task.x_test), axis=-1) == task.y_test) for model in models))
"""


@pytest.mark.slow
def test_a_study_under_jax_searches_the_same_trials_and_logs_its_backend_on_every_run(tmp_path):
    # the tiny study, two architectures of it (each new model compiles for a second or two under JAX); the seed
    # runs of the first train in a second process while the second is searched (on 3 cores, as the run pretends)
    (tmp_path / "tiny.yaml").write_text(
        TINY_STUDY.replace("[lstm, gru, simple_rnn]", "[lstm, gru]").replace(
            "  match_params: true\n  reference: lstm\n", ""
        )
        + "execution: {backend: jax}\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", CLI_THEN_TELL_TENSORFLOW],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "the seed runs train in another, beside the next search" in completed.stderr
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
            "-c",
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
        [sys.executable, "-c", CLI_THEN_TELL_TENSORFLOW],
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


SEED_ORDER_SCRIPT = """
import numpy as np
from rnncompare.orchestration.preflight import check_config_and_data
config, task = check_config_and_data({"execution": {"backend": "jax"}})
from rnncompare.training.seed_runs import SeedModels
from rnncompare.training.fitting import fit_arguments
hyperparameters = {"architecture": "gru", "units": 8, "dropout": 0.2, "layers": 1, "learning_rate": 0.001}

def fit(model):
    model.fit(**fit_arguments(task, 128), epochs=1, verbose=0)
    return model.get_weights()

after_another = SeedModels(hyperparameters, task)
fit(after_another.for_seed(1))
second = fit(after_another.for_seed(2))
first = fit(SeedModels(hyperparameters, task).for_seed(2))
print(max(float(np.max(np.abs(a - b))) for a, b in zip(first, second)))
"""


@pytest.mark.slow
def test_under_jax_a_seed_gives_the_same_weights_whichever_seed_ran_before_it():
    # seed runs share one compiled model; a resumed study reruns only the seeds it lacks, in another order
    completed = subprocess.run(
        [sys.executable, "-c", SEED_ORDER_SCRIPT], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert float(completed.stdout.strip().splitlines()[-1]) == 0.0


FLAT_DRAW_SCRIPT = """
import jax
import numpy as np
from rnncompare.orchestration.preflight import check_config_and_data
config, task = check_config_and_data({"execution": {"backend": "jax"}})
from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.runtime.frameworks import set_random_seed
import_deep_learning()
from keras.src.backend.jax import random as keras_random
from keras.src.initializers import Ones, Orthogonal, Zeros
from rnncompare.training.models import build_model
patched = keras_random.uniform, keras_random.normal
assert all(getattr(draw, "flat_draw", False) for draw in patched), "not installed"
host_side = Orthogonal, Zeros, Ones
assert all(hasattr(cls.__call__, "keras_call") for cls in host_side), "not installed"

def weights(architecture, units):
    set_random_seed(7)
    model = build_model({"architecture": architecture, "units": units, "dropout": 0.2, "layers": 2,
                         "learning_rate": 0.001}, task.input_spec, task.output_spec)
    return model.get_weights()

models = [(name, units) for name in ("lstm", "gru", "simple_rnn") for units in (5, 16, 48)]
flat = [weights(*model) for model in models]
key = jax.random.PRNGKey(3)

def sample_draws():
    return [keras_random.uniform((33, 7), -0.5, 0.5, seed=key), keras_random.normal((129,), seed=key),
            keras_random.normal((4, 4), 1.0, 2.0, seed=key),
            jax.jit(lambda k: keras_random.uniform((9, 3), seed=k))(key),
            Orthogonal(gain=1.5, seed=5)((6, 3, 20)), Orthogonal(seed=5)((40, 12)), Orthogonal(seed=5)((1, 9)),
            Zeros()((3, 5), dtype="int32"), Ones()((4,)),
            Zeros()((2, 2), dtype="bfloat16"), jax.jit(lambda: Orthogonal(seed=5)((8, 24)))()]

draws = sample_draws()
keras_random.uniform, keras_random.normal = (draw.keras_draw for draw in patched)
for cls in host_side:
    cls.__call__ = cls.__call__.keras_call
assert all(all(np.array_equal(a, b) for a, b in zip(mine, weights(*model))) for mine, model in zip(flat, models))
keras_draws = sample_draws()
assert all(np.array_equal(a, b) and a.shape == b.shape and a.dtype == b.dtype for a, b in zip(draws, keras_draws))
print("same", len(flat), len(draws))
"""


@pytest.mark.slow
def test_under_jax_weights_drawn_as_flat_vectors_are_the_bits_keras_draws():
    # `cheaper_jax_initializers`: one compile per power-of-two length instead of one per weight shape, and the
    # orthogonal and constant initializers on the host; the same numbers: every built model's initial weights,
    # plain draws, a draw with another mean and spread (Keras's own), one inside a traced function (Keras's own),
    # orthogonal weights of three dimensions, tall, wide and traced (Keras's own), constants
    completed = subprocess.run(
        [sys.executable, "-c", FLAT_DRAW_SCRIPT], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "same 9 11"


BACKGROUND_WRITES_SCRIPT = """
import atexit, logging, os, sys, threading
from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.runtime.backend import choose_backend
from rnncompare.runtime.xla import use_compile_cache
choose_backend("jax")
assert use_compile_cache(sys.argv[1])
import_deep_learning()
import jax, jax.numpy as jnp

writes = []
class Writes(logging.Handler):
    def emit(self, record):
        words = record.getMessage().split()
        if words[0] == "Writing" and words[1] in ("jit_doubled_tanh", "jit_shifted_cos"):
            writes.append((words[1], record.threadName))
logging.getLogger("jax._src.compilation_cache").addHandler(Writes())
logging.getLogger("jax._src.compilation_cache").setLevel(logging.DEBUG)

def doubled_tanh(x):
    return jnp.tanh(x) * 2

def shifted_cos(x):
    return jnp.cos(x) + 1

print(jax.jit(doubled_tanh)(jnp.ones(3)).tolist())
ahead = threading.Thread(target=lambda: jax.jit(shifted_cos).lower(jnp.ones(4)).compile(), name="ahead")
ahead.start()
ahead.join()
print(writes.count(("jit_shifted_cos", "ahead")))
atexit._run_exitfuncs()  # as `rnncompare`'s exit does, before os._exit
print(sorted(writes))
print(sorted({name.split("-")[0] for name in os.listdir(sys.argv[1]) if "_" in name} & {"jit_doubled_tanh", "jit_shifted_cos"}))
os._exit(0)
"""


@pytest.mark.slow
def test_under_jax_the_main_thread_leaves_its_compile_cache_writes_to_a_thread_that_finishes_them_at_exit(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", BACKGROUND_WRITES_SCRIPT, str(tmp_path / "cache")],
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

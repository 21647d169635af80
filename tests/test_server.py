"""`rnncompare server`: a real MLflow tracking server on loopback that a study logs to, artifacts included."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from conftest import clean_env, rnncompare

pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_study_logs_to_the_shared_server_and_its_artifacts_land_on_the_server(tmp_path):
    port = free_port()
    store = tmp_path / "server"
    server = subprocess.Popen(
        [sys.executable, "-m", "rnncompare", "server", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "artifacts")],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
        (tmp_path / "client").mkdir()
        (tmp_path / "client" / "s.yaml").write_text(
            "study: shared\narchitectures: [gru]\nsearch:\n  units: {min: 8, max: 8, step: 8}\n"
            "tuner: {max_trials: 1, epochs: 1}\nevaluation: {seeds: 0}\n"
        )
        completed = rnncompare("run", "s.yaml", "--set", f"tracking.uri={uri}", cwd=tmp_path / "client")
        assert completed.returncode == 0, completed.stderr
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("shared")
        runs = client.search_runs([experiment.experiment_id])
        assert sorted(run.data.tags["rnncompare.role"] for run in runs) == ["architecture", "study", "trial"]
        assert all(run.info.status == "FINISHED" for run in runs)
        study = next(run for run in runs if run.data.tags["rnncompare.role"] == "study")
        assert "report/summary.json" in {item.path for item in client.list_artifacts(study.info.run_id, "report")}
        # artifacts went through the server to its destination, not into the client's folder
        assert list((store / "artifacts").rglob("summary.json"))
        assert not (tmp_path / "client" / "mlruns" / "mlflow.db").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    assert "MLflow tracking server at http://127.0.0.1:" in server.stderr.read().decode()

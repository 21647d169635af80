"""`rnncompare server`: a real MLflow tracking server on loopback that a study logs to, artifacts included."""

import base64
import json
import urllib.error
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from conftest import tracking_server

pytestmark = pytest.mark.slow


def test_a_study_logs_to_the_shared_server_and_its_artifacts_land_on_the_server(tmp_path, cli):
    store = tmp_path / "server"
    store.mkdir()
    log = tmp_path / "server.log"
    with open(log, "wb") as server_log, tracking_server(store, log=server_log) as uri:
        (tmp_path / "client").mkdir()
        (tmp_path / "client" / "s.yaml").write_text(
            "study: shared\narchitectures: [gru]\nsearch:\n  units: {min: 8, max: 8, step: 8}\n"
            "tuner: {max_trials: 1, epochs: 1}\nevaluation: {seeds: 0}\n"
        )
        completed = cli("run", "s.yaml", "--set", f"tracking.uri={uri}", cwd=tmp_path / "client")
        assert completed.returncode == 0, completed.stderr
        assert "View run" not in completed.stdout  # MLflow's per-run links would flood the progress output
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
    assert "MLflow tracking server at http://127.0.0.1:" in log.read_text()


ADMIN_PASSWORD = "correct horse battery"


def _status(uri: str, credentials: tuple[str, str] | None) -> int:
    """The HTTP status of creating an experiment on `uri` with `credentials` (basic auth) or none."""
    request = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/experiments/create",
        data=json.dumps({"name": "intruder"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_an_authenticated_server_refuses_requests_without_the_right_credentials_and_serves_a_study(
    tmp_path, monkeypatch, cli
):
    store = tmp_path / "server"
    store.mkdir()
    auth = ("--auth", "--auth-database-uri", f"sqlite:///{store / 'basic_auth.db'}")
    with tracking_server(store, extra=auth, env={"RNNCOMPARE_SERVER_ADMIN_PASSWORD": ADMIN_PASSWORD}) as uri:
        assert _status(uri, None) == 401
        assert _status(uri, ("admin", "wrong password")) == 401
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        client = MlflowClient(tracking_uri=uri)
        assert [experiment.name for experiment in client.search_experiments()] == ["Default"]  # nothing written

        (tmp_path / "s.yaml").write_text(
            "study: guarded\narchitectures: [gru]\nsearch:\n  units: {min: 8, max: 8, step: 8}\n"
            "tuner: {max_trials: 1, epochs: 1}\nevaluation: {seeds: 0}\n"
        )
        # the study runs in this process, with the credentials in MLflow's variables (set above)
        completed = cli("run", "s.yaml", "--set", f"tracking.uri={uri}", cwd=tmp_path)
        assert completed.returncode == 0, completed.stderr
        runs = client.search_runs([client.get_experiment_by_name("guarded").experiment_id])
        assert sorted(run.data.tags["rnncompare.role"] for run in runs) == ["architecture", "study", "trial"]
        assert all(run.info.status == "FINISHED" for run in runs)

        # without credentials the same study is refused at the store check, with one line and nothing written
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
        refused = cli("run", "s.yaml", "--set", f"tracking.uri={uri}", "--set", "study=other", cwd=tmp_path)
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == [
            f"error: tracking.uri: the MLflow server at {uri} refused a request without credentials (HTTP 401); set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account the server knows"
        ]
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        assert client.get_experiment_by_name("other") is None

"""`rnncompare server`: a real MLflow tracking server on loopback that a study logs to, artifacts included."""

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

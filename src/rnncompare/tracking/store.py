"""The tracking store: where it is, whether it can be used, the run tree's tag names, and small MLflow helpers.

The package `rnncompare.tracking` is the only code that imports mlflow.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rnncompare.compat.mlflow import create_tracking_tables
from rnncompare.config import DEFAULT_TRACKING_URI
from rnncompare.core.errors import UserError

TAG_ROLE = "rnncompare.role"
TAG_STUDY = "rnncompare.study"
TAG_ARCHITECTURE = "rnncompare.architecture"
TAG_TRIAL_ID = "rnncompare.trial_id"
TAG_SEED = "rnncompare.seed"
TAG_BEST_TRIAL_ID = "rnncompare.best_trial_id"
TAG_FAILURE = "rnncompare.failure_reason"
TAG_VERSION_PREFIX = "rnncompare.version."
TAG_DATASET_PREFIX = "rnncompare.dataset."
TAG_PARENT = "mlflow.parentRunId"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_SWEEP_PREFIX = "rnncompare.sweep."
TAG_MATCHED_TO = "rnncompare.matched_to"
TAG_CONFIG_DIGEST = "rnncompare.config_digest"
TAG_WORKER = "rnncompare.worker"
TAG_BACKEND = "rnncompare.backend"  # the Keras backend that trained (or would train) the run's models
TAG_ORACLE = "rnncompare.oracle"
TAG_SEARCH = "rnncompare.search"
TAG_DIAGNOSTIC_PREFIX = "rnncompare.diagnostics."
TAG_VERDICT_PREFIX = "rnncompare.verdict."  # on the study run, one per pair: "<a>_vs_<b>"
TAG_SEED_MODEL = "rnncompare.seed_model"  # the seed whose model an architecture run logs as "seed_model"
# A run's description in the MLflow UI (markdown)
TAG_NOTE = "mlflow.note.content"
# MLflow 3's UI opens an experiment of this kind on its training-runs table instead of its GenAI overview
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"
WEIGHTS_ARTIFACTS = "weights"
INTERRUPTED = "interrupted: the process stopped during this run (it is run again on resume)"
CONFIG_ARTIFACT = "config.yaml"
SUMMARY_ARTIFACT = "report/summary.json"


def resolve_tracking_uri(configured: str | None) -> str:
    """The store to use: the config's (or `--set`'s) `tracking.uri`, then $MLFLOW_TRACKING_URI, then the default."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def is_server(uri: str) -> bool:
    """Whether `uri` is a tracking server (which several processes can write to at once)."""
    return uri.startswith(("http://", "https://"))


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


def client(uri: str):
    """An `MlflowClient` on `uri`, with a relative SQLite path made absolute first: MLflow keeps one database
    engine per URI text for the life of the process, so a relative path would keep pointing at the folder it was
    first opened from (a notebook or test that changes folders would write to the wrong store). A new SQLite store
    starts as a copy of `empty_store_template`'s."""
    from mlflow.tracking import MlflowClient

    path = _sqlite_path(uri)
    if path is not None and not path.is_absolute():
        uri = f"sqlite:///{path.resolve()}"
    if path is not None and not path.exists():
        _copy_of_empty_store(path.resolve())
    return MlflowClient(tracking_uri=uri)


def empty_store_template() -> Path:
    """A SQLite store with MLflow's tables, migrated, and nothing in them, made once per MLflow version in the
    user's cache folder. MLflow runs its hundred-odd schema migrations on every new store (0.8 s, a fixed cost of
    every first study in a folder, and of every test that opens a store); a copy takes milliseconds. The template
    holds no experiment: MLflow adds its Default experiment, whose artifact folder depends on where the store is,
    when it opens the copy."""
    import mlflow
    import sqlalchemy

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnncompare"
    template = cache / f"mlflow-{mlflow.__version__}-empty.db"
    if not template.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f".{template.name}.{os.getpid()}"
        engine = sqlalchemy.create_engine(f"sqlite:///{partial}")
        try:
            create_tracking_tables(engine)
        finally:
            engine.dispose()
        os.replace(partial, template)  # whole or not at all, whichever process finishes first
    return template


def _copy_of_empty_store(path: Path) -> None:
    """Start the SQLite store `path` as a copy of the empty template; where that cannot be done (no cache folder,
    no hard links, another process made the store first), MLflow creates it as it always does."""
    import sqlalchemy

    partial = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(empty_store_template(), partial)
        os.link(partial, path)  # never over a store another process made meanwhile
    except (OSError, sqlalchemy.exc.SQLAlchemyError):
        pass
    finally:
        partial.unlink(missing_ok=True)


def check_store(uri: str, timeout_seconds: float = 5.0, key: str = "tracking.uri") -> None:
    """Fail fast, with one line naming `key`, if the tracking store cannot be used; never waits on MLflow's long
    retries."""
    if is_server(uri):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_seconds) as response:
                if response.status != 200:
                    raise UserError(f"{key}: {uri} answered HTTP {response.status} to /health")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"{key}: cannot reach the MLflow server at {uri} ({reason})") from None
        _check_access(uri, timeout_seconds, key)
        return
    path = _sqlite_path(uri)
    if path is not None:
        check_sqlite_file(path, uri, key)
        return
    if uri.startswith(("file:", "/", ".")) or "://" not in uri:
        raise UserError(
            f"{key}: {uri!r} is a plain folder store, which current MLflow refuses; "
            f"use a database URI such as {DEFAULT_TRACKING_URI} or a server http://host:port"
        )
    _check_database_driver(uri, key)


def _check_access(uri: str, timeout_seconds: float, key: str) -> None:
    """Refuse with one line a server that refuses this client (MLflow's basic auth: 401 without the right
    credentials, 403 without the permission), as MLflow's client would send them: $MLFLOW_TRACKING_USERNAME and
    $MLFLOW_TRACKING_PASSWORD, or $MLFLOW_TRACKING_TOKEN."""
    request = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1")
    username, token = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_TOKEN")
    if username:
        pair = f"{username}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
        request.add_header("Authorization", f"Basic {base64.b64encode(pair).decode()}")
    elif token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds):
            return
    except urllib.error.HTTPError as exc:
        if exc.code not in (401, 403):
            return  # not a question of access: the commands that follow report it
        sent = (
            f"user {username}'s credentials"
            if username
            else "the token in $MLFLOW_TRACKING_TOKEN"
            if token
            else "a request without credentials"
        )
        raise UserError(
            f"{key}: the MLflow server at {uri} refused {sent} (HTTP {exc.code}); set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD to an account the server knows"
        ) from None
    except (urllib.error.URLError, OSError, ValueError):
        return  # /health answered: a flaky second request is MLflow's retries' to handle


def check_sqlite_file(path: Path, uri: str, key: str) -> None:
    """Refuse with one line a SQLite database whose folder cannot be made or written, or whose file is read-only;
    the folder is made, never the database."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{key}: cannot create {folder} for {uri} ({exc.strerror})") from None
    if not writable_folder(folder) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{key}: {path} is not writable")


# The package that provides each database driver SQLAlchemy may ask for (its default for postgresql:// is psycopg 3)
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "pymysql",
    "pyodbc": "pyodbc",
}


def _check_database_driver(uri: str, key: str) -> None:
    """Refuse with one line a database URI whose driver is not installed (MLflow fails on it with a traceback)."""
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        dialect = make_url(uri).get_dialect()
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ValueError) as exc:
        raise UserError(f"{key}: {uri.split('://')[0]}:// is not a database SQLAlchemy knows ({exc})") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = exc.name or dialect.driver
        package = DRIVER_PACKAGES.get(module, module)
        raise UserError(
            f"{key}: {uri.split('://')[0]}:// needs the database driver {module}, which is not "
            f"installed: .venv/bin/pip install '{package}'"
        ) from None


def writable_folder(folder: Path) -> bool:
    """Whether a file can really be created in `folder` (os.access says yes to root on a read-only file system)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rnncompare-write-check-"):
            return True
    except OSError:
        return False


def artifact_location(uri: str, study: str) -> str | None:
    """Beside a local SQLite store, artifacts go to <store folder>/artifacts/<study>; a server chooses its own."""
    path = _sqlite_path(uri)
    if path is None:
        return None
    return (path.parent.resolve() / "artifacts" / study).as_uri()


def metrics_batch(values: Mapping[str, float], step: int = 0):
    """MLflow `Metric`s for one `log_batch` call, all at `step`."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(key, float(value), now, step) for key, value in values.items()]


def params_batch(values: Mapping[str, Any]):
    """MLflow `Param`s for one `log_batch` call."""
    from mlflow.entities import Param

    return [Param(key, str(value)) for key, value in values.items()]


def tags_batch(values: Mapping[str, str]):
    """MLflow `RunTag`s for one `log_batch` call."""
    from mlflow.entities import RunTag

    return [RunTag(key, str(value)) for key, value in values.items()]


def parse_param(text: str) -> Any:
    """A logged parameter back as the value it was (params are stored as text)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_params(params: Mapping[str, str], leave_out=()) -> dict[str, Any]:
    """Every logged parameter of a run, parsed, except those named in `leave_out`."""
    return {key: parse_param(value) for key, value in params.items() if key not in set(leave_out)}


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys, as it is logged as parameters."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def search_all(mlflow_client, experiment_id: str, filter_string: str, order_by: list[str] | None = None) -> list:
    """Every run of the experiment that matches `filter_string`, over all result pages."""
    runs, token = [], None
    while True:
        page = mlflow_client.search_runs(
            [experiment_id], filter_string=filter_string, max_results=1000, order_by=order_by, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def run_filter(
    parent_run_id: str | None = None, role: str | None = None, status: str | None = None, **tags: str
) -> str:
    """An MLflow filter string on the run tree: the runs under `parent_run_id` with `role` (and `status`, and
    other rnncompare tags given by their short name, e.g. ``trial_id="3"``)."""
    conditions = []
    if parent_run_id is not None:
        conditions.append(f"tags.`{TAG_PARENT}` = '{parent_run_id}'")
    if role is not None:
        conditions.append(f"tags.`{TAG_ROLE}` = '{role}'")
    conditions += [f"tags.`rnncompare.{name}` = '{value}'" for name, value in tags.items()]
    if status is not None:
        conditions.append(f"attributes.status = '{status}'")
    return " and ".join(conditions)


def server_command(
    backend_store_uri: str, artifacts_destination: str, host: str, port: int, workers: int = 1, auth: bool = False
) -> list[str]:
    """The `mlflow server` command line for a team's tracking server: a database backend store, and artifacts
    proxied by the server itself (clients need no access to the artifact folder or bucket); with `auth`, MLflow's
    basic-auth app (configured by `auth.auth_environment`)."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        artifacts_destination,
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *(["--app-name", "basic-auth"] if auth else []),
    ]


def loopback_server_command(store_uri: str, host: str, port: int) -> list[str]:
    """The `mlflow server` command line in front of a local SQLite store, for the processes of one study on this
    machine: it is the one writer to the file, and artifacts stay where the local store keeps them (each process
    writes its own, as with the store alone)."""
    path = (_sqlite_path(store_uri) or Path("mlruns/mlflow.db")).resolve()
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{path}",
        "--default-artifact-root",
        (path.parent / "artifacts").as_uri(),
        "--no-serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def ui_command(uri: str, host: str, port: int) -> list[str]:
    """The `mlflow ui` command line that serves this store's UI."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]

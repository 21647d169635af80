"""The `rnncompare` command: a thin layer over `rnncompare.orchestration.study`. Parses and validates without TensorFlow."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from rnncompare.core.errors import StudyStopped, UserError
from rnncompare.runtime.interrupts import clear_stop, request_stop
from rnncompare.runtime.memory import rarer_full_collections
from rnncompare.runtime.quiet import quiet_libraries

EXIT_USER_ERROR = 2
EXIT_STUDY_STOPPED = 1
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


TRACKING_URI_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the local store)"


def _modified(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


def build_parser() -> argparse.ArgumentParser:
    """The `rnncompare` command's arguments (the docs' CLI reference is generated from it)."""
    parser = argparse.ArgumentParser(
        prog="rnncompare",
        description="Fair comparisons of Keras recurrent architectures: keras-tuner search, MLflow runs, a report.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(commands)
    validate = commands.add_parser("validate", help="check the config and the data; trains and writes nothing")
    _add_experiment(validate)
    _add_store_commands(commands)
    commands.add_parser("tasks", help="list the tasks: built-in benchmarks and the formats for your own data")
    return parser


def _add_experiment(command: argparse.ArgumentParser) -> None:
    command.add_argument("experiment", help="experiment YAML file (keys that differ from configs/default.yaml)")
    command.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one dotted key, e.g. --set tuner.epochs=5 (repeatable; values read as YAML)",
    )


def _add_run(commands) -> None:
    run = commands.add_parser("run", help="run a study: tune every architecture, log to MLflow, write the report")
    _add_experiment(run)
    run.add_argument(
        "--fresh", action="store_true", help="start the study over instead of resuming an interrupted run of it"
    )
    run.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="trials trained at once on this machine: a number, or auto for one per core (sets execution.workers)",
    )
    distributed = run.add_argument_group(
        "distributed search (keras-tuner's chief/worker mode; also set by KERASTUNER_TUNER_ID, "
        "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT)"
    )
    distributed.add_argument(
        "--chief",
        action="store_true",
        help="serve the search to workers; then train the seed runs and write the report",
    )
    distributed.add_argument(
        "--worker", metavar="NAME", help="train the trials the chief hands out, under this name (restart with it)"
    )
    distributed.add_argument("--oracle", metavar="HOST:PORT", help="the chief's address; architecture i on PORT+i")
    distributed.add_argument(
        "--wait", type=float, default=600.0, metavar="SECONDS", help="how long a worker waits for the chief (600)"
    )


def _add_store_commands(commands) -> None:
    report = commands.add_parser("report", help="rebuild a study's report from the tracking store alone")
    report.add_argument("study", help="study name (the MLflow experiment)")
    report.add_argument("--tracking-uri", help=TRACKING_URI_HELP)
    report.add_argument("--out", help="report folder (default: the study's report.dir); files go to OUT/STUDY/")

    compare = commands.add_parser(
        "compare",
        help="one report over several finished studies: a sweep's comparison, or a suite's ranks and tests where "
        "they are of different tasks",
    )
    compare.add_argument("studies", nargs="+", metavar="STUDY", help="study names (MLflow experiments)")
    compare.add_argument("--tracking-uri", help=TRACKING_URI_HELP)
    compare.add_argument(
        "--out",
        default="mlruns/reports/comparison",
        help="folder for comparison.md/.html/.json or suite.md/.html/.json (default %(default)s)",
    )

    ui = commands.add_parser("ui", help="start the MLflow UI on the project's tracking store")
    ui.add_argument("--tracking-uri", help=TRACKING_URI_HELP)
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=_port, default=5000, help="port (default 5000)")
    ui.add_argument("--verbose", action="store_true", help="show MLflow's own start-up and request log lines")

    server = commands.add_parser("server", help="start an MLflow tracking server that a team's studies share")
    server.add_argument(
        "--backend-store-uri",
        default="sqlite:///mlruns/mlflow.db",
        help="database for runs: sqlite:///path or postgresql://user:pass@host/db (default %(default)s)",
    )
    server.add_argument(
        "--artifacts-destination",
        default="mlruns/artifacts",
        help="where the server keeps artifacts: a folder, s3://..., gs://... (default %(default)s)",
    )
    server.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; another address needs --auth or --insecure)",
    )
    server.add_argument("--port", type=_port, default=5000, help="port (default 5000)")
    server.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    auth = server.add_argument_group("authentication (MLflow's basic-auth app)")
    auth.add_argument(
        "--auth",
        action="store_true",
        help="require a user name and password on every request; the admin password comes from "
        "$RNNCOMPARE_SERVER_ADMIN_PASSWORD or --admin-password-file",
    )
    auth.add_argument("--admin-user", default="admin", help="the admin's user name (default %(default)s)")
    auth.add_argument("--admin-password-file", metavar="PATH", help="a file whose first line is the admin password")
    auth.add_argument(
        "--auth-database-uri",
        default="sqlite:///mlruns/basic_auth.db",
        help="database for users and permissions (default %(default)s)",
    )
    auth.add_argument(
        "--insecure", action="store_true", help="serve another address with no authentication (anyone can write)"
    )


def _port(text: str) -> int:
    if not (text.isdigit() and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 1 to 65535")
    return int(text)


def _check_port(host: str, port: int) -> None:
    """Refuse with one line a port the server could not listen on (MLflow's would fail with a traceback)."""
    from rnncompare.orchestration.distributed.role import bind_error

    error = bind_error(host, port)
    if error is not None:
        raise UserError(f"--port: cannot serve on {host}:{port} ({error}); choose another port with --port")


def _workers(text: str) -> str:
    if text != "auto" and not (text.isdigit() and 1 <= int(text) <= 256):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 1 to 256 or auto")
    return text


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `docker stop`, a scheduler's preemption), taken as Ctrl-C: the runs in progress are closed
    as KILLED instead of being left RUNNING until a resume."""


@contextlib.contextmanager
def _terminate_like_ctrl_c():
    """While a study runs: SIGTERM raises `Terminated`, and both it and Ctrl-C are remembered
    (`runtime.interrupts`), so a fit stops at its next epoch even where a library swallowed the interrupt."""

    def interrupt(signal_number, frame):
        request_stop(KeyboardInterrupt)
        raise KeyboardInterrupt()

    def terminate(signal_number, frame):
        request_stop(Terminated)
        raise Terminated()

    clear_stop()
    try:
        previous = {number: signal.signal(number, handler) for number, handler in
                    ((signal.SIGINT, interrupt), (signal.SIGTERM, terminate))}  # fmt: skip
    except ValueError:  # not the main thread (a notebook's worker thread): the process's own handling stands
        yield
        return
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `rnncompare` and `python -m rnncompare`; returns the exit status."""
    args = build_parser().parse_args(argv)
    # a study, not a worker: SIGTERM is how a chief stops its worker, and the chief settles what the worker leaves
    study = args.command == "run" and not getattr(args, "worker", None)
    try:
        with rarer_full_collections(), _terminate_like_ctrl_c() if study else contextlib.nullcontext():
            return _dispatch(args)  # collections rarer from the first import of a library on
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except StudyStopped as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STUDY_STOPPED
    except OSError as exc:
        # The file system refused a write mid-study (disk full, read-only): one line; the runs are already closed.
        if exc.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
            raise
        print(f"error: cannot write {exc.filename or 'a file'}: {exc.strerror}", file=sys.stderr)
        return EXIT_STUDY_STOPPED
    except BrokenPipeError:
        # the reader went away (`| head`, `| grep -q`): what is left to print has no one to read it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt as stop:
        # the runs in progress are closed as KILLED by then; a study resumes from what finished
        word = "terminated" if isinstance(stop, Terminated) else "interrupted"
        print(
            word + (": run the same command again to resume (what finished is kept)" if study else ""), file=sys.stderr
        )
        return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)


def console_main() -> None:
    """`rnncompare` and `python -m rnncompare`: `main`, then an exit without the interpreter's teardown.

    Tearing down a process that has imported Keras, JAX or TensorFlow, MLflow and keras-tuner takes 1-2 s after
    the last line is printed (freeing compiled kernels and modules one object at a time). Everything a command
    writes is closed by then; the exit handlers (logging's flush, MLflow's) still run, then the process ends.
    """
    status = main()
    atexit._run_exitfuncs()  # what the interpreter's own exit runs first
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (`| head`) is not an error of ours
            stream.flush()
    os._exit(status)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "tasks":
        from rnncompare.tasks import registry

        for name, info in registry().items():
            print(f"{name:<16} {info.line()}")
        return 0
    if args.command == "validate":
        from rnncompare.config import expand_sweep
        from rnncompare.orchestration.preflight import check_config_and_data
        from rnncompare.tracking import resolve_tracking_uri

        base, expanded = expand_sweep(args.experiment, args.overrides)
        for _, config in expanded:
            config, task = check_config_and_data(config)
            print(f"ok: study {config.study}: {', '.join(config.architectures)} on {task.describe()}")
        print(f"tracking: {resolve_tracking_uri(base.tracking.uri)}")
        return 0
    if args.command == "run":
        from rnncompare.config import expand_sweep
        from rnncompare.orchestration.distributed import role_from

        role = role_from(args.chief, args.worker, args.oracle)
        if args.workers is not None:
            args.overrides.append(f"execution.workers={args.workers}")
        if role is not None and not role.is_chief and args.fresh:
            raise UserError("--fresh: only the chief starts a study over; a worker joins the chief's study")
        expand_sweep(args.experiment, args.overrides)  # a bad file or key answers before the study's imports (1-2 s)
        from rnncompare.orchestration.progress import Progress
        from rnncompare.orchestration.studies import run_sweep
        from rnncompare.orchestration.study import run_worker

        quiet_libraries()
        if role is not None and not role.is_chief:
            run_worker(
                args.experiment, args.overrides, role=role, progress=Progress(enabled=True), wait_seconds=args.wait
            )
            return 0
        run_sweep(args.experiment, args.overrides, progress=Progress(enabled=True), fresh=args.fresh, role=role)
        return 0
    if args.command == "compare":
        from rnncompare.orchestration.studies import compare_studies

        quiet_libraries()
        out_dir = compare_studies(args.studies, args.tracking_uri, args.out)
        # the report this call wrote: the suite's where the studies are of different tasks
        written = max((Path(out_dir) / f"{name}.html" for name in ("suite", "comparison")), key=_modified)
        print(f"{written.stem}: {written}")
        return 0
    if args.command == "report":
        from rnncompare.orchestration.studies import rebuild_report

        quiet_libraries()
        out_dir = rebuild_report(args.study, args.tracking_uri, args.out)
        print(f"report: {Path(out_dir) / 'report.html'}")
        return 0
    if args.command == "server":
        return _server(args)
    if args.command == "ui":
        return _ui(args)
    raise AssertionError(f"unhandled command {args.command}")


def _ui(args: argparse.Namespace) -> int:
    from rnncompare.tracking import resolve_tracking_uri, training_views, ui_command

    uri = resolve_tracking_uri(args.tracking_uri)
    if uri.startswith(("http://", "https://")):
        raise UserError(f"--tracking-uri: {uri} is a tracking server; open it in a browser, it serves its own UI")
    _check_port(args.host, args.port)
    address = f"http://{args.host}:{args.port}"
    views = training_views(uri, address)
    print(f"MLflow UI for {uri} at {address} (Ctrl-C stops it)", file=sys.stderr)
    for study, view in views:  # MLflow opens on its GenAI overview; these go straight to a study's runs
        print(f"  {study}: {view}", file=sys.stderr)
    # MLflow's GenAI job runner (eight more processes, seconds of start-up) serves nothing in a training store
    environment = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    if args.verbose:
        return subprocess.call(ui_command(uri, args.host, args.port), env=environment)
    # MLflow's start-up warnings and uvicorn's request lines go to a log, shown only if the UI fails
    with tempfile.TemporaryFile() as log:
        status = subprocess.call(ui_command(uri, args.host, args.port), env=environment, stdout=log, stderr=log)
        if status not in (0, -signal.SIGINT, 128 + signal.SIGINT):
            log.seek(0)
            sys.stderr.write(log.read().decode("utf-8", "replace")[-4000:])
    return status


def _server(args: argparse.Namespace) -> int:
    from rnncompare.tracking import check_store, server_command
    from rnncompare.tracking.auth import admin_password, auth_environment, check_auth_database, is_loopback

    if args.backend_store_uri.startswith(("http://", "https://")):
        raise UserError(f"--backend-store-uri: {args.backend_store_uri} is a server; give a database URI")
    if not is_loopback(args.host) and not (args.auth or args.insecure):
        raise UserError(
            f"--host: {args.host} serves other machines, and the server has no authentication; add --auth "
            "(admin password in $RNNCOMPARE_SERVER_ADMIN_PASSWORD), or --insecure to serve it open"
        )
    password = admin_password(args.admin_password_file) if args.auth else None
    _check_port(args.host, args.port)
    if args.auth:
        check_auth_database(args.auth_database_uri)
    check_store(args.backend_store_uri, key="--backend-store-uri")
    if "://" not in args.artifacts_destination:
        Path(args.artifacts_destination).mkdir(parents=True, exist_ok=True)
    where = f"http://{args.host}:{args.port}"
    if args.insecure and not args.auth and not is_loopback(args.host):
        print(f"warning: {where} has no authentication: anyone who reaches it can read and write runs", file=sys.stderr)
    print(
        f"MLflow tracking server at {where} (runs: {args.backend_store_uri}; artifacts: "
        f"{args.artifacts_destination}); studies use --set tracking.uri={where} (Ctrl-C stops it)",
        file=sys.stderr,
    )
    command = server_command(
        args.backend_store_uri, args.artifacts_destination, args.host, args.port, args.workers, auth=args.auth
    )
    if not args.auth:
        return subprocess.call(command)
    environment, folder = auth_environment(args.admin_user, password, args.auth_database_uri)
    print(
        f"authentication on: clients set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD ({args.admin_user} "
        "is the admin; add users with mlflow's AuthServiceClient)",
        file=sys.stderr,
    )
    try:
        return subprocess.call(command, env={**os.environ, **environment})
    finally:
        shutil.rmtree(folder, ignore_errors=True)

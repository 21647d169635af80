"""`make bench`: what rnncompare costs over the work it must do, measured side by side in one run.

On bench.yaml (a search-only digits study), each as its own process, timed from start to exit:

1. rnncompare with 1 worker (`rnncompare run bench.yaml --workers 1`, on the backend `auto` picks);
2. the bare fits: the same `build_model` calls, epochs and backend that study had, read back from its store,
   with no tuner, tracking or report, each model compiled (no compilation cache) (bare_fits.py);
3. the hand-written alternative: keras-tuner's RandomSearch with MLflow autologging (keras_tuner_autolog.py);
4. rnncompare with the default number of workers (and backend); with one worker per core; and two 1-worker
   studies at once, each on half the cores (CPU affinity): the most two processes could give over one here;
5. rnncompare with 1 worker on the other backend, the one `execution.backend: auto` chose against;
6. rnncompare with 1 worker again, in the same folder: a rerun, whose compiled programs come from the cache
   (`execution.compile_cache`; every other figure is a first run, its cache empty);
7. the quickstart (`make run`'s study) with the defaults (JAX on a CPU; on 2 cores one process, on 3 or more one
   process searching and one for the seed runs), the same again in its folder, with 1 worker (`--workers 1`:
   everything in one process), and as one TensorFlow process (`--workers 1 --set execution.backend=tensorflow`);
   the verdicts of the first and the last, against those of the run before the speed work.

Prints each wall time, CPU time and the ratios, and writes them to a JSON file (mlruns/bench/results.json by
default). A benchmark, not a test: the figures quoted in docs/performance.md come from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUDY = HERE / "bench.yaml"
QUICKSTART = HERE.parent / "experiments" / "quickstart.yaml"


def _folder(scratch: Path, name: str) -> Path:
    (scratch / name).mkdir()
    return scratch / name


def timed(command: list[str], cwd: Path) -> dict[str, float]:
    """Run `command` to completion; its wall time and the CPU time of the process and its children."""
    return timed_together([(command, cwd, None)])


def timed_together(runs: list[tuple[list[str], Path, set[int] | None]]) -> dict[str, float]:
    """Start each `(command, folder, cores)` of `runs` at once (on `cores` only, where given) and wait for all; the
    wall time until the last ends and the CPU time of them all and their children."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("KERAS_BACKEND", None)  # `execution.backend: auto` decides, as it does for a user
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    processes = [
        (
            command,
            subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=None if cores is None else (lambda cores=cores: os.sched_setaffinity(0, cores)),
            ),
        )
        for command, cwd, cores in runs
    ]
    outputs = [(command, process.communicate()[1], process.returncode) for command, process in processes]
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for command, stderr, code in outputs:
        if code != 0:
            sys.exit(f"error: {' '.join(command)} failed ({code}):\n{stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "cores_busy": round(cpu / wall, 2)}


def fit_plan(folder: Path) -> dict:
    """The fits the study made, from its store: each trial's hyperparameters, per-trial seed and epochs."""
    from mlflow.tracking import MlflowClient

    from rnncompare.config import load_config
    from rnncompare.core.seeds import trial_seed

    config = load_config(STUDY)
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(config.study)
    runs = client.search_runs([experiment.experiment_id], "tags.`rnncompare.role` = 'trial'", max_results=1000)
    backends = {run.data.tags["rnncompare.backend"] for run in runs}
    fits = []
    for run in sorted(
        runs, key=lambda r: (r.data.tags["rnncompare.architecture"], int(r.data.tags["rnncompare.trial_id"]))
    ):
        params = run.data.params
        fits.append(
            {
                "seed": trial_seed(config.seed, run.data.tags["rnncompare.trial_id"]),
                "epochs": int(run.data.metrics["epochs_run"]),
                "hyperparameters": {
                    "architecture": params["architecture"],
                    "units": int(params["units"]),
                    "dropout": float(params["dropout"]),
                    "layers": int(params["layers"]),
                    "learning_rate": float(params["learning_rate"]),
                },
            }
        )
    (backend,) = backends
    return {"config": str(STUDY), "backend": backend, "fits": fits}


def one_round(number: int, total: int) -> dict[str, dict[str, float]]:
    """The twelve measurements, in one scratch folder, one after the other."""
    python = sys.executable
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="rnncompare-bench-") as scratch:
        scratch = Path(scratch)
        one, default, alternative = (scratch / name for name in ("one-worker", "default", "autolog"))
        for folder in (one, default, alternative):
            folder.mkdir()
        print(f"round {number}/{total}: rnncompare, 1 worker ...", flush=True)
        results["rnncompare_1_worker"] = timed([python, "-m", "rnncompare", "run", str(STUDY), "--workers", "1"], one)
        plan = fit_plan(one)
        results["rnncompare_1_worker"]["backend"] = plan["backend"]
        (scratch / "plan.json").write_text(json.dumps(plan))
        print(f"round {number}/{total}: bare fits ({len(plan['fits'])}, {plan['backend']}) ...", flush=True)
        results["bare_fits"] = timed([python, str(HERE / "bare_fits.py"), str(scratch / "plan.json")], scratch)
        print(f"round {number}/{total}: keras-tuner + MLflow autolog ...", flush=True)
        results["keras_tuner_autolog"] = timed(
            [python, str(HERE / "keras_tuner_autolog.py"), str(alternative)], scratch
        )
        print(f"round {number}/{total}: rnncompare, default workers ...", flush=True)
        results["rnncompare_default_workers"] = timed([python, "-m", "rnncompare", "run", str(STUDY)], default)
        cores = _cores()
        print(f"round {number}/{total}: rnncompare, {cores} workers (one per core) ...", flush=True)
        results["rnncompare_worker_per_core"] = timed(
            [python, "-m", "rnncompare", "run", str(STUDY), "--workers", str(cores)], _folder(scratch, "per-core")
        )
        print(f"round {number}/{total}: two 1-worker studies at once, each on half the cores ...", flush=True)
        halves = [set(sorted(os.sched_getaffinity(0))[half::2]) for half in (0, 1)]
        results["two_studies_at_once"] = timed_together(
            [
                (
                    [python, "-m", "rnncompare", "run", str(STUDY), "--workers", "1"],
                    _folder(scratch, f"half-{half}"),
                    halves[half],
                )
                for half in (0, 1)
            ]
        )
        other = "tensorflow" if plan["backend"] == "jax" else "jax"
        print(f"round {number}/{total}: rnncompare, 1 worker on {other} ...", flush=True)
        results["rnncompare_1_worker_other_backend"] = timed(
            [python, "-m", "rnncompare", "run", str(STUDY), "--workers", "1", "--set", f"execution.backend={other}"],
            _folder(scratch, "other-backend"),
        )
        results["rnncompare_1_worker_other_backend"]["backend"] = other
        print(f"round {number}/{total}: quickstart, defaults ...", flush=True)
        results["quickstart_default"] = timed(
            [python, "-m", "rnncompare", "run", str(QUICKSTART)], _folder(scratch, "quickstart-default")
        )
        results["quickstart_default"]["winners"] = quickstart_winners(scratch / "quickstart-default")
        print(f"round {number}/{total}: rnncompare, 1 worker, run again (compiled programs cached) ...", flush=True)
        results["rnncompare_1_worker_rerun"] = timed(
            [python, "-m", "rnncompare", "run", str(STUDY), "--workers", "1"], one
        )
        print(f"round {number}/{total}: quickstart, defaults, run again ...", flush=True)
        results["quickstart_default_rerun"] = timed(
            [python, "-m", "rnncompare", "run", str(QUICKSTART)], scratch / "quickstart-default"
        )
        print(f"round {number}/{total}: quickstart, 1 worker ...", flush=True)
        results["quickstart_1_worker"] = timed(
            [python, "-m", "rnncompare", "run", str(QUICKSTART), "--workers", "1"],
            _folder(scratch, "quickstart-one-worker"),
        )
        print(f"round {number}/{total}: quickstart, 1 TensorFlow process ...", flush=True)
        results["quickstart_tensorflow_1_worker"] = timed(
            [
                python,
                "-m",
                "rnncompare",
                "run",
                str(QUICKSTART),
                "--workers",
                "1",
                "--set",
                "execution.backend=tensorflow",
            ],
            _folder(scratch, "quickstart-tensorflow"),
        )
        results["quickstart_tensorflow_1_worker"]["winners"] = quickstart_winners(scratch / "quickstart-tensorflow")
    return results


def quickstart_winners(folder: Path) -> dict[str, str | None]:
    """Each pair's winner in the verdicts of the quickstart run in `folder` (None: no significant difference)."""
    summary = json.loads((folder / "mlruns" / "reports" / "quickstart" / "summary.json").read_text())
    return {f"{pair['a']} vs {pair['b']}": pair["winner"] for pair in summary["comparisons"]}


def _median_round(measured: list[dict[str, float]]) -> dict[str, float]:
    ordered = sorted(measured, key=lambda values: values["wall_s"])
    return {**ordered[(len(ordered) - 1) // 2], "wall_s_all": [values["wall_s"] for values in measured]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="mlruns/bench/results.json", help="where the JSON results go")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of all twelve; each figure is the median round, each ratio the rounds' median",
    )
    args = parser.parse_args(argv)
    rounds = [one_round(round_number, args.repeat) for round_number in range(1, args.repeat + 1)]
    results = {name: _median_round([measured[name] for measured in rounds]) for name in rounds[0]}
    # Each ratio is the median of its rounds' ratios: a round's two figures are minutes apart, its rounds are not,
    # and the machine's speed drifts between them.
    each_round = [round_ratios(measured) for measured in rounds]
    ratios = {name: statistics.median(measured[name] for measured in each_round) for name in each_round[0]}
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "study": STUDY.name,
        "rounds": args.repeat,
        "results": results,
        "ratios": ratios,
        "ratios_each_round": each_round,
        "targets": targets(results, ratios, rounds),
    }
    print()
    for name, values in results.items():
        print(
            f"{name:32} {values['wall_s']:8.1f} s wall  {values['cpu_s']:8.1f} s CPU  "
            f"{values['cores_busy']:.2f} cores busy  (rounds: {', '.join(f'{w:.1f}' for w in values['wall_s_all'])})"
        )
    for name, value in ratios.items():
        print(f"{name:52} {value:.3f}")
    for name in ("quickstart_default", "quickstart_tensorflow_1_worker"):
        for round_number, measured in enumerate(rounds, 1):
            verdicts = ", ".join(
                f"{pair}: {winner or 'no difference'}" for pair, winner in measured[name]["winners"].items()
            )
            print(f"{name} verdicts, round {round_number}: {verdicts}")
    print("\ntargets (issue 11):")
    for target in report["targets"]:
        print(
            f"  {target['measure']:58} {target['value']:7.2f}  {target['target']:14} "
            f"{'met' if target['met'] else 'not met'}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out}")
    return 0


def round_ratios(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """The ratios between one round's figures."""
    bare = results["bare_fits"]["wall_s"]
    return {
        "rnncompare_1_worker_over_bare_fits": round(results["rnncompare_1_worker"]["wall_s"] / bare, 3),
        "rnncompare_1_worker_rerun_over_bare_fits": round(results["rnncompare_1_worker_rerun"]["wall_s"] / bare, 3),
        "keras_tuner_autolog_over_bare_fits": round(results["keras_tuner_autolog"]["wall_s"] / bare, 3),
        "default_workers_speedup_over_1_worker": round(
            results["rnncompare_1_worker"]["wall_s"] / results["rnncompare_default_workers"]["wall_s"], 3
        ),
        "other_backend_over_auto_1_worker": round(
            results["rnncompare_1_worker_other_backend"]["wall_s"] / results["rnncompare_1_worker"]["wall_s"], 3
        ),
        "quickstart_default_speedup_over_tensorflow_1_worker": round(
            results["quickstart_tensorflow_1_worker"]["wall_s"] / results["quickstart_default"]["wall_s"], 3
        ),
        "quickstart_default_speedup_over_1_worker": round(
            results["quickstart_1_worker"]["wall_s"] / results["quickstart_default"]["wall_s"], 3
        ),
        "quickstart_rerun_speedup_over_first_run": round(
            results["quickstart_default"]["wall_s"] / results["quickstart_default_rerun"]["wall_s"], 3
        ),
        "worker_per_core_speedup_over_1_worker": round(
            results["rnncompare_1_worker"]["wall_s"] / results["rnncompare_worker_per_core"]["wall_s"], 3
        ),
        # The most two processes could give over one on this machine, measured: two whole studies at once, each on
        # half the cores, against one (the work split in halves that share nothing and repeat nothing).
        "two_studies_at_once_throughput_over_1_worker": round(
            2 * results["rnncompare_1_worker"]["wall_s"] / results["two_studies_at_once"]["wall_s"], 3
        ),
        # The most any number of workers could gain over 1 worker on this machine, were all of the work parallel:
        # the cores over those that one worker already keeps busy.
        "workers_speedup_bound_benchmark": round(_cores() / results["rnncompare_1_worker"]["cores_busy"], 3),
        "workers_speedup_bound_quickstart": round(_cores() / results["quickstart_1_worker"]["cores_busy"], 3),
    }


# `make run`'s study time on main when the speed issue was filed (2 cores, TensorFlow, one process), and its
# verdicts (docs/reference/experiments.md's quickstart row, 2026-11-25): no significant difference in any pair
QUICKSTART_BEFORE_SECONDS = 199.0
QUICKSTART_BEFORE_WINNERS = {"lstm vs gru": None, "lstm vs simple_rnn": None, "gru vs simple_rnn": None}


def targets(results: dict[str, dict], ratios: dict[str, float], rounds: list[dict[str, dict]]) -> list[dict]:
    """The speed issue's targets, each with the measured value and whether it holds."""
    default = results["rnncompare_default_workers"]
    quickstart_speedup = round(QUICKSTART_BEFORE_SECONDS / results["quickstart_default"]["wall_s"], 3)
    # the rounds' quickstarts (the defaults, and one TensorFlow process) whose verdicts are the run's before
    same_verdicts = sum(
        measured[name]["winners"] == QUICKSTART_BEFORE_WINNERS
        for measured in rounds
        for name in ("quickstart_default", "quickstart_tensorflow_1_worker")
    )
    return [
        {
            "measure": "rnncompare 1 worker / bare fits",
            "target": "<= 1.05",
            "value": ratios["rnncompare_1_worker_over_bare_fits"],
            "met": ratios["rnncompare_1_worker_over_bare_fits"] <= 1.05,
        },
        {
            "measure": "the same, run again (compiled programs cached)",
            "target": "<= 1.05",
            "value": ratios["rnncompare_1_worker_rerun_over_bare_fits"],
            "met": ratios["rnncompare_1_worker_rerun_over_bare_fits"] <= 1.05,
        },
        {
            "measure": "default workers speed-up over 1 worker (benchmark study)",
            "target": ">= 1.6",
            "value": ratios["default_workers_speedup_over_1_worker"],
            "met": ratios["default_workers_speedup_over_1_worker"] >= 1.6,
        },
        {
            "measure": "cores busy with the default workers (benchmark study)",
            "target": ">= 1.8",
            "value": default["cores_busy"],
            "met": default["cores_busy"] >= 1.8,
        },
        {
            "measure": "default workers speed-up over 1 worker (quickstart)",
            "target": ">= 1.6",
            "value": ratios["quickstart_default_speedup_over_1_worker"],
            "met": ratios["quickstart_default_speedup_over_1_worker"] >= 1.6,
        },
        {
            "measure": "cores busy with the default workers (quickstart)",
            "target": ">= 1.8",
            "value": results["quickstart_default"]["cores_busy"],
            "met": results["quickstart_default"]["cores_busy"] >= 1.8,
        },
        {
            "measure": f"quickstart speed-up over {QUICKSTART_BEFORE_SECONDS:.0f} s before",
            "target": ">= 2.5",
            "value": quickstart_speedup,
            "met": quickstart_speedup >= 2.5,
        },
        {
            "measure": "quickstart runs with the verdicts of the run before",
            "target": f"{2 * len(rounds)} of them",
            "value": same_verdicts,
            "met": same_verdicts == 2 * len(rounds),
        },
    ]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())

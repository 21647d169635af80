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
SEEDS_STUDY = HERE / "seeds.yaml"


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


def vectorized_round(number: int, total: int) -> dict[str, dict]:
    """Seed runs vectorized (the default) against fitted one by one (`execution.vectorize=false`): the quickstart
    and the seeds study (seeds.yaml), each a first run in a fresh folder; wall time, the seed phase's time from the
    store (`seed_phase_seconds`), the quickstart's verdicts and the seeds study's per-architecture seed means."""
    python = sys.executable
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="rnncompare-bench-") as scratch:
        scratch = Path(scratch)
        for study, name in ((QUICKSTART, "quickstart"), (SEEDS_STUDY, "seeds")):
            for setting in ("default", "per_seed"):
                print(f"round {number}/{total}: {name}, seeds {setting.replace('_', '-')} ...", flush=True)
                command = [python, "-m", "rnncompare", "run", str(study)]
                if setting == "per_seed":
                    command += ["--set", "execution.vectorize=false"]
                folder = _folder(scratch, f"{name}-{setting}")
                measured = timed(command, folder)
                store = folder / "mlruns" / "mlflow.db"
                measured["seed_phase_s"] = round(seed_phase_seconds(store, study), 2)
                measured["seed_means"] = seed_means(store, study)
                if name == "quickstart":
                    measured["winners"] = quickstart_winners(folder)
                    measured["budget_limited"] = budget_limited(folder)
                results[f"{name}_seeds_{setting}"] = measured
    return results


def _study_runs(store: Path, study: Path):
    from mlflow.tracking import MlflowClient

    from rnncompare.config import load_config

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name(load_config(study).study)
    return client.search_runs([experiment.experiment_id], max_results=5000)


def seed_phase_seconds(store: Path, study: Path) -> float:
    """The seed phases' time, from the store: per architecture, from its last trial's end to its last seed run's
    end (its seed runs follow its search in one process), summed."""
    ends: dict[tuple[str, str], float] = {}
    for run in _study_runs(store, study):
        role = run.data.tags.get("rnncompare.role")
        if role in ("trial", "seed") and run.info.end_time:
            key = (run.data.tags["rnncompare.architecture"], role)
            ends[key] = max(ends.get(key, 0), run.info.end_time)
    architectures = {architecture for architecture, role in ends if role == "seed"}
    return sum(ends[(name, "seed")] - ends[(name, "trial")] for name in architectures) / 1000


def seed_means(store: Path, study: Path) -> dict[str, list[float]]:
    """Per architecture: its seed runs' mean test score, its standard error, and how many there were."""
    scores: dict[str, list[float]] = {}
    for run in _study_runs(store, study):
        if run.data.tags.get("rnncompare.role") == "seed" and "test_accuracy" in run.data.metrics:
            scores.setdefault(run.data.tags["rnncompare.architecture"], []).append(run.data.metrics["test_accuracy"])
    return {
        name: [round(statistics.mean(values), 5), round(statistics.stdev(values) / len(values) ** 0.5, 5), len(values)]
        for name, values in sorted(scores.items())
        if len(values) > 1
    }


def budget_limited(folder: Path) -> list[str]:
    """The architectures the quickstart's summary calls budget-limited."""
    summary = json.loads((folder / "mlruns" / "reports" / "quickstart" / "summary.json").read_text())
    return sorted(
        name for name, row in summary["architectures"].items() if (row["diagnostics"] or {}).get("budget_limited")
    )


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
    parser.add_argument(
        "--only",
        choices=("seeds",),
        help="seeds: only the vectorized-seeds measurements (the quickstart and seeds.yaml, each both ways)",
    )
    args = parser.parse_args(argv)
    if args.only == "seeds":
        return report_vectorized([vectorized_round(n, args.repeat) for n in range(1, args.repeat + 1)], args.out)
    rounds = [one_round(round_number, args.repeat) for round_number in range(1, args.repeat + 1)]
    vectorized = [vectorized_round(round_number, args.repeat) for round_number in range(1, args.repeat + 1)]
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
    return report_vectorized(vectorized, out.with_name(out.stem + "-seeds.json"))


def report_vectorized(rounds: list[dict[str, dict]], out: str | Path) -> int:
    """Print and write the vectorized-seeds rounds: each figure the median round, each ratio the rounds' median."""
    results = {name: _median_round([measured[name] for measured in rounds]) for name in rounds[0]}
    each_round = [
        {
            f"{name}_{measure}_per_seed_over_vectorized": round(
                measured[f"{name}_seeds_per_seed"][key] / measured[f"{name}_seeds_default"][key], 3
            )
            for name in ("quickstart", "seeds")
            for measure, key in (("study", "wall_s"), ("seed_phase", "seed_phase_s"))
        }
        for measured in rounds
    ]
    ratios = {name: statistics.median(measured[name] for measured in each_round) for name in each_round[0]}
    print("\nseed runs vectorized (default) against fitted one by one:")
    for name, values in results.items():
        print(
            f"{name:32} {values['wall_s']:8.1f} s wall, seed phase {values['seed_phase_s']:6.1f} s  "
            f"(rounds: {', '.join(f'{w:.1f}' for w in values['wall_s_all'])})  seed means {values['seed_means']}"
            + (
                f"  verdicts {values['winners']}  budget-limited {values['budget_limited']}"
                if "winners" in values
                else ""
            )
        )
    for name, value in ratios.items():
        print(f"{name:52} {value:.3f}")
    same_verdicts = all(
        measured["quickstart_seeds_default"]["winners"] == measured["quickstart_seeds_per_seed"]["winners"]
        for measured in rounds
    )
    seeds_agree = all(
        abs(default[0] - alone[0]) <= 2 * max(default[1], alone[1])
        for measured in rounds
        for default, alone in zip(
            measured["seeds_seeds_default"]["seed_means"].values(),
            measured["seeds_seeds_per_seed"]["seed_means"].values(),
        )
    )
    quickstart = results["quickstart_seeds_default"]
    targets = [
        (
            "seed phase, quickstart, per-seed / vectorized",
            ratios["quickstart_seed_phase_per_seed_over_vectorized"],
            ">= 3",
        ),
        ("whole study, seeds.yaml, per-seed / vectorized", ratios["seeds_study_per_seed_over_vectorized"], ">= 1.6"),
        ("the quickstart's wall time (median round), s", quickstart["wall_s"], "<= 40"),
    ]
    print("\ntargets (issue 38):")
    for measure, value, target in targets:
        met = value >= float(target[3:]) if target.startswith(">=") else value <= float(target[3:])
        print(f"  {measure:58} {value:7.2f}  {target:8} {'met' if met else 'not met'}")
    print(f"  {'quickstart: no budget-limited architecture':58} {not quickstart['budget_limited']!s:>7}")
    print(f"  {'quickstart: the same verdicts both ways, every round':58} {same_verdicts!s:>7}")
    print(f"  {'seeds.yaml: seed means within 2 standard errors':58} {seeds_agree!s:>7}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "rounds": len(rounds),
        "results": results,
        "ratios": ratios,
        "ratios_each_round": each_round,
        "same_verdicts": same_verdicts,
        "seed_means_agree": seeds_agree,
    }
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

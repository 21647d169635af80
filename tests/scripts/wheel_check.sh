#!/usr/bin/env bash
# A wheel built from this tree, installed without its source tree into a fresh virtual environment, answers
# `rnncompare tasks` and `rnncompare validate` of a shipped experiment, with configs/default.yaml inside the wheel.
# The environment borrows the dependencies (TensorFlow, JAX, MLflow: gigabytes) from the development one through a
# plain path entry, which does not run that environment's editable-install hook: rnncompare comes from the wheel.
# Usage: wheel_check.sh PYTHON (the development environment's interpreter, with build and hatchling).
set -euo pipefail
python=$1
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m build --wheel --no-isolation --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 \
    || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/rnncompare-*.whl)
"$python" -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); sys.exit(0 if 'rnncompare/default.yaml' in names and any(n.startswith('rnncompare/report/templates/') for n in names) else 1)" "$wheel" \
    || { echo "default.yaml or the report templates are not in $wheel"; exit 1; }

"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --no-deps --no-index "$wheel"
site=$("$work/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
"$python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" >"$site/development-dependencies.pth"

cd "$work"  # away from the source tree and its configs/
installed=$("$work/venv/bin/python" -c "import rnncompare, rnncompare.config as c; print(rnncompare.__file__, c.default_config_path())")
case "$installed" in
    "$site"/rnncompare/__init__.py\ "$site"/rnncompare/default.yaml) ;;
    *) echo "rnncompare or its defaults did not come from the wheel: $installed"; exit 1 ;;
esac
expect() {  # expect PATTERN COMMAND...: the command succeeds and prints a line matching PATTERN
    local pattern=$1 printed
    shift
    printed=$("$@") || { echo "failed: $*"; exit 1; }
    grep -q "$pattern" <<<"$printed" || { echo "no line matches $pattern in: $printed"; exit 1; }
}
expect "^digits " "$work/venv/bin/rnncompare" tasks
cp "$repo/experiments/quickstart.yaml" "$work/"
expect "^ok: study quickstart: lstm, gru, simple_rnn on " "$work/venv/bin/rnncompare" validate quickstart.yaml
# a data set bundled in the wheel, not in scikit-learn
expect "^ok: study quickstart: .* on japanese_vowels" \
    "$work/venv/bin/rnncompare" validate quickstart.yaml --set task.name=japanese_vowels
echo "wheel check passed: $(basename "$wheel")"

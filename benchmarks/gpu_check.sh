#!/usr/bin/env bash
# Issue 11's GPU checks, in one run on a machine with an NVIDIA GPU, from the repository root: the kernels and
# time per epoch of the study's models on the GPU and on the CPU (gpu_check.py), then the quickstart study on the
# GPU with 1 worker and with 3 (the processes sharing the GPU), and on the CPU with 1 and with 4.
# Results go to $OUT (default /tmp/gpu-check). Where the packages are not installed, wheels in .whl are.
set -u
OUT=${OUT:-/tmp/gpu-check}
REPO=$PWD
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
exec > >(tee -a "$OUT/gpu-check.log") 2>&1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import sys, jax, keras; print(sys.version.split()[0], 'jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
python3 -c "import tensorflow" 2>&1 | tail -1
nproc

echo "== kernels and epochs: JAX on the GPU"
KERAS_BACKEND=jax timeout 120 python3 benchmarks/gpu_check.py >"$OUT/kernels-gpu.json" 2>"$OUT/kernels-gpu.err"
echo "rc=$?"; cat "$OUT/kernels-gpu.json"; tail -5 "$OUT/kernels-gpu.err"
echo "== kernels and epochs: JAX on the CPU ($(nproc) cores)"
KERAS_BACKEND=jax JAX_PLATFORMS=cpu timeout 80 python3 benchmarks/gpu_check.py >"$OUT/kernels-cpu.json" \
  2>"$OUT/kernels-cpu.err"
echo "rc=$?"; cat "$OUT/kernels-cpu.json"; tail -5 "$OUT/kernels-cpu.err"

nvidia-smi dmon -s um -d 1 >"$OUT/dmon.txt" 2>&1 &
study() {  # NAME SECONDS ARGS...: the quickstart on JAX in a folder of its own; wall, user and system seconds
  local name=$1 limit=$2; shift 2
  mkdir -p "/tmp/studies/$name" && cd "/tmp/studies/$name" || return
  local TIMEFORMAT="$name: wall %R s, user %U s, system %S s"
  echo "== $name: $(date +%T)"
  time timeout "$limit" python3 -m rnncompare run "$REPO/experiments/quickstart.yaml" --set execution.backend=jax \
    "$@" >"/tmp/studies/$name.log" 2>&1
  echo "rc=$?"; cat "/tmp/studies/$name.log" >>"$OUT/studies.log"
  grep -E "^(│|workers|error)|Traceback| vs " "/tmp/studies/$name.log" | cut -c1-150 | tail -9
  cd "$REPO" || exit
}
study gpu-1-worker 100 --workers 1
study gpu-3-workers 100 --workers 3
for log in $(find /tmp/studies/gpu-3-workers -path "*loopback*" -name "*.log"); do echo "-- $log"; tail -3 "$log"; done
JAX_PLATFORMS=cpu study cpu-1-worker 80 --workers 1
JAX_PLATFORMS=cpu study cpu-4-workers 80 --workers 4
kill %1 2>/dev/null
head -2 "$OUT/dmon.txt"

#!/usr/bin/env bash
# `make gpu-check`: the GPU tests (device-parametrised tests on cuda, against torch on cuda; the machinery tests
# with cuda as the default device, against torch on the cpu) and the GPU benchmark.
# For a GPU machine whose Python already has torch, cupy, numpy, pytest and hypothesis: installs nothing, needs no
# network; the repo goes on PYTHONPATH. Designed to finish in under 5 minutes. GPU_CHECK_LOGS=DIR keeps the
# test shards' full logs in DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
status=0
$PY - <<'PY' || exit 1
import tinyautograd, torch
print("tinyautograd sees cuda:", tinyautograd.cuda.is_available(), "| torch sees cuda:", torch.cuda.is_available())
if tinyautograd.cuda.is_available():
    print("device:", tinyautograd.cuda.get_device_name())
PY
workers=${GPU_TEST_WORKERS:-8}
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-dev}"
if $PY -c "import xdist" 2>/dev/null; then
  timeout "${GPU_TEST_TIMEOUT:-200}" $PY -m pytest -q -m gpu -p no:cacheprovider -n "$workers" tests || status=$?
else
  # no pytest-xdist: as many pytest processes side by side, each taking every n-th test (tests/conftest.py), so
  # that CuPy's first compilation of each kernel (NVRTC, a fraction of a second each) runs on all the cores
  logs=$(mktemp -d)
  pids=()
  for ((i = 0; i < workers; i++)); do
    TINYAUTOGRAD_TEST_SHARD="$i/$workers" timeout "${GPU_TEST_TIMEOUT:-200}" \
      $PY -m pytest -q -m gpu -p no:cacheprovider tests >"$logs/$i.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < workers; i++)); do
    rc=0
    wait "${pids[$i]}" || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then  # 5: no test fell to this shard
      status=$rc
      echo "--- test shard $i/$workers failed (exit $rc):"
      grep -v '^\.*\s*\[' "$logs/$i.log" | tail -n 60
    fi
    echo "shard $i/$workers: $(tail -n 1 "$logs/$i.log")"
  done
  if [ -n "${GPU_CHECK_LOGS:-}" ]; then  # keep every shard's whole log there (the tails above may be cut)
    mkdir -p "$GPU_CHECK_LOGS" && cp "$logs"/*.log "$GPU_CHECK_LOGS"/
  fi
  rm -rf "$logs"
fi
bench=0
timeout "${GPU_BENCH_TIMEOUT:-90}" $PY benchmarks/gpu.py || bench=$?
if [ "$bench" -ne 0 ]; then
  status=$bench
  if [ -z "${TINYAUTOGRAD_DISABLE_KERNELS:-}" ]; then
    # a workload failed: measure once more on the array formulas, so that the run still gives ratios
    echo "--- the benchmark failed (exit $bench); again with TINYAUTOGRAD_DISABLE_KERNELS=1 (no fused kernels):"
    TINYAUTOGRAD_DISABLE_KERNELS=1 timeout "${GPU_BENCH_TIMEOUT:-90}" $PY benchmarks/gpu.py --quick || true
  fi
fi
exit $status

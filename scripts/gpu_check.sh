#!/usr/bin/env bash
# `make gpu-check`: the GPU tests (device-parametrised tests on cuda, against torch on cuda) and the GPU benchmark.
# For a GPU machine whose Python already has torch, cupy, numpy, pytest and hypothesis: installs nothing, needs no
# network; the repo goes on PYTHONPATH. Designed to finish in under 5 minutes.
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
xdist=()
if $PY -c "import xdist" 2>/dev/null; then xdist=(-n "${GPU_TEST_WORKERS:-8}"); fi
HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-dev}" timeout "${GPU_TEST_TIMEOUT:-200}" \
  $PY -m pytest -q -m gpu -p no:cacheprovider "${xdist[@]}" tests || status=$?
timeout "${GPU_BENCH_TIMEOUT:-90}" $PY benchmarks/gpu.py || status=$?
exit $status

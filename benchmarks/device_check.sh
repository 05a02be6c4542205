#!/usr/bin/env bash
# The GPU check of issue 27 as one command, under 5 minutes: the CUDA tests, then the GPU benchmarks (render speed,
# batch throughput, steering speed against the GPU goals), everything written to one file.
#
#   bash benchmarks/device_check.sh [OUTPUT_FILE]        # default: device-check.txt in the current folder
#   bash benchmarks/device_check.sh --print-dependencies  # what to carry beside torch, one requirement a line
#
# Run it from anywhere on a machine whose Python ($PYTHON, default python3) has a CUDA build of torch. Such machines
# often have no package index: the rest of ReaTimbre's dependencies that these checks import come as wheels.
# On a machine with an index, for the GPU machine's Python version and platform:
#   pip download --only-binary=:all: -d wheels $(bash benchmarks/device_check.sh --print-dependencies)
# then on the GPU machine: WHEELS=wheels bash benchmarks/device_check.sh   (installs what is missing, no index)
# The versions are pyproject.toml's pins (tests/test_device_check.py keeps the two in step).
set -uo pipefail

DEPENDENCIES=(
  numpy==2.4.6
  scipy==1.17.1
  soundfile==0.14.0
  soxr==1.1.0
  pedalboard==0.9.26
  safetensors==0.8.0
  pyloudnorm==0.2.0
  tqdm==4.70.1
  platformdirs==4.14.7
  vita==0.1.0
  pytest==9.2.0
)
# The import name of each, in the same order.
MODULES=(numpy scipy soundfile soxr pedalboard safetensors pyloudnorm tqdm platformdirs vita pytest)

if [[ "${1:-}" == "--print-dependencies" ]]; then
  printf '%s\n' "${DEPENDENCIES[@]}"
  exit 0
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "${1:-device-check.txt}")"
PY="${PYTHON:-python3}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export REATIMBRE_DATA_DIR="$(mktemp -d)"  # steered and stand-in models never land in a user's library
trap 'rm -rf "$REATIMBRE_DATA_DIR"' EXIT
cd "$REPO" || exit 1
: > "$OUT"
say() { echo "$*" | tee -a "$OUT"; }

if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>> "$OUT"; then
  say "device_check: $PY has no torch that sees a CUDA device; nothing to check (see $OUT)"
  exit 2
fi
missing=()
for i in "${!MODULES[@]}"; do
  "$PY" -c "import ${MODULES[$i]}" 2> /dev/null || missing+=("${DEPENDENCIES[$i]}")
done
if ((${#missing[@]})); then
  if [[ -n "${WHEELS:-}" ]]; then
    say "device_check: installing ${missing[*]} from $WHEELS (no index)"
    "$PY" -m pip install --no-index --find-links "$WHEELS" "${missing[@]}" >> "$OUT" 2>&1 || {
      say "device_check: could not install from $WHEELS (see $OUT)"
      exit 2
    }
  else
    say "device_check: missing beside torch: ${missing[*]} (carry them as wheels and set WHEELS=DIR)"
    exit 2
  fi
fi

failed=0
step() {  # step SECONDS TITLE COMMAND...: run with a time limit, output to the file and the terminal
  local limit="$1" title="$2"
  shift 2
  say ""
  say "=== $title (limit ${limit} s) ==="
  local started=$SECONDS
  timeout --kill-after=5 "$limit" "$@" 2>&1 | tee -a "$OUT"
  local status=${PIPESTATUS[0]}
  say "=== $title: exit $status after $((SECONDS - started)) s ==="
  ((status == 0)) || failed=1
}

step 10 "machine" "$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "|",
  torch.cuda.get_device_name(0), "|", torch.get_num_threads(), "CPU threads")'
step 90 "CUDA tests" "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_device_cuda.py tests/test_device.py
step 20 "render speed on CUDA" "$PY" benchmarks/render_speed.py --device cuda --seconds 60 --streams 16
step 35 "batch throughput on CUDA" "$PY" benchmarks/batch_throughput.py --device cuda --files 64 --seconds 10 \
  --workers 1 --standin
step 50 "steering goal: compressor in 30 s" "$PY" benchmarks/steer_speed.py --device cuda --effect compressor
step 75 "steering goal: reverb in 60 s" "$PY" benchmarks/steer_speed.py --device cuda --effect reverb

say ""
say "device_check: $( ((failed)) && echo 'SOME CHECKS FAILED' || echo 'all checks passed'); output in $OUT"
exit "$failed"

#!/usr/bin/env bash
# The prepared GPU check (docs/BENCHMARKS.md, "GPU"): on a fresh GPU machine with Python and
# torch, install what is missing from .whl/ (scripts/gpu_wheels.sh), then run
#   rlsub bench gpu --device cuda --json
# (device-against-CPU correctness, ES and PPO on Pong, MNIST FC epochs, sweep prices) and
# write $OUT/gpu.json (default ./gpu.json) and gpu.log. At most 8 minutes (timeout 480 s).
#   RLSUB_DEVICE=cpu RLSUB_GPU_QUICK=1 PYTHON=.venv/bin/python bash scripts/gpu_check.sh  # on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.}"
py="${PYTHON:-python3}"
mkdir -p "$out"
if ! "$py" -c 'import gymnasium, ale_py, stable_baselines3, cma' 2>/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/rlsub-site .whl/*.whl
  export PYTHONPATH=/tmp/rlsub-site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
quick=()
if [[ -n "${RLSUB_GPU_QUICK:-}" ]]; then quick=(--quick); fi
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' \
  | tee "$out/gpu.log"
timeout 480 "$py" -m rlsub.cli bench gpu --device "${RLSUB_DEVICE:-cuda}" "${quick[@]}" --json \
  > "$out/gpu.json.tmp" 2>> "$out/gpu.log"
mv "$out/gpu.json.tmp" "$out/gpu.json"
"$py" - "$out/gpu.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['device_name']}: correctness {'passed' if r['correctness']['passed'] else 'FAILED'}, "
      f"ES Pong {r['es_pong']['agent_steps_s']:,.0f} steps/s, PPO Pong "
      f"{r['ppo_pong']['train_steps_s']:,.0f} steps/s, {r['wall_s']:.0f} s")
for name, p in r["prices"].items():
    print(f"  {name}: {p['trials']} trials, {p['hours']:,.1f} h")
PY

#!/usr/bin/env bash
# bench/vs_torch_infer.sh — the Fashion-MNIST CNN's inference in born beside PyTorch, in the same
# run: bench_conv --infer B (born: the model of `born train --model cnn`, eval mode, no grad) and
# bench/vs_torch_infer.py (the same network in Debian's torch, no_grad), each the median of R
# forwards of a random batch after a warm-up. Prints both JSON lines and the ratio
# (PyTorch ms / born ms: above 1, born is faster). Issue 4's target: >= 3 at batch 256.
#   usage: bench/vs_torch_infer.sh [build-dir] [batch] [threads] [reps]
#   e.g.   bench/vs_torch_infer.sh build 256 2 21
set -euo pipefail

build=${1:-build}
batch=${2:-256}
threads=${3:-2}
reps=${4:-21}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}

[ -x "$build/bench_conv" ] || { echo "vs_torch_infer.sh: $build/bench_conv is missing: build first" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null ||
  { echo "vs_torch_infer.sh: $python has no torch (bash scripts/deps.sh refs)" >&2; exit 1; }

born_out=$(OMP_NUM_THREADS=$threads "$build/bench_conv" --infer "$batch" --threads "$threads" --reps "$reps")
echo "$born_out"
torch_out=$(OMP_NUM_THREADS=$threads "$python" "$here/vs_torch_infer.py" --batch "$batch" --threads "$threads" --reps "$reps")
echo "$torch_out"

"$python" - "$born_out" "$torch_out" <<'PY'
import json, sys
b, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"bench": "cnn_infer_vs_torch", "batch": b["batch"], "threads": b["threads"],
                  "born_ms": b["ms"], "pytorch_ms": t["ms"], "speedup": round(t["ms"] / b["ms"], 2)}))
PY

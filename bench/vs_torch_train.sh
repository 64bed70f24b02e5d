#!/usr/bin/env bash
# bench/vs_torch_train.sh — born train beside PyTorch on the same job: the same model (mlp or
# cnn), optimizer, learning rate, batch size, epochs, thread count and data preparation
# (bench/vs_torch_train.py is the PyTorch side, run with Debian's /usr/bin/python3). Prints both
# runs' JSON lines and then a table of epoch seconds and test accuracies.
#   usage: bench/vs_torch_train.sh [build-dir] [model] [epochs] [threads] [extra born/torch args]
#   e.g.   bench/vs_torch_train.sh build mlp 5 2
#          bench/vs_torch_train.sh build cnn 3 2
#   BORN_DATA / --data: as for born train (default /usr/share/datasets/fashion-mnist)
set -euo pipefail

build=${1:-build}
model=${2:-mlp}
epochs=${3:-1}
threads=${4:-2}
shift $(( $# < 4 ? $# : 4 ))
data=${BENCH_DATA:-/usr/share/datasets/fashion-mnist}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}

[ -x "$build/born" ] || { echo "vs_torch_train.sh: $build/born is missing: build first" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null ||
  { echo "vs_torch_train.sh: $python has no torch (bash scripts/deps.sh refs)" >&2; exit 1; }

common=(--model "$model" --data "$data" --epochs "$epochs" --batch 64 --lr 1e-3 --optim adam
        --threads "$threads" --seed 0 "$@")

echo "# born train ${common[*]} --json"
born_out=$(OMP_NUM_THREADS=$threads "$build/born" train "${common[@]}" --json)
echo "$born_out"
echo "# $python bench/vs_torch_train.py ${common[*]}"
torch_out=$(OMP_NUM_THREADS=$threads "$python" "$here/vs_torch_train.py" "${common[@]}")
echo "$torch_out"

"$python" - "$born_out" "$torch_out" "$model" "$epochs" "$threads" <<'PY'
import json, sys
born = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
torch = [json.loads(l) for l in sys.argv[2].splitlines() if l.strip()]
model, epochs, threads = sys.argv[3], sys.argv[4], sys.argv[5]
print()
print("%-8s %-6s %8s %12s %14s %14s" % ("", "epoch", "seconds", "samples/s", "test acc", "train loss"))
for name, rows in (("born", born), ("pytorch", torch)):
    for r in rows:
        if r.get("final"):
            print("%-8s %-6s %8.2f %12.0f %14.4f" % (name, "mean", r["epoch_seconds"],
                                                     r["samples_per_second"], r["test_accuracy"]))
        else:
            print("%-8s %-6d %8.2f %12.0f %14.4f %14.4f" % (name, r["epoch"], r["epoch_seconds"],
                  r["samples_per_second"], r["test_accuracy"], r["train_loss"]))
print("\n%s, %s epochs, %s threads: born %.2f s/epoch, pytorch %.2f s/epoch; test accuracy born %.4f, pytorch %.4f"
      % (model, epochs, threads, born[-1]["epoch_seconds"], torch[-1]["epoch_seconds"],
         born[-1]["test_accuracy"], torch[-1]["test_accuracy"]))
PY

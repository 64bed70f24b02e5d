#!/usr/bin/env bash
# bench/gpu/gpt_step.sh — GPT-2 124M training step (batch 8 x 1024 tokens, bf16 autocast, AdamW,
# clipping) on one NVIDIA GPU: born (bench_gpt_step), then PyTorch with torch.compile
# (bench/gpu/torch_gpt2.py), then born again, in this one run on the same machine, so the two
# are compared at the same moment and born's two runs show the spread. Prints their JSON lines
# and a last line with the ratio (PyTorch's median ms/step over born's: above 1 means born is
# faster); everything also goes to $OUT/gpt_step.jsonl when $OUT is set.
#   bash bench/gpu/gpt_step.sh [build-dir]
# Environment: PYTHON (python3), PRECISION (bf16), STEPS (30), WARMUP (10), BLOCK (1), BATCH (8),
# GPT_ARGS (extra options for both sides, e.g. "--checkpointing" or a smaller model),
# TORCH_ARGS (extra options for PyTorch only, e.g. "--compile-mode max-autotune"),
# TORCH_EAGER=1 (also time PyTorch without torch.compile), DEVICE (cuda; cpu for a dry run with
# TORCH_ARGS=--no-compile and a tiny GPT_ARGS model).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-gpu}
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
out=${OUT:-.}/gpt_step.jsonl
: > "$out"
if [ "$device" = cpu ]; then
  [ -x "$build/bench_gpt_step" ] || {
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBORN_CUDA=OFF >/dev/null
    cmake --build "$build" -j "$(nproc)" --target bench_gpt_step >/dev/null
  }
else
  if [ ! -x "$build/bench_gpt_step" ] || [ ! -f "$build/libborn-cuda.so" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
    cmake --build "$build" -j "$(nproc)" --target born_cuda bench_gpt_step >/dev/null
  fi
  export BORN_CUDA_PLUGIN=$PWD/$build/libborn-cuda.so
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | sed 's/^/# gpu: /'
fi
# shellcheck disable=SC2206
common=(--device "$device" --precision "${PRECISION:-bf16}" --steps "${STEPS:-30}"
        --warmup "${WARMUP:-10}" --block "${BLOCK:-1}" --batch "${BATCH:-8}" ${GPT_ARGS:-})
# shellcheck disable=SC2206
torch_extra=(${TORCH_ARGS:-})
emit() { printf '%s\n' "$1" | tee -a "$out"; }
born1=$("$build/bench_gpt_step" "${common[@]}")
emit "$born1"
# (only its JSON line: anything else a torch.compile run might print on stdout is dropped)
torch=$("$py" bench/gpu/torch_gpt2.py "${common[@]}" ${torch_extra[@]+"${torch_extra[@]}"} |
        grep '^{"bench"' | tail -n 1)
emit "$torch"
born2=$("$build/bench_gpt_step" "${common[@]}")
emit "$born2"
if [ "${TORCH_EAGER:-0}" = 1 ]; then
  emit "$("$py" bench/gpu/torch_gpt2.py "${common[@]}" --no-compile)"
fi
# the ratio line, from the three JSON lines above
BORN1=$born1 TORCH=$torch BORN2=$born2 "$py" - <<'EOF' | tee -a "$out"
import json, os
b1, t, b2 = (json.loads(os.environ[k]) for k in ("BORN1", "TORCH", "BORN2"))
born = [b1["ms_per_step_median"], b2["ms_per_step_median"]]
tm = t["ms_per_step_median"]
print(json.dumps({
    "bench": "gpt_step_ratio", "precision": t["precision"], "batch": t["batch"],
    "context": t["context"], "torch": t["torch"], "compile": t["compile"],
    "born_ms_per_step": born, "torch_ms_per_step": tm,
    "born_tokens_per_s": [b1["tokens_per_s"], b2["tokens_per_s"]],
    "torch_tokens_per_s": t["tokens_per_s"],
    "born_mfu": [b1["mfu"], b2["mfu"]], "torch_mfu": t["mfu"],
    # torch's time over born's slower run (the conservative figure) and over its faster one
    "torch_over_born_worst": round(tm / max(born), 3),
    "torch_over_born_best": round(tm / min(born), 3),
    "born_faster": tm > max(born)}, separators=(",", ":")))
EOF

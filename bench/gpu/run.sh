#!/usr/bin/env bash
# bench/gpu/run.sh — on a machine with an NVIDIA GPU and PyTorch: build born with the CUDA plugin,
# then run born and PyTorch side by side in this one run (same machine, same moment) and print
# their JSON lines; results also go to $OUT/gpu_bench.jsonl when $OUT is set.
#   bash bench/gpu/run.sh [build-dir]      (BENCH=train,gemm,attn,gpt selects parts;
#   EPOCHS=3, PRECISIONS="fp32 bf16"; the train part times born eagerly and with --graph)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-gpu}
parts=${BENCH:-train,gemm,attn,gpt}
epochs=${EPOCHS:-3}
py=${PYTHON:-python3}
out=${OUT:-.}/gpu_bench.jsonl
: > "$out"
if [ ! -x "$build/bench_train_epoch" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
  cmake --build "$build" -j "$(nproc)" --target born_cuda bench_train_epoch bench_gemm_gpu \
    bench_attention_gpu bench_gpt_step >/dev/null
fi
export BORN_CUDA_PLUGIN=$PWD/$build/libborn-cuda.so
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | sed 's/^/# gpu: /'
run() { "$@" | tee -a "$out"; }
if [[ $parts == *train* ]]; then
  for model in mlp cnn; do
    for batch in 64 512; do
      for prec in ${PRECISIONS:-fp32 bf16}; do
        run "$build/bench_train_epoch" --device cuda --model $model --batch $batch \
          --epochs "$epochs" --precision $prec
        [ "$prec" = fp16 ] || run "$build/bench_train_epoch" --device cuda --model $model \
          --batch $batch --epochs "$epochs" --precision $prec --graph
        run "$py" bench/gpu/torch_train_epoch.py --device cuda --model $model --batch $batch \
          --epochs "$epochs" --precision $prec
      done
    done
  done
fi
if [[ $parts == *gemm* ]]; then
  run "$build/bench_gemm_gpu" --dtypes f32,bf16,f16
  run "$build/bench_gemm_gpu" --dtypes f32 --tf32
  run "$py" bench/gpu/torch_gemm.py
fi
if [[ $parts == *attn* ]]; then
  run "$build/bench_attention_gpu"
  run "$py" bench/gpu/torch_attention.py
fi
if [[ $parts == *gpt* ]]; then
  OUT=$(dirname "$out") PYTHON="$py" bash bench/gpu/gpt_step.sh "$build"
fi

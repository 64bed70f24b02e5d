#!/usr/bin/env bash
# scripts/fuzz.sh <fuzz-build-dir> <seconds> — runs every libFuzzer target built there for the
# given time, each from a scratch copy of its seed corpus (tests/data/<name>/ without the fuzz_
# prefix, e.g. tests/data/idx for fuzz_idx), so crash files and new inputs never land in the
# repository. Fails when a target finds a crash, a leak or a sanitizer report.
set -euo pipefail

build=$(cd "${1:?usage: fuzz.sh <fuzz-build-dir> <seconds>}" && pwd)
seconds=${2:-15}
root=$(cd "$(dirname "$0")/.." && pwd)
found=0
for target in "$build"/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target")
  work=$(mktemp -d)
  corpus="$root/tests/data/${name#fuzz_}"
  mkdir -p "$work/corpus"
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work/corpus/"
  echo "fuzz.sh: $name for ${seconds} s (seed corpus: ${corpus#"$root"/})"
  if ! (cd "$work" && "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=0 corpus > "$work/log" 2>&1); then
    tail -n 40 "$work/log"
    echo "fuzz.sh: $name failed; the reproducer is in $work" >&2
    exit 1
  fi
  grep -E "^(#[0-9]+.*DONE|Done)" "$work/log" | tail -n 1 || true
  rm -rf "$work"
  found=$((found + 1))
done
[ "$found" -gt 0 ] || { echo "fuzz.sh: no fuzz targets in $build" >&2; exit 1; }
echo "fuzz.sh: $found target(s) ran clean"

#!/usr/bin/env bash
# scripts/deps.sh — installs the Debian packages a target needs.
#   bash scripts/deps.sh build    compilers and CMake
#   bash scripts/deps.sh test     build + Criterion, pkg-config, clang's sanitizer runtime
#   bash scripts/deps.sh refs     the reference generators: Debian's PyTorch and NumPy
#   bash scripts/deps.sh data     the Fashion-MNIST data set
#   bash scripts/deps.sh all      everything above
# As root it runs apt-get; otherwise it prints the exact command to run and stops.
set -euo pipefail

target=${1:-all}
build_pkgs=(build-essential cmake pkg-config libomp-dev zlib1g-dev libjansson-dev libssl-dev)
test_pkgs=(libcriterion-dev clang libclang-rt-14-dev)
refs_pkgs=(python3-torch python3-numpy)
data_pkgs=(dataset-fashion-mnist)

case "$target" in
  build) want=("${build_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  refs) want=("${refs_pkgs[@]}") ;;
  data) want=("${data_pkgs[@]}") ;;
  all) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${refs_pkgs[@]}" "${data_pkgs[@]}") ;;
  *) echo "deps.sh: unknown target '$target' (build, test, refs, data, all)" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}" >&2
  echo "deps.sh: run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$cmd -qq

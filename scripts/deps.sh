#!/usr/bin/env bash
# scripts/deps.sh — installs the Debian packages a target needs.
#   bash scripts/deps.sh build    compilers and CMake
#   bash scripts/deps.sh test     build + Criterion, pkg-config, clang's sanitizer runtime
#   bash scripts/deps.sh refs     the reference generators: Debian's PyTorch and NumPy
#   bash scripts/deps.sh data     the Fashion-MNIST data set
#   bash scripts/deps.sh all      everything above
#   bash scripts/deps.sh cross    build + the aarch64 cross compiler, qemu-user and arm64 libraries
#                                 (make cross-aarch64; not part of all)
# As root it runs apt-get; otherwise it prints the exact command to run and stops.
set -euo pipefail

target=${1:-all}
build_pkgs=(build-essential cmake pkg-config libomp-dev zlib1g-dev libjansson-dev libssl-dev)
test_pkgs=(libcriterion-dev clang libclang-rt-14-dev)
refs_pkgs=(python3-torch python3-numpy)
data_pkgs=(dataset-fashion-mnist)
# Cross-compiling for aarch64: Debian's cross gcc, qemu-user, and the arm64 libraries libborn and
# Criterion link against (Debian multiarch: arm64 beside amd64). Criterion itself cannot be
# installed for arm64 beside the amd64 one `make test` needs (its libnanomsg5 is not Multi-Arch),
# so its arm64 packages are unpacked into cross_criterion_dir, with a pkg-config file of its own;
# cmake/toolchain-aarch64.cmake looks there (both honour $BORN_CROSS_CRITERION). Criterion runs
# each test by executing the test program again: under qemu-user that needs the kernel to start
# aarch64 programs through qemu itself (binfmt_misc), which cross_binfmt registers.
cross_pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user qemu-user-binfmt libc6:arm64
            pkgconf:arm64 libjansson-dev:arm64 libssl-dev:arm64 zlib1g-dev:arm64 libffi8:arm64
            libgit2-1.5:arm64)
cross_criterion_debs=(libcriterion3:arm64 libcriterion-dev:arm64 libnanomsg5:arm64)
cross_criterion_dir=${BORN_CROSS_CRITERION:-/opt/born-cross-aarch64}
cross_setup() {
  local pc=$cross_criterion_dir/usr/lib/aarch64-linux-gnu/pkgconfig/criterion.pc
  if dpkg --print-foreign-architectures | grep -qx arm64 && [ -f "$pc" ]; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: run as root:  dpkg --add-architecture arm64 && apt-get update" \
      "&& bash scripts/deps.sh cross" >&2
    exit 1
  fi
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  echo "deps.sh: unpacking ${cross_criterion_debs[*]} into $cross_criterion_dir"
  apt-get update -qq
  local tmp
  tmp=$(mktemp -d) && chmod 755 "$tmp" # apt-get download drops root for the download
  (cd "$tmp" && apt-get download -qq "${cross_criterion_debs[@]}")
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$cross_criterion_dir"; done
  rm -rf "$tmp"
  # shared linking only: the private requirements name .pc files that are not installed
  sed -i -e "s|^prefix=.*|prefix=$cross_criterion_dir/usr|" -e '/^Requires.private:/d' \
    -e '/^Libs.private:/d' "$pc"
}
# Run at exit, once the packages are in: registers qemu-user-binfmt's aarch64 entry with the
# kernel when it is not there yet (no systemd-binfmt on a build machine or in a container).
cross_binfmt() {
  local rc=$? bf=/proc/sys/fs/binfmt_misc
  [ "$rc" -eq 0 ] && [ ! -e "$bf/qemu-aarch64" ] || return "$rc"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: run as root:  cat /usr/lib/binfmt.d/qemu-aarch64.conf > $bf/register" >&2
    exit 1
  fi
  [ -e "$bf/register" ] || mount -t binfmt_misc binfmt_misc "$bf"
  cat /usr/lib/binfmt.d/qemu-aarch64.conf > "$bf/register"
  echo "deps.sh: registered qemu-aarch64 with binfmt_misc"
}

case "$target" in
  build) want=("${build_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  refs) want=("${refs_pkgs[@]}") ;;
  data) want=("${data_pkgs[@]}") ;;
  cross) cross_setup; trap cross_binfmt EXIT; want=("${build_pkgs[@]}" "${cross_pkgs[@]}") ;;
  all) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${refs_pkgs[@]}" "${data_pkgs[@]}") ;;
  *) echo "deps.sh: unknown target '$target' (build, test, refs, data, all, cross)" >&2; exit 2 ;;
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

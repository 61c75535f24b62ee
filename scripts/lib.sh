# Shared by scripts/demo and scripts/check: where things are, and installing
# what a fresh Debian 12 machine lacks.
# shellcheck shell=bash

HADRON_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export HADRON_ROOT

# Debian packages the build, the tests and the demo need. libclang-rt-dev
# holds clang's sanitizer runtimes and libFuzzer (clang only recommends it).
HADRON_PACKAGES=(meson ninja-build pkg-config python3 gcc libc6-dev clang lld llvm
                 libclang-rt-dev libcriterion-dev qemu-system-x86 qemu-system-arm gcovr
                 grub-common grub-pc-bin grub-efi-amd64-bin xorriso mtools ovmf)

# Installs missing packages when running as root (CI and fresh machines);
# otherwise says what is missing and fails.
ensure_packages() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    return 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# meson setup that reconfigures an existing directory instead of failing.
# usage: setup_build DIR [meson options...]
setup_build() {
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

#!/usr/bin/env bash
# Captures the Multiboot2 boot information that GRUB hands the test kernel
# on each firmware and memory size, as the fixtures of the host tests: the
# kernel's "bootdump" lines (hex, 32 bytes a line) with a header saying
# where they came from. Needs a cross build (for the kernel) and the GRUB,
# OVMF and QEMU packages scripts/check installs.
#
#   tests/unit/boot/capture.sh BUILD_DIR   e.g. build/x
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=${1:?usage: capture.sh CROSS_BUILD_DIR}
kernel=$build/tests/qemu/arch/x86_64/hadron-test-kernel.elf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/tests/qemu/arch/x86_64/mkiso.sh" "$kernel" "$tmp/dump.iso" "bootdump"
ver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo '?'; }
for fw in bios uefi; do
  for mem in 256M 2G 8G; do
    out=$here/fixtures/grub-$fw-$mem.mbi
    "$root/tests/qemu/arch/x86_64/run-qemu.sh" --boot "grub-$fw" --iso "$tmp/dump.iso" --kernel "$kernel" \
      --mem "$mem" --cpu max 2>/dev/null >"$tmp/log" || true
    {
      echo "# Multiboot2 boot information from GRUB $(ver grub-common) on $fw firmware" \
           "($([ $fw = uefi ] && echo "OVMF $(ver ovmf)" || echo SeaBIOS)), QEMU $(ver qemu-system-x86)" \
           "-M pc -m $mem -cpu max; captured by tests/unit/boot/capture.sh"
      grep -E '^# mbi [0-9a-f]+:' "$tmp/log"
    } >"$out"
    echo "$out: $(grep -c '^# mbi ' "$out") lines"
  done
done

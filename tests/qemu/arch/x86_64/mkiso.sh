#!/usr/bin/env bash
# Builds a GRUB image that boots the test kernel through Multiboot2 on BIOS
# and on UEFI firmware (grub-mkrescue: one hybrid ISO 9660 image with GRUB
# for i386-pc and for x86_64-efi, from the Debian packages grub-pc-bin and
# grub-efi-amd64-bin). The same file boots from a CD drive, a disk or a USB
# stick. Nothing of GRUB is kept in the repository.
#
#   mkiso.sh KERNEL.elf OUT.iso [KERNEL COMMAND LINE]
set -euo pipefail
kernel=${1:?usage: mkiso.sh KERNEL.elf OUT.iso [cmdline]}
out=${2:?usage: mkiso.sh KERNEL.elf OUT.iso [cmdline]}
cmdline=${3:-}
mkrescue=${GRUB_MKRESCUE:-grub-mkrescue}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
tree=$dir/tree # the image's files; the log stays outside
mkdir -p "$tree/boot/grub"
cp "$kernel" "$tree/boot/kernel.elf"
# No menu, no wait: the default entry boots at once. The command line is
# fixed here (GRUB cannot take one from QEMU), so each image has its own.
cat >"$tree/boot/grub/grub.cfg" <<CFG
set timeout=0
set default=0
menuentry "hadron-mm test kernel" {
    multiboot2 /boot/kernel.elf $cmdline
    boot
}
CFG
# grub-mkrescue chats on stderr even when it succeeds: keep it for failures.
if ! "$mkrescue" -o "$out" "$tree" >"$dir/log" 2>&1; then
  cat "$dir/log" >&2
  exit 1
fi

#!/usr/bin/env bash
# The demo: boots the test kernel with -m 2G in demo mode and prints what it
# shows on its serial line: how it booted and the firmware's memory map, the
# PMM and what reclaiming the bootloader's memory gave back, the layout, the
# kernel's page tables, the heap, and the self-checks.
#
#   run-demo.sh [--boot grub-uefi|grub-bios] --iso IMG KERNEL.elf
#   run-demo.sh --boot pvh KERNEL.elf [extra kernel command-line words]
#
# Under GRUB the command line ("demo") is the image's own (mkiso.sh); the
# kernel file is still needed to symbolize a crash backtrace.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
boot=grub-uefi iso=
while [ $# -gt 0 ]; do
  case "$1" in
    --boot) boot=$2; shift 2 ;;
    --iso) iso=$2; shift 2 ;;
    *) break ;;
  esac
done
kernel=${1:?usage: run-demo.sh [--boot B] [--iso IMG] KERNEL.elf [cmdline words]}
shift
if [ "$boot" = pvh ]; then
  exec "$here/run-qemu.sh" --boot pvh --kernel "$kernel" --mem 2G --cpu max --append "demo $*"
fi
exec "$here/run-qemu.sh" --boot "$boot" --iso "$iso" --kernel "$kernel" --mem 2G --cpu max

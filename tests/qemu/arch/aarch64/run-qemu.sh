#!/usr/bin/env bash
# Boots the AArch64 test kernel under qemu-system-aarch64 (-M virt) and
# passes its TAP (PL011) through to stdout. QEMU loads the Linux arm64
# Image itself (-kernel) and hands the kernel its device tree in x0; the
# kernel ends the run through semihosting (SYS_EXIT), so QEMU's exit status
# is the verdict: 0 when every check passed, 1 otherwise (failed checks, an
# exception, a hang cut by the timeout).
#
#   run-qemu.sh --image IMAGE --elf K.elf [--mem 128M] [--cpu cortex-a72]
#               [--machine virt] [--smp N] [--append "demo"] [--timeout S]
#               [--skip REASON] [-- extra qemu args]
#
# --machine is the -M value (virt,virtualization=on enters the kernel at
# EL2). --smp is the CPU count (the kernel starts the others through PSCI).
# K.elf symbolizes crash backtraces. --skip prints a TAP skip with
# REASON and exits 0.
set -uo pipefail

image= elf= mem=128M cpu=cortex-a72 machine=virt smp=1 append= timeout_s=${QEMU_TIMEOUT:-60}
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --skip) echo "1..0 # SKIP $2"; exit 0 ;;
    --image) image=$2; shift 2 ;;
    --elf) elf=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --machine) machine=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --append) append=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: $0 --image IMAGE --elf K.elf [--mem M] [--cpu C] [--machine virt[,...]]" \
            "[--smp N] [--append A] [--timeout S] [--skip REASON] [-- qemu args]" >&2
       exit 2 ;;
  esac
done
if [ -z "$image" ] || [ ! -f "$image" ]; then
  echo "Bail out! no kernel image: '$image'"
  exit 1
fi
qemu=${QEMU:-qemu-system-aarch64}
if ! command -v "$qemu" >/dev/null 2>&1; then
  echo "1..0 # SKIP $qemu not installed (Debian package qemu-system-arm)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log
echo "# $qemu -M $machine -cpu $cpu -m $mem -smp $smp, append '$append'" >&2
timeout --foreground -k 5 "$timeout_s" "$qemu" \
  -M "$machine" -cpu "$cpu" -m "$mem" -smp "$smp" \
  -kernel "$image" -append "$append" \
  -display none -monitor none -serial stdio -no-reboot -nic none -semihosting \
  "${extra[@]}" </dev/null | tr -d '\r' |
  awk '/^TAP version/ { tap = 1 }
       tap { print; fflush(); next }
       { if ($0 != "") print "# before the kernel: " $0 > "/dev/stderr" }' |
  tee "$log"
status=${PIPESTATUS[0]}

symbolizer=$(command -v llvm-addr2line || command -v addr2line || true)
if [ -n "$symbolizer" ] && [ -n "$elf" ] && grep -q '^#   backtrace:' "$log"; then
  addrs=$(grep '^#   backtrace:' "$log" | head -1 | sed 's/^#   backtrace://')
  echo "# backtrace, symbolized:"
  # shellcheck disable=SC2086
  "$symbolizer" -fip -e "$elf" $addrs 2>/dev/null | sed 's|^|#   |; s|/[^ ]*/\.\./\.\./||'
fi

case $status in
  0) grep -q '^TAP version' "$log" && exit 0
     echo "Bail out! QEMU exited 0 without a TAP line"; exit 1 ;;
  1) echo "# kernel reported failed checks (exit $status)"; exit 1 ;;
  124|137) echo "Bail out! timed out after ${timeout_s}s (hang)"; exit 1 ;;
  *) echo "Bail out! QEMU exited with status $status"; exit 1 ;;
esac

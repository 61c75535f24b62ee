#!/usr/bin/env bash
# Boots the hadron-mm test kernel under qemu-system-x86_64 and passes its TAP
# (COM1) through to stdout. Exit status: 0 when the kernel reported success
# through isa-debug-exit (value 0x10 -> QEMU exit code 33), 1 otherwise
# (failed checks, a triple fault, a hang cut by the timeout).
#
#   run-qemu.sh --kernel K [--mem 128M] [--cpu qemu64] [--machine pc]
#               [--append "la57 demo"] [--timeout 30] [-- extra qemu args]
set -uo pipefail

kernel= mem=128M cpu=qemu64 machine=pc append= timeout_s=${QEMU_TIMEOUT:-30}
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --machine) machine=$2; shift 2 ;;
    --append) append=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: $0 --kernel K [--mem M] [--cpu C] [--machine pc|q35] [--append A] [-- qemu args]" >&2
       exit 2 ;;
  esac
done
if [ -z "$kernel" ] || [ ! -f "$kernel" ]; then
  echo "Bail out! no kernel image: '$kernel'"
  exit 1
fi
qemu=${QEMU:-qemu-system-x86_64}
if ! command -v "$qemu" >/dev/null 2>&1; then
  echo "1..0 # SKIP $qemu not installed"
  exit 0
fi

echo "# $qemu -M $machine -cpu $cpu -m $mem -append '$append'" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The kernel ends every line with CR LF; TAP wants LF.
timeout --foreground -k 5 "$timeout_s" "$qemu" \
  -M "$machine" -cpu "$cpu" -m "$mem" -smp 1 \
  -kernel "$kernel" -append "$append" \
  -display none -monitor none -serial stdio -no-reboot \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  "${extra[@]}" </dev/null | tr -d '\r' | tee "$log"
status=${PIPESTATUS[0]}

# A crash, panic or hang prints "#   backtrace: <rip> <return addresses>":
# turn the addresses into functions and source lines.
symbolizer=$(command -v llvm-addr2line || command -v addr2line || true)
if [ -n "$symbolizer" ] && grep -q '^#   backtrace:' "$log"; then
  addrs=$(grep '^#   backtrace:' "$log" | head -1 | sed 's/^#   backtrace://')
  echo "# backtrace, symbolized:"
  # shellcheck disable=SC2086
  "$symbolizer" -fip -e "$kernel" $addrs 2>/dev/null | sed 's|^|#   |; s|/[^ ]*/\.\./\.\./||'
fi

case $status in
  33) exit 0 ;;
  35) echo "# kernel reported failed checks (exit $status)"; exit 1 ;;
  37) echo "Bail out! boot stub failed: no long mode or bad PVH start info (exit $status)"; exit 1 ;;
  124|137) echo "Bail out! timed out after ${timeout_s}s (hang)"; exit 1 ;;
  0) echo "Bail out! QEMU stopped without isa-debug-exit (triple fault or shutdown)"; exit 1 ;;
  *) echo "Bail out! QEMU exited with status $status"; exit 1 ;;
esac

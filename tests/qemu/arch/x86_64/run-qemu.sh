#!/usr/bin/env bash
# Boots the hadron-mm test kernel under qemu-system-x86_64 and passes its TAP
# (COM1) through to stdout. Exit status: 0 when the kernel reported success
# through isa-debug-exit (value 0x10 -> QEMU exit code 33), 1 otherwise
# (failed checks, a triple fault, a hang cut by the timeout).
#
#   run-qemu.sh [--boot pvh|grub-bios|grub-uefi] --kernel K [--iso IMG]
#               [--mem 128M] [--cpu qemu64] [--machine pc]
#               [--append "la57 demo"] [--smp N] [--timeout S] [--skip REASON]
#               [-- extra qemu args]
#
# pvh        QEMU loads K itself (-kernel) and enters its PVH note; --append
#            is the kernel's command line.
# grub-bios  SeaBIOS boots the GRUB image IMG (mkiso.sh), whose multiboot2
#            command loads K; the command line is the one in the image.
# grub-uefi  the same on OVMF (Debian package ovmf; OVMF_CODE / OVMF_VARS
#            override the files), with a fresh copy of the variable store.
# --smp N gives the machine N CPUs (default 1); the kernel starts them all.
# K is still needed under GRUB: crash backtraces are symbolized with it.
# Firmware and GRUB output before the kernel's "TAP version" line goes to
# stderr (TAP wants the version line first). --skip prints a TAP skip with REASON and exits 0 (the
# build uses it when it could not make the image).
set -uo pipefail

boot=pvh kernel= iso= mem=128M cpu=qemu64 machine=pc append= smp=1 timeout_s=${QEMU_TIMEOUT:-}
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --boot) boot=$2; shift 2 ;;
    --iso) iso=$2; shift 2 ;;
    --skip) echo "1..0 # SKIP $2"; exit 0 ;;
    --kernel) kernel=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --machine) machine=$2; shift 2 ;;
    --append) append=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: $0 [--boot pvh|grub-bios|grub-uefi] --kernel K [--iso IMG] [--mem M]" \
            "[--cpu C] [--machine pc|q35] [--append A] [--skip REASON] [-- qemu args]" >&2
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

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log
case $boot in
  pvh)
    boot_args=(-kernel "$kernel" -append "$append")
    ;;
  grub-bios|grub-uefi)
    if [ -z "$iso" ] || [ ! -f "$iso" ]; then
      echo "Bail out! no GRUB image: '$iso'"
      exit 1
    fi
    if [ -n "$append" ]; then
      echo "Bail out! --append '$append': under GRUB the command line is the image's (mkiso.sh)"
      exit 1
    fi
    boot_args=(-cdrom "$iso")
    ;;
  *)
    echo "Bail out! unknown --boot '$boot' (pvh, grub-bios, grub-uefi)"
    exit 1
    ;;
esac
if [ "$boot" = grub-uefi ]; then
  code=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE.fd}
  vars=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS.fd}
  if [ ! -f "$code" ] || [ ! -f "$vars" ]; then
    echo "1..0 # SKIP no OVMF firmware ($code, $vars: Debian package ovmf)"
    exit 0
  fi
  # OVMF writes its variable store (boot entries): each run gets its own.
  cp "$vars" "$tmp/vars.fd"
  boot_args=(-drive "if=pflash,format=raw,readonly=on,file=$code"
             -drive "if=pflash,format=raw,file=$tmp/vars.fd" "${boot_args[@]}")
fi
# OVMF takes seconds under TCG before GRUB even starts. No network card:
# the kernel has no use for one, and loading its option ROM (iPXE) is half
# of OVMF's time under TCG.
[ -n "$timeout_s" ] || { [ "$boot" = grub-uefi ] && timeout_s=90 || timeout_s=30; }
# More vCPUs than host cores under TCG: every CPU's work shares them.
[ "$smp" -gt 1 ] && [ -z "${QEMU_TIMEOUT:-}" ] && timeout_s=$((timeout_s * 2))

echo "# $qemu -M $machine -cpu $cpu -m $mem, boot $boot${iso:+ ($iso)}, append '$append'" >&2
# The kernel ends every line with CR LF; TAP wants LF. What the firmware and
# GRUB print before the kernel starts goes to stderr, escapes removed.
timeout --foreground -k 5 "$timeout_s" "$qemu" \
  -M "$machine" -cpu "$cpu" -m "$mem" -smp "$smp" \
  "${boot_args[@]}" \
  -display none -monitor none -serial stdio -no-reboot -nic none \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  "${extra[@]}" </dev/null | tr -d '\r' |
  awk '/^TAP version/ { tap = 1 }
       tap { print; fflush(); next }
       { gsub(/\033\[[0-9;=?]*[A-Za-z]/, ""); if ($0 != "") print "# firmware: " $0 > "/dev/stderr" }' |
  tee "$log"
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
  37) echo "Bail out! boot stub failed: no long mode, or a bad PVH / Multiboot2 magic (exit $status)"; exit 1 ;;
  124|137) echo "Bail out! timed out after ${timeout_s}s (hang)"; exit 1 ;;
  0) echo "Bail out! QEMU stopped without isa-debug-exit (triple fault or shutdown)"; exit 1 ;;
  *) echo "Bail out! QEMU exited with status $status"; exit 1 ;;
esac

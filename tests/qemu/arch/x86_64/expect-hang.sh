#!/usr/bin/env bash
# Boots the test kernel with the command line "hang" (hang.c): CPU 1 keeps a
# hadron-mm lock, CPU 0 spins on it with interrupts off, for good. The run
# must fail, stopped by the NMI watchdog, whose report must name the lock,
# the CPU holding it and the CPU waiting for it (lock_order builds record
# both). Prints TAP; the report itself follows as comment lines.
#
#   expect-hang.sh RUN_QEMU [run-qemu.sh arguments...]
set -uo pipefail
run=${1:?run-qemu.sh}
shift
out=$("$run" "$@" --append hang 2>&1)
status=$?
n=0 failed=0
check() {
  n=$((n + 1))
  if [ "$1" = yes ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi
}
has() { if grep -qF -- "$1" <<<"$out"; then echo yes; else echo no; fi; }
echo "TAP version 13"
echo "1..6"
check "$([ "$status" != 0 ] && echo yes || echo no)" "the hung run failed (exit status $status)"
check "$(has '# WATCHDOG: no progress for 1 s')" "the watchdog stopped it"
check "$(has 'CPU 0: spinning, holds 0 lock(s)')" "CPU 0 is reported spinning, holding nothing"
check "$(grep -F 'waits for "hang canary"' <<<"$out" | grep -qF 'held by CPU 1' && echo yes || echo no)" \
  "its wait names the lock and CPU 1 as the holder"
check "$(grep -A3 -F 'CPU 1: ' <<<"$out" | grep -qF 'holds "hang canary"' && echo yes || echo no)" \
  "CPU 1 is reported holding it"
check "$(has 'hang_for_the_watchdog at')" "the backtrace shows where CPU 0 spins"
sed 's/^/# | /' <<<"$out" | grep -F -A40 'WATCHDOG' | head -40
exit $failed

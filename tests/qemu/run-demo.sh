#!/usr/bin/env bash
# The demo: boots the test kernel with -m 2G in demo mode and prints what it
# shows on its serial line: the firmware memory map, the PMM, the layout,
# the kernel's page tables, the heap, and the self-checks.
#
#   run-demo.sh path/to/hadron-test-kernel.elf [extra kernel command-line words]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kernel=${1:?usage: run-demo.sh KERNEL.elf [cmdline words]}
shift
exec "$here/run-qemu.sh" --kernel "$kernel" --mem 2G --cpu max --append "demo $*"

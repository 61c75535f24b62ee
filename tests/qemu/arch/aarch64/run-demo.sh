#!/usr/bin/env bash
# The AArch64 demo: boots the test kernel on QEMU's virt machine (-cpu max:
# 52-bit VA with FEAT_LPA2, 2 GiB) with "demo" on its command line and
# prints what it shows on its PL011: the self-checks, then the machine, the
# device tree's memory and the map handed to the PMM, the layout, the
# kernel's page tables and the heap.
#
#   run-demo.sh IMAGE KERNEL.elf [extra kernel command-line words]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=${1:?usage: run-demo.sh IMAGE KERNEL.elf [cmdline words]}
elf=${2:?usage: run-demo.sh IMAGE KERNEL.elf [cmdline words]}
shift 2
exec "$here/run-qemu.sh" --image "$image" --elf "$elf" --mem 2G --cpu max --append "demo $*"

#!/usr/bin/env bash
# Builds tests/consumer, a kernel-side project that uses hadron-mm as a Meson
# subproject, natively (and runs its smoke test) and with both cross files.
# usage: check_consumer.sh SOURCE_ROOT WORK_DIR
set -euo pipefail
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work/project/subprojects"
cp "$src"/tests/consumer/*.c "$src"/tests/consumer/*.h "$src"/tests/consumer/meson.build "$work/project/"
# The way a kernel vendors it: hadron-mm's tree under subprojects/.
ln -s "$src" "$work/project/subprojects/hadron-mm"

cd "$work"
meson setup native project >native.log 2>&1 || { cat native.log; exit 1; }
ninja -C native >>native.log 2>&1 || { cat native.log; exit 1; }
meson test -C native --print-errorlogs >>native.log 2>&1 || { cat native.log; exit 1; }
# Tests and benchmarks stay off when hadron-mm is a subproject.
if find native/subprojects -name 'test-*' -type f | grep -q .; then
  echo "hadron-mm built its own tests as a subproject"; exit 1
fi
meson setup cross project --cross-file "$src/cross/x86_64-elf.ini" >cross.log 2>&1 \
  || { cat cross.log; exit 1; }
ninja -C cross >>cross.log 2>&1 || { cat cross.log; exit 1; }
grep -q 'define HADRON_MM_PMM_POISON 1' cross/subprojects/hadron-mm/core/include/hadron/mm/config.h \
  || { echo "pmm_poison did not reach the subproject's config.h"; exit 1; }
# The same project for an AArch64 kernel: the umbrella picks the AArch64
# mapper there.
meson setup cross-a64 project --cross-file "$src/cross/aarch64-elf.ini" >cross-a64.log 2>&1 \
  || { cat cross-a64.log; exit 1; }
ninja -C cross-a64 >>cross-a64.log 2>&1 || { cat cross-a64.log; exit 1; }
echo "consumer: native build + smoke run, x86_64 and aarch64 cross builds OK"

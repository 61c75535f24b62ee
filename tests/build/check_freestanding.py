#!/usr/bin/env python3
"""Proves cross-built archives are fit for a kernel: TAP on stdout.

For the archives given, every undefined symbol must be defined by one of the
archives, be one of the compiler's mem* builtins, or be a hook declared in
hooks.h; and no instruction may touch an SSE/AVX/MMX/x87 register (the kernel
does not save that state on entry).

usage: check_freestanding.py NM OBJDUMP HOOKS_H ARCHIVE...
"""
import re
import subprocess
import sys

BUILTINS = {"memcpy", "memset", "memmove", "memcmp"}
# AT&T operands of vector/FP register files; x87 mnemonics start with f.
VECTOR_REG = re.compile(r"%(?:[xyz]mm\d+|mm\d|st(?:\(\d\))?)\b")


def symbols(nm, archive, *flags):
    out = subprocess.run([nm, *flags, "--format=just-symbols", archive],
                         check=True, capture_output=True, text=True).stdout
    return {s.strip() for s in out.splitlines() if s.strip() and not s.endswith(":")}


def declared_hooks(path):
    text = open(path, encoding="utf-8").read()
    return set(re.findall(r"\b(mm_hook_\w+)\s*\(", text))


def main():
    nm, objdump, hooks_h, *archives = sys.argv[1:]
    if not archives:
        print("1..0 # no archives given")
        return 1
    hooks = declared_hooks(hooks_h)
    defined = set()
    for a in archives:
        defined |= symbols(nm, a, "--defined-only")
    allowed = BUILTINS | hooks | defined

    print(f"1..{2 * len(archives)}")
    failed = 0
    n = 0
    for a in archives:
        name = a.rsplit("/", 1)[-1]
        n += 1
        bad = sorted(symbols(nm, a, "--undefined-only") - allowed)
        if bad:
            failed += 1
            print(f"not ok {n} - {name}: undefined symbols outside the allowed set: {' '.join(bad)}")
        else:
            print(f"ok {n} - {name}: only mem* builtins and declared hooks are undefined")
        n += 1
        dis = subprocess.run([objdump, "-d", "--no-show-raw-insn", a],
                             check=True, capture_output=True, text=True).stdout
        hits = [l.strip() for l in dis.splitlines() if VECTOR_REG.search(l)]
        if hits:
            failed += 1
            print(f"not ok {n} - {name}: {len(hits)} instructions use vector/FP registers, first: {hits[0]}")
        else:
            print(f"ok {n} - {name}: no SSE/MMX/x87 register use")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

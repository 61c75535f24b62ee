#!/usr/bin/env python3
"""Proves cross-built archives are fit for a kernel: TAP on stdout.

For the archives given, every undefined symbol must be defined by one of the
archives, be one of the compiler's mem* builtins, or be a hook declared in
hooks.h; and no instruction may touch a floating-point or vector register
(the kernel does not save that state on entry): on x86_64 the SSE/AVX/MMX/x87
registers, on AArch64 the FP/SIMD registers v0-v31 under every name (q, d,
s, h, b), the SVE registers (z, p) and the FP control and status registers
(fpcr, fpsr).

usage: check_freestanding.py NM OBJDUMP HOOKS_H ARCHIVE...
"""
import re
import subprocess
import sys

BUILTINS = {"memcpy", "memset", "memmove", "memcmp"}
# AT&T operands of vector/FP register files; x87 mnemonics start with f.
VECTOR_REG_X86 = re.compile(r"%(?:[xyz]mm\d+|mm\d|st(?:\(\d\))?)\b")
# llvm-objdump operands of AArch64 FP/SIMD/SVE registers: v0.4s, q1, d8, s0,
# h3, b7, z0.d, p1/z, and the FP control/status system registers. Symbol
# annotations (<name+0x10>) and comments are stripped first, so a function
# called b1 or an address 0xd8 cannot match.
VECTOR_REG_A64 = re.compile(
    r"(?<![\w.])(?:[vqdshbz](?:[12]?\d|3[01])|p(?:1[0-5]|\d))(?![\w])|\bfp[cs]r\b",
    re.IGNORECASE)


def vector_lines(disassembly):
    """Instructions of an llvm-objdump listing that use FP/vector registers,
    with the architecture taken from the listing's "file format" line."""
    regex = VECTOR_REG_X86
    hits = []
    for line in disassembly.splitlines():
        if "file format" in line:
            regex = VECTOR_REG_A64 if "aarch64" in line else VECTOR_REG_X86
            continue
        if ":\t" not in line and not re.match(r"\s+[0-9a-f]+:", line):
            continue
        code = re.sub(r"<[^>]*>", "", line.split("//", 1)[0])
        parts = code.split(None, 2)  # address, mnemonic, operands
        operands = parts[2] if len(parts) > 2 else ""
        if regex is VECTOR_REG_X86:
            operands = code
        if regex.search(operands):
            hits.append(line.strip())
    return hits


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
        hits = vector_lines(dis)
        if hits:
            failed += 1
            print(f"not ok {n} - {name}: {len(hits)} instructions use vector/FP registers, first: {hits[0]}")
        else:
            print(f"ok {n} - {name}: no FP/vector register use")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

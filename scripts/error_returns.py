#!/usr/bin/env python3
"""Every error return of the libraries, and whether a test reached it.

An error site is a line of library code (core, layout, pmm, paging-common, paging-x86_64, paging-aarch64,
vmm, kheap; not the host-only malloc shim) that returns or sets an MM_ERR_*
status, or invokes a macro whose body returns one (a checker's FAIL macro).
Coverage comes from gcovr JSON reports of the coverage builds (gcc with the
default options, clang with every debug option), so code compiled only with
a debug option is judged too; a site is exercised when either build ran it.

A site no test can reach must be listed in tests/error-returns.allow with
the reason (a race re-check, a corruption path behind an earlier check...).
The run fails when an unexercised site is not listed, or a listed one is
exercised or gone (so the list never goes stale).

    error_returns.py REPORT.json [REPORT.json...]
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBS = ("core", "layout", "pmm", "paging-common", "paging-x86_64", "paging-aarch64", "vmm", "kheap")
SKIP = ("kheap/shim/", "core/src/status.c", "core/include/hadron/mm/status.h")
ALLOW = os.path.join(ROOT, "tests", "error-returns.allow")

ERR_USE = re.compile(r"(return\s+MM_ERR_\w+|=\s*MM_ERR_\w+\s*;|\?\s*MM_ERR_\w+|:\s*MM_ERR_\w+\s*;)")


def strip_comments(text):
    """Blank out comments, keeping line structure."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def sources():
    for lib in LIBS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, lib)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    rel = os.path.relpath(os.path.join(dirpath, f), ROOT)
                    if not rel.startswith(SKIP):
                        yield rel


def fail_macros(texts):
    """Function-like macros whose expansion returns an MM_ERR_ status."""
    names = set()
    for text in texts.values():
        for m in re.finditer(r"#define\s+(\w+)\((?:[^()]*)\)((?:[^\n]*\\\n)*[^\n]*)", text):
            if re.search(r"return\s+MM_ERR_\w+", m.group(2)):
                names.add(m.group(1))
    return names


def sites():
    texts = {rel: strip_comments(open(os.path.join(ROOT, rel)).read()) for rel in sources()}
    macros = fail_macros(texts)
    call = re.compile(r"\b(" + "|".join(sorted(macros)) + r")\s*\(") if macros else None
    for rel, text in texts.items():
        in_define = False
        for no, line in enumerate(text.split("\n"), 1):
            starts_define = line.lstrip().startswith("#define")
            if starts_define or in_define:
                in_define = line.rstrip().endswith("\\")
                continue
            if ERR_USE.search(line) or (call and call.search(line)):
                yield rel, no, line.strip()


def coverage(reports):
    """(file, line) -> count, summed over the reports; None when no build compiled it."""
    counts = {}
    for path in reports:
        with open(path) as f:
            data = json.load(f)
        for entry in data.get("files", []):
            rel = os.path.normpath(entry["file"])
            for ln in entry.get("lines", []):
                if ln.get("gcovr/noncode"):
                    continue
                key = (rel, ln["line_number"])
                counts[key] = counts.get(key, 0) + ln["count"]
    return counts


def load_allow():
    allow = []
    if not os.path.exists(ALLOW):
        return allow
    for raw in open(ALLOW):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"(\S+)\s+\"([^\"]+)\"\s+(.+)", line)
        if not m:
            sys.exit(f"error-returns.allow: cannot read: {line}")
        allow.append({"file": m.group(1), "text": m.group(2), "why": m.group(3), "used": False})
    return allow


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    counts = coverage(argv[1:])
    allow = load_allow()
    total = hit = allowed = 0
    problems = []
    for rel, no, text in sites():
        total += 1
        count = counts.get((rel, no))
        listed = next((a for a in allow if a["file"] == rel and a["text"] in text), None)
        if count:
            hit += 1
            if listed is not None:
                problems.append(f"{rel}:{no}: listed as unreachable but a test ran it: {text}")
            continue
        if listed is not None:
            listed["used"] = True
            allowed += 1
            continue
        why = "never run" if count == 0 else "not compiled in any coverage build"
        problems.append(f"{rel}:{no}: error return {why}: {text}")
    for a in allow:
        if not a["used"] and not any(a["text"] in p for p in problems):
            problems.append(f"error-returns.allow: no unexercised site matches {a['file']} \"{a['text']}\"")
    print(f"error returns: {total} sites, {hit} exercised by tests, {allowed} listed as "
          f"unreachable by tests (tests/error-returns.allow), {len(problems)} problems")
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

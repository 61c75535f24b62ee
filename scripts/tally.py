#!/usr/bin/env python3
"""Counts test cases across Meson test logs and prints "N passed, N failed".

TAP tests (Criterion with --tap, the QEMU kernel, the freestanding check)
count one per `ok`/`not ok` line; a TAP test that crashed or timed out
before reporting a failure counts one more failure. Other tests count one.
"""
import json
import re
import sys

GOOD = {"OK", "EXPECTEDFAIL", "SKIP"}


def tally(path):
    passed = failed = 0
    failures = []
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        print(f"missing test log: {path}: {e}")
        return 0, 1, [path]
    for line in lines:
        t = json.loads(line)
        out = t.get("stdout") or ""
        ok = len(re.findall(r"^ok\b", out, re.M))
        bad = re.findall(r"^not ok\b.*$", out, re.M)
        result = t["result"]
        if result == "EXPECTEDFAIL":  # a should_fail check that did fail
            passed += 1
        elif ok or bad:
            passed += ok
            failed += len(bad)
            failures += [f"{t['name']}: {b}" for b in bad]
            if result not in GOOD and not bad:
                failed += 1
                failures.append(f"{t['name']}: {result}")
        elif result in GOOD:
            passed += 1
        else:
            failed += 1
            failures.append(f"{t['name']}: {result}")
    return passed, failed, failures


def main():
    total_p = total_f = 0
    for path in sys.argv[1:]:
        p, f, failures = tally(path)
        build = path.split("/")[-3] if path.count("/") >= 2 else path
        print(f"   {build}: {p} passed, {f} failed")
        for x in failures:
            print(f"     FAILED {x}")
        total_p += p
        total_f += f
    print(f"{total_p} passed, {total_f} failed")
    return 0 if total_f == 0 and total_p > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Lines of C code in the given files: comments and blank lines not counted.

    python3 scripts/count_lines.py kheap/src/*.[ch] kheap/include/hadron/mm/*.h
"""
import re
import sys


def code_lines(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return sum(1 for line in text.split("\n") if line.strip())


total = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        n = code_lines(f.read())
    total += n
    if len(sys.argv) > 2:
        print(f"{n:6d} {path}")
print(f"{total:6d} total")

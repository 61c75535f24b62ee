#!/usr/bin/env python3
"""Runs one libFuzzer harness for a bounded time; exit status 0 when the
fuzzer found nothing.

    run_fuzz.py HARNESS SEED_DIR WORK_DIR SECONDS [--keep]

The fuzzer starts from every input in SEED_DIR (the committed corpus, which
it only reads) and from WORK_DIR/corpus, where it writes the new inputs it
finds. Without --keep WORK_DIR/corpus starts empty, so every run is a fresh
run from the committed corpus. A crashing or mismatching input is saved in
WORK_DIR and the log says how to replay it. HADRON_FUZZ_SECONDS overrides
SECONDS.
"""
import os
import re
import shutil
import subprocess
import sys


def main():
    args = [a for a in sys.argv[1:] if a != "--keep"]
    keep = "--keep" in sys.argv[1:]
    if len(args) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    harness, seeds, work, seconds = args
    seconds = os.environ.get("HADRON_FUZZ_SECONDS", seconds)
    corpus = os.path.join(work, "corpus")
    if not keep:
        shutil.rmtree(corpus, ignore_errors=True)
    os.makedirs(corpus, exist_ok=True)
    for old in os.listdir(work):
        if re.match(r"(crash|leak|timeout|oom|slow-unit)-", old):
            os.remove(os.path.join(work, old))

    env = dict(os.environ)
    # The libraries are built with recoverable UBSan (the b_sanitize
    # default); make any report fatal so the fuzzer records it.
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    cmd = [
        harness,
        f"-max_total_time={seconds}",
        "-timeout=30",
        "-rss_limit_mb=2048",
        "-max_len=8192",
        "-print_final_stats=1",
        f"-artifact_prefix={work}/",
        corpus,
    ]
    if os.path.isdir(seeds):
        cmd.append(seeds)
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    out = proc.stdout
    lines = out.splitlines()
    # libFuzzer prints one line per new coverage event; keep the log short.
    interesting = [l for l in lines if not re.match(r"#\d+\s+(NEW|REDUCE|pulse)", l)]
    print("\n".join(interesting[-80:]))

    stats = dict(re.findall(r"^stat::(\w+):\s*(\d+)", out, re.M))
    cov = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", out)
    name = os.path.basename(harness)
    summary = f"{name}: {stats.get('number_of_executed_units', '?')} executions"
    if cov:
        c, ft, n, size = cov[-1]
        summary += f", cov {c}, ft {ft}, corpus {n} inputs ({size})"
    print(summary)

    if proc.returncode != 0:
        saved = [os.path.join(work, f) for f in sorted(os.listdir(work))
                 if re.match(r"(crash|leak|timeout|oom|slow-unit)-", f)]
        print(f"FAILED: {name} exited with {proc.returncode}")
        for s in saved:
            print(f"  input saved as {s}")
            print(f"  replay with: HADRON_FUZZ_TRACE=1 {harness} {s}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Runs one libFuzzer harness; exit status 0 when the fuzzer found nothing.

    run_fuzz.py HARNESS SEED_DIR WORK_DIR --runs N --seed S
    run_fuzz.py HARNESS SEED_DIR WORK_DIR SECONDS [--keep]

The fuzzer starts from every input in SEED_DIR (the committed corpus, which
it only reads) and from WORK_DIR/corpus, where it writes the new inputs it
finds. A crashing or mismatching input is saved in WORK_DIR and the log says
how to replay it.

With --runs and --seed (the test suite) the run is reproducible: a fixed
number of inputs, a fixed mutation seed, WORK_DIR/corpus emptied first, no
corpus reloading, address-space randomisation off, and the same process
image wherever the tree is checked out: the harness runs in WORK_DIR under
fixed relative names (./harness, corpus, seeds: links) with a fixed
environment, so its stack holds the same strings and every address it sees
is the same; two runs of a commit, in any clone, execute the same inputs
and give the same verdict.

With SECONDS (scripts/fuzz) the run is time-boxed and random: that is where
new inputs are found. Without --keep WORK_DIR/corpus starts empty.
HADRON_FUZZ_SECONDS overrides SECONDS.
"""
import ctypes
import os
import re
import shutil
import subprocess
import sys


def parse(argv):
    """(harness, seeds, work, budget options, keep) or None."""
    keep = "--keep" in argv
    rest = [a for a in argv if a != "--keep"]
    named = {}
    while len(rest) >= 2 and rest[-2] in ("--runs", "--seed"):
        named[rest[-2]] = rest[-1]
        rest = rest[:-2]
    if named:
        if len(rest) != 3 or set(named) != {"--runs", "--seed"} or keep:
            return None
        budget = [f"-runs={int(named['--runs'])}", f"-seed={int(named['--seed'])}",
                  "-reload=0"]
        return (*rest, budget, False)
    if len(rest) != 4:
        return None
    seconds = int(os.environ.get("HADRON_FUZZ_SECONDS", rest[3]))
    return (*rest[:3], [f"-max_total_time={seconds}"], keep)


ADDR_NO_RANDOMIZE = 0x0040000


def no_aslr():
    """Turns address-space randomisation off for this process's children
    (personality(2); a child inherits it across exec)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.personality(0xFFFFFFFF) < 0 or \
                libc.personality(libc.personality(0xFFFFFFFF) | ADDR_NO_RANDOMIZE) < 0:
            raise OSError(ctypes.get_errno(), "personality")
    except (OSError, AttributeError) as e:
        print(f"# address randomisation stays on ({e}): addresses may differ from run to run")


def link(target, name):
    """(Re)creates the symbolic link `name` to `target`."""
    if os.path.lexists(name):
        os.remove(name)
    os.symlink(os.path.abspath(target), name)


# The whole environment of a reproducible run: nothing that varies between
# machines, clones or runs (meson's random MALLOC_PERTURB_, paths, ...).
FIXED_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    "ASAN_OPTIONS": "detect_leaks=1",
}


def main():
    parsed = parse(sys.argv[1:])
    if parsed is None:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    harness, seeds, work, budget, keep = parsed
    reproducible = any(b.startswith("-seed=") for b in budget)
    corpus = os.path.join(work, "corpus")
    if not keep:
        shutil.rmtree(corpus, ignore_errors=True)
    os.makedirs(corpus, exist_ok=True)
    for old in os.listdir(work):
        if re.match(r"(crash|leak|timeout|oom|slow-unit)-", old):
            os.remove(os.path.join(work, old))

    # The libraries are built with recoverable UBSan (the b_sanitize
    # default); UBSAN_OPTIONS makes any report fatal so the fuzzer records it.
    if reproducible:
        env, cwd = dict(FIXED_ENV), work
        link(harness, os.path.join(work, "harness"))
        link(seeds, os.path.join(work, "seeds"))
        exe, dirs, prefix = "./harness", ["corpus", "seeds"], "./"
        no_aslr()
        # Printing the functions new coverage reaches symbolizes them, and
        # the file names (absolute paths, from the debug information) are
        # then kept on the heap: their lengths moved every later allocation
        # and so the mutations (fuzz-x86pt differed between checkouts).
        budget = budget + ["-print_funcs=0"]
    else:
        env, cwd = dict(os.environ), None
        env.setdefault("UBSAN_OPTIONS", FIXED_ENV["UBSAN_OPTIONS"])
        env.setdefault("ASAN_OPTIONS", FIXED_ENV["ASAN_OPTIONS"])
        exe, dirs, prefix = harness, [corpus, seeds], f"{work}/"
    if not os.path.isdir(seeds):
        dirs.pop()
    cmd = [
        exe,
        *budget,
        # Per input: far above the slowest input seen (under a second), so a
        # loaded machine cannot turn a slow input into a failure.
        "-timeout=300",
        "-rss_limit_mb=2048",
        "-max_len=8192",
        "-print_final_stats=1",
        f"-artifact_prefix={prefix}",
        *dirs,
    ]
    print("+", f"(cd {cwd} &&)" if cwd else "", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
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

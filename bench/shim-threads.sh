#!/usr/bin/env bash
# Real programs running two threads, under glibc, the malloc shim
# (libhadron-kheap-malloc.so), jemalloc and tcmalloc (Debian's libjemalloc2
# and libtcmalloc-minimal4, preloaded the same way as the shim). The four
# take turns run by run, each run starting with the next allocator, RUNS
# times (default 5): median wall time and median peak resident memory
# (/usr/bin/time), with the spread as comment lines. Prints
#   ratio shim-mt.<program>.time <shim s> <glibc s> <glibc/shim>
#   ratio shim-mt.<program>.rss <shim KiB> <glibc KiB> <glibc/shim>
#   ratio shim-mt.<program>.time.jemalloc <shim s> <jemalloc s> <jemalloc/shim>
# and likewise .rss.jemalloc, .time.tcmalloc, .rss.tcmalloc (informational).
#
#   bench/shim-threads.sh BUILD_DIR [RUNS] [PROGRAM...]
#
# SHIM_BEFORE=path/to/an/older/libhadron-kheap-malloc.so adds that build to
# the turns (lines shim-mt.<program>.time.before ...), to measure a change
# under the same load. CPU time (user + system) is printed beside the wall
# time: on a loaded machine it moves less, though a waiter's spinning
# counts in it.
#
# The programs, each about 1-2 s, chosen because allocation is most of
# what they do:
#   perl-threads   two Perl ithreads each building and dropping a hash of
#                  150,000 entries, three times (one interpreter per thread:
#                  concurrent malloc and free, no sharing)
#   python-queue   a producer thread builds lists of small dicts, a consumer
#                  reads and drops them (PYTHONMALLOC=malloc: every object on
#                  malloc): what one thread allocates the other frees
#   python-spawn   600 short-lived threads, two at a time, each building a
#                  dict of 3,000 entries: a program that outlives many threads
#   git-pack       git pack-objects --threads=2, deltas recomputed, on a
#                  generated history (1,500 commits of 60 C-like files)
#   git-index-pack git index-pack --threads=2 on that pack: deltas resolved
#                  by two threads, each inflating and dropping objects
# Compressors (xz -T2, zstd -T2) were left out: their time is the codec's,
# and their few large buffers do not exercise the allocator.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?build directory}
runs=${2:-5}
shift $(($# < 2 ? $# : 2))
shim="$(cd "$build" && pwd)/kheap/libhadron-kheap-malloc.so"
[ -f "$shim" ] || { echo "no shim at $shim (configure with -Dmalloc_shim=true)" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source "$here/../scripts/lib.sh"
ensure_packages libjemalloc2 libtcmalloc-minimal4 perl python3 git time
libdir=/usr/lib/x86_64-linux-gnu
jemalloc=$libdir/libjemalloc.so.2
tcmalloc=$libdir/libtcmalloc_minimal.so.4
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/threads.pl" <<'PERL'
use threads;
sub work { my $t = shift; my $s = 0;
  for my $round (1..3) { my %h;
    for my $i (1..150000) { $h{"k$t.$i"} = [$i, "v" x ($i % 40)]; }
    $s += $h{$_}[0] for keys %h; }
  return $s; }
my @t = map { threads->create(\&work, $_) } 1..2;
my $s = 0; $s += $_->join for @t; print "$s\n";
PERL
cat >"$work/prodcons.py" <<'PY'
import threading, queue
q = queue.Queue(maxsize=64)
def producer():
    for r in range(3000):
        q.put([{"a": i, "b": str(i) * 3, "c": (i, r)} for i in range(500)])
    q.put(None)
def consumer(out):
    n = 0
    while (b := q.get()) is not None:
        n += sum(len(d["b"]) for d in b)
    out.append(n)
out = []
t = [threading.Thread(target=producer), threading.Thread(target=consumer, args=(out,))]
for x in t: x.start()
for x in t: x.join()
print(out[0])
PY
cat >"$work/spawn.py" <<'PY'
import threading
def work(k, out):
    d = {}
    for i in range(3000):
        d[i] = [str(i), (i, k)]
    out[k % 2] = len(d)
out = [0, 0]
for r in range(300):
    t = [threading.Thread(target=work, args=(2 * r + j, out)) for j in range(2)]
    for x in t: x.start()
    for x in t: x.join()
print(sum(out))
PY

# A deterministic history for git: 1,500 commits, each changing three of 60
# files by a line, written through fast-import, then one pack.
gen_repo() {
  "$python" - "$work/history" <<'PY'
import sys
out = open(sys.argv[1], "w")
files = {f"src/f{i}.c": [f"line {j} of file {i} " + "x" * (j % 40) for j in range(300)]
         for i in range(60)}
for c in range(1500):
    msg = f"commit {c}\n"
    out.write(f"commit refs/heads/main\ncommitter A <a@example.org> {1700000000 + c} +0000\n"
              f"data {len(msg)}\n{msg}")
    for k in range(3):
        name = f"src/f{(c * 7 + k * 13) % 60}.c"
        lines = files[name]
        pos = (c * 31 + k) % len(lines)
        lines.insert(pos, f"change {c} {k} " + "y" * ((c + k) % 50))
        if len(lines) > 450:
            del lines[(pos + 100) % len(lines)]
        body = "\n".join(lines) + "\n"
        out.write(f"M 100644 inline {name}\ndata {len(body.encode())}\n{body}\n")
PY
  git init -q "$work/repo"
  git -C "$work/repo" fast-import --quiet <"$work/history"
  git -C "$work/repo" repack -adq
  rm -f "$work/history"
}

all=(perl-threads python-queue python-spawn git-pack git-index-pack)
programs=("$@")
[ "$#" -gt 0 ] || programs=("${all[@]}")
case " ${programs[*]} " in *" git-"*) gen_repo ;; esac

# argv_of PROGRAM: its command line in argv (environment first, for env).
argv_of() {
  case $1 in
    perl-threads) argv=(perl "$work/threads.pl") ;;
    python-queue) argv=(PYTHONMALLOC=malloc "$python" "$work/prodcons.py") ;;
    python-spawn) argv=(PYTHONMALLOC=malloc "$python" "$work/spawn.py") ;;
    git-pack) argv=(git -C "$work/repo" pack-objects --threads=2 -q --all --no-reuse-delta
                    --no-reuse-object --stdout) ;;
    git-index-pack) argv=(git index-pack --threads=2 -o "$work/x.idx"
                          "$(echo "$work"/repo/.git/objects/pack/*.pack)") ;;
    *) echo "unknown program $1" >&2; return 1 ;;
  esac
}
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
range() { sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "-" hi}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b / a}'; }

allocs=(glibc shim jemalloc tcmalloc)
[ -z "${SHIM_BEFORE:-}" ] || allocs+=(before)
preload() {
  case $1 in glibc) echo "" ;; shim) echo "$shim" ;; jemalloc) echo "$jemalloc" ;;
    tcmalloc) echo "$tcmalloc" ;; before) echo "$SHIM_BEFORE" ;; esac
}

echo "# $(uptime)"
for p in "${programs[@]}"; do
  for a in "${allocs[@]}"; do : >"$work/$a.t"; : >"$work/$a.m"; : >"$work/$a.c"; done
  expect=""
  # One unmeasured run first: the page cache and the first run's misses
  # would otherwise count against whichever allocator goes first.
  argv_of "$p"
  env "${argv[@]}" </dev/null >/dev/null 2>&1 || true
  for ((r = 0; r < runs; r++)); do
    for ((i = 0; i < ${#allocs[@]}; i++)); do
      a=${allocs[$(((r + i) % ${#allocs[@]}))]}
      # env execs the program: its own peak, not a wrapper's.
      argv_of "$p"
      /usr/bin/time -o "$work/time" -f "%e %M %U %S" env LD_PRELOAD="$(preload "$a")" "${argv[@]}" \
        </dev/null >"$work/out"
      read -r t m u s <"$work/time"
      echo "$t" >>"$work/$a.t"; echo "$m" >>"$work/$a.m"
      awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f\n", u + s}' >>"$work/$a.c"
      # pack-objects splits the delta search between its threads as they
      # come: its pack differs run by run, so only its exit status counts.
      [ "$p" = git-pack ] && continue
      sum=$(cksum <"$work/out")
      if [ -z "$expect" ]; then expect=$sum
      elif [ "$sum" != "$expect" ]; then echo "$p: output differs under $a" >&2; exit 1; fi
    done
  done
  for a in "${allocs[@]}"; do
    printf '# %-15s %-9s time %6s s (%s)  cpu %6s s (%s)  rss %7s KiB (%s)\n' "$p" "$a" \
      "$(median <"$work/$a.t")" "$(range <"$work/$a.t")" \
      "$(median <"$work/$a.c")" "$(range <"$work/$a.c")" \
      "$(median <"$work/$a.m")" "$(range <"$work/$a.m")"
  done
  kt=$(median <"$work/shim.t"); km=$(median <"$work/shim.m")
  for a in "${allocs[@]}"; do
    [ "$a" != shim ] || continue
    sfx=""; [ "$a" = glibc ] || sfx=".$a"
    bt=$(median <"$work/$a.t"); bm=$(median <"$work/$a.m")
    echo "ratio shim-mt.$p.time$sfx $kt $bt $(ratio "$kt" "$bt")"
    echo "ratio shim-mt.$p.rss$sfx $km $bm $(ratio "$km" "$bm")"
  done
done

#!/usr/bin/env bash
# Real single-threaded programs under glibc and under the malloc shim
# (libhadron-kheap-malloc.so), alternating, RUNS times each: median wall time
# and median peak resident memory, and for shim-rss the resident memory
# after it freed its large blocks. Prints
#   ratio shim.<program>.time <shim s> <glibc s> <glibc/shim>
#   ratio shim.<program>.rss <shim KiB> <glibc KiB> <glibc/shim>
#
#   bench/shim-programs.sh BUILD_DIR [RUNS]
set -euo pipefail
build=${1:?build directory}
runs=${2:-5}
shim="$(cd "$build" && pwd)/kheap/libhadron-kheap-malloc.so"
rss_prog="$(cd "$build" && pwd)/bench/shim-rss"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/hash.pl" <<'PERL'
my %h; for my $i (1..300000) { $h{"key$i"} = [$i, "v" x ($i % 50)]; }
my $s = 0; $s += $h{$_}[0] for keys %h; delete $h{"key$_"} for 1..300000; print "$s\n";
PERL
cat >"$work/json_roundtrip.py" <<'PY'
import json
d = [{"a": i, "b": str(i) * 10, "c": [i] * (i % 30)} for i in range(150000)]
s = json.dumps(d); x = json.loads(s); print(len(s), len(x))
PY
python3 - "$work/big.c" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(1500):
        f.write(f"static int f{i}(int x) {{ int a[{i % 17 + 1}] = {{0}}; for (int k = 0; k < x; k++) a[k % {i % 17 + 1}] += k * {i}; return a[0]; }}\n")
    f.write("int main(void) { int s = 0;\n")
    for i in range(1500):
        f.write(f" s += f{i}({i});\n")
    f.write(" return s & 1; }\n")
PY

programs=(perl-hash python-json cc1 shim-rss)
cmd() {
  case $1 in
    perl-hash) echo "perl $work/hash.pl" ;;
    python-json) echo "python3 $work/json_roundtrip.py" ;;
    cc1) echo "gcc -O2 -c $work/big.c -o $work/big.o" ;;
    shim-rss) echo "$rss_prog" ;;
  esac
}
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

for p in "${programs[@]}"; do
  c=$(cmd "$p")
  : >"$work/g.t"; : >"$work/k.t"; : >"$work/g.m"; : >"$work/k.m"; : >"$work/g.a"; : >"$work/k.a"
  for ((r = 0; r < runs; r++)); do
    for who in g k; do
      pre=""; [ "$who" = k ] && pre="$shim"
      out=$(LD_PRELOAD=$pre /usr/bin/time -f "TIME %e %M %x" $c 2>&1 >"$work/out" | grep '^TIME') || true
      # A program that failed measured nothing (python-json once imported
      # itself, its script being named json.py, and timed the error).
      if [ "$(echo "$out" | awk '{print $4}')" != 0 ]; then
        echo "shim-programs: $p failed under ${pre:-glibc}" >&2; exit 1
      fi
      echo "$out" | awk '{print $2}' >>"$work/$who.t"
      echo "$out" | awk '{print $3}' >>"$work/$who.m"
      grep -o 'after_free_kib [0-9]*' "$work/out" | awk '{print $2}' >>"$work/$who.a" || true
    done
  done
  gt=$(median <"$work/g.t"); kt=$(median <"$work/k.t")
  gm=$(median <"$work/g.m"); km=$(median <"$work/k.m")
  echo "ratio shim.$p.time $kt $gt $(awk -v a="$kt" -v b="$gt" 'BEGIN {printf "%.2f", b / a}')"
  echo "ratio shim.$p.rss $km $gm $(awk -v a="$km" -v b="$gm" 'BEGIN {printf "%.2f", b / a}')"
  if [ -s "$work/k.a" ]; then
    ga=$(median <"$work/g.a"); ka=$(median <"$work/k.a")
    echo "ratio shim.$p.rss-after-free $ka $ga $(awk -v a="$ka" -v b="$ga" 'BEGIN {printf "%.2f", b / a}')"
  fi
done

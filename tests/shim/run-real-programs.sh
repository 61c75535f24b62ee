#!/bin/sh
# Runs real programs twice, normally and with LD_PRELOAD of the kheap malloc
# shim, and requires identical output. Each preloaded run must leave a
# statistics line written by the shim at exit (KHEAP_SHIM_STATS) showing
# allocations, so the test fails if the shim was not in use; KHEAP_SHIM_CHECK
# runs kheap_check at exit in every process. Programs that are not installed
# are skipped. Prints TAP.
#
#   run-real-programs.sh path/to/libhadron-kheap-malloc.so
set -u

shim=${1:?usage: $0 libhadron-kheap-malloc.so}
case $shim in /*) ;; *) shim=$(pwd)/$shim ;; esac
[ -f "$shim" ] || { echo "Bail out! no shim at $shim"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kheap-shim.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
stats=$work/stats.txt
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
have() { command -v "$1" >/dev/null 2>&1; }

# run NAME CMD...: CMD's stdout with and without the shim, compared.
run() {
    name=$1
    shift
    if ! "$@" >"$work/plain.out" 2>"$work/plain.err"; then
        not_ok "$name: fails even without the shim"
        sed 's/^/# /' "$work/plain.err" | head -5
        return
    fi
    : >"$stats"
    if ! env LD_PRELOAD="$shim" KHEAP_SHIM_STATS="$stats" KHEAP_SHIM_CHECK=1 \
        "$@" >"$work/shim.out" 2>"$work/shim.err"; then
        not_ok "$name: fails on the kernel heap"
        sed 's/^/# /' "$work/shim.err" | head -10
        return
    fi
    if ! cmp -s "$work/plain.out" "$work/shim.out"; then
        not_ok "$name: output differs on the kernel heap"
        diff "$work/plain.out" "$work/shim.out" | head -5 | sed 's/^/# /'
        return
    fi
    if grep -q 'kheap' "$work/shim.err"; then
        not_ok "$name: the heap reported a problem"
        grep 'kheap' "$work/shim.err" | head -5 | sed 's/^/# /'
        return
    fi
    # At least one process of the run used the shim for real work.
    allocs=$(sed -n 's/.* mallocs=\([0-9]*\).*/\1/p' "$stats" | sort -n | tail -1)
    procs=$(grep -c '^kheap-shim ' "$stats")
    if [ -z "$allocs" ] || [ "$allocs" -lt 50 ]; then
        not_ok "$name: the shim was not in use (no statistics from it)"
        return
    fi
    ok "$name ($procs processes on kheap, up to $allocs allocations)"
    sed 's/^/# /' "$stats"
}

echo "# shim: $shim"
if have nm && ! nm -D "$shim" | grep -q ' kheap_shim_marker$'; then
    echo "Bail out! $shim does not export kheap_shim_marker"
    exit 1
fi

# Inputs: deterministic, generated here.
awk 'BEGIN { srand(7); for (i = 0; i < 200000; i++) printf "%08d %s\n", int(rand() * 1e8), i }' \
    >"$work/lines.txt"
mkdir -p "$work/tree/a/b"
i=0
while [ $i -lt 40 ]; do
    seq $((i * 1000)) $((i * 1000 + 2000)) >"$work/tree/a/f$i.txt"
    i=$((i + 1))
done
cp "$work/lines.txt" "$work/tree/a/b/lines.txt"
cat >"$work/prog.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { struct node *next; char name[32]; int value; };
static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
int main(void)
{
    struct node *head = NULL;
    for (int i = 0; i < 1000; i++) {
        struct node *n = malloc(sizeof(*n));
        snprintf(n->name, sizeof(n->name), "node-%d", i);
        n->value = (i * 7919) % 1009;
        n->next = head;
        head = n;
    }
    int v[1000], k = 0;
    for (struct node *n = head; n; n = n->next)
        v[k++] = n->value;
    qsort(v, 1000, sizeof(int), cmp);
    printf("%d %d %d\n", v[0], v[500], v[999]);
    return 0;
}
CEOF

if have sort; then
    run "sort 200k lines" sort "$work/lines.txt"
    run "sort -n, 2 threads" sort -n -k2 --parallel=2 -S 16M "$work/lines.txt"
else skip sort "not installed"; fi
if have sed; then
    run "sed" sed -e 's/\([0-9]*\) \([0-9]*\)/\2:\1/' -e '/^1.*7:/d' "$work/lines.txt"
else skip sed "not installed"; fi
if have awk; then
    run "awk (associative arrays)" awk '{ c[substr($1, 1, 3)]++; s[$2 % 1000] = s[$2 % 1000] $1 } END { for (k in c) n++; for (k in s) m += length(s[k]); print n, m }' "$work/lines.txt"
else skip awk "not installed"; fi
if have tar && have gzip; then
    run "tar czf" sh -c "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C '$work' -cf - tree | gzip -n -6 | cksum"
else skip "tar czf" "not installed"; fi
if have cc; then
    run "cc -O2 -S (cc1)" cc -O2 -S -o - "$work/prog.c"
    if cc -O2 -o "$work/prog" "$work/prog.c" 2>/dev/null; then
        run "a compiled program" "$work/prog"
    fi
else skip cc "not installed"; fi
py=""
for p in /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
    if [ -n "$p" ] && [ -x "$p" ]; then py=$p; break; fi
done
if [ -n "$py" ]; then
    # PYTHONMALLOC=malloc sends every Python object through malloc.
    run "python3 (all objects on malloc)" env PYTHONMALLOC=malloc "$py" -c '
import hashlib, json, re
d = {str(i): [i] * (i % 50) for i in range(60000)}
s = json.dumps(d)
words = re.findall(r"\d+", s)
l = sorted(d.items(), key=lambda kv: (-len(kv[1]), kv[0]))
t = "".join(k for k, _ in l[:5000])
print(hashlib.sha256(s.encode()).hexdigest(), len(words), len(t))
'
    # Threads one after another, two live at a time: the shim's thread
    # numbering gives each exited thread's index (and its fronts) to the next.
    run "python3, 300 short-lived threads" env PYTHONMALLOC=malloc "$py" -c '
import threading
def work(k, out):
    out[k] = sum(len(str(i) * (i % 7)) for i in range(2000)) + len({i: [i] for i in range(k % 97)})
out = [0] * 300
for r in range(150):
    t = [threading.Thread(target=work, args=(2 * r + j, out)) for j in range(2)]
    for x in t: x.start()
    for x in t: x.join()
print(sum(out))
'
else skip python3 "not installed"; fi
if have sqlite3; then
    run "sqlite3" sqlite3 ":memory:" "
create table t(k integer primary key, v text, w real);
with recursive c(x) as (select 1 union all select x + 1 from c where x < 50000)
insert into t select x, printf('value-%d', x * 37 % 1000), x / 7.0 from c;
create index tv on t(v);
select count(*), count(distinct v), sum(length(v)), max(w) from t where v like 'value-1%';
select v, count(*) from t group by v order by 2 desc, 1 limit 3;"
else skip sqlite3 "not installed"; fi
if have perl; then
    run "perl" perl -e 'my %h; for my $i (1..100000) { $h{"k$i"} = [($i) x ($i % 20)]; } my $n = 0; $n += @{$h{$_}} for keys %h; my @s = sort { $a cmp $b } keys %h; print "$n $s[0] $s[-1]\n";'
else skip perl "not installed"; fi

echo "1..$n"
[ $failed -eq 0 ]

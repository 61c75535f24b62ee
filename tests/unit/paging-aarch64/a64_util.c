#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "a64_test.h"

env_t E;

void env_setup(unsigned va_bits, bool lpa2, unsigned phys_bits)
{
    sim_phys_create(SIM_BYTES);
    frame_pool_init(&E.pool, POOL_BASE, POOL_FRAMES);
    a64pt_config_t c = {.va_bits = va_bits, .lpa2 = lpa2, .phys_bits = phys_bits,
                        .frames = frame_pool_allocator(&E.pool)};
    cr_assert_eq(a64pt_init(&E.m, &c), MM_OK);
    cr_assert_eq(a64pt_root_create(&E.m, 0, &E.root), MM_OK);
    E.pm = a64pt_page_mapper(&E.m);
    mm_tlb_batch_init(&E.tlb);
}

/* With LPA2 (TCR_EL1.DS = 1) OA[49:12] sit in place and OA[51:50] in bits
 * 9:8; without it OA[47:12] in place. */
uint64_t raw_addr(uint64_t e)
{
    if (E.m.lpa2)
        return (e & 0x0003fffffffff000ull) | (((e >> 8) & 3ull) << 50);
    return e & 0x0000fffffffff000ull;
}

static uint64_t *table_at(uint64_t pa)
{
    return hhdm_phys_to_virt(pa);
}

static int start_level(void)
{
    return E.m.va_bits == 52 ? -1 : 0;
}

static unsigned idx(mm_vaddr_t va, int level)
{
    unsigned shift = 12u + 9u * (unsigned)(3 - level);
    return (unsigned)(va >> shift) & (level == -1 ? 15u : 511u);
}

/* Table descriptor at levels -1..2 (0b11); page at 3 (0b11); block at 1, 2 (0b01). */
static bool is_table(uint64_t e, int level)
{
    return level < 3 && (e & 3) == 3;
}

uint64_t *raw_slot(mm_paddr_t root, mm_vaddr_t va, int level)
{
    uint64_t *t = table_at(root);
    for (int l = start_level();; l++) {
        uint64_t *slot = &t[idx(va, l)];
        if (l == level)
            return slot;
        if (!is_table(*slot, l))
            return NULL;
        t = table_at(raw_addr(*slot));
    }
}

uint64_t raw_leaf(mm_paddr_t root, mm_vaddr_t va, int *level, uint64_t entries[5])
{
    uint64_t *t = table_at(root);
    int k = 0;
    for (int l = start_level(); l <= 3; l++, k++) {
        uint64_t e = t[idx(va, l)];
        if (entries)
            entries[k] = e;
        if (!(e & B_VALID))
            return 0;
        if (is_table(e, l)) {
            t = table_at(raw_addr(e));
            continue;
        }
        if (l == 3 && !(e & B_TYPE))
            return 0; /* reserved: invalid */
        if (l <= 0)
            return 0;
        if (level)
            *level = l;
        return e;
    }
    return 0;
}

struct snapshot {
    size_t n, cap;
    uint64_t *pa;
    uint8_t *data;
    size_t live;
    uint64_t net;
    uint64_t free_errors;
};

static void snap_add(snapshot_t *s, uint64_t pa)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->pa = realloc(s->pa, s->cap * sizeof *s->pa);
        s->data = realloc(s->data, s->cap * 4096);
        cr_assert(s->pa && s->data);
    }
    s->pa[s->n] = pa;
    memcpy(s->data + s->n * 4096, table_at(pa), 4096);
    s->n++;
}

static void snap_tables(snapshot_t *s, uint64_t pa, int level)
{
    snap_add(s, pa);
    if (level == 3)
        return;
    const uint64_t *t = table_at(pa);
    for (unsigned i = 0; i < (level == -1 ? 16u : 512u); i++)
        if (is_table(t[i], level))
            snap_tables(s, raw_addr(t[i]), level + 1);
}

snapshot_t *snap_take(mm_paddr_t root)
{
    snapshot_t *s = calloc(1, sizeof *s);
    cr_assert(s);
    snap_tables(s, root, start_level());
    s->live = E.pool.live;
    s->net = E.pool.frames_allocated - E.pool.frames_freed;
    s->free_errors = E.pool.free_errors;
    return s;
}

void snap_assert_same(snapshot_t *s, mm_paddr_t root, const char *what)
{
    snapshot_t *now = snap_take(root);
    cr_assert_eq(now->n, s->n, "%s: %zu tables reachable, %zu before", what, now->n, s->n);
    for (size_t i = 0; i < s->n; i++) {
        cr_assert_eq(now->pa[i], s->pa[i], "%s: table %zu moved", what, i);
        cr_assert(memcmp(now->data + i * 4096, s->data + i * 4096, 4096) == 0,
                  "%s: table %zu (pa %#llx) changed", what, i, (unsigned long long)s->pa[i]);
    }
    cr_assert_eq(now->live, s->live, "%s: %zu frames live, %zu before", what, now->live,
                 s->live);
    cr_assert_eq(now->net, s->net, "%s: allocations and frees do not balance", what);
    cr_assert_eq(E.pool.free_errors, s->free_errors, "%s: bad free", what);
    snap_discard(now);
    snap_discard(s);
}

void snap_discard(snapshot_t *s)
{
    free(s->pa);
    free(s->data);
    free(s);
}

void assert_consistent(mm_paddr_t root, size_t extra)
{
    cr_assert_eq(E.tlb.deferred_count, 0, "flush E.tlb first");
    a64pt_check_info_t info;
    mm_status_t st = a64pt_check(&E.m, root, &info);
    cr_assert_eq(st, MM_OK, "check: %s at va %#llx level %d entry %#llx",
                 info.problem ? info.problem : "-", (unsigned long long)info.bad_va,
                 info.bad_level, (unsigned long long)info.bad_entry);
    cr_assert_eq(E.pool.live, 1 + info.user_tables + info.kernel_tables + extra,
                 "pool has %zu frames out, hierarchy has %zu tables + root (+%zu)",
                 E.pool.live, info.user_tables + info.kernel_tables, extra);
    cr_assert_eq(E.pool.free_errors, 0);
}

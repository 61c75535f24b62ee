#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "paging_test.h"

env_t E;

void env_setup_cfg(const x86pt_config_t *cfg)
{
    sim_phys_create(SIM_BYTES);
    frame_pool_init(&E.pool, POOL_BASE, POOL_FRAMES);
    x86pt_config_t c = *cfg;
    c.frames = frame_pool_allocator(&E.pool);
    cr_assert_eq(x86pt_init(&E.m, &c), MM_OK);
    cr_assert_eq(x86pt_root_create(&E.m, 0, &E.root), MM_OK);
    E.pm = x86pt_page_mapper(&E.m);
    mm_tlb_batch_init(&E.tlb);
}

void env_setup(unsigned levels, bool nx, bool pages_1g)
{
    x86pt_config_t c = {
        .levels = levels, .phys_bits = PHYS_BITS, .nx = nx, .pages_1g = pages_1g};
    env_setup_cfg(&c);
}

static uint64_t *table_at(uint64_t pa)
{
    return hhdm_phys_to_virt(pa & 0x000ffffffffff000ull);
}

uint64_t *raw_slot(mm_paddr_t root, unsigned levels, mm_vaddr_t va, unsigned level)
{
    uint64_t *t = table_at(root);
    for (unsigned l = levels;; l--) {
        uint64_t *slot = &t[(va >> (12 + 9 * (l - 1))) & 511];
        if (l == level)
            return slot;
        if (!(*slot & B_P) || (l <= 3 && (*slot & B_PS)))
            return NULL;
        t = table_at(*slot);
    }
}

uint64_t raw_leaf(mm_paddr_t root, unsigned levels, mm_vaddr_t va, unsigned *level,
                  uint64_t entries[6])
{
    uint64_t *t = table_at(root);
    for (unsigned l = levels; l >= 1; l--) {
        uint64_t e = t[(va >> (12 + 9 * (l - 1))) & 511];
        if (entries)
            entries[l] = e;
        if (!(e & B_P))
            return 0;
        if (l == 1 || (l <= 3 && (e & B_PS))) {
            if (level)
                *level = l;
            return e;
        }
        t = table_at(e);
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

static void snap_tables(snapshot_t *s, uint64_t pa, unsigned level)
{
    snap_add(s, pa);
    if (level == 1)
        return;
    const uint64_t *t = table_at(pa);
    for (unsigned i = 0; i < 512; i++) {
        uint64_t e = t[i];
        if ((e & B_P) && !(level <= 3 && (e & B_PS)))
            snap_tables(s, e & 0x000ffffffffff000ull, level - 1);
    }
}

snapshot_t *snap_take(mm_paddr_t root, unsigned levels)
{
    snapshot_t *s = calloc(1, sizeof *s);
    cr_assert(s);
    snap_tables(s, root, levels);
    s->live = E.pool.live;
    s->net = E.pool.frames_allocated - E.pool.frames_freed;
    s->free_errors = E.pool.free_errors;
    return s;
}

void snap_assert_same(snapshot_t *s, mm_paddr_t root, unsigned levels, const char *what)
{
    snapshot_t *now = snap_take(root, levels);
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
    /* Unlinked tables stay out of the pool until the batch is flushed, so
     * the count below holds only for a flushed batch. */
    cr_assert_eq(E.tlb.deferred_count, 0, "flush E.tlb first: %u table frees still deferred",
                 E.tlb.deferred_count);
    x86pt_check_info_t info;
    mm_status_t st = x86pt_check(&E.m, root, &info);
    cr_assert_eq(st, MM_OK, "check: %s at va %#llx level %u entry %#llx",
                 info.problem ? info.problem : "-", (unsigned long long)info.bad_va,
                 info.bad_level, (unsigned long long)info.bad_entry);
    cr_assert_eq(E.pool.live, 1 + info.user_tables + info.kernel_tables + extra,
                 "pool has %zu frames out, hierarchy has %zu tables + root (+%zu)",
                 E.pool.live, info.user_tables + info.kernel_tables, extra);
    cr_assert_eq(E.pool.free_errors, 0);
}

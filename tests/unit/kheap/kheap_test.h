/*
 * kheap test helpers: arenas, heap snapshots, and the reference model.
 *
 * The reference model is the policy written the simplest way: a sorted
 * array of free intervals, scanned from the lowest address for the first
 * one the request fits in (with the documented alignment-padding rule),
 * coalescing on free. The tests drive it with the same operations as the
 * heap and require the same addresses and the same free set.
 */
#ifndef KHEAP_TEST_H
#define KHEAP_TEST_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <hadron/mm/kheap.h>

#include "mm_test.h"

/* The block layout the documentation promises (kheap.h, block.h). */
#define T_MIN_BLOCK 48u
#define T_DESC 48u
#define T_END 16u
#if HADRON_MM_HEAP_REDZONES
#define T_USER_OFF (32u + KHEAP_REDZONE)
#define T_BACK KHEAP_REDZONE
#else
#define T_USER_OFF 16u
#define T_BACK 0u
#endif

static inline size_t t_block_size(size_t req)
{
    size_t n = (T_USER_OFF + req + T_BACK + 15u) & ~(size_t)15u;
    return n < T_MIN_BLOCK ? T_MIN_BLOCK : n;
}

static inline void *t_arena(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    cr_assert_neq(p, MAP_FAILED, "mmap %zu", bytes);
    return p;
}

#define T_CHECK(heap)                                                                              \
    do {                                                                                           \
        mm_report_t t_r_;                                                                          \
        memset(&t_r_, 0, sizeof(t_r_));                                                            \
        mm_status_t t_st_ = kheap_check((heap), &t_r_);                                            \
        cr_assert_eq(t_st_, MM_OK, "kheap_check: %s: %s (%s:%d) at %#llx found %#llx expected %#llx",  \
                     mm_status_str(t_st_), t_r_.message ? t_r_.message : "-",                      \
                     t_r_.file ? t_r_.file : "-", t_r_.line, (unsigned long long)t_r_.address,     \
                     (unsigned long long)t_r_.found, (unsigned long long)t_r_.expected);           \
    } while (0)

/* ---- snapshots (for "the heap is unchanged") ---------------------------- */

typedef struct t_blk {
    uintptr_t block;
    size_t size;
    bool used;
    bool front;
} t_blk_t;

typedef struct t_snap {
    size_t n, cap;
    t_blk_t *b;
} t_snap_t;

static inline bool t_snap_cb(void *arg, const kheap_block_info_t *info)
{
    t_snap_t *s = arg;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->b = realloc(s->b, s->cap * sizeof(t_blk_t));
    }
    /* Compared with memcmp: the padding must be zero, which a compound
     * literal does not promise. */
    t_blk_t *e = &s->b[s->n++];
    memset(e, 0, sizeof(*e));
    e->block = (uintptr_t)info->block;
    e->size = info->size;
    e->used = info->used;
    e->front = info->front;
    return true;
}

static inline t_snap_t t_snapshot(kheap_t *h)
{
    t_snap_t s = {0, 0, NULL};
    cr_assert_eq(kheap_walk(h, t_snap_cb, &s), MM_OK);
    return s;
}

static inline bool t_snap_equal(const t_snap_t *a, const t_snap_t *b)
{
    return a->n == b->n && memcmp(a->b, b->b, a->n * sizeof(t_blk_t)) == 0;
}

static inline void t_snap_free(t_snap_t *s)
{
    free(s->b);
    s->b = NULL;
    s->n = s->cap = 0;
}

/* After everything was freed and the heap drained, every region is free
 * space, apart from the CPUs' fronts of the size classes (the heap's own,
 * made at a CPU's first class request); with no front, exactly one free
 * block. */
static inline void t_assert_all_free(kheap_t *h)
{
    kheap_drain(h);
    t_snap_t s = t_snapshot(h);
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(h, &st), MM_OK);
    size_t bytes = 0, fronts = 0, front_bytes = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.b[i].front) {
            fronts++;
            front_bytes += s.b[i].size;
            continue;
        }
        cr_assert_not(s.b[i].used, "block %#lx still used", (unsigned long)s.b[i].block);
        bytes += s.b[i].size;
    }
    cr_assert_leq(s.n - fronts, st.regions + fronts, "%zu blocks in %zu regions", s.n,
                  st.regions);
    cr_assert_leq(st.free_blocks, st.regions + fronts);
    cr_assert_eq(bytes + front_bytes, st.total_bytes - st.regions * KHEAP_REGION_OVERHEAD,
                 "bytes lost: %zu of %zu", st.total_bytes - st.regions * KHEAP_REGION_OVERHEAD - bytes,
                 st.total_bytes);
    cr_assert_eq(st.free_bytes, bytes);
    t_snap_free(&s);
}

/* ---- the reference model ------------------------------------------------ */

#define TM_MAX 8192

typedef struct t_iv {
    uintptr_t s, e;
} t_iv_t;

typedef struct t_model {
    t_iv_t iv[TM_MAX];
    size_t niv;
    struct {
        uintptr_t p;
        size_t size;
    } live[TM_MAX];
    size_t nlive;
    t_iv_t regions[64];
    size_t nregions;
} t_model_t;

static inline void tm_insert_free(t_model_t *m, uintptr_t s, uintptr_t e)
{
    size_t i = 0;
    while (i < m->niv && m->iv[i].s < s)
        i++;
    bool join_lo = i > 0 && m->iv[i - 1].e == s;
    bool join_hi = i < m->niv && m->iv[i].s == e;
    if (join_lo && join_hi) {
        m->iv[i - 1].e = m->iv[i].e;
        memmove(&m->iv[i], &m->iv[i + 1], (m->niv - i - 1) * sizeof(t_iv_t));
        m->niv--;
    } else if (join_lo) {
        m->iv[i - 1].e = e;
    } else if (join_hi) {
        m->iv[i].s = s;
    } else {
        cr_assert_lt(m->niv, TM_MAX);
        memmove(&m->iv[i + 1], &m->iv[i], (m->niv - i) * sizeof(t_iv_t));
        m->iv[i] = (t_iv_t){s, e};
        m->niv++;
    }
}

static inline void tm_add_region(t_model_t *m, void *base, size_t size)
{
    uintptr_t b = ((uintptr_t)base + 15) & ~(uintptr_t)15;
    uintptr_t e = ((uintptr_t)base + size) & ~(uintptr_t)15;
    for (size_t i = 0; i < m->nregions; i++) {
        if (m->regions[i].e == b) { /* merges: the old end marker becomes free */
            m->regions[i].e = e;
            tm_insert_free(m, b - T_END, e - T_END);
            return;
        }
    }
    m->regions[m->nregions++] = (t_iv_t){b, e};
    tm_insert_free(m, b + T_DESC, e - T_END);
}

/* Where the documented rule places n bytes aligned for `align` in [s, e). */
static inline uintptr_t tm_place(uintptr_t s, uintptr_t e, size_t n, size_t align)
{
    uintptr_t b = s;
    if (align > 16) {
        b = ((s + T_USER_OFF + align - 1) & ~(uintptr_t)(align - 1)) - T_USER_OFF;
        if (b != s && b - s < T_MIN_BLOCK)
            b = ((s + T_MIN_BLOCK + T_USER_OFF + align - 1) & ~(uintptr_t)(align - 1)) -
                T_USER_OFF;
    }
    return b + n <= e ? b : 0;
}

static inline uintptr_t tm_alloc(t_model_t *m, size_t req, size_t align)
{
    size_t n = t_block_size(req);
    if (align < 16)
        align = 16;
    /* The documented rule: the first KHEAP_ALIGN_CANDIDATES intervals big
     * enough before padding are tried in order; then the lowest interval
     * that holds n + align + a minimal block. */
    unsigned tries = 0;
    bool sure_only = false;
    for (size_t i = 0; i < m->niv; i++) {
        uintptr_t s = m->iv[i].s, e = m->iv[i].e;
        if (e - s < n)
            continue;
        if (sure_only && e - s < n + align + T_MIN_BLOCK)
            continue;
        uintptr_t b = tm_place(s, e, n, align);
        if (b == 0) {
            if (align > 16 && ++tries == KHEAP_ALIGN_CANDIDATES) {
                sure_only = true;
                i = (size_t)-1; /* from the lowest interval again */
            }
            continue;
        }
        if (e - (b + n) < T_MIN_BLOCK)
            n = e - b;
        /* Replace interval i by what remains below and above. */
        memmove(&m->iv[i], &m->iv[i + 1], (m->niv - i - 1) * sizeof(t_iv_t));
        m->niv--;
        if (b + n < e)
            tm_insert_free(m, b + n, e);
        if (b > s)
            tm_insert_free(m, s, b);
        cr_assert_lt(m->nlive, TM_MAX);
        m->live[m->nlive].p = b + T_USER_OFF;
        m->live[m->nlive].size = n;
        m->nlive++;
        return b + T_USER_OFF;
    }
    return 0;
}

static inline void tm_free(t_model_t *m, uintptr_t p)
{
    for (size_t i = 0; i < m->nlive; i++) {
        if (m->live[i].p == p) {
            uintptr_t b = p - T_USER_OFF;
            tm_insert_free(m, b, b + m->live[i].size);
            m->live[i] = m->live[--m->nlive];
            return;
        }
    }
    cr_assert_fail("model: %#lx not live", (unsigned long)p);
}

/* The heap's free blocks are exactly the model's intervals. */
static inline void tm_assert_matches(t_model_t *m, kheap_t *h)
{
    t_snap_t s = t_snapshot(h);
    size_t k = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.b[i].used)
            continue;
        cr_assert_lt(k, m->niv, "heap has more free blocks than the model");
        cr_assert_eq(s.b[i].block, m->iv[k].s, "free block %zu at %#lx, model %#lx", k,
                     (unsigned long)s.b[i].block, (unsigned long)m->iv[k].s);
        cr_assert_eq(s.b[i].block + s.b[i].size, m->iv[k].e, "free block %zu ends %#lx, model %#lx",
                     k, (unsigned long)(s.b[i].block + s.b[i].size), (unsigned long)m->iv[k].e);
        k++;
    }
    cr_assert_eq(k, m->niv, "heap has %zu free blocks, model %zu", k, m->niv);
    t_snap_free(&s);
}

/* Deterministic PRNG (splitmix64). */
static inline uint64_t t_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif /* KHEAP_TEST_H */

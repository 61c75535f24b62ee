/*
 * hadron-mm pmm: private helpers shared by the pmm sources.
 *
 * Conventions: frame numbers are uint64_t (physical address >> 12); a "word"
 * is one uint64_t of a bitmap; a "chunk" is the 64 words (4096 frames) one
 * word of the next summary level describes. Functions named *_locked expect
 * the instance lock held.
 */
#ifndef HADRON_MM_PMM_INTERNAL_H
#define HADRON_MM_PMM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <hadron/mm/assert.h>
#include <hadron/mm/config.h>
#include <hadron/mm/hhdm.h>
#include <hadron/mm/pmm.h>

#define PMM_MAGIC 0x504d4d31u /* "PMM1" */
#define PMM_CHUNK_SHIFT 12u   /* frames per chunk: 64 words of 64 */
#define PMM_CHUNK_FRAMES (1ull << PMM_CHUNK_SHIFT)
#define PMM_NONE UINT64_MAX
#define PMM_ALL UINT64_MAX /* a word with every bit set */

/* Physical address bits a frame number may use (x86_64 and AArch64 top
 * out at 52). */
#define PMM_MAX_FRAMES (1ull << (52 - MM_PAGE_SHIFT))

/* Metadata placement prefers memory at or above 16 MiB, leaving the ISA DMA
 * range to callers who need it. */
#define PMM_META_PREFERRED_FRAME ((16ull * MM_MIB) >> MM_PAGE_SHIFT)

#define PMM_POISON32 0xDEADDEADu
#define PMM_POISON64 0xDEADDEADDEADDEADull

/* The free and usable words of frames 64w..64w+63, interleaved so that
 * validating a free touches one cache line and one TLB entry, not two: on
 * large machines that second miss was half the cost of a random free. */
#define PMM_FREE(p, w) ((p)->bm[(uint64_t)(w) << 1])
#define PMM_USABLE(p, w) ((p)->bm[((uint64_t)(w) << 1) | 1])

/* Initialised, and this is the instance pmm_init set up, not a copy of it:
 * a copy shares the bitmaps but not the lock or the counts, so every call
 * through one would corrupt the other. */
static inline bool pmm_ready(const pmm_t *p)
{
    return p->magic == PMM_MAGIC && p->self == p;
}

static inline uint64_t pmm_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static inline uint64_t pmm_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static inline uint64_t pmm_bit(uint64_t i)
{
    return 1ull << (i & 63);
}

/* Bits [lo, hi) of a word, 0 <= lo < hi <= 64. */
static inline uint64_t pmm_mask(unsigned lo, unsigned hi)
{
    uint64_t top = hi >= 64 ? PMM_ALL : (1ull << hi) - 1;
    return top & (PMM_ALL << lo);
}

static inline unsigned pmm_ctz(uint64_t x)
{
    return (unsigned)__builtin_ctzll(x);
}

static inline unsigned pmm_clz(uint64_t x)
{
    return (unsigned)__builtin_clzll(x);
}

/* Free frames at the bottom (low_free) or top (high_free) of a word. */
static inline unsigned pmm_low_free(uint64_t x)
{
    return x == PMM_ALL ? 64u : pmm_ctz(~x);
}

static inline unsigned pmm_high_free(uint64_t x)
{
    return x == PMM_ALL ? 64u : pmm_clz(~x);
}

/* ---- summary trees ------------------------------------------------------ */

/* First set bit at or after `bit` in t->lvl[0], or PMM_NONE. Climbs only as
 * far as it must: one word when the next set bit is close, log64 levels when
 * it is far, so the cost does not grow with the fill. */
static inline uint64_t pmm_tree_find(const pmm_tree_t *t, uint64_t bit)
{
    unsigned k = 0;
    uint64_t idx = bit;
    for (;;) {
        uint64_t w = idx >> 6;
        if (w < t->words[k]) {
            uint64_t m = t->lvl[k][k == 0 ? w << t->shift0 : w] & (PMM_ALL << (idx & 63));
            if (m != 0) {
                idx = (w << 6) | pmm_ctz(m);
                while (k > 0) {
                    k--;
                    uint64_t below = t->lvl[k][k == 0 ? idx << t->shift0 : idx];
                    MM_ASSERT(below != 0);
                    idx = (idx << 6) | pmm_ctz(below);
                }
                return idx;
            }
        }
        if (k + 1 >= t->depth)
            return PMM_NONE;
        idx = w + 1;
        k++;
    }
}

/* Sets bit i of level k and, where a word turns non-zero, its parent bits.
 * Level 0 only for trees with a plain base (shift0 == 0). */
static inline void pmm_tree_set(pmm_tree_t *t, unsigned k, uint64_t i)
{
    MM_ASSERT(k > 0 || t->shift0 == 0);
    for (; k < t->depth; k++) {
        uint64_t *wp = &t->lvl[k][i >> 6];
        uint64_t old = *wp;
        *wp = old | pmm_bit(i);
        if (old != 0)
            return;
        i >>= 6;
    }
}

/* Clears bit i of level k and, where a word turns zero, its parent bits. */
static inline void pmm_tree_clear(pmm_tree_t *t, unsigned k, uint64_t i)
{
    MM_ASSERT(k > 0 || t->shift0 == 0);
    for (; k < t->depth; k++) {
        uint64_t *wp = &t->lvl[k][i >> 6];
        uint64_t nw = *wp & ~pmm_bit(i);
        *wp = nw;
        if (nw != 0)
            return;
        i >>= 6;
    }
}

/* Words [w0, w1] of level k changed wholesale: recompute the levels above.
 * k == 0 only for trees with a plain base. */
void pmm_tree_refresh(pmm_tree_t *t, unsigned k, uint64_t w0, uint64_t w1);

/* ---- chunk run bounds --------------------------------------------------- */

/* Length of the free run through free frame f, clipped to f's chunk. O(1):
 * whole free words are counted from the full-word tree, not read. */
uint64_t pmm_chunk_run_through(const pmm_t *p, uint64_t f);

/* Free frames at the start / end of chunk c. O(1). */
uint64_t pmm_chunk_prefix(const pmm_t *p, uint64_t c);
uint64_t pmm_chunk_suffix(const pmm_t *p, uint64_t c);

/* Frames chunk c covers (4096 except perhaps the last). */
static inline uint64_t pmm_chunk_frames(const pmm_t *p, uint64_t c)
{
    uint64_t w0 = c << 6;
    return (pmm_min(w0 + 64, p->words) - w0) << 6;
}

/* A contiguous request: `n` frames, first frame a multiple of `align`, run
 * ending at or below frame `hi`. */
typedef struct pmm_req {
    uint64_t n;
    uint64_t align;
    uint64_t hi;
} pmm_req_t;

/* True (and the aligned start in *out) when the free run [s, e) holds the
 * request. */
static inline bool pmm_fit(const pmm_req_t *rq, uint64_t s, uint64_t e, uint64_t *out)
{
    e = pmm_min(e, rq->hi);
    uint64_t st = (s + rq->align - 1) & ~(rq->align - 1);
    if (st >= e || e - st < rq->n)
        return false;
    *out = st;
    return true;
}

/* Walks chunk c's free runs (clipped to it) in address order; returns true
 * at the first that holds `rq`. Otherwise stores the longest run in
 * *longest (so callers can tighten the chunk bound). O(64 + runs). */
bool pmm_chunk_scan(const pmm_t *p, uint64_t c, const pmm_req_t *rq, uint64_t *out,
                    uint64_t *longest);

/* Raises chunk c's bound after frame f (in c) became free. O(1). */
static inline void pmm_chunk_note_free(pmm_t *p, uint64_t f)
{
    uint64_t c = f >> PMM_CHUNK_SHIFT;
    if (p->chunk_run[c] >= PMM_CHUNK_FRAMES)
        return;
    uint64_t r = pmm_chunk_run_through(p, f);
    if (r > p->chunk_run[c])
        p->chunk_run[c] = (uint16_t)r;
}

/* ---- single-frame state changes (lock held) ----------------------------- */

/* Marks managed frame f free and keeps the summaries exact. */
static inline void pmm_set_free_locked(pmm_t *p, uint64_t f)
{
    uint64_t w = f >> 6;
    uint64_t old = PMM_FREE(p, w);
    MM_ASSERT((old & pmm_bit(f)) == 0);
    uint64_t nw = old | pmm_bit(f);
    PMM_FREE(p, w) = nw;
    if (old == 0 && p->any.depth > 1)
        pmm_tree_set(&p->any, 1, w);
    if (nw == PMM_ALL)
        pmm_tree_set(&p->full, 0, w);
    pmm_chunk_note_free(p, f);
}

/* Marks free frame f allocated. Chunk bounds stay valid upper bounds. */
static inline void pmm_set_used_locked(pmm_t *p, uint64_t f)
{
    uint64_t w = f >> 6;
    uint64_t old = PMM_FREE(p, w);
    MM_ASSERT((old & pmm_bit(f)) != 0);
    uint64_t nw = old & ~pmm_bit(f);
    PMM_FREE(p, w) = nw;
    if (nw == 0 && p->any.depth > 1)
        pmm_tree_clear(&p->any, 1, w);
    if (old == PMM_ALL)
        pmm_tree_clear(&p->full, 0, w);
}

/* ---- the held bitmap ----------------------------------------------------- */

/* A frame is in one of four states, told apart by three bits:
 *
 *     reserved   usable 0                  (free 0, held 0)
 *     free       usable 1  free 1  held 0  in the bitmap, searchable
 *     cached     usable 1  free 0  held 0  in some CPU's cache
 *     held       usable 1  free 0  held 1  allocated to a caller
 *
 * Only a held frame may be freed, and one atomic compare-and-swap that
 * finds the bit set and clears it is what decides it: of two frees of one
 * frame (a double free, on one CPU or two, through a cache or the locked
 * path) exactly one succeeds, and the refused one writes nothing. So a
 * frame sitting in a cache is caught on its second free without looking at
 * any cache.
 *
 * Each held word is a pair. held_bm[2w] ("own") is written with plain
 * stores, and only by the CPU owning the word's group of 512 frames
 * (held_owner: set once, by the first CPU to allocate one of the group's
 * frames from its cache), from inside its cache, when it allocates
 * one of the group's frames from its cache. held_bm[2w+1] ("remote") is
 * changed by atomic operations only, by everything else: every free, an
 * allocation on the locked path or of another group's frame. A frame is
 * held when its bits in the two differ. The owner's store cannot undo a
 * remote change (different words), and while a frame is cached nobody may
 * change its bits but the CPU allocating it, so a CPU's allocation of its
 * own frames executes no locked instruction, and each free exactly one. */

#define PMM_GROUP_SHIFT 9 /* frames per owner group: a cache line of held words */

static inline uint64_t *pmm_held_own(const pmm_t *p, uint64_t w)
{
    return &p->held_bm[2 * w];
}

static inline uint64_t *pmm_held_remote(const pmm_t *p, uint64_t w)
{
    return &p->held_bm[2 * w + 1];
}

static inline uint64_t pmm_held_word(const pmm_t *p, uint64_t w)
{
    return __atomic_load_n(pmm_held_own(p, w), __ATOMIC_RELAXED) ^
           __atomic_load_n(pmm_held_remote(p, w), __ATOMIC_RELAXED);
}

static inline unsigned pmm_group_owner(const pmm_t *p, uint64_t f)
{
    return atomic_load_explicit(&p->held_owner[f >> PMM_GROUP_SHIFT], memory_order_relaxed);
}

/* Whether the CPU tagged `tag` (inside its cache) owns f's group, taking
 * it when nobody does: one compare-and-swap per group in the instance's
 * lifetime, after which that CPU alone writes the group's own halves. */
static inline bool pmm_group_mine(pmm_t *p, uint64_t f, unsigned tag)
{
    _Atomic uint16_t *owner = &p->held_owner[f >> PMM_GROUP_SHIFT];
    uint16_t o = atomic_load_explicit(owner, memory_order_relaxed);
    if (o == 0 && atomic_compare_exchange_strong_explicit(owner, &o, (uint16_t)tag,
                                                          memory_order_relaxed,
                                                          memory_order_relaxed))
        return true;
    return o == tag;
}

/* Frame f (free or cached, so not held) goes to a caller. `tag`: the
 * calling CPU's cache tag when it runs inside its cache, else 0. */
static inline void pmm_held_mark(pmm_t *p, uint64_t f, unsigned tag)
{
    uint64_t w = f >> 6, bit = pmm_bit(f);
    uint64_t *own = pmm_held_own(p, w);
    if (tag != 0 && pmm_group_mine(p, f, tag)) {
        uint64_t o = __atomic_load_n(own, __ATOMIC_RELAXED);
        MM_ASSERT(((o ^ __atomic_load_n(pmm_held_remote(p, w), __ATOMIC_RELAXED)) & bit) == 0);
        __atomic_store_n(own, o ^ bit, __ATOMIC_RELAXED);
        return;
    }
    uint64_t r = __atomic_fetch_xor(pmm_held_remote(p, w), bit, __ATOMIC_RELAXED);
    MM_ASSERT(((r ^ __atomic_load_n(own, __ATOMIC_RELAXED)) & bit) == 0);
    (void)r;
}

/* The caller gives frame f back: true when it was held (now it is not),
 * false when it was not (nothing written: a double free, or never
 * allocated). */
static inline bool pmm_held_take(pmm_t *p, uint64_t f)
{
    uint64_t w = f >> 6, bit = pmm_bit(f);
    uint64_t *remote = pmm_held_remote(p, w);
    /* A held frame's own bit is constant: only a cached frame's changes. */
    uint64_t o = __atomic_load_n(pmm_held_own(p, w), __ATOMIC_RELAXED);
    uint64_t r = __atomic_load_n(remote, __ATOMIC_RELAXED);
    do {
        if (((o ^ r) & bit) == 0)
            return false;
    } while (!__atomic_compare_exchange_n(remote, &r, r ^ bit, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return true;
}

/* Frames [f0, f1) (just taken from the bitmap) go to a caller. */
void pmm_held_mark_range(pmm_t *p, uint64_t f0, uint64_t f1);

/* First frame of [f0, f1) that is held (held = true) or not, or PMM_NONE. */
uint64_t pmm_held_first(const pmm_t *p, uint64_t f0, uint64_t f1, bool held);

/* Clears the held bits of [f0, f1), all of which were seen set: true on
 * success; false, with every bit restored, when a concurrent free took one
 * of them first (a double free racing this one). */
bool pmm_held_take_range(pmm_t *p, uint64_t f0, uint64_t f1);

/* ---- range state changes (lock held) ------------------------------------ */

/* Sets (free = true) or clears the free bits of frames [f0, f1) and keeps
 * the summaries and chunk bounds valid. The caller has validated the range
 * (all clear, resp. all set, where it matters). O((f1 - f0)/64). */
void pmm_range_set_free_locked(pmm_t *p, uint64_t f0, uint64_t f1, bool free);

/* A bitmap whose word w lives at w[w << shift]: shift 0 for plain arrays,
 * 1 for the free or usable half of the interleaved pair array. */
typedef struct pmm_bits {
    uint64_t *w;
    unsigned shift;
} pmm_bits_t;

static inline pmm_bits_t pmm_free_bits(const pmm_t *p)
{
    return (pmm_bits_t){p->bm, 1};
}

static inline pmm_bits_t pmm_usable_bits(const pmm_t *p)
{
    return (pmm_bits_t){p->bm + 1, 1};
}

static inline pmm_bits_t pmm_plain_bits(uint64_t *w)
{
    return (pmm_bits_t){w, 0};
}

/* Clears or sets bits [f0, f1) of a bitmap that carries no summary
 * (usable, poison, summary levels being built). */
void pmm_bits_assign(pmm_bits_t bm, uint64_t f0, uint64_t f1, bool value);

/* Set bits of bm within [f0, f1). */
uint64_t pmm_bits_count(pmm_bits_t bm, uint64_t f0, uint64_t f1);

/* First bit of bm within [f0, f1) that is set (want = true) or clear
 * (want = false), or PMM_NONE. */
uint64_t pmm_bits_first(pmm_bits_t bm, uint64_t f0, uint64_t f1, bool want);

/* ---- poisoning (lock held; no-ops unless HADRON_MM_PMM_POISON) ---------- */

/* Fill frames [f0, f1) with the pattern and mark them poisoned. Called after
 * validation, before the frames become free. */
void pmm_poison_fill_locked(pmm_t *p, uint64_t f0, uint64_t f1);

/* Verify and unmark the poisoned frames of [f0, f1), which were just
 * allocated. Panics (MM_REPORT_POISON) at the first bad word. */
void pmm_poison_verify_locked(pmm_t *p, uint64_t f0, uint64_t f1);

#if HADRON_MM_PMM_POISON
/* One frame, no bitmap: for frames in per-CPU caches, whose poisoned mark
 * travels in the cache entry. The caller owns the frame. */
void pmm_poison_fill_frame(uint64_t f);
void pmm_poison_verify_frame(uint64_t f);
#endif

/* ---- allocation (lock held) --------------------------------------------- */

/* Takes one free frame below frame `hi` (>= span: anywhere, starting at the
 * hint; otherwise the lowest). MM_ERR_NOMEM when there is none. */
mm_status_t pmm_alloc_one_locked(pmm_t *p, uint64_t hi, uint64_t *frame);

/* ---- contiguous search (lock held) -------------------------------------- */

/* Lowest start of a free run holding rq, or PMM_NONE. Changes nothing but
 * chunk bounds (tightened, never below the truth). */
uint64_t pmm_find_run_locked(pmm_t *p, const pmm_req_t *rq);

/* ---- per-CPU caches (pcp.c) --------------------------------------------- */

/* A CPU uses its own cache with no lock; a context that must see or change
 * caches holds them all first (pmm_pcp_lock_all), then takes the instance
 * lock. Inside its cache a CPU may take the instance lock (a batch); a
 * holder waits for the CPUs before it takes the instance lock, and nobody
 * holds the caches while holding the instance lock. */

/* The cache of the CPU running with interrupts off, or NULL when the CPU
 * index is out of range (the locked path). */
static inline pmm_pcp_t *pmm_pcp_mine(pmm_t *p)
{
    unsigned cpu = mm_hook_cpu_index();
    return cpu < HADRON_MM_MAX_CPUS ? &p->pcp[cpu] : NULL;
}

static inline uint32_t pmm_pcp_count(const pmm_pcp_t *c)
{
    return atomic_load_explicit(&c->count, memory_order_relaxed);
}

/* Frames in all caches; exact while the caches are held, otherwise a sum
 * of per-CPU snapshots (each exact at its own read). O(CPUs). */
uint64_t pmm_pcp_total(const pmm_t *p);

/* Sets up every cache of a new instance (empty, refills spread over the
 * span so CPUs start on different bitmap words). */
void pmm_pcp_init(pmm_t *p);

/* pmm_pcp_alloc and pmm_pcp_free, the common path: pcp_fast.h. */

/* Holds every cache out of use (waiting for each CPU to leave its own),
 * then disables interrupts into *flags and takes the instance lock: no
 * frame moves until pmm_pcp_unlock_all. Called with no hadron-mm lock
 * held, interrupts as the PMM's caller left them. False, with nothing
 * held, when the caches cannot be held from here: the barrier hook
 * refused, or the caller interrupted its CPU inside that CPU's cache. */
bool pmm_pcp_lock_all(pmm_t *p, mm_irqflags_t *flags);
void pmm_pcp_unlock_all(pmm_t *p, mm_irqflags_t flags);

/* Under pmm_pcp_lock_all: gives every cached frame (only those in
 * [f0, f1)) back to the bitmap. Returns how many. */
uint64_t pmm_pcp_drain_all_locked(pmm_t *p, uint64_t f0, uint64_t f1);

#endif /* HADRON_MM_PMM_INTERNAL_H */

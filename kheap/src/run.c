/*
 * kheap: runs, the fast path for requests of up to KHEAP_RUN_MAX bytes.
 *
 * A run is an ordinary used block (KH_RUN set in its header) whose user
 * area starts with a kh_run_t followed by equal slots of one size class.
 * Runs themselves go to the snuggest of the first few blocks that hold them
 * (kheap_carve_run_locked), sparing the big holes large requests need.
 *
 *  - Small classes (16, 32, ... 256 bytes): the run is one page, its user
 *    pointer page-aligned, slots packed with no header; a slot pointer finds
 *    its run by rounding down to the page.
 *  - Medium classes (257 ... 4096 bytes, eight classes per power of two, so
 *    at most 1/8 is lost to rounding): each slot has a 16-byte header naming
 *    its run, checked with an address-mixed value like block headers.
 *
 * Either way the run's bitmap says exactly whether a slot is in use, so a
 * double free or a pointer into a slot is caught. Runs of a class that have
 * a free slot sit on a list; allocation takes the lowest free slot of the
 * list's first run. A run whose last slot is freed goes straight back to
 * the heap (and merges), so runs never hold memory nobody uses and freeing
 * everything still leaves each region whole.
 */
#include "block.h"

/* Class geometry: usable slot bytes, distance between slots, slot count. */
static void kh_class_geometry(unsigned cls, unsigned *slot, unsigned *stride, unsigned *nslots)
{
    if (cls < KH_SMALL_CLASSES) {
        *slot = *stride = (cls + 1) * (unsigned)KH_GRAN;
        *nslots = (unsigned)((KH_RUN_AREA - KH_RUN_HDR) / *slot);
        return;
    }
    unsigned g = (cls - KH_SMALL_CLASSES) / 8, i = (cls - KH_SMALL_CLASSES) % 8;
    *slot = (9 + i) * (32u << g);
    *stride = *slot + (unsigned)sizeof(kh_slot_hdr_t);
    /* Up to 32 KiB per run, 4 to 16 slots: enough slots to spread a run's
     * cost over many requests, few enough that a half-empty run is cheap. */
    unsigned n = 32768u / *stride;
    *nslots = n < 4 ? 4 : n > 16 ? 16 : n;
}

unsigned kheap_class_slot(unsigned cls)
{
    unsigned slot, stride, n;
    kh_class_geometry(cls, &slot, &stride, &n);
    return slot;
}

static uint64_t kh_bitmap_pad(unsigned n, unsigned w)
{
    unsigned lo = w * 64;
    return n >= lo + 64 ? 0 : n <= lo ? ~(uint64_t)0 : ~(uint64_t)0 << (n - lo);
}

static void kh_run_push(kheap_t *heap, kh_run_t *run)
{
    kh_run_t **head = &heap->partial[run->cls];
    run->prev = NULL;
    run->next = *head;
    if (*head != NULL)
        (*head)->prev = run;
    *head = run;
}

/* The head of a list has no meaningful prev (it is whatever it was when the
 * run was last behind another): taking the head, the common case, then
 * touches no other run's header. */
static void kh_run_unlink(kheap_t *heap, kh_run_t *run)
{
    if (heap->partial[run->cls] == run) {
        heap->partial[run->cls] = run->next;
    } else {
        run->prev->next = run->next;
        if (run->next != NULL)
            run->next->prev = run->prev;
    }
    run->prev = run->next = NULL;
}

#if HADRON_MM_HEAP_REDZONES
/* Runs have no guards: the redzone build uses blocks for everything. */
void *kheap_run_alloc(kheap_t *heap, size_t req, size_t *usable)
{
    (void)heap;
    (void)req;
    (void)usable;
    return NULL;
}
#else
static kh_run_t *kh_run_new(kheap_t *heap, unsigned cls)
{
    unsigned slot, stride, n;
    kh_class_geometry(cls, &slot, &stride, &n);
    bool medium = cls >= KH_SMALL_CLASSES;
    kh_block_t *b = medium ? kheap_carve_run_locked(
                                 heap, kh_block_size_for(KH_RUN_HDR + n * stride), KH_GRAN)
                           : kheap_carve_run_locked(heap, KHEAP_RUN_SIZE, KHEAP_RUN_SIZE);
    if (b == NULL)
        return NULL;
    uintptr_t base = kh_user_of(b);
    if (!medium && !kheap_map_mark(heap, base)) {
        kheap_release(heap, b);
        return NULL;
    }
    b->word |= KH_RUN;
    kh_run_t *run = (kh_run_t *)base;
    run->magic = kh_run_magic(base);
    run->slot = (uint16_t)slot;
    run->stride = (uint16_t)stride;
    run->nslots = (uint16_t)n;
    run->nused = 0;
    run->cls = (uint8_t)cls;
    run->medium = medium;
    run->hint = 0;
    run->recip = (uint32_t)((((uint64_t)1 << 32) + stride - 1) / stride);
    for (unsigned w = 0; w < 4; w++)
        run->used[w] = kh_bitmap_pad(n, w); /* bits past the last slot stay set */
    if (medium) {
        for (unsigned i = 0; i < n; i++) {
            kh_slot_hdr_t *h = (kh_slot_hdr_t *)(base + KH_RUN_HDR + (uintptr_t)i * stride);
            h->run = (uint64_t)base;
            h->check = kh_slot_check(kh_addr(h), (uint64_t)base);
        }
    }
    heap->runs++;
    kh_run_push(heap, run);
    return run;
}

void *kheap_run_alloc(kheap_t *heap, size_t req, size_t *usable)
{
    unsigned cls = kheap_class_of(req);
    kh_run_t *run = heap->partial[cls];
    if (run == NULL && (run = kh_run_new(heap, cls)) == NULL)
        return NULL;
    *usable = run->slot;
    return kheap_run_take(heap, run);
}
#endif

void *kheap_run_take(kheap_t *heap, kh_run_t *run)
{
    unsigned w = run->hint;
    while (run->used[w] == ~(uint64_t)0)
        w++;
    MM_ASSERT(w < 4);
    unsigned bit = (unsigned)__builtin_ctzll(~run->used[w]);
    run->used[w] |= (uint64_t)1 << bit;
    run->hint = (uint16_t)w;
    heap->run_slots_used++;
    if (++run->nused == run->nslots)
        kh_run_unlink(heap, run);
    return (void *)(kh_addr(run) + KH_RUN_HDR + (uintptr_t)(w * 64 + bit) * run->stride +
                    (run->medium ? sizeof(kh_slot_hdr_t) : 0));
}

/* Slot index of the slot starting at `start` in run, or -1. */
static int kh_run_index(const kh_run_t *run, uintptr_t start)
{
    uintptr_t first = kh_addr(run) + KH_RUN_HDR;
    if (start < first)
        return -1;
    uintptr_t off = start - first;
    if (off >= (uintptr_t)run->nslots * run->stride)
        return -1;
    unsigned idx = (unsigned)(((uint64_t)off * run->recip) >> 32);
    return (uintptr_t)idx * run->stride == off ? (int)idx : -1;
}

static mm_status_t kh_run_slot_state(kh_run_t *run, int idx, kh_run_t **out, unsigned *slot)
{
    if (idx < 0)
        return MM_ERR_BAD_POINTER;
    if ((run->used[idx / 64] & ((uint64_t)1 << (idx % 64))) == 0)
        return MM_ERR_DOUBLE_FREE;
    *out = run;
    *slot = (unsigned)idx;
    return MM_OK;
}

mm_status_t kheap_run_small_slot(uintptr_t page, uintptr_t ptr, kh_run_t **out, unsigned *slot)
{
    kh_run_t *run = (kh_run_t *)page;
    MM_ASSERT(run->magic == kh_run_magic(page) && !run->medium);
    return kh_run_slot_state(run, kh_run_index(run, ptr), out, slot);
}

mm_status_t kheap_run_medium_lookup(uintptr_t ptr, kh_run_t **out, unsigned *slot)
{
    /* The slot header below ptr names the run. The check value mixes in the
     * header's address and the run, so user data does not pass for one by
     * accident, and the index check accepts only a header at a slot
     * position of a live run, which that run wrote itself. */
    const kh_slot_hdr_t *h = (const kh_slot_hdr_t *)(ptr - sizeof(kh_slot_hdr_t));
    if (h->check != kh_slot_check(kh_addr(h), h->run))
        return MM_ERR_NOT_MAPPED;
    kh_run_t *run = (kh_run_t *)(uintptr_t)h->run;
    if (run->magic == kh_run_magic(kh_addr(run)) && run->medium) {
        int idx = kh_run_index(run, kh_addr(h));
        if (idx >= 0)
            return kh_run_slot_state(run, idx, out, slot);
    }
    /* Left behind by a released run: this slot was freed after (or with)
     * the end of its run. */
    return MM_ERR_DOUBLE_FREE;
}

/* Run's last slot was freed: the run goes back to the heap. Out of line,
 * so the frees that only clear a bit stay short. */
static __attribute__((noinline)) void kh_run_release(kheap_t *heap, kh_run_t *run)
{
    kh_run_unlink(heap, run);
    run->magic = 0; /* a stale header must never pass for a run */
    heap->runs--;
    if (!run->medium)
        kheap_map_clear(heap, kh_addr(run));
    kh_block_t *b = kh_block_of_user(kh_addr(run));
    b->word &= ~KH_RUN;
    kheap_release(heap, b);
}

void kheap_run_free(kheap_t *heap, kh_run_t *run, unsigned idx)
{
    unsigned w = idx / 64;
    run->used[w] &= ~((uint64_t)1 << (idx % 64));
    if (w < run->hint)
        run->hint = (uint16_t)w;
    heap->run_slots_used--;
    if (run->nused-- == run->nslots)
        kh_run_push(heap, run);
    if (run->nused == 0)
        kh_run_release(heap, run);
}

bool kheap_run_verify(uintptr_t base, uintptr_t block_size, const char **why)
{
    const kh_run_t *run = (const kh_run_t *)base;
    if (run->magic != kh_run_magic(base)) {
        *why = "kheap: run header damaged";
        return false;
    }
    unsigned slot, stride, n;
    if (run->cls >= KHEAP_RUN_CLASSES) {
        *why = "kheap: run geometry damaged";
        return false;
    }
    kh_class_geometry(run->cls, &slot, &stride, &n);
    bool medium = run->cls >= KH_SMALL_CLASSES;
    if (run->slot != slot || run->stride != stride || run->nslots != n ||
        run->medium != medium || run->hint >= 4 ||
        run->recip != (uint32_t)((((uint64_t)1 << 32) + stride - 1) / stride)) {
        *why = "kheap: run geometry damaged";
        return false;
    }
    if (KH_HDR + KH_RUN_HDR + (uintptr_t)n * stride > block_size ||
        (!medium && (block_size < KHEAP_RUN_SIZE || (base & (KHEAP_RUN_SIZE - 1)) != 0))) {
        *why = "kheap: run does not fit its block";
        return false;
    }
    unsigned count = 0;
    for (unsigned w = 0; w < 4; w++) {
        uint64_t bits = run->used[w], pad = kh_bitmap_pad(n, w);
        if ((bits & pad) != pad) {
            *why = "kheap: run bitmap damaged";
            return false;
        }
        count += (unsigned)__builtin_popcountll(bits & ~pad);
        if (w < run->hint && (bits | pad) != ~(uint64_t)0) {
            *why = "kheap: run hint past a free slot";
            return false;
        }
    }
    if (count != run->nused || count == 0) {
        *why = "kheap: run slot count wrong";
        return false;
    }
    for (unsigned i = 0; medium && i < n; i++) {
        const kh_slot_hdr_t *h =
            (const kh_slot_hdr_t *)(base + KH_RUN_HDR + (uintptr_t)i * stride);
        if (h->run != (uint64_t)base || h->check != kh_slot_check(kh_addr(h), base)) {
            *why = "kheap: run slot header damaged";
            return false;
        }
    }
    return true;
}

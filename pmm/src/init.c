/*
 * hadron-mm pmm: initialisation from a bootloader memory map.
 *
 * The map may be unsorted and overlapping, and no memory exists yet to sort
 * it into, so it is swept instead: from each position the next entry
 * boundary is found by a pass over the map, and the elementary interval up
 * to it is classified by another. That is O(count^2) for the few dozen
 * entries bootloaders report, and it visits frames in address order, so the
 * bitmaps are written exactly once, a whole word (or a memset of many words)
 * at a time; only the words where a boundary falls are built bit by bit.
 */
#include "pmm_internal.h"

typedef struct pmm_sweep {
    const pmm_region_t *map;
    size_t count;
    const pmm_range_t *keep; /* reserved like a map entry of a reserved type */
    size_t keep_count;
    uint64_t end;          /* sweep [0, end) */
    uint64_t meta0, meta1; /* forced reserved: the metadata */
} pmm_sweep_t;

/* The frames an entry claims: usable entries shrink inward to whole frames,
 * every other type grows outward (a partially reserved frame is reserved).
 * False for an entry that claims nothing. */
static bool entry_frames(const pmm_region_t *r, uint64_t *f0, uint64_t *f1)
{
    if (r->length == 0)
        return false;
    uint64_t last = r->base + (r->length - 1); /* validated not to wrap */
    uint64_t a, b;
    if (r->type == PMM_REGION_USABLE) {
        a = (r->base >> MM_PAGE_SHIFT) + ((r->base & (MM_PAGE_SIZE - 1)) != 0);
        b = (last >> MM_PAGE_SHIFT) + ((last & (MM_PAGE_SIZE - 1)) == MM_PAGE_SIZE - 1);
    } else {
        a = r->base >> MM_PAGE_SHIFT;
        b = (last >> MM_PAGE_SHIFT) + 1;
    }
    if (a >= b)
        return false;
    *f0 = a;
    *f1 = b;
    return true;
}

/* Entry i of the sweep: the map's entries, then the ranges to keep. */
static bool sweep_entry(const pmm_sweep_t *s, size_t i, uint64_t *f0, uint64_t *f1, bool *usable)
{
    if (i < s->count) {
        *usable = s->map[i].type == PMM_REGION_USABLE;
        return entry_frames(&s->map[i], f0, f1);
    }
    const pmm_range_t *k = &s->keep[i - s->count];
    pmm_region_t as_entry = {k->base, k->length, PMM_REGION_KERNEL_AND_MODULES};
    *usable = false;
    return entry_frames(&as_entry, f0, f1);
}

static bool pmm_region_reclaimable(pmm_region_type_t type)
{
    return type == PMM_REGION_BOOTLOADER_RECLAIMABLE || type == PMM_REGION_ACPI_RECLAIMABLE;
}

/* The whole frames of a reclaimable entry: what pmm_release would take. */
static bool pmm_reclaimable_frames(const pmm_region_t *r, uint64_t *f0, uint64_t *f1)
{
    pmm_region_t inward = {r->base, r->length, PMM_REGION_USABLE};
    return entry_frames(&inward, f0, f1);
}

static void consider(uint64_t b, uint64_t pos, uint64_t *next)
{
    if (b > pos && b < *next)
        *next = b;
}

/* The smallest boundary after pos: the usable/reserved classification is
 * constant on [pos, next). */
static uint64_t sweep_next(const pmm_sweep_t *s, uint64_t pos)
{
    uint64_t next = s->end;
    consider(1, pos, &next); /* frame 0 is never managed */
    consider(s->meta0, pos, &next);
    consider(s->meta1, pos, &next);
    for (size_t i = 0; i < s->count + s->keep_count; i++) {
        uint64_t f0, f1;
        bool usable;
        if (sweep_entry(s, i, &f0, &f1, &usable)) {
            consider(f0, pos, &next);
            consider(f1, pos, &next);
        }
    }
    return next;
}

/* Managed: claimed by a usable entry and by no entry of any other type. */
static bool sweep_usable(const pmm_sweep_t *s, uint64_t pos)
{
    if (pos == 0 || (pos >= s->meta0 && pos < s->meta1))
        return false;
    bool usable = false;
    for (size_t i = 0; i < s->count + s->keep_count; i++) {
        uint64_t f0, f1;
        bool entry_usable;
        if (!sweep_entry(s, i, &f0, &f1, &entry_usable) || pos < f0 || pos >= f1)
            continue;
        if (!entry_usable)
            return false;
        usable = true;
    }
    return usable;
}

/* Lowest managed run of `need` frames starting at or after `from`. */
static uint64_t find_meta(const pmm_sweep_t *s, uint64_t need, uint64_t from)
{
    uint64_t run = PMM_NONE;
    for (uint64_t pos = from; pos < s->end;) {
        uint64_t next = sweep_next(s, pos);
        if (sweep_usable(s, pos)) {
            if (run == PMM_NONE)
                run = pos;
            if (next - run >= need)
                return run;
        } else {
            run = PMM_NONE;
        }
        pos = next;
    }
    return PMM_NONE;
}

static uint64_t words_for(uint64_t bits)
{
    return (bits + 63) / 64;
}

static uint64_t *carve(uint64_t va, uint64_t *off, uint64_t words)
{
    uint64_t at = *off;
    *off += words * sizeof(uint64_t);
    return va != 0 ? (uint64_t *)(uintptr_t)(va + at) : NULL;
}

/* Where the metadata of a span goes: the pmm_t fields layout() sets,
 * apart from the instance (which, per-CPU caches included, is too large to
 * build on a kernel stack and must not be written before init succeeds). */
typedef struct pmm_shape {
    uint64_t span_frames, words, chunks;
    uint64_t *bm, *poison_bm, *held_bm;
    _Atomic uint16_t *held_owner;
    pmm_tree_t any, full;
    uint16_t *chunk_run;
} pmm_shape_t;

/* Carves the metadata of a span into arrays at `va` (0: sizes only) and
 * returns its size in bytes. Order: free, usable, [poison], held bitmaps
 * (own and remote word pairs), the held groups' owners, the free-summary
 * levels, the full-word levels, the chunk bounds. */
static uint64_t layout(pmm_shape_t *n, uint64_t span, uint64_t va)
{
    uint64_t off = 0;
    n->span_frames = span;
    n->words = words_for(span);
    n->chunks = words_for(n->words);
    n->bm = carve(va, &off, 2 * n->words);
#if HADRON_MM_PMM_POISON
    n->poison_bm = carve(va, &off, n->words);
#else
    n->poison_bm = NULL;
#endif
    n->held_bm = carve(va, &off, 2 * n->words);
    uint64_t groups = (span + (1u << PMM_GROUP_SHIFT) - 1) >> PMM_GROUP_SHIFT;
    n->held_owner = (_Atomic uint16_t *)carve(va, &off, (groups + 3) / 4);

    n->any.lvl[0] = n->bm;
    n->any.words[0] = n->words;
    n->any.depth = 1;
    n->any.shift0 = 1;
    while (n->any.words[n->any.depth - 1] > 1) {
        uint32_t k = n->any.depth++;
        MM_ASSERT(k < PMM_MAX_LEVELS);
        n->any.words[k] = words_for(n->any.words[k - 1]);
        n->any.lvl[k] = carve(va, &off, n->any.words[k]);
    }

    n->full.words[0] = n->chunks;
    n->full.lvl[0] = carve(va, &off, n->chunks);
    n->full.depth = 1;
    n->full.shift0 = 0;
    while (n->full.words[n->full.depth - 1] > 1) {
        uint32_t k = n->full.depth++;
        MM_ASSERT(k < PMM_MAX_LEVELS);
        n->full.words[k] = words_for(n->full.words[k - 1]);
        n->full.lvl[k] = carve(va, &off, n->full.words[k]);
    }

    n->chunk_run = va != 0 ? (uint16_t *)(uintptr_t)(va + off) : NULL;
    off += n->chunks * sizeof(uint16_t);
    return off;
}

typedef struct pmm_writer {
    pmm_t *p;
    uint64_t acc;    /* bits of the word being built */
    uint64_t frames; /* managed frames written */
} pmm_writer_t;

static void writer_flush(pmm_writer_t *wr, uint64_t w)
{
    pmm_t *p = wr->p;
    uint64_t v = wr->acc;
    PMM_FREE(p, w) = v;
    PMM_USABLE(p, w) = v;
    if (v != 0 && p->any.depth > 1)
        p->any.lvl[1][w >> 6] |= pmm_bit(w);
    if (v == PMM_ALL)
        p->full.lvl[0][w >> 6] |= pmm_bit(w);
    wr->acc = 0;
}

/* Writes frames [a, b) as managed-and-free or reserved. Calls come in
 * address order and cover the span without gaps. */
static void writer_put(pmm_writer_t *wr, uint64_t a, uint64_t b, bool usable)
{
    pmm_t *p = wr->p;
    if (usable)
        wr->frames += b - a;
    while (a < b) {
        uint64_t w = a >> 6;
        unsigned bit = (unsigned)(a & 63);
        if (bit == 0 && b - a >= 64) {
            uint64_t nw = (b - a) >> 6;
            /* At initialisation free == managed, so a run of whole words
             * of both interleaved bitmaps is one memset. */
            __builtin_memset(&PMM_FREE(p, w), usable ? 0xff : 0, nw * 16);
            if (usable) {
                if (p->any.depth > 1)
                    pmm_bits_assign(pmm_plain_bits(p->any.lvl[1]), w, w + nw, true);
                pmm_bits_assign(pmm_plain_bits(p->full.lvl[0]), w, w + nw, true);
            }
            a += nw << 6;
            continue;
        }
        uint64_t end = pmm_min(b, (w + 1) << 6);
        if (usable)
            wr->acc |= pmm_mask(bit, (unsigned)(end - (w << 6)));
        a = end;
        if ((a & 63) == 0)
            writer_flush(wr, w);
    }
}

mm_status_t pmm_init(pmm_t *pmm, const pmm_region_t *map, size_t count, const pmm_range_t *keep,
                     size_t keep_count)
{
    if (pmm == NULL || map == NULL || count == 0 || (keep == NULL && keep_count != 0))
        return MM_ERR_INVALID;
    /* The magic alone: a copy of a live instance is not a fresh one either,
     * and initialising it would write over the original's metadata. */
    if (pmm->magic == PMM_MAGIC || !hhdm_is_ready())
        return MM_ERR_STATE;

    uint64_t span = 0, reclaim_end = 0;
    for (size_t i = 0; i < count; i++) {
        const pmm_region_t *r = &map[i];
        uint64_t last, f0, f1;
        if ((unsigned)r->type >= PMM_REGION_TYPE_COUNT)
            return MM_ERR_INVALID;
        if (r->length != 0 && __builtin_add_overflow(r->base, r->length - 1, &last))
            return MM_ERR_INVALID;
        if (r->type == PMM_REGION_USABLE && entry_frames(r, &f0, &f1))
            span = pmm_max(span, f1);
        if (pmm_region_reclaimable(r->type) && pmm_reclaimable_frames(r, &f0, &f1))
            reclaim_end = pmm_max(reclaim_end, f1);
    }
    /* Reclaimable memory above the last usable frame widens the span, so
     * pmm_release can take it later; none at all is still "no memory". */
    if (span != 0)
        span = pmm_max(span, reclaim_end);
    for (size_t i = 0; i < keep_count; i++) {
        uint64_t last;
        if (keep[i].length != 0 && __builtin_add_overflow(keep[i].base, keep[i].length - 1, &last))
            return MM_ERR_INVALID;
    }
    if (span == 0)
        return MM_ERR_NOMEM;
    if (span > (hhdm_window_size >> MM_PAGE_SHIFT) || span > PMM_MAX_FRAMES)
        return MM_ERR_RANGE;

    pmm_shape_t sh;
    __builtin_memset(&sh, 0, sizeof sh);
    uint64_t bytes = layout(&sh, span, 0);
    uint64_t meta_frames = (bytes + MM_PAGE_SIZE - 1) >> MM_PAGE_SHIFT;

    pmm_sweep_t s = {.map = map,
                     .count = count,
                     .keep = keep,
                     .keep_count = keep_count,
                     .end = sh.words << 6,
                     .meta0 = 0,
                     .meta1 = 0};
    uint64_t meta = find_meta(&s, meta_frames, PMM_META_PREFERRED_FRAME);
    if (meta == PMM_NONE)
        meta = find_meta(&s, meta_frames, 1);
    if (meta == PMM_NONE)
        return MM_ERR_NOMEM;

    /* From here on nothing can fail. The instance is built in place; it is
     * not marked initialised (magic) until it is complete. */
    uint64_t va = (uint64_t)(uintptr_t)hhdm_phys_to_virt(meta << MM_PAGE_SHIFT);
    layout(&sh, span, va);
    pmm_t *n = pmm;
    __builtin_memset(n, 0, sizeof *n);
    n->span_frames = sh.span_frames;
    n->words = sh.words;
    n->chunks = sh.chunks;
    n->bm = sh.bm;
    n->poison_bm = sh.poison_bm;
    n->held_bm = sh.held_bm;
    n->held_owner = sh.held_owner;
    n->any = sh.any;
    n->full = sh.full;
    n->chunk_run = sh.chunk_run;
    n->meta_base = meta << MM_PAGE_SHIFT;
    n->meta_frames = meta_frames;
    n->meta_bytes = bytes;
    s.meta0 = meta;
    s.meta1 = meta + meta_frames;

    /* The two bitmaps are written in full by the sweep; everything after
     * them (poison and held bitmaps, summaries, chunk bounds) starts at
     * zero: no frame is allocated yet. */
    uint64_t head = 2 * n->words * 8;
    __builtin_memset((void *)(uintptr_t)(va + head), 0, bytes - head);

    pmm_writer_t wr = {.p = n, .acc = 0, .frames = 0};
    for (uint64_t pos = 0; pos < s.end;) {
        uint64_t next = sweep_next(&s, pos);
        writer_put(&wr, pos, next, sweep_usable(&s, pos));
        pos = next;
    }

    if (n->any.depth > 1)
        pmm_tree_refresh(&n->any, 1, 0, n->any.words[1] - 1);
    pmm_tree_refresh(&n->full, 0, 0, n->full.words[0] - 1);

    /* Exact chunk bounds: wholly free and wholly used chunks are known from
     * the summaries; only chunks where a boundary falls are scanned. */
    const pmm_req_t never = {.n = UINT64_MAX, .align = 1, .hi = 0};
    for (uint64_t c = 0; c < n->chunks; c++) {
        uint64_t run = 0, unused;
        bool has_free = n->any.depth > 1 ? n->any.lvl[1][c] != 0 : PMM_FREE(n, 0) != 0;
        if (n->full.lvl[0][c] == PMM_ALL) {
            run = PMM_CHUNK_FRAMES;
        } else if (has_free) {
            bool found = pmm_chunk_scan(n, c, &never, &unused, &run);
            MM_ASSERT(!found);
        }
        n->chunk_run[c] = (uint16_t)run;
    }

    n->free_frames = wr.frames;
    n->usable_frames = wr.frames;
    n->hint = 0;
    n->hot = PMM_NONE;

    mm_spin_init_ranked(&pmm->lock, MM_LOCK_RANK_PMM, "pmm");
    pmm_pcp_init(pmm);
    pmm->self = pmm;
    pmm->magic = PMM_MAGIC;
    return MM_OK;
}

/*
 * libFuzzer harness: the AArch64 page-table mapper against a reference
 * model of its mappings.
 *
 * The model is the sorted list of mappings of one hierarchy (user and
 * kernel half). From it the harness predicts every status of map, unmap,
 * protect, translate and the three range operations (in the order of
 * checks the mapper documents), the raw descriptor of every leaf (Arm ARM
 * bit positions written out here), what walk, translate and audit report,
 * and, through a TLB hook observer, that every synchronous invalidation
 * happens with the descriptor invalid and exactly when break-before-make is
 * required (a protect changing the memory type or the global bit). After
 * every 8th operation, every failed allocation and at the end, the walk must
 * match the model and a64pt_check must pass with as many tables as the
 * frame pool has frames out (no leak, no double free).
 * Failed frame allocations are injected: an operation that then returns
 * MM_ERR_NOMEM must have hit the injected failure and changed nothing.
 *
 * Input:
 *   header  u8 cfg (bit 0: 52-bit VA with LPA2, bit 1: LPA2 at 48 bits,
 *           0xe0 set: an invalid configuration a64pt_init must refuse),
 *           u8 physical address bits, u8 pool size.
 *   ops     u8 opcode (low 3 bits: the operation, 0x08: through the
 *           mm_page_mapper_t interface, 0xf0: variant), then arguments.
 */
#include <stdlib.h>
#include <string.h>

#include <hadron/mm/a64pt.h>
#include <hadron/mm/hhdm.h>

#include "frame_pool.h"
#include "fuzz_common.h"
#include "mm_test.h"

#define SIM_BYTES (8ull << 20)
#define POOL_BASE (1ull << 20)
#define MAXMAP 4096u
#define MAX_OPS 512u

/* Arm ARM descriptor bit positions, independent of the library's. */
#define B_VALID (1ull << 0)
#define B_TYPE (1ull << 1)
#define B_AP1 (1ull << 6)
#define B_AP2 (1ull << 7)
#define B_SH_IS (3ull << 8)
#define B_AF (1ull << 10)
#define B_NG (1ull << 11)
#define B_PXN (1ull << 53)
#define B_UXN (1ull << 54)

typedef struct mapping {
    mm_vaddr_t va;
    mm_paddr_t pa;
    mm_page_size_t size;
    mm_map_flags_t flags;
} mapping_t;

static uint8_t *sim;

static struct {
    a64pt_t m;
    a64pt_config_t cfg;
    frame_pool_t pool;
    bool pool_live;
    mm_paddr_t root;
    mapping_t map[MAXMAP];
    size_t n;
    mm_tlb_batch_t tlb;
    unsigned va_bits;
    unsigned ops;
    /* Break-before-make observation. */
    bool observing; /* inside a map or protect call: every invalidation is BBM */
    int sync_calls;
    bool sync_bad;
} E;

static uint64_t bytes_of(mm_page_size_t s)
{
    return 1ull << s;
}

static bool canonical(mm_vaddr_t va)
{
    unsigned s = 64 - E.va_bits;
    return (mm_vaddr_t)((int64_t)(va << s) >> s) == va;
}

static bool kernel_half(mm_vaddr_t va)
{
    return (int64_t)va < 0;
}

/* ---- the model ------------------------------------------------------ */

FZ_NOCOV static long find(mm_vaddr_t va)
{
    for (size_t i = 0; i < E.n; i++)
        if (va >= E.map[i].va && va - E.map[i].va < bytes_of(E.map[i].size))
            return (long)i;
    return -1;
}

/* First mapping overlapping [va, last], or -1. */
FZ_NOCOV static long overlap(mm_vaddr_t va, mm_vaddr_t last)
{
    for (size_t i = 0; i < E.n; i++)
        if (E.map[i].va <= last && va <= E.map[i].va + (bytes_of(E.map[i].size) - 1))
            return (long)i;
    return -1;
}

FZ_NOCOV static void insert(mapping_t m)
{
    size_t i = E.n;
    while (i != 0 && E.map[i - 1].va > m.va) {
        E.map[i] = E.map[i - 1];
        i--;
    }
    E.map[i] = m;
    E.n++;
}

static void remove_at(size_t i)
{
    memmove(&E.map[i], &E.map[i + 1], (E.n - i - 1) * sizeof E.map[0]);
    E.n--;
}

/* The flag rules of a64pt.h, written out again. */
static bool flags_valid(mm_map_flags_t f, bool kernel)
{
    if (f & ~(mm_map_flags_t)MM_MAP_FLAGS_ALL)
        return false;
    if (((f & MM_MAP_MEM_MASK) >> MM_MAP_MEM_SHIFT) >= MM_MEM_TYPE_COUNT)
        return false;
    if ((f & MM_MAP_USER) && (kernel || (f & MM_MAP_GLOBAL)))
        return false;
    return !((f & MM_MAP_MEM_MASK) == MM_MAP_DEVICE && (f & MM_MAP_EXEC));
}

/* The flags translate and the walk report for `f`: write-combining reads
 * back as normal NC (one AttrIndx). */
static mm_map_flags_t read_back(mm_map_flags_t f)
{
    if ((f & MM_MAP_MEM_MASK) == MM_MAP_WRITE_COMBINING)
        f = (f & ~(mm_map_flags_t)MM_MAP_MEM_MASK) | MM_MAP_NORMAL_NC;
    return f;
}

static uint64_t encode(const mapping_t *m)
{
    uint64_t e = B_VALID | B_AF;
    if (m->size == MM_PAGE_4K)
        e |= B_TYPE;
    /* WB 0, WT 1, write-combining and normal NC 2, device 3. */
    static const unsigned attr_of[MM_MEM_TYPE_COUNT] = {0, 1, 2, 2, 3};
    unsigned attr = attr_of[(m->flags & MM_MAP_MEM_MASK) >> MM_MAP_MEM_SHIFT];
    e |= (uint64_t)attr << 2;
    if (E.cfg.lpa2)
        e |= (m->pa & 0x0003fffffffff000ull) | (((m->pa >> 50) & 3) << 8);
    else
        e |= (m->pa & 0x0000fffffffff000ull) | B_SH_IS;
    if (!(m->flags & MM_MAP_WRITE))
        e |= B_AP2;
    if (m->flags & MM_MAP_USER) {
        e |= B_AP1 | B_PXN | B_NG;
        if (!(m->flags & MM_MAP_EXEC))
            e |= B_UXN;
    } else {
        e |= B_UXN;
        if (!(m->flags & MM_MAP_EXEC))
            e |= B_PXN;
    }
    if (!(m->flags & MM_MAP_GLOBAL))
        e |= B_NG;
    return e;
}

/* ---- verification ----------------------------------------------------- */

typedef struct walk_cmp {
    size_t i;
    size_t wx;
} walk_cmp_t;

static bool walk_leaf(void *arg, const a64pt_leaf_t *leaf)
{
    walk_cmp_t *w = arg;
    FZ_CHECK(w->i < E.n, "walk: extra leaf %#llx", (unsigned long long)leaf->va);
    const mapping_t *m = &E.map[w->i++];
    FZ_CHECK(leaf->va == m->va && leaf->pa == m->pa && leaf->size == m->size &&
                 leaf->flags == read_back(m->flags),
             "walk: leaf %#llx -> %#llx size %d flags %#x, model %#llx -> %#llx size %d flags %#x",
             (unsigned long long)leaf->va, (unsigned long long)leaf->pa, leaf->size, leaf->flags,
             (unsigned long long)m->va, (unsigned long long)m->pa, m->size, m->flags);
    FZ_CHECK(leaf->entry == encode(m), "descriptor of %#llx: %#llx, want %#llx",
             (unsigned long long)m->va, (unsigned long long)leaf->entry,
             (unsigned long long)encode(m));
    if ((m->flags & MM_MAP_WRITE) && (m->flags & MM_MAP_EXEC))
        w->wx++;
    return true;
}

static void verify(void)
{
    mm_tlb_batch_flush(&E.tlb);
    walk_cmp_t w = {0, 0};
    FZ_CHECK(a64pt_walk(&E.m, E.root, 0, UINT64_MAX, walk_leaf, &w) == MM_OK, "walk");
    FZ_CHECK(w.i == E.n, "walk saw %zu leaves, model has %zu", w.i, E.n);
    a64pt_check_info_t info;
    mm_status_t st = a64pt_check(&E.m, E.root, &info);
    FZ_CHECK(st == MM_OK, "check: %s at %#llx level %d", info.problem ? info.problem : "-",
             (unsigned long long)info.bad_va, info.bad_level);
    FZ_CHECK(info.leaves == E.n, "check counted %zu leaves", info.leaves);
    FZ_CHECK(E.pool.live == 1 + info.user_tables + info.kernel_tables,
             "pool has %zu frames out, the hierarchy %zu tables + root", E.pool.live,
             info.user_tables + info.kernel_tables);
    FZ_CHECK(E.pool.free_errors == 0, "a bad free");
    a64pt_audit_counts_t c;
    FZ_CHECK(a64pt_audit(&E.m, E.root, NULL, NULL, &c) == MM_OK, "audit");
    FZ_CHECK(c.wx == w.wx && c.kernel_el0_leaves == 0 && c.user_pxn_clear == 0,
             "audit: %zu wx (model %zu), %zu kernel el0, %zu pxn clear", c.wx, w.wx,
             c.kernel_el0_leaves, c.user_pxn_clear);
}

/* Inside every synchronous invalidation: the page must have no valid
 * descriptor (break before make). The invalidation is a flush of the
 * caller's batch, so it also carries pages a range protect recorded before
 * (still mapped: permission changes); the batch is flushed after every
 * operation, so the page being broken is the one unmapped page among
 * them. A batch that overflowed flushes everything (pages NULL). */
static void observe(mm_asid_t asid, const mm_vaddr_t *pages, size_t count)
{
    if (!E.observing)
        return; /* a batch flush, or an early one inside an unmap */
    E.sync_calls++;
    if (asid != E.tlb.asid)
        E.sync_bad = true;
    if (pages == NULL)
        return;
    size_t broken = 0;
    for (size_t i = 0; i < count; i++) {
        mm_translation_t tr;
        if (a64pt_translate(&E.m, E.root, pages[i], &tr) == MM_ERR_NOT_MAPPED)
            broken++;
    }
    if (broken != 1)
        E.sync_bad = true;
}

/* ---- argument decoding -------------------------------------------------- */

static mm_vaddr_t pick_va(fz_in_t *in)
{
    uint8_t sel = fz_u8(in);
    uint32_t b = fz_u32(in);
    if (sel >= 0xf8)
        return fz_u64(in);
    uint64_t top = 1ull << (E.va_bits - 1);
    const uint64_t anchors[4] = {0, top - (4ull << 30), 0 - top, 0 - (4ull << 30)};
    mm_vaddr_t va = anchors[sel & 3];
    va += (uint64_t)(b & 15) << 12;
    va += (uint64_t)((b >> 4) & 7) << 21;
    va += (uint64_t)((b >> 7) & 3) << 30;
    if (sel & 0x80)
        va += (b >> 12) & 0xfff;
    return va;
}

static mm_paddr_t pick_pa(fz_in_t *in)
{
    uint8_t mode = fz_u8(in);
    uint32_t b = fz_u32(in);
    uint64_t end = 1ull << E.cfg.phys_bits;
    switch (mode % 5) {
    case 0: return (uint64_t)(b & 0xfffff) << 12;
    case 1: return (uint64_t)(b & 0x3ff) << 21;
    case 2: return (uint64_t)(b & 0x3f) << 30;
    case 3: return end - ((uint64_t)(b & 7) << (12 + 9 * ((b >> 3) % 3)));
    default: return (uint64_t)b << 8;
    }
}

static mm_page_size_t pick_size(uint8_t s)
{
    switch (s % 4) {
    case 0:
    case 1: return MM_PAGE_4K;
    case 2: return MM_PAGE_2M;
    default: return MM_PAGE_1G;
    }
}

static mm_map_flags_t pick_flags(uint8_t f, mm_vaddr_t va)
{
    if (!(f & 0x80))
        return f & 0x7f; /* anything, often invalid */
    static const mm_map_flags_t cache[4] = {MM_MAP_WRITE_BACK, MM_MAP_DEVICE,
                                            MM_MAP_WRITE_THROUGH, MM_MAP_NORMAL_NC};
    mm_map_flags_t fl = f & (MM_MAP_WRITE | MM_MAP_EXEC | MM_MAP_USER | MM_MAP_GLOBAL);
    if (kernel_half(va))
        fl &= ~(mm_map_flags_t)MM_MAP_USER;
    if (fl & MM_MAP_USER)
        fl &= ~(mm_map_flags_t)MM_MAP_GLOBAL;
    fl |= cache[(f >> 4) & 3];
    if ((fl & MM_MAP_MEM_MASK) == MM_MAP_DEVICE)
        fl &= ~(mm_map_flags_t)MM_MAP_EXEC;
    return fl;
}

static uint64_t pick_len(fz_in_t *in)
{
    uint8_t mode = fz_u8(in);
    uint16_t n = fz_u16(in);
    switch (mode % 4) {
    case 0:
    case 1: return (uint64_t)(n % 600) << 12;
    case 2: return (uint64_t)(n % 64) << 21;
    default: return mode & 0x80 ? n : (uint64_t)(n % 5) << 30;
    }
}

static void expect(mm_status_t got, mm_status_t want, const char *what, mm_vaddr_t va)
{
    if (got == MM_ERR_NOMEM && E.pool.alloc_failures != 0 && want == MM_OK)
        return; /* the injected failure; verify() proves nothing changed */
    FZ_CHECK(got == want, "%s %#llx: got %s, model expects %s", what, (unsigned long long)va,
             mm_status_str(got), mm_status_str(want));
}

static mm_status_t page_status(mm_vaddr_t va, mm_page_size_t size)
{
    if (!canonical(va))
        return MM_ERR_NOT_CANONICAL;
    if (va & (bytes_of(size) - 1))
        return MM_ERR_ALIGN;
    return MM_OK;
}

/* ---- operations ------------------------------------------------------------- */

static void op_map(fz_in_t *in, bool iface)
{
    mm_vaddr_t va = pick_va(in);
    mm_paddr_t pa = pick_pa(in);
    mm_page_size_t size = pick_size(fz_u8(in));
    mm_map_flags_t flags = pick_flags(fz_u8(in), va);
    mm_status_t want = page_status(va, size);
    if (want == MM_OK && !flags_valid(flags, kernel_half(va)))
        want = MM_ERR_INVALID;
    if (want == MM_OK && (pa & (bytes_of(size) - 1)))
        want = MM_ERR_ALIGN;
    uint64_t end = 1ull << E.cfg.phys_bits;
    if (want == MM_OK && (pa >= end || end - pa < bytes_of(size)))
        want = MM_ERR_RANGE;
    if (want == MM_OK && overlap(va, va + bytes_of(size) - 1) >= 0)
        want = MM_ERR_EXISTS;
    if (want == MM_OK && E.n == MAXMAP)
        return;
    mm_page_mapper_t pm = a64pt_page_mapper(&E.m);
    E.observing = true;
    mm_status_t got = iface ? mm_pm_map(&pm, E.root, va, pa, size, flags, &E.tlb)
                            : a64pt_map(&E.m, E.root, va, pa, size, flags, &E.tlb);
    E.observing = false;
    FZ_TRACE("map %#llx -> %#llx size %d flags %#x: %s\n", (unsigned long long)va,
             (unsigned long long)pa, size, flags, mm_status_str(got));
    expect(got, want, "map", va);
    FZ_CHECK(got == MM_OK || mm_tlb_batch_empty(&E.tlb), "a refused map recorded something");
    if (got == MM_OK)
        insert((mapping_t){va, pa, size, flags});
}

/* Where unmap/protect aim: half the time at an existing mapping. */
static void pick_target(fz_in_t *in, mm_vaddr_t *va, mm_page_size_t *size)
{
    uint8_t t = fz_u8(in);
    if (E.n != 0 && (t & 1)) {
        const mapping_t *m = &E.map[(t >> 1) % E.n];
        *va = m->va;
        *size = (t & 0x80) ? pick_size(t >> 2) : m->size;
        return;
    }
    *va = pick_va(in);
    *size = pick_size(t >> 1);
}

static mm_status_t find_status(mm_vaddr_t va, mm_page_size_t size, long *idx)
{
    long i = find(va);
    *idx = i;
    if (i >= 0 && E.map[i].va == va && E.map[i].size == size)
        return MM_OK;
    if (overlap(va, va + bytes_of(size) - 1) >= 0)
        return MM_ERR_SIZE_MISMATCH;
    return MM_ERR_NOT_MAPPED;
}

static bool needs_bbm(mm_map_flags_t a, mm_map_flags_t b)
{
    /* Write-combining and normal NC are one AttrIndx: no type change. */
    static const unsigned attr_of[MM_MEM_TYPE_COUNT] = {0, 1, 2, 2, 3};
    return attr_of[(a & MM_MAP_MEM_MASK) >> MM_MAP_MEM_SHIFT] !=
               attr_of[(b & MM_MAP_MEM_MASK) >> MM_MAP_MEM_SHIFT] ||
           ((a ^ b) & MM_MAP_GLOBAL) != 0;
}

static void op_unmap_protect(fz_in_t *in, bool iface, bool protect)
{
    mm_vaddr_t va;
    mm_page_size_t size;
    pick_target(in, &va, &size);
    mm_map_flags_t flags = protect ? pick_flags(fz_u8(in), va) : 0;
    mm_status_t want = page_status(va, size);
    if (want == MM_OK && protect && !flags_valid(flags, kernel_half(va)))
        want = MM_ERR_INVALID;
    long idx = -1;
    if (want == MM_OK)
        want = find_status(va, size, &idx);
    mm_page_mapper_t pm = a64pt_page_mapper(&E.m);
    int calls = E.sync_calls;
    mm_status_t got;
    mm_paddr_t pa = 1;
    E.observing = protect;
    if (protect)
        got = iface ? mm_pm_protect(&pm, E.root, va, size, flags, &E.tlb)
                    : a64pt_protect(&E.m, E.root, va, size, flags, &E.tlb);
    else
        got = iface ? mm_pm_unmap(&pm, E.root, va, size, &pa, &E.tlb)
                    : a64pt_unmap(&E.m, E.root, va, size, &pa, &E.tlb);
    E.observing = false;
    FZ_TRACE("%s %#llx size %d flags %#x: %s\n", protect ? "protect" : "unmap",
             (unsigned long long)va, size, flags, mm_status_str(got));
    expect(got, want, protect ? "protect" : "unmap", va);
    if (got != MM_OK) {
        FZ_CHECK(mm_tlb_batch_empty(&E.tlb) && E.sync_calls == calls, "refused call flushed");
        return;
    }
    if (protect) {
        bool bbm = needs_bbm(E.map[idx].flags, flags);
        FZ_CHECK(E.sync_calls - calls == (bbm ? 1 : 0), "protect %#x -> %#x: %d sync calls",
                 E.map[idx].flags, flags, E.sync_calls - calls);
        E.map[idx].flags = flags;
    } else {
        FZ_CHECK(pa == E.map[idx].pa, "unmap returned %#llx", (unsigned long long)pa);
        FZ_CHECK(E.tlb.count != 0 || E.tlb.flush_all, "unmap recorded nothing");
        remove_at((size_t)idx);
    }
}

static void op_translate(fz_in_t *in, bool iface)
{
    mm_vaddr_t va = pick_va(in);
    if (E.n != 0 && (va & 1))
        va = E.map[(va >> 1) % E.n].va + (va & 0xfff);
    mm_translation_t tr;
    mm_page_mapper_t pm = a64pt_page_mapper(&E.m);
    mm_status_t got = iface ? mm_pm_translate(&pm, E.root, va, &tr)
                            : a64pt_translate(&E.m, E.root, va, &tr);
    long i = canonical(va) ? find(va) : -1;
    mm_status_t want = !canonical(va) ? MM_ERR_NOT_CANONICAL : i < 0 ? MM_ERR_NOT_MAPPED : MM_OK;
    expect(got, want, "translate", va);
    if (got == MM_OK) {
        const mapping_t *m = &E.map[i];
        FZ_CHECK(tr.pa == m->pa + (va - m->va) && tr.size == m->size && tr.flags == read_back(m->flags) &&
                     tr.page_va == m->va,
                 "translate %#llx", (unsigned long long)va);
    }
}

static mm_status_t range_status(mm_vaddr_t va, uint64_t len, mm_vaddr_t *last)
{
    if (len == 0)
        return MM_ERR_INVALID;
    if (!canonical(va))
        return MM_ERR_NOT_CANONICAL;
    if ((va | len) & 0xfff)
        return MM_ERR_ALIGN;
    if (__builtin_add_overflow(va, len - 1, last) || !canonical(*last) ||
        kernel_half(va) != kernel_half(*last))
        return MM_ERR_NOT_CANONICAL;
    return MM_OK;
}

static mm_page_size_t choose(mm_vaddr_t va, mm_paddr_t pa, uint64_t left)
{
    if (((va | pa) & (bytes_of(MM_PAGE_1G) - 1)) == 0 && left >= bytes_of(MM_PAGE_1G))
        return MM_PAGE_1G;
    if (((va | pa) & (bytes_of(MM_PAGE_2M) - 1)) == 0 && left >= bytes_of(MM_PAGE_2M))
        return MM_PAGE_2M;
    return MM_PAGE_4K;
}

static void op_map_range(fz_in_t *in)
{
    mm_vaddr_t va = pick_va(in);
    mm_paddr_t pa = pick_pa(in);
    uint64_t len = pick_len(in);
    mm_map_flags_t flags = pick_flags(fz_u8(in), va);
    mm_vaddr_t last = 0;
    mm_status_t want = range_status(va, len, &last);
    if (want == MM_OK && !flags_valid(flags, kernel_half(va)))
        want = MM_ERR_INVALID;
    if (want == MM_OK && (pa & 0xfff))
        want = MM_ERR_ALIGN;
    uint64_t end = 1ull << E.cfg.phys_bits;
    if (want == MM_OK && (pa >= end || end - pa < len))
        want = MM_ERR_RANGE;
    if (want == MM_OK && overlap(va, last) >= 0)
        want = MM_ERR_EXISTS;
    size_t steps = 0;
    for (uint64_t off = 0; want == MM_OK && off < len; steps++)
        off += bytes_of(choose(va + off, pa + off, len - off));
    if (want == MM_OK && E.n + steps > MAXMAP)
        return;
    E.observing = true;
    mm_status_t got = a64pt_map_range(&E.m, E.root, va, pa, len, flags, &E.tlb);
    E.observing = false;
    FZ_TRACE("map_range %#llx -> %#llx len %#llx flags %#x: %s\n", (unsigned long long)va,
             (unsigned long long)pa, (unsigned long long)len, flags, mm_status_str(got));
    expect(got, want, "map_range", va);
    if (got != MM_OK)
        return;
    for (uint64_t off = 0; off < len;) {
        mm_page_size_t s = choose(va + off, pa + off, len - off);
        insert((mapping_t){va + off, pa + off, s, flags});
        off += bytes_of(s);
    }
}

/* What a range scan finds first in address order. */
FZ_NOCOV static mm_status_t scan_status(mm_vaddr_t va, mm_vaddr_t last, bool holes)
{
    mm_vaddr_t cur = va;
    for (;;) {
        long i = find(cur);
        mm_vaddr_t next;
        if (i >= 0) {
            const mapping_t *m = &E.map[i];
            if (m->va < va || m->va + (bytes_of(m->size) - 1) > last)
                return MM_ERR_SIZE_MISMATCH;
            next = m->va + bytes_of(m->size);
        } else {
            if (!holes)
                return MM_ERR_NOT_MAPPED;
            long j = overlap(cur, last);
            if (j < 0)
                return MM_OK;
            next = E.map[j].va > cur ? E.map[j].va : cur + 1;
            /* overlap() returns the lowest in sorted order: the next one. */
        }
        if (next == 0 || next > last)
            return MM_OK;
        cur = next;
    }
}

static void op_range_change(fz_in_t *in, uint8_t op, bool protect)
{
    mm_vaddr_t va = pick_va(in);
    uint64_t len = pick_len(in);
    if (E.n != 0 && (op & 0x10)) {
        const mapping_t *m = &E.map[len % E.n];
        va = m->va;
        len = bytes_of(m->size) * (1 + (op >> 6));
    }
    unsigned opts = (op & 0x20) ? A64PT_RANGE_ALLOW_HOLES : 0;
    mm_map_flags_t flags = protect ? pick_flags(fz_u8(in), va) : 0;
    mm_vaddr_t last = 0;
    mm_status_t want = range_status(va, len, &last);
    if (want == MM_OK && protect && !flags_valid(flags, kernel_half(va)))
        want = MM_ERR_INVALID;
    if (want == MM_OK)
        want = scan_status(va, last, opts != 0);
    /* Pages the change will touch, and how many need break-before-make. */
    int bbm = 0;
    if (want == MM_OK)
        for (size_t i = 0; i < E.n; i++)
            if (E.map[i].va >= va && E.map[i].va <= last && needs_bbm(E.map[i].flags, flags))
                bbm++;
    int calls = E.sync_calls;
    E.observing = protect;
    mm_status_t got = protect ? a64pt_protect_range(&E.m, E.root, va, len, flags, opts, &E.tlb)
                              : a64pt_unmap_range(&E.m, E.root, va, len, opts, NULL, NULL,
                                                  &E.tlb);
    E.observing = false;
    FZ_TRACE("%s_range %#llx len %#llx opts %u flags %#x: %s\n", protect ? "protect" : "unmap",
             (unsigned long long)va, (unsigned long long)len, opts, flags, mm_status_str(got));
    expect(got, want, protect ? "protect_range" : "unmap_range", va);
    if (got != MM_OK)
        return;
    if (protect)
        FZ_CHECK(E.sync_calls - calls == bbm, "protect_range: %d sync calls, model %d",
                 E.sync_calls - calls, bbm);
    for (size_t i = E.n; i-- != 0;) {
        if (E.map[i].va < va || E.map[i].va > last)
            continue;
        if (protect)
            E.map[i].flags = flags;
        else
            remove_at(i);
    }
}

static void run_op(fz_in_t *in)
{
    uint8_t op = fz_u8(in);
    bool iface = (op & 0x08) != 0;
    mm_tlb_batch_init(&E.tlb);
    /* Variant 0xf0: fail one of the next frame allocations. */
    if ((op & 0xf0) == 0xf0)
        frame_pool_fail_at(&E.pool, 1 + (fz_u8(in) & 3), false);
    E.pool.alloc_failures = 0;
    switch (op & 7) {
    case 0:
    case 1: op_map(in, iface); break;
    case 2: op_unmap_protect(in, iface, false); break;
    case 3: op_unmap_protect(in, iface, true); break;
    case 4: op_translate(in, iface); break;
    case 5: op_map_range(in); break;
    case 6: op_range_change(in, op, false); break;
    default: op_range_change(in, op, true); break;
    }
    frame_pool_fail_at(&E.pool, 0, false);
    FZ_CHECK(!E.sync_bad, "a synchronous invalidation ran with the descriptor still valid");
    /* The full comparison walks every table: after each failed allocation
     * (proving it changed nothing) and every 8th operation; the batch is
     * flushed after each one. */
    E.ops++;
    if (E.pool.alloc_failures != 0 || (E.ops & 7) == 0)
        verify();
    else
        mm_tlb_batch_flush(&E.tlb);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    sim = sim_phys_create_at(FZ_SIM_ADDRESS, SIM_BYTES);
    test_tlb_pages_observer = observe;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    uint8_t c = fz_u8(&in), pb = fz_u8(&in), ps = fz_u8(&in);
    if (E.pool_live)
        frame_pool_destroy(&E.pool);
    memset(&E, 0, sizeof E);
    size_t frames = 32 + 6 * (size_t)(ps % 251);
    frame_pool_init(&E.pool, POOL_BASE, frames);
    E.pool_live = true;
    bool lpa2 = (c & 3) != 0;
    E.cfg = (a64pt_config_t){
        .va_bits = (c & 1) ? 52 : 48,
        .lpa2 = lpa2,
        .phys_bits = 32 + pb % (lpa2 ? 21 : 17),
        .frames = frame_pool_allocator(&E.pool),
    };
    if ((c & 0xe0) == 0xe0) {
        a64pt_config_t bad = E.cfg;
        switch (pb % 5) {
        case 0: bad.va_bits = pb & 0x80 ? 39 : 57; break;
        case 1: bad.phys_bits = lpa2 ? 53 : 49; break;
        case 2: bad.frames.alloc = NULL; break;
        case 3: bad.frames.free = NULL; break;
        default: bad.va_bits = 52, bad.lpa2 = false; break;
        }
        FZ_CHECK(a64pt_init(&E.m, &bad) == MM_ERR_INVALID, "a64pt_init accepted a bad config");
        return 0;
    }
    FZ_CHECK(a64pt_init(&E.m, &E.cfg) == MM_OK, "a64pt_init");
    E.va_bits = E.cfg.va_bits;
    FZ_CHECK(a64pt_root_create(&E.m, 0, &E.root) == MM_OK, "root_create");
    FZ_TRACE("config: %u-bit VA, lpa2 %d, %u phys bits, %zu pool frames\n", E.cfg.va_bits,
             E.cfg.lpa2, E.cfg.phys_bits, frames);

    for (unsigned k = 0; k < MAX_OPS && fz_more(&in); k++)
        run_op(&in);

    /* Tear down through the model: every table but the pinned kernel ones
     * must come back. */
    while (E.n != 0) {
        mapping_t m = E.map[E.n - 1];
        mm_tlb_batch_init(&E.tlb);
        FZ_CHECK(a64pt_unmap(&E.m, E.root, m.va, m.size, NULL, &E.tlb) == MM_OK,
                 "teardown unmap %#llx", (unsigned long long)m.va);
        E.n--;
        mm_tlb_batch_flush(&E.tlb);
    }
    verify();
    a64pt_check_info_t info;
    FZ_CHECK(a64pt_check(&E.m, E.root, &info) == MM_OK && info.user_tables == 0,
             "teardown: user tables remain");
    return 0;
}

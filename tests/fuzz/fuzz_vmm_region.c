/*
 * libFuzzer harness: the VMM's virtual-range allocators (vmm_region.h), the
 * bump and the free-list allocator side by side, against a reference model
 * that keeps one state per page.
 *
 * The free-list model derives everything from the page states: its holes
 * are the maximal runs of free pages below the watermark, so it predicts the
 * exact first-fit address of every allocation, when a free needs a new slot
 * (MM_ERR_FULL with `capacity` slots in use), every error in the documented
 * order (also from can_alloc and can_free, asked before each alloc and
 * free), and the exact contents of the allocator's range array (sorted,
 * coalesced, none touching the watermark). The bump model is a watermark
 * and the list of allocations (for unwinding the latest one and others).
 *
 * Input:
 *   header  u8 capacity (% 9 slots), u8 placement, u16 region pages
 *           (1 + n % 1024), u32 base page. Placement % 4: at the base page,
 *           ending exactly at 2^64, at the base page with an invalid twist
 *           (unaligned base, size 0, wrapping: init must refuse), in the
 *           kernel half.
 *   ops     u8 opcode, then its arguments (see run_op).
 */
#include <stdlib.h>
#include <string.h>

#include <hadron/mm/vmm_region.h>

#include "fuzz_common.h"
#include "mm_test.h"

#define PG 4096ull
#define MAX_PAGES 1024u
#define MAX_CAP 8u
#define MAX_OPS 2048u
#define MAX_ALLOCS 1024u

enum { P_ABOVE, P_FREE, P_USED }; /* above the watermark, a hole, handed out */

static struct {
    vmm_region_freelist_t fl;
    vmm_region_bump_t bump;
    vmm_range_t storage[MAX_CAP + 1]; /* one spare slot: writing it is a bug */
    size_t cap;
    mm_vaddr_t base;
    uint64_t pages;
    uint8_t page[MAX_PAGES];
    uint64_t wm; /* free-list watermark, pages */
    vmm_range_t fl_allocs[MAX_ALLOCS];
    size_t nfl;
    uint64_t bump_used; /* bytes */
    vmm_range_t bump_allocs[MAX_ALLOCS];
    size_t nbump;
} R;

static const vmm_range_t canary = {0xdeadbeefcafef00dull, 0x5a5a5a5a5a5a5a5aull};

/* ------------------------------------------------------------------ */
/* Free-list model                                                     */
/* ------------------------------------------------------------------ */

FZ_NOCOV static size_t model_holes(vmm_range_t *out)
{
    size_t n = 0;
    for (uint64_t p = 0; p < R.wm;) {
        if (R.page[p] != P_FREE) {
            p++;
            continue;
        }
        uint64_t q = p;
        while (q < R.wm && R.page[q] == P_FREE)
            q++;
        if (out != NULL)
            out[n] = (vmm_range_t){R.base + p * PG, (q - p) * PG};
        n++;
        p = q;
    }
    return n;
}

FZ_NOCOV static uint64_t model_free_pages(void)
{
    uint64_t n = 0;
    for (uint64_t p = 0; p < R.wm; p++)
        n += R.page[p] == P_FREE;
    return n;
}

static void verify(void)
{
    FZ_CHECK(vmm_region_freelist_check(&R.fl) == MM_OK, "vmm_region_freelist_check");
    FZ_CHECK(vmm_region_bump_check(&R.bump) == MM_OK, "vmm_region_bump_check");
    vmm_range_t holes[MAX_PAGES];
    size_t n = model_holes(holes);
    uint64_t fp = model_free_pages();
    FZ_CHECK(R.fl.watermark == R.wm * PG && R.fl.free_bytes == fp * PG && R.fl.count == n,
             "free list: watermark %#llx, %#llx free in %zu ranges; model %#llx, %#llx in %zu",
             (unsigned long long)R.fl.watermark, (unsigned long long)R.fl.free_bytes,
             R.fl.count, (unsigned long long)(R.wm * PG), (unsigned long long)(fp * PG), n);
    for (size_t i = 0; i < n; i++)
        FZ_CHECK(R.fl.ranges[i].base == holes[i].base && R.fl.ranges[i].size == holes[i].size,
                 "free range %zu: %#llx+%#llx; model %#llx+%#llx", i,
                 (unsigned long long)R.fl.ranges[i].base, (unsigned long long)R.fl.ranges[i].size,
                 (unsigned long long)holes[i].base, (unsigned long long)holes[i].size);
    FZ_CHECK(vmm_region_freelist_allocated(&R.fl) == (R.wm - fp) * PG, "allocated bytes");
    FZ_CHECK(memcmp(&R.storage[R.cap], &canary, sizeof canary) == 0,
             "the free list wrote beyond its capacity");
    FZ_CHECK(R.bump.used == R.bump_used && R.bump.base == R.base && R.bump.size == R.pages * PG,
             "bump: used %#llx, model %#llx", (unsigned long long)R.bump.used,
             (unsigned long long)R.bump_used);
}

static void expect(mm_status_t got, mm_status_t want, const char *what, uint64_t a, uint64_t b)
{
    FZ_CHECK(got == want, "%s(%#llx, %#llx): got %s, model expects %s", what,
             (unsigned long long)a, (unsigned long long)b, mm_status_str(got),
             mm_status_str(want));
}

static uint64_t pick_size(fz_in_t *in)
{
    uint16_t v = fz_u16(in);
    switch (v >> 14) {
    case 0: return (uint64_t)(v % 9) * PG;            /* 0 (invalid) .. 8 pages */
    case 1: return (uint64_t)(v % 80) * PG;
    case 2: return (uint64_t)(v % (MAX_PAGES + 8)) * PG;
    default: return v & 1 ? (uint64_t)v : UINT64_MAX - (v & 0xfff); /* odd sizes */
    }
}

/* An address: a page of the region or around it, or anything. */
static mm_vaddr_t pick_addr(fz_in_t *in)
{
    uint8_t sel = fz_u8(in);
    uint16_t v = fz_u16(in);
    mm_vaddr_t a = R.base + (uint64_t)(v % (R.pages + 8)) * PG;
    if (sel & 1)
        a = R.base - (uint64_t)(v % 8 + 1) * PG; /* below (may wrap) */
    if (sel & 2)
        a += (sel >> 2) & 0xfff; /* unaligned */
    if (sel == 0xff)
        a = (uint64_t)v << 48;
    return a;
}

static void fl_alloc(uint64_t size, bool null_out)
{
    mm_vaddr_t out = 0;
    mm_status_t want, st;
    uint64_t at = 0, n = size / PG;
    if (size == 0 || null_out) {
        want = MM_ERR_INVALID;
    } else if (size % PG) {
        want = MM_ERR_ALIGN;
    } else {
        want = MM_ERR_EXHAUSTED;
        vmm_range_t holes[MAX_PAGES];
        size_t nh = model_holes(holes);
        for (size_t i = 0; i < nh; i++)
            if (holes[i].size >= size) {
                at = (holes[i].base - R.base) / PG;
                want = MM_OK;
                break;
            }
        if (want != MM_OK && n <= R.pages - R.wm) {
            at = R.wm;
            want = MM_OK;
        }
    }
    if (!null_out)
        expect(vmm_region_freelist_can_alloc(&R.fl, size), want, "freelist_can_alloc", size, 0);
    st = vmm_region_freelist_alloc(&R.fl, size, null_out ? NULL : &out);
    FZ_TRACE("  freelist alloc %#llx -> %s %#llx\n", (unsigned long long)size, mm_status_str(st),
             (unsigned long long)out);
    expect(st, want, "freelist_alloc", size, 0);
    if (st != MM_OK)
        return;
    FZ_CHECK(out == R.base + at * PG, "freelist_alloc(%#llx) = %#llx, first fit is %#llx",
             (unsigned long long)size, (unsigned long long)out,
             (unsigned long long)(R.base + at * PG));
    for (uint64_t p = at; p < at + n; p++) {
        FZ_CHECK(R.page[p] != P_USED, "model: page handed out twice");
        R.page[p] = P_USED;
    }
    if (at + n > R.wm)
        R.wm = at + n;
    if (R.nfl < MAX_ALLOCS)
        R.fl_allocs[R.nfl++] = (vmm_range_t){out, size};
}

static void fl_free(mm_vaddr_t base, uint64_t size)
{
    mm_status_t want;
    uint64_t off = 0, end = 0;
    if (size == 0) {
        want = MM_ERR_INVALID;
    } else if (base % PG || size % PG) {
        want = MM_ERR_ALIGN;
    } else if (base < R.base || base - R.base >= R.pages * PG ||
               size > R.pages * PG - (base - R.base)) {
        want = MM_ERR_RANGE;
    } else {
        off = (base - R.base) / PG;
        end = off + size / PG;
        want = MM_OK;
        if (end > R.wm)
            want = MM_ERR_BAD_POINTER;
        for (uint64_t p = off; want == MM_OK && p < end; p++)
            if (R.page[p] == P_FREE)
                want = MM_ERR_DOUBLE_FREE;
        if (want == MM_OK && end != R.wm) {
            bool prev = off > 0 && R.page[off - 1] == P_FREE;
            bool next = R.page[end] == P_FREE;
            if (!prev && !next && model_holes(NULL) == R.cap)
                want = MM_ERR_FULL;
        }
    }
    expect(vmm_region_freelist_can_free(&R.fl, base, size), want, "freelist_can_free", base, size);
    mm_status_t st = vmm_region_freelist_free(&R.fl, base, size);
    FZ_TRACE("  freelist free %#llx+%#llx -> %s\n", (unsigned long long)base,
             (unsigned long long)size, mm_status_str(st));
    expect(st, want, "freelist_free", base, size);
    if (st != MM_OK)
        return;
    for (uint64_t p = off; p < end; p++)
        R.page[p] = P_FREE;
    /* A hole reaching the watermark lowers it. */
    while (R.wm > 0 && R.page[R.wm - 1] == P_FREE)
        R.page[--R.wm] = P_ABOVE;
}

static void bump_alloc(uint64_t size, bool null_out)
{
    mm_status_t want;
    if (size == 0 || null_out)
        want = MM_ERR_INVALID;
    else if (size % PG)
        want = MM_ERR_ALIGN;
    else if (size > R.pages * PG - R.bump_used)
        want = MM_ERR_EXHAUSTED;
    else
        want = MM_OK;
    mm_vaddr_t out = 0;
    mm_status_t st = vmm_region_bump_alloc(&R.bump, size, null_out ? NULL : &out);
    FZ_TRACE("  bump alloc %#llx -> %s %#llx\n", (unsigned long long)size, mm_status_str(st),
             (unsigned long long)out);
    expect(st, want, "bump_alloc", size, 0);
    if (st != MM_OK)
        return;
    FZ_CHECK(out == R.base + R.bump_used, "bump_alloc: %#llx, expected %#llx",
             (unsigned long long)out, (unsigned long long)(R.base + R.bump_used));
    R.bump_used += size;
    if (R.nbump < MAX_ALLOCS)
        R.bump_allocs[R.nbump++] = (vmm_range_t){out, size};
}

static void bump_unwind(mm_vaddr_t base, uint64_t size)
{
    mm_status_t want;
    uint64_t rsize = R.pages * PG;
    if (size == 0)
        want = MM_ERR_INVALID;
    else if (base % PG || size % PG)
        want = MM_ERR_ALIGN;
    else if (base < R.base || base - R.base > rsize || size > rsize - (base - R.base))
        want = MM_ERR_RANGE;
    else if (base - R.base + size > R.bump_used)
        want = MM_ERR_BAD_POINTER;
    else if (base - R.base + size != R.bump_used)
        want = MM_ERR_STATE;
    else
        want = MM_OK;
    mm_status_t st = vmm_region_bump_unwind(&R.bump, base, size);
    FZ_TRACE("  bump unwind %#llx+%#llx -> %s\n", (unsigned long long)base,
             (unsigned long long)size, mm_status_str(st));
    expect(st, want, "bump_unwind", base, size);
    if (st != MM_OK)
        return;
    R.bump_used = base - R.base;
    while (R.nbump != 0 && R.bump_allocs[R.nbump - 1].base >= base)
        R.nbump--;
}

static void run_op(fz_in_t *in)
{
    uint8_t op = fz_u8(in);
    switch (op % 12) {
    case 0:
    case 1:
    case 2: fl_alloc(pick_size(in), (op & 0xf0) == 0xf0); break;
    case 3:
    case 4: { /* free an allocation, a part of one, or a span across several */
        uint16_t i = fz_u16(in);
        uint8_t how = fz_u8(in);
        if (R.nfl == 0)
            break;
        size_t k = i % R.nfl;
        vmm_range_t a = R.fl_allocs[k];
        if ((how & 3) == 1 && a.size > PG) { /* the tail */
            uint64_t cut = ((uint64_t)(how >> 2) % (a.size / PG - 1) + 1) * PG;
            a.base += cut;
            a.size -= cut;
        } else if ((how & 3) == 2 && k + 1 < R.nfl) { /* through the next */
            vmm_range_t b = R.fl_allocs[k + 1];
            if (b.base > a.base)
                a.size = b.base + b.size - a.base;
        }
        if ((how & 3) != 3 || (how & 4))
            R.fl_allocs[k] = R.fl_allocs[--R.nfl];
        fl_free(a.base, a.size);
        break;
    }
    case 5: { /* free anything */
        mm_vaddr_t a = pick_addr(in);
        fl_free(a, pick_size(in));
        break;
    }
    case 6:
    case 7: bump_alloc(pick_size(in), (op & 0xf0) == 0xf0); break;
    case 8: { /* unwind the latest allocation, an earlier one, or anything */
        uint8_t how = fz_u8(in);
        if (R.nbump != 0 && !(how & 0x80)) {
            vmm_range_t a = R.bump_allocs[R.nbump - 1 - (how & 1 ? (how >> 1) % R.nbump : 0)];
            bump_unwind(a.base, a.size);
        } else {
            mm_vaddr_t a = pick_addr(in);
            bump_unwind(a, pick_size(in));
        }
        break;
    }
    case 9: { /* queries */
        mm_vaddr_t a = pick_addr(in);
        uint64_t size = pick_size(in) + (fz_u8(in) & 1);
        bool want = size != 0 && a >= R.base;
        if (want) {
            uint64_t off = a - R.base;
            want = off < R.wm * PG && size <= R.wm * PG - off;
            for (uint64_t p = off / PG; want && p <= (off + size - 1) / PG; p++)
                want = R.page[p] == P_USED;
        }
        FZ_CHECK(vmm_region_freelist_is_allocated(&R.fl, a, size) == want,
                 "is_allocated(%#llx, %#llx): model %d", (unsigned long long)a,
                 (unsigned long long)size, want);
        bool in_bump = a >= R.base && a - R.base < R.bump_used;
        FZ_CHECK(vmm_region_bump_contains(&R.bump, a) == in_bump, "bump_contains(%#llx)",
                 (unsigned long long)a);
        break;
    }
    case 10: { /* NULL arguments */
        mm_vaddr_t out;
        FZ_CHECK(vmm_region_freelist_alloc(NULL, PG, &out) == MM_ERR_INVALID, "alloc NULL");
        FZ_CHECK(vmm_region_freelist_free(NULL, R.base, PG) == MM_ERR_INVALID, "free NULL");
        FZ_CHECK(vmm_region_freelist_can_alloc(NULL, PG) == MM_ERR_INVALID, "can_alloc NULL");
        FZ_CHECK(vmm_region_freelist_can_free(NULL, R.base, PG) == MM_ERR_INVALID,
                 "can_free NULL");
        FZ_CHECK(vmm_region_bump_alloc(NULL, PG, &out) == MM_ERR_INVALID, "bump NULL");
        FZ_CHECK(vmm_region_bump_unwind(NULL, R.base, PG) == MM_ERR_INVALID, "unwind NULL");
        FZ_CHECK(vmm_region_freelist_check(NULL) == MM_ERR_INVALID, "check NULL");
        FZ_CHECK(vmm_region_bump_check(NULL) == MM_ERR_INVALID, "bump check NULL");
        FZ_CHECK(!vmm_region_freelist_is_allocated(NULL, R.base, PG), "is_allocated NULL");
        FZ_CHECK(!vmm_region_bump_contains(NULL, R.base), "contains NULL");
        FZ_CHECK(vmm_region_freelist_allocated(NULL) == 0, "allocated NULL");
        break;
    }
    default: { /* give everything back through the model's allocation list */
        while (R.nfl != 0) {
            vmm_range_t a = R.fl_allocs[--R.nfl];
            bool live = true;
            for (uint64_t p = (a.base - R.base) / PG; p < (a.base - R.base + a.size) / PG; p++)
                live = live && R.page[p] == P_USED;
            if (live)
                fl_free(a.base, a.size);
        }
        break;
    }
    }
    verify();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    memset(&R, 0, sizeof R);
    R.cap = fz_u8(&in) % (MAX_CAP + 1);
    uint8_t place = fz_u8(&in);
    R.pages = 1 + fz_u16(&in) % MAX_PAGES;
    uint64_t bpage = fz_u32(&in);
    uint64_t rsize = R.pages * PG;
    switch (place % 4) {
    case 0: R.base = bpage * PG; break;
    case 1: R.base = 0 - rsize; break; /* ends exactly at 2^64 */
    case 3: R.base = 0xffffc00000000000ull + bpage * PG; break;
    default: {
        /* Invalid regions: both inits refuse and leave the object alone. */
        mm_vaddr_t b = bpage * PG;
        uint64_t sz = rsize;
        mm_status_t want;
        switch ((place >> 2) % 4) {
        case 0: b += 1 + (place >> 4); want = MM_ERR_ALIGN; break;
        case 1: sz = 0; want = MM_ERR_INVALID; break;
        case 2: sz += 1 + (place >> 4); want = MM_ERR_ALIGN; break;
        default: b = 0 - PG; sz = rsize + PG; want = MM_ERR_RANGE; break;
        }
        memset(&R.fl, 0xab, sizeof R.fl);
        memset(&R.bump, 0xab, sizeof R.bump);
        vmm_region_freelist_t fl0 = R.fl;
        vmm_region_bump_t b0 = R.bump;
        expect(vmm_region_freelist_init(&R.fl, b, sz, R.storage, R.cap), want, "freelist_init",
               b, sz);
        expect(vmm_region_bump_init(&R.bump, b, sz), want, "bump_init", b, sz);
        FZ_CHECK(memcmp(&fl0, &R.fl, sizeof fl0) == 0 && memcmp(&b0, &R.bump, sizeof b0) == 0,
                 "a refused init wrote the object");
        if (R.cap != 0)
            expect(vmm_region_freelist_init(&R.fl, PG, PG, NULL, R.cap), MM_ERR_INVALID,
                   "freelist_init NULL storage", PG, PG);
        expect(vmm_region_freelist_init(NULL, PG, PG, R.storage, R.cap), MM_ERR_INVALID,
               "freelist_init NULL", PG, PG);
        expect(vmm_region_bump_init(NULL, PG, PG), MM_ERR_INVALID, "bump_init NULL", PG, PG);
        return 0;
    }
    }
    for (size_t i = 0; i <= MAX_CAP; i++)
        R.storage[i] = canary;
    FZ_TRACE("region %#llx+%#llx, %zu slots\n", (unsigned long long)R.base,
             (unsigned long long)rsize, R.cap);
    expect(vmm_region_freelist_init(&R.fl, R.base, rsize, R.cap ? R.storage : NULL, R.cap),
           MM_OK, "freelist_init", R.base, rsize);
    expect(vmm_region_bump_init(&R.bump, R.base, rsize), MM_OK, "bump_init", R.base, rsize);
    verify();

    for (unsigned k = 0; k < MAX_OPS && fz_more(&in); k++)
        run_op(&in);

    /* Everything handed out comes back: freeing the run below the watermark
     * never needs a slot, and lowers the watermark past the hole below. */
    while (R.wm != 0) {
        uint64_t p = R.wm;
        while (p > 0 && R.page[p - 1] == P_USED)
            p--;
        FZ_CHECK(p < R.wm, "model: a hole touches the watermark");
        fl_free(R.base + p * PG, (R.wm - p) * PG);
        verify();
    }
    FZ_CHECK(R.wm == 0 && R.fl.count == 0 && R.fl.free_bytes == 0,
             "everything freed, but the watermark is %#llx with %zu ranges",
             (unsigned long long)R.fl.watermark, R.fl.count);
    return 0;
}

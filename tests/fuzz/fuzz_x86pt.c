/*
 * libFuzzer harness: the x86_64 page-table mapper against a reference model
 * of its mappings and of the page tables they need.
 *
 * The model keeps the list of mappings of each view (the shared kernel half,
 * the user half of root A, the user half of an optional second root B made
 * by root_create) and every page table by (view, level, index) with its
 * number of present entries and whether the entry pointing to it has the
 * user bit. From that it predicts every status (in the order of checks the
 * mapper documents and implements), exactly which TLB records an operation
 * makes, how many table frames exist (compared with the frame pool's count
 * of live frames after every operation: a leaked or double-freed table shows
 * up at once), the raw encoding of every leaf (SDM bit positions written out
 * here, PAT bit 7 for 4 KiB and 12 for huge pages), what walk, translate,
 * dump and audit report, and x86pt_check's table and leaf counts.
 *
 * Input:
 *   header  u8 cfg (1: 5 levels, 2: NX, 4: 1 GiB pages, 8: strict NX,
 *           0xe0 set: an invalid configuration x86pt_init must refuse),
 *           u8 physical address bits (32 + b % 21), u8 pool size
 *           (32 + 6 * (b % 251) table frames).
 *   ops     u8 opcode (low 4 bits: the operation, 0x10: on root B,
 *           0x20: through the mm_page_mapper_t interface, 0xc0: variant),
 *           then its arguments (see run_op).
 */
#include <stdlib.h>
#include <string.h>

#include <hadron/mm/hhdm.h>
#include <hadron/mm/x86pt.h>

#include "frame_pool.h"
#include "fuzz_common.h"
#include "mm_test.h"

#define SIM_BYTES (8ull << 20)
#define POOL_BASE (1ull << 20)
#define MAXMAP 8192u
#define MAXTAB 4096u
/* Table pool sizes the header picks; every table comes from the pool, so
 * the table model can never fill up. Mappings have no such bound: a map
 * that would overflow its view's model is skipped (op_map, op_map_range). */
#define POOL_MIN_FRAMES 32u
#define POOL_MAX_FRAMES (POOL_MIN_FRAMES + 6u * 250u)
_Static_assert(MAXTAB > POOL_MAX_FRAMES, "the table model must hold every pool frame");
#define MAX_OPS 1024u
#define MAX_STEPS 2048u

/* SDM vol. 3 section 4.5 bit positions, independent of the library's. */
#define B_P (1ull << 0)
#define B_RW (1ull << 1)
#define B_US (1ull << 2)
#define B_PWT (1ull << 3)
#define B_PCD (1ull << 4)
#define B_PS (1ull << 7)
#define B_PAT4K (1ull << 7)
#define B_G (1ull << 8)
#define B_PATHUGE (1ull << 12)
#define B_XD (1ull << 63)

enum { V_KERNEL, V_USER_A, V_USER_B, NVIEWS };

typedef struct mapping {
    mm_vaddr_t va;
    mm_paddr_t pa;
    mm_page_size_t size;
    mm_map_flags_t flags; /* as requested (valid) */
} mapping_t;

typedef struct mlist {
    mapping_t v[MAXMAP];
    size_t n;
} mlist_t;

typedef struct table {
    uint64_t key;
    unsigned count; /* present entries */
    bool us;        /* the entry pointing to it has the user bit */
} table_t;

typedef struct expect_tlb {
    uint32_t count;
    bool flush_all, global;
    mm_vaddr_t pages[MM_TLB_BATCH_MAX];
} expect_tlb_t;

static uint8_t *sim;

static struct {
    x86pt_t m;
    x86pt_config_t cfg;
    frame_pool_t pool;
    bool pool_live;
    mm_paddr_t root[2]; /* A, B (0: none) */
    bool copied[256];   /* kernel root entries B shares (256 + i) */
    mlist_t views[NVIEWS];
    table_t tabs[MAXTAB];
    size_t ntabs;
    mm_paddr_t hog[2048];
    size_t nhog;
    mm_tlb_batch_t tlb;
    expect_tlb_t want_tlb;
    unsigned levels, va_bits;
} E;

/* ------------------------------------------------------------------ */
/* Address arithmetic                                                  */
/* ------------------------------------------------------------------ */

static uint64_t bytes_of(mm_page_size_t s)
{
    return 1ull << s;
}

static unsigned level_of(mm_page_size_t s)
{
    return s == MM_PAGE_4K ? 1 : s == MM_PAGE_2M ? 2 : 3;
}

static unsigned shift_of(unsigned level)
{
    return 12 + 9 * (level - 1);
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

static unsigned top_index(mm_vaddr_t va)
{
    return (unsigned)(va >> shift_of(E.levels)) & 511;
}

static bool pow2_ok(mm_vaddr_t x, uint64_t a)
{
    return (x & (a - 1)) == 0;
}

/* ------------------------------------------------------------------ */
/* Model: mappings                                                     */
/* ------------------------------------------------------------------ */

/* First mapping whose last byte is at or after va. */
FZ_NOCOV static size_t ml_lower(const mlist_t *l, mm_vaddr_t va)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].va + (bytes_of(l->v[mid].size) - 1) < va)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of a mapping overlapping [va, last], or -1. */
static long ml_overlap(const mlist_t *l, mm_vaddr_t va, mm_vaddr_t last)
{
    size_t i = ml_lower(l, va);
    return i < l->n && l->v[i].va <= last ? (long)i : -1;
}

static void ml_insert(mlist_t *l, mapping_t m)
{
    FZ_CHECK(l->n < MAXMAP, "model full");
    size_t i = ml_lower(l, m.va);
    memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof l->v[0]);
    l->v[i] = m;
    l->n++;
}

static void ml_remove(mlist_t *l, size_t i)
{
    memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof l->v[0]);
    l->n--;
}

/* The view an address lives in, seen from root r (0 = A, 1 = B). */
static int view_of(int r, mm_vaddr_t va)
{
    return kernel_half(va) ? V_KERNEL : r == 0 ? V_USER_A : V_USER_B;
}

/* Whether root r sees the kernel mapping or table at va (B sees only the
 * root entries copied when it was made). */
static bool sees_kernel(int r, mm_vaddr_t va)
{
    return r == 0 || E.copied[top_index(va) - 256];
}

/* An operation on B there would give B kernel tables of its own, which
 * nothing shares and root_destroy leaves alone: the harness uses A. */
static bool b_unshared(int r, mm_vaddr_t va)
{
    return r == 1 && canonical(va) && kernel_half(va) && !sees_kernel(1, va);
}

/* ------------------------------------------------------------------ */
/* Model: tables                                                       */
/* ------------------------------------------------------------------ */

static uint64_t tkey(int view, unsigned level, mm_vaddr_t va)
{
    uint64_t idx = (va & ((1ull << E.va_bits) - 1)) >> shift_of(level + 1);
    return (uint64_t)view << 60 | (uint64_t)level << 56 | idx;
}

FZ_NOCOV static size_t tab_lower(uint64_t key)
{
    size_t lo = 0, hi = E.ntabs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (E.tabs[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static table_t *tab_find(uint64_t key)
{
    size_t i = tab_lower(key);
    return i < E.ntabs && E.tabs[i].key == key ? &E.tabs[i] : NULL;
}

static table_t *tab_add(uint64_t key, bool us)
{
    FZ_CHECK(E.ntabs < MAXTAB, "table model full");
    size_t i = tab_lower(key);
    memmove(&E.tabs[i + 1], &E.tabs[i], (E.ntabs - i) * sizeof E.tabs[0]);
    E.tabs[i] = (table_t){key, 0, us};
    E.ntabs++;
    return &E.tabs[i];
}

static void tab_del(uint64_t key)
{
    size_t i = tab_lower(key);
    FZ_CHECK(i < E.ntabs && E.tabs[i].key == key, "deleting a table the model lacks");
    memmove(&E.tabs[i], &E.tabs[i + 1], (E.ntabs - i - 1) * sizeof E.tabs[0]);
    E.ntabs--;
}

/* Tables below kernel-half root entries are shared and never freed. */
static bool pinned(int view, unsigned level)
{
    return view == V_KERNEL && level == E.levels - 1;
}

/* Tables a leaf at leaf_level under va needs that do not exist yet. */
static unsigned tables_missing(int view, mm_vaddr_t va, unsigned leaf_level)
{
    unsigned n = 0;
    for (unsigned l = E.levels - 1; l >= leaf_level; l--)
        if (tab_find(tkey(view, l, va)) == NULL)
            n++;
    return n;
}

/* ------------------------------------------------------------------ */
/* Expected TLB records (mirrors mm_tlb_batch_add's bookkeeping)        */
/* ------------------------------------------------------------------ */

static void want_tlb(mm_vaddr_t va, mm_page_size_t size, bool global)
{
    expect_tlb_t *t = &E.want_tlb;
    t->global |= global;
    if (t->flush_all)
        return;
    mm_vaddr_t page = va & ~(bytes_of(size) - 1);
    for (uint32_t i = 0; i < t->count; i++)
        if (t->pages[i] == page)
            return;
    if (t->count == MM_TLB_BATCH_MAX) {
        t->flush_all = true;
        return;
    }
    t->pages[t->count++] = page;
}

static void check_tlb(const char *what)
{
    const expect_tlb_t *t = &E.want_tlb;
    const mm_tlb_batch_t *b = &E.tlb;
    FZ_CHECK(b->flush_all == t->flush_all && b->global == t->global,
             "%s: TLB batch flush_all %d global %d, model %d %d", what, b->flush_all, b->global,
             t->flush_all, t->global);
    if (t->flush_all)
        return;
    FZ_CHECK(b->count == t->count, "%s: %u TLB records, model %u", what, b->count, t->count);
    for (uint32_t i = 0; i < t->count; i++)
        FZ_CHECK(b->pages[i] == t->pages[i], "%s: TLB record %u is %#llx, model %#llx", what, i,
                 (unsigned long long)b->pages[i], (unsigned long long)t->pages[i]);
}

/* ------------------------------------------------------------------ */
/* Model: encodings and effective flags                                */
/* ------------------------------------------------------------------ */

static int pat_index(mm_map_flags_t f)
{
    if (f & ~(mm_map_flags_t)MM_MAP_FLAGS_ALL)
        return -1;
    switch (f & MM_MAP_MEM_MASK) {
    case MM_MAP_WRITE_BACK: return 0;
    case MM_MAP_WRITE_THROUGH: return 1;
    case MM_MAP_NORMAL_NC: return 2;
    case MM_MAP_DEVICE: return 3;
    case MM_MAP_WRITE_COMBINING: return 4;
    default: return -1; /* field values 5..7 name no memory type */
    }
}

/* The leaf entry the model expects, address included. */
static uint64_t encode(const mapping_t *m)
{
    unsigned level = level_of(m->size);
    uint64_t e = B_P | m->pa;
    if (m->flags & MM_MAP_WRITE)
        e |= B_RW;
    if (m->flags & MM_MAP_USER)
        e |= B_US;
    if (m->flags & MM_MAP_GLOBAL)
        e |= B_G;
    if (E.cfg.nx && !(m->flags & MM_MAP_EXEC))
        e |= B_XD;
    int idx = pat_index(m->flags);
    if (idx & 1)
        e |= B_PWT;
    if (idx & 2)
        e |= B_PCD;
    if (idx & 4)
        e |= level == 1 ? B_PAT4K : B_PATHUGE;
    if (level > 1)
        e |= B_PS;
    return e;
}

/* Without NX the CPU executes everything, and translate says so. */
static mm_map_flags_t effective(mm_map_flags_t f)
{
    return E.cfg.nx ? f : f | MM_MAP_EXEC;
}

/* MM_OK or the error the flags alone cause. */
static mm_status_t flags_status(mm_map_flags_t f, bool kernel)
{
    if (pat_index(f) < 0)
        return MM_ERR_INVALID;
    if ((f & MM_MAP_USER) && kernel)
        return MM_ERR_INVALID;
    if (!E.cfg.nx && E.cfg.strict_nx && !(f & MM_MAP_EXEC))
        return MM_ERR_UNSUPPORTED;
    return MM_OK;
}

static bool root_ok(mm_paddr_t root)
{
    return root % MM_PAGE_SIZE == 0 && root < (1ull << E.cfg.phys_bits) && root < SIM_BYTES;
}

/* Whether the pool can hand out `need` frames, failure injection included. */
static bool pool_can(size_t need)
{
    if (need == 0)
        return true;
    if (E.pool.failing)
        return false;
    if (E.pool.fail_countdown != 0 && E.pool.fail_countdown <= need)
        return false;
    return need <= E.pool.frames - E.pool.live;
}

/* ------------------------------------------------------------------ */
/* Model: committing changes                                           */
/* ------------------------------------------------------------------ */

/* A successful map of m in `view` (tables, user bits, TLB records). */
static void model_map(int view, mapping_t m)
{
    unsigned leaf = level_of(m.size);
    bool user = m.flags & MM_MAP_USER;
    bool grant = false;
    for (unsigned l = E.levels - 1; l >= leaf; l--) {
        uint64_t k = tkey(view, l, m.va);
        table_t *t = tab_find(k);
        if (t == NULL) {
            tab_add(k, user);
            if (l + 1 < E.levels)
                tab_find(tkey(view, l + 1, m.va))->count++;
        } else if (user && !t->us) {
            t->us = true;
            grant = true;
        }
    }
    tab_find(tkey(view, leaf, m.va))->count++;
    if (grant)
        want_tlb(m.va, m.size, false);
    ml_insert(&E.views[view], m);
}

/* A successful unmap of mapping i of `view`. */
static mapping_t model_unmap(int view, size_t i)
{
    mapping_t m = E.views[view].v[i];
    ml_remove(&E.views[view], i);
    want_tlb(m.va, m.size, m.flags & MM_MAP_GLOBAL);
    unsigned l = level_of(m.size);
    table_t *t = tab_find(tkey(view, l, m.va));
    FZ_CHECK(t != NULL && t->count > 0, "model: leaf table missing");
    t->count--;
    while (l < E.levels && !pinned(view, l)) {
        t = tab_find(tkey(view, l, m.va));
        if (t->count != 0)
            break;
        tab_del(tkey(view, l, m.va));
        l++;
        if (l < E.levels)
            tab_find(tkey(view, l, m.va))->count--;
    }
    return m;
}

/* A successful protect of mapping i of `view`. */
static void model_protect(int view, size_t i, mm_map_flags_t flags)
{
    mapping_t *m = &E.views[view].v[i];
    if (flags & MM_MAP_USER) {
        bool grant = false;
        for (unsigned l = E.levels - 1; l >= level_of(m->size); l--) {
            table_t *t = tab_find(tkey(view, l, m->va));
            if (!t->us) {
                t->us = true;
                grant = true;
            }
        }
        if (grant)
            want_tlb(m->va, m->size, false);
    }
    mapping_t n = *m;
    n.flags = flags;
    if (encode(&n) != encode(m))
        want_tlb(m->va, m->size, m->flags & MM_MAP_GLOBAL);
    m->flags = flags;
}

/* ------------------------------------------------------------------ */
/* Verification                                                        */
/* ------------------------------------------------------------------ */

FZ_NOCOV static size_t tables_in(int view, int r)
{
    size_t n = 0;
    for (size_t i = 0; i < E.ntabs; i++) {
        uint64_t k = E.tabs[i].key;
        if ((int)(k >> 60) != view)
            continue;
        if (view == V_KERNEL && r == 1) {
            /* The table's first address, to find its root entry. */
            unsigned level = (unsigned)(k >> 56) & 15;
            uint64_t idx = k & ((1ull << 56) - 1);
            mm_vaddr_t va = idx << shift_of(level + 1);
            va |= ~((1ull << E.va_bits) - 1); /* kernel half */
            if (!sees_kernel(1, va))
                continue;
        }
        n++;
    }
    return n;
}

/* The mappings root r sees, in address order: its user half, then the
 * kernel half it shares. */
typedef struct view_iter {
    int r;
    int phase;
    size_t i;
} view_iter_t;

FZ_NOCOV static const mapping_t *view_next(view_iter_t *it)
{
    for (;;) {
        const mlist_t *l = &E.views[it->phase == 0 ? (it->r ? V_USER_B : V_USER_A) : V_KERNEL];
        if (it->i < l->n) {
            const mapping_t *m = &l->v[it->i++];
            if (it->phase == 1 && !sees_kernel(it->r, m->va))
                continue;
            return m;
        }
        if (it->phase == 1)
            return NULL;
        it->phase = 1;
        it->i = 0;
    }
}

typedef struct walk_cmp {
    view_iter_t it;
    mm_vaddr_t first, last;
    size_t seen;
    const char *what;
} walk_cmp_t;

static const mapping_t *view_next_in(walk_cmp_t *w)
{
    const mapping_t *m;
    while ((m = view_next(&w->it)) != NULL)
        if (m->va + (bytes_of(m->size) - 1) >= w->first && m->va <= w->last)
            return m;
    return NULL;
}

static bool walk_leaf(void *arg, const x86pt_leaf_t *leaf)
{
    walk_cmp_t *w = arg;
    const mapping_t *m = view_next_in(w);
    FZ_CHECK(m != NULL, "%s: walker reports %#llx, the model has nothing more", w->what,
             (unsigned long long)leaf->va);
    FZ_CHECK(leaf->va == m->va && leaf->pa == m->pa && leaf->size == m->size &&
                 leaf->flags == effective(m->flags),
             "%s: walker %#llx -> %#llx size %d flags %#x; model %#llx -> %#llx size %d flags %#x",
             w->what, (unsigned long long)leaf->va, (unsigned long long)leaf->pa, leaf->size,
             leaf->flags, (unsigned long long)m->va, (unsigned long long)m->pa, m->size,
             effective(m->flags));
    FZ_CHECK(leaf->entry == encode(m), "%s: leaf %#llx entry %#llx, expected %#llx", w->what,
             (unsigned long long)m->va, (unsigned long long)leaf->entry,
             (unsigned long long)encode(m));
    w->seen++;
    return true;
}

static void verify_walk(int r, mm_vaddr_t first, mm_vaddr_t last)
{
    walk_cmp_t w = {{r, 0, 0}, first, last, 0, r ? "walk B" : "walk A"};
    FZ_CHECK(x86pt_walk(&E.m, E.root[r], first, last, walk_leaf, &w) == MM_OK, "walk");
    FZ_CHECK(view_next_in(&w) == NULL, "%s: the model has leaves the walker missed", w.what);
}

static void verify_root(int r, bool full)
{
    x86pt_check_info_t info;
    mm_status_t st = x86pt_check(&E.m, E.root[r], &info);
    FZ_CHECK(st == MM_OK, "x86pt_check %c: %s: %s at %#llx level %u entry %#llx", 'A' + r,
             mm_status_str(st), info.problem ? info.problem : "-",
             (unsigned long long)info.bad_va, info.bad_level, (unsigned long long)info.bad_entry);
    size_t leaves = 0;
    view_iter_t it = {r, 0, 0};
    while (view_next(&it) != NULL)
        leaves++;
    size_t ut = tables_in(r ? V_USER_B : V_USER_A, r), kt = tables_in(V_KERNEL, r);
    FZ_CHECK(info.leaves == leaves && info.user_tables == ut && info.kernel_tables == kt,
             "x86pt_check %c: %zu leaves, %zu user and %zu kernel tables; model %zu, %zu, %zu",
             'A' + r, info.leaves, info.user_tables, info.kernel_tables, leaves, ut, kt);
    if (full)
        verify_walk(r, 0, UINT64_MAX);
}

/* Frame counts after every operation; the table walks (x86pt_check, the
 * walker) after every operation while the hierarchy is small, else every
 * 16th one, and always at the end of the input. */
static void verify(bool full)
{
    size_t want = 1 + (E.root[1] != 0) + E.ntabs + E.nhog;
    FZ_CHECK(E.pool.live == want, "pool has %zu frames out; model: %zu (%zu tables)",
             E.pool.live, want, E.ntabs);
    FZ_CHECK(E.pool.free_errors == 0, "the mapper freed a frame it did not own");
    static unsigned ops;
    if (!full && E.ntabs > 8 && ++ops % 16 != 0)
        return;
    full = full || E.views[0].n + E.views[1].n + E.views[2].n < 64;
    verify_root(0, full);
    if (E.root[1] != 0)
        verify_root(1, full);
}

/* ------------------------------------------------------------------ */
/* Argument decoding                                                   */
/* ------------------------------------------------------------------ */

static mm_vaddr_t pick_va(fz_in_t *in)
{
    uint8_t sel = fz_u8(in);
    uint32_t b = fz_u32(in);
    if (sel >= 0xf0)
        return fz_u64(in); /* anything: non-canonical, unaligned */
    uint64_t top = 1ull << (E.va_bits - 1);    /* first non-user address */
    uint64_t slot = 1ull << shift_of(E.levels); /* one root entry */
    const uint64_t anchors[8] = {
        0,       1ull << (E.va_bits - 9), top - slot,  top - (2ull << 20),
        0 - top, 0 - top / 2,             0 - slot,    0 - (2ull << 20),
    };
    mm_vaddr_t va = anchors[sel & 7];
    va += (uint64_t)(b & 15) << 12;        /* 16 pages */
    va += (uint64_t)((b >> 4) & 7) << 21;  /* 8 2 MiB slots */
    va += (uint64_t)((b >> 7) & 3) << 30;  /* 4 1 GiB slots */
    if (sel & 0x40)
        va += (uint64_t)((b >> 9) & 3) * slot; /* neighbouring root entries */
    if (sel & 0x80)
        va += (b >> 12) & 0xfff; /* unaligned */
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
    default: return (uint64_t)b << 8; /* often unaligned */
    }
}

static mm_page_size_t pick_size(uint8_t s)
{
    if (s == 0xff)
        return (mm_page_size_t)13;
    switch (s % 4) {
    case 0:
    case 1: return MM_PAGE_4K;
    case 2: return MM_PAGE_2M;
    default: return MM_PAGE_1G;
    }
}

static mm_map_flags_t pick_flags(uint8_t f, mm_vaddr_t va)
{
    if (!(f & 0x80)) {
        mm_map_flags_t fl = f & 0x7f;
        if ((f & 0x78) == 0x78)
            fl |= 0x100; /* unknown bit */
        return fl;
    }
    /* Sane flags: one memory type, user only in the user half. */
    static const mm_map_flags_t cache[4] = {MM_MAP_NORMAL_NC, MM_MAP_DEVICE, MM_MAP_WRITE_THROUGH,
                                            MM_MAP_WRITE_COMBINING};
    mm_map_flags_t fl = f & (MM_MAP_WRITE | MM_MAP_EXEC | MM_MAP_USER | MM_MAP_GLOBAL);
    if (kernel_half(va))
        fl &= ~(mm_map_flags_t)MM_MAP_USER;
    return fl | cache[(f >> 4) & 3];
}

static uint64_t pick_len(fz_in_t *in)
{
    uint8_t mode = fz_u8(in);
    uint16_t n = fz_u16(in);
    switch (mode % 5) {
    case 0:
    case 1: return (uint64_t)(n % 600) << 12;
    case 2: return (uint64_t)(n % 64) << 21;
    case 3: return (uint64_t)(n % 5) << 30;
    default: return mode & 0x80 ? n : (uint64_t)0 - ((uint64_t)n << 12);
    }
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

static void expect(mm_status_t got, mm_status_t want, const char *what, mm_vaddr_t va)
{
    FZ_CHECK(got == want, "%s %#llx: got %s, model expects %s", what, (unsigned long long)va,
             mm_status_str(got), mm_status_str(want));
}

/* Common argument checks of map/unmap/protect (pt_check_page). */
static mm_status_t page_status(mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size)
{
    if (!root_ok(root) || (size != MM_PAGE_4K && size != MM_PAGE_2M && size != MM_PAGE_1G))
        return MM_ERR_INVALID;
    if (!canonical(va))
        return MM_ERR_NOT_CANONICAL;
    if (!pow2_ok(va, bytes_of(size)))
        return MM_ERR_ALIGN;
    return MM_OK;
}

static mm_paddr_t pick_root(fz_in_t *in, int r, uint8_t op)
{
    if ((op & 0xc0) != 0xc0)
        return E.root[r];
    uint8_t k = fz_u8(in);
    switch (k % 4) {
    case 0: return E.root[r] + 1 + (k >> 2);
    case 1: return SIM_BYTES + ((uint64_t)k << 12);
    case 2: return 1ull << E.cfg.phys_bits;
    default: return E.root[r];
    }
}

static void op_map(fz_in_t *in, int r, uint8_t op, bool iface)
{
    mm_paddr_t root = pick_root(in, r, op);
    mm_vaddr_t va = pick_va(in);
    mm_paddr_t pa = pick_pa(in);
    mm_page_size_t size = pick_size(fz_u8(in));
    mm_map_flags_t flags = pick_flags(fz_u8(in), va);
    bool null_tlb = (op & 0xc0) == 0x40 && (pa & 0x800);
    if (b_unshared(r, va))
        root = E.root[r = 0];

    mm_status_t want = page_status(root, va, size);
    if (want == MM_OK && null_tlb)
        want = MM_ERR_INVALID;
    if (want == MM_OK)
        want = flags_status(flags, kernel_half(va));
    if (want == MM_OK && size == MM_PAGE_1G && !E.cfg.pages_1g)
        want = MM_ERR_UNSUPPORTED;
    uint64_t bytes = want == MM_OK ? bytes_of(size) : 0;
    if (want == MM_OK && !pow2_ok(pa, bytes))
        want = MM_ERR_ALIGN;
    uint64_t end = 1ull << E.cfg.phys_bits;
    if (want == MM_OK && (pa >= end || end - pa < bytes))
        want = MM_ERR_RANGE;
    int view = view_of(r, va);
    if (E.views[view].n == MAXMAP)
        return; /* the model is full: skipped, not failed */
    if (want == MM_OK && ml_overlap(&E.views[view], va, va + (bytes - 1)) >= 0)
        want = MM_ERR_EXISTS;
    if (want == MM_OK && !pool_can(tables_missing(view, va, level_of(size))))
        want = MM_ERR_NOMEM;

    mm_tlb_batch_t *tlb = null_tlb ? NULL : &E.tlb;
    mm_status_t st;
    if (iface) {
        mm_page_mapper_t pm = x86pt_page_mapper(&E.m);
        st = mm_pm_map(&pm, root, va, pa, size, flags, tlb);
    } else {
        st = x86pt_map(&E.m, root, va, pa, size, flags, tlb);
    }
    FZ_TRACE("  map %c %#llx -> %#llx size %d flags %#x: %s\n", 'A' + r, (unsigned long long)va,
             (unsigned long long)pa, size, flags, mm_status_str(st));
    expect(st, want, "map", va);
    if (st == MM_OK)
        model_map(view, (mapping_t){va, pa, size, flags});
}

/* va/size of an existing mapping of root r (variant bit set), or decoded. */
static void pick_target(fz_in_t *in, int r, uint8_t op, mm_vaddr_t *va, mm_page_size_t *size)
{
    if (op & 0x80) {
        uint16_t i = fz_u16(in);
        uint8_t which = fz_u8(in);
        const mlist_t *l = &E.views[which & 1 ? V_KERNEL : r ? V_USER_B : V_USER_A];
        if (l->n != 0) {
            *va = l->v[i % l->n].va;
            *size = l->v[i % l->n].size;
            return;
        }
    }
    *va = pick_va(in);
    *size = pick_size(fz_u8(in));
}

/* Status of unmap/protect at (va, size) in `view`; *idx the exact mapping. */
static mm_status_t find_status(int view, mm_vaddr_t va, mm_page_size_t size, long *idx)
{
    const mlist_t *l = &E.views[view];
    long i = ml_overlap(l, va, va + (bytes_of(size) - 1));
    *idx = i;
    if (i < 0)
        return MM_ERR_NOT_MAPPED;
    if (l->v[i].va == va && l->v[i].size == size)
        return MM_OK;
    return MM_ERR_SIZE_MISMATCH;
}

static void op_unmap_protect(fz_in_t *in, int r, uint8_t op, bool iface, bool protect)
{
    mm_vaddr_t va;
    mm_page_size_t size;
    pick_target(in, r, op, &va, &size);
    mm_map_flags_t flags = protect ? pick_flags(fz_u8(in), va) : 0;
    mm_paddr_t root = E.root[r];
    if (b_unshared(r, va))
        root = E.root[r = 0];
    bool null_tlb = (op & 0xc0) == 0x40 && (va & 0x1000);

    mm_status_t want = page_status(root, va, size);
    if (want == MM_OK && null_tlb)
        want = MM_ERR_INVALID;
    if (want == MM_OK && protect)
        want = flags_status(flags, kernel_half(va));
    long idx = -1;
    int view = view_of(r, va);
    if (want == MM_OK)
        want = find_status(view, va, size, &idx);

    mm_tlb_batch_t *tlb = null_tlb ? NULL : &E.tlb;
    mm_paddr_t pa = 0;
    mm_status_t st;
    mm_page_mapper_t pm = x86pt_page_mapper(&E.m);
    if (protect)
        st = iface ? mm_pm_protect(&pm, root, va, size, flags, tlb)
                   : x86pt_protect(&E.m, root, va, size, flags, tlb);
    else
        st = iface ? mm_pm_unmap(&pm, root, va, size, &pa, tlb)
                   : x86pt_unmap(&E.m, root, va, size, (op & 0x40) ? NULL : &pa, tlb);
    FZ_TRACE("  %s %c %#llx size %d flags %#x: %s\n", protect ? "protect" : "unmap", 'A' + r,
             (unsigned long long)va, size, flags, mm_status_str(st));
    expect(st, want, protect ? "protect" : "unmap", va);
    if (st != MM_OK)
        return;
    if (protect) {
        model_protect(view, (size_t)idx, flags);
    } else {
        mapping_t m = model_unmap(view, (size_t)idx);
        if (iface || !(op & 0x40))
            FZ_CHECK(pa == m.pa, "unmap %#llx returned frame %#llx, model %#llx",
                     (unsigned long long)va, (unsigned long long)pa, (unsigned long long)m.pa);
    }
}

static void op_translate(fz_in_t *in, int r, uint8_t op, bool iface)
{
    mm_vaddr_t va;
    mm_page_size_t size;
    pick_target(in, r, op, &va, &size);
    va += fz_u32(in) & (bytes_of(size == MM_PAGE_1G || size == MM_PAGE_2M ? size : MM_PAGE_4K) - 1);
    bool null_out = (op & 0xc0) == 0x40;
    mm_translation_t tr;
    mm_page_mapper_t pm = x86pt_page_mapper(&E.m);
    mm_status_t st = iface ? mm_pm_translate(&pm, E.root[r], va, null_out ? NULL : &tr)
                           : x86pt_translate(&E.m, E.root[r], va, null_out ? NULL : &tr);
    mm_status_t want = null_out ? MM_ERR_INVALID : canonical(va) ? MM_OK : MM_ERR_NOT_CANONICAL;
    const mapping_t *m = NULL;
    if (want == MM_OK) {
        int view = view_of(r, va);
        long i = ml_overlap(&E.views[view], va, va);
        if (i >= 0 && (view != V_KERNEL || sees_kernel(r, va)))
            m = &E.views[view].v[i];
        else
            want = MM_ERR_NOT_MAPPED;
    }
    expect(st, want, "translate", va);
    if (st == MM_OK)
        FZ_CHECK(tr.page_va == m->va && tr.page_pa == m->pa && tr.pa == m->pa + (va - m->va) &&
                     tr.size == m->size && tr.flags == effective(m->flags),
                 "translate %#llx: %#llx -> %#llx (%#llx) size %d flags %#x; model %#llx -> "
                 "%#llx size %d flags %#x",
                 (unsigned long long)va, (unsigned long long)tr.page_va,
                 (unsigned long long)tr.page_pa, (unsigned long long)tr.pa, tr.size, tr.flags,
                 (unsigned long long)m->va, (unsigned long long)m->pa, m->size,
                 effective(m->flags));
}

/* Argument checks of the range operations (range_args). */
static mm_status_t range_status(mm_paddr_t root, mm_vaddr_t va, uint64_t len, bool null_tlb,
                                mm_vaddr_t *last)
{
    if (!root_ok(root) || null_tlb || len == 0)
        return MM_ERR_INVALID;
    if (!canonical(va))
        return MM_ERR_NOT_CANONICAL;
    if (va % MM_PAGE_SIZE || len % MM_PAGE_SIZE)
        return MM_ERR_ALIGN;
    if (__builtin_add_overflow(va, len - 1, last) || !canonical(*last) ||
        kernel_half(va) != kernel_half(*last))
        return MM_ERR_NOT_CANONICAL;
    return MM_OK;
}

/* Root r sees every root entry [va, last] covers (B: only copied ones). */
static bool range_shared(int r, mm_vaddr_t va, mm_vaddr_t last)
{
    if (r == 0 || !kernel_half(va))
        return true;
    for (unsigned i = top_index(va);; i++) {
        if (!E.copied[i - 256])
            return false;
        if (i == top_index(last))
            return true;
    }
}

static unsigned choose_level(mm_vaddr_t va, mm_paddr_t pa, uint64_t left)
{
    if (E.cfg.pages_1g && pow2_ok(va | pa, 1ull << 30) && left >= (1ull << 30))
        return 3;
    if (pow2_ok(va | pa, 1ull << 21) && left >= (1ull << 21))
        return 2;
    return 1;
}

static void op_map_range(fz_in_t *in, int r, uint8_t op)
{
    mm_paddr_t root = pick_root(in, r, op);
    mm_vaddr_t va = pick_va(in);
    mm_paddr_t pa = pick_pa(in);
    uint64_t len = pick_len(in);
    mm_map_flags_t flags = pick_flags(fz_u8(in), va);
    bool null_tlb = (op & 0xc0) == 0x40 && (va & 0x1000);
    mm_vaddr_t last = 0;
    mm_status_t want = range_status(root, va, len, null_tlb, &last);
    if (want == MM_OK && !range_shared(r, va, last))
        root = E.root[r = 0];
    if (want == MM_OK)
        want = flags_status(flags, kernel_half(va));
    uint64_t end = 1ull << E.cfg.phys_bits;
    if (want == MM_OK && pa % MM_PAGE_SIZE)
        want = MM_ERR_ALIGN;
    if (want == MM_OK && (pa >= end || end - pa < len))
        want = MM_ERR_RANGE;
    int view = view_of(r, va);
    if (want == MM_OK && ml_overlap(&E.views[view], va, last) >= 0)
        want = MM_ERR_EXISTS;
    if (want == MM_OK) {
        /* Count the steps (bounded, or the op is skipped) and the distinct
         * tables they need. */
        static uint64_t keys[MAX_STEPS * 5];
        size_t nkeys = 0, steps = 0, need = 0;
        for (uint64_t off = 0; off < len; steps++) {
            if (steps == MAX_STEPS || E.views[view].n + steps >= MAXMAP)
                return;
            unsigned level = choose_level(va + off, pa + off, len - off);
            for (unsigned l = E.levels - 1; l >= level; l--) {
                uint64_t k = tkey(view, l, va + off);
                if (tab_find(k) != NULL)
                    continue;
                bool dup = false;
                for (size_t j = nkeys; j-- > 0 && !dup;)
                    dup = keys[j] == k;
                if (!dup) {
                    keys[nkeys++] = k;
                    need++;
                }
            }
            off += 1ull << shift_of(level);
        }
        if (!pool_can(need))
            want = MM_ERR_NOMEM;
    }
    mm_status_t st = x86pt_map_range(&E.m, root, va, pa, len, flags, null_tlb ? NULL : &E.tlb);
    FZ_TRACE("  map_range %c %#llx+%#llx -> %#llx flags %#x: %s\n", 'A' + r,
             (unsigned long long)va, (unsigned long long)len, (unsigned long long)pa, flags,
             mm_status_str(st));
    expect(st, want, "map_range", va);
    if (st != MM_OK)
        return;
    for (uint64_t off = 0; off < len;) {
        unsigned level = choose_level(va + off, pa + off, len - off);
        mm_page_size_t size = level == 1 ? MM_PAGE_4K : level == 2 ? MM_PAGE_2M : MM_PAGE_1G;
        model_map(view, (mapping_t){va + off, pa + off, size, flags});
        off += bytes_of(size);
    }
}

typedef struct leaf_log {
    mapping_t v[MAX_STEPS + MAXMAP];
    size_t n;
} leaf_log_t;

static leaf_log_t leaf_log;

static void log_leaf(void *arg, mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                     mm_map_flags_t flags)
{
    leaf_log_t *l = arg;
    FZ_CHECK(l->n < sizeof l->v / sizeof l->v[0], "too many leaf callbacks");
    l->v[l->n++] = (mapping_t){va, pa, size, flags};
}

/* The model's answer for an unmap/protect range scan: MM_OK with the
 * indexes of the covered mappings in [*first, *end), or the error. */
static mm_status_t scan_status(int view, int r, mm_vaddr_t va, mm_vaddr_t last, bool holes,
                               size_t *first, size_t *end)
{
    const mlist_t *l = &E.views[view];
    size_t i = ml_lower(l, va);
    *first = i;
    mm_vaddr_t cur = va;
    bool done = false;
    for (; i < l->n && l->v[i].va <= last; i++) {
        const mapping_t *m = &l->v[i];
        if (view == V_KERNEL && !sees_kernel(r, m->va))
            continue; /* cannot happen: ranges on B are redirected */
        if (m->va > cur && !holes)
            return MM_ERR_NOT_MAPPED;
        if (m->va < va || m->va + (bytes_of(m->size) - 1) > last)
            return MM_ERR_SIZE_MISMATCH;
        cur = m->va + bytes_of(m->size);
        if (cur == 0 || cur - 1 >= last)
            done = true;
    }
    *end = i;
    if (!holes && !done)
        return MM_ERR_NOT_MAPPED;
    return MM_OK;
}

static void op_range_change(fz_in_t *in, int r, uint8_t op, bool protect)
{
    mm_vaddr_t va;
    uint64_t len;
    if (op & 0x80) {
        /* Start at an existing mapping. */
        uint16_t i = fz_u16(in);
        const mlist_t *l = &E.views[r ? V_USER_B : V_USER_A];
        if (fz_u8(in) & 1)
            l = &E.views[V_KERNEL];
        va = l->n ? l->v[i % l->n].va : pick_va(in);
        len = pick_len(in);
    } else {
        va = pick_va(in);
        len = pick_len(in);
    }
    uint8_t o = fz_u8(in);
    unsigned opts = o & 1 ? X86PT_RANGE_ALLOW_HOLES : 0;
    if ((o & 0x0e) == 0x0e)
        opts |= 4; /* unknown option */
    mm_map_flags_t flags = protect ? pick_flags(fz_u8(in), va) : 0;
    mm_paddr_t root = E.root[r];
    bool null_tlb = (op & 0xc0) == 0x40 && (va & 0x1000);
    mm_vaddr_t last = 0;
    mm_status_t want = range_status(root, va, len, null_tlb, &last);
    if (want == MM_OK && !range_shared(r, va, last))
        root = E.root[r = 0];
    if (want == MM_OK && (opts & ~(unsigned)X86PT_RANGE_ALLOW_HOLES))
        want = MM_ERR_INVALID;
    if (want == MM_OK && protect)
        want = flags_status(flags, kernel_half(va));
    int view = view_of(r, va);
    size_t first = 0, end = 0;
    if (want == MM_OK)
        want = scan_status(view, r, va, last, opts & X86PT_RANGE_ALLOW_HOLES, &first, &end);

    leaf_log.n = 0;
    mm_status_t st =
        protect ? x86pt_protect_range(&E.m, root, va, len, flags, opts, null_tlb ? NULL : &E.tlb)
                : x86pt_unmap_range(&E.m, root, va, len, opts, (op & 0x20) ? NULL : log_leaf,
                                    &leaf_log, null_tlb ? NULL : &E.tlb);
    FZ_TRACE("  %s_range %c %#llx+%#llx opts %u: %s\n", protect ? "protect" : "unmap", 'A' + r,
             (unsigned long long)va, (unsigned long long)len, opts, mm_status_str(st));
    expect(st, want, protect ? "protect_range" : "unmap_range", va);
    if (st != MM_OK) {
        FZ_CHECK(leaf_log.n == 0, "a failed unmap_range called the leaf function");
        return;
    }
    if (protect) {
        for (size_t i = first; i < end; i++)
            model_protect(view, i, flags);
        return;
    }
    size_t n = end - first;
    FZ_CHECK((op & 0x20) || leaf_log.n == n, "unmap_range: %zu leaf calls, model %zu",
             leaf_log.n, n);
    for (size_t k = 0; k < n; k++) {
        mapping_t m = model_unmap(view, first);
        if (op & 0x20)
            continue;
        const mapping_t *g = &leaf_log.v[k];
        FZ_CHECK(g->va == m.va && g->pa == m.pa && g->size == m.size &&
                     g->flags == effective(m.flags),
                 "unmap_range leaf %zu: %#llx -> %#llx; model %#llx -> %#llx", k,
                 (unsigned long long)g->va, (unsigned long long)g->pa, (unsigned long long)m.va,
                 (unsigned long long)m.pa);
    }
}

static void op_prepopulate(fz_in_t *in, int r, uint8_t op, bool iface)
{
    mm_paddr_t root = pick_root(in, r, op);
    mm_vaddr_t va = pick_va(in);
    uint8_t k = fz_u8(in);
    uint64_t slot = 1ull << shift_of(E.levels);
    uint64_t len = k & 0x80 ? (uint64_t)(k & 0x7f) << 12 : (uint64_t)(k % 6) * slot;
    if (r == 1 && kernel_half(va))
        root = E.root[r = 0];
    mm_status_t want = root_ok(root) ? MM_OK : MM_ERR_INVALID;
    mm_vaddr_t last = 0;
    if (want == MM_OK && len != 0 &&
        (__builtin_add_overflow(va, len - 1, &last) || !canonical(va) || !canonical(last) ||
         kernel_half(va) != kernel_half(last)))
        want = MM_ERR_NOT_CANONICAL;
    int view = view_of(r, va);
    size_t missing = 0;
    if (want == MM_OK && len != 0) {
        for (unsigned i = top_index(va);; i++) {
            missing += tab_find(tkey(view, E.levels - 1, (uint64_t)i << shift_of(E.levels))) ==
                       NULL;
            if (i == top_index(last))
                break;
        }
        if (!pool_can(missing))
            want = MM_ERR_NOMEM;
    }
    mm_page_mapper_t pm = x86pt_page_mapper(&E.m);
    mm_status_t st = iface ? pm.ops->prepopulate_top(pm.ctx, root, va, len)
                           : x86pt_prepopulate_top(&E.m, root, va, len);
    FZ_TRACE("  prepopulate %c %#llx+%#llx: %s\n", 'A' + r, (unsigned long long)va,
             (unsigned long long)len, mm_status_str(st));
    expect(st, want, "prepopulate_top", va);
    if (st != MM_OK || len == 0)
        return;
    for (unsigned i = top_index(va);; i++) {
        uint64_t key = tkey(view, E.levels - 1, (uint64_t)i << shift_of(E.levels));
        if (tab_find(key) == NULL)
            tab_add(key, false);
        if (i == top_index(last))
            break;
    }
}

static void op_root_b(fz_in_t *in, uint8_t op, bool iface)
{
    mm_page_mapper_t pm = x86pt_page_mapper(&E.m);
    uint8_t k = fz_u8(in);
    if (E.root[1] != 0) {
        leaf_log.n = 0;
        if (iface)
            pm.ops->root_destroy(pm.ctx, E.root[1], (k & 1) ? NULL : log_leaf, &leaf_log);
        else
            x86pt_root_destroy(&E.m, E.root[1], (k & 1) ? NULL : log_leaf, &leaf_log);
        mlist_t *l = &E.views[V_USER_B];
        FZ_TRACE("  root_destroy B: %zu leaves\n", leaf_log.n);
        FZ_CHECK((k & 1) || leaf_log.n == l->n, "root_destroy: %zu leaf calls, model %zu",
                 leaf_log.n, l->n);
        for (size_t i = 0; !(k & 1) && i < l->n; i++)
            FZ_CHECK(leaf_log.v[i].va == l->v[i].va && leaf_log.v[i].pa == l->v[i].pa &&
                         leaf_log.v[i].size == l->v[i].size &&
                         leaf_log.v[i].flags == effective(l->v[i].flags),
                     "root_destroy leaf %zu: %#llx, model %#llx", i,
                     (unsigned long long)leaf_log.v[i].va, (unsigned long long)l->v[i].va);
        l->n = 0;
        for (size_t i = E.ntabs; i-- > 0;)
            if ((E.tabs[i].key >> 60) == V_USER_B)
                tab_del(E.tabs[i].key);
        E.root[1] = 0;
        return;
    }
    mm_paddr_t kroot = k & 2 ? 0 : E.root[0];
    mm_status_t want = MM_OK;
    if (k >= 0xf0) {
        kroot = E.root[0] + 8; /* unaligned kernel root */
        want = MM_ERR_INVALID;
    } else if (!pool_can(1)) {
        want = MM_ERR_NOMEM;
    }
    mm_paddr_t b = 0;
    mm_status_t st = iface ? pm.ops->root_create(pm.ctx, kroot, &b)
                           : x86pt_root_create(&E.m, kroot, &b);
    FZ_TRACE("  root_create B (kernel root %#llx): %s\n", (unsigned long long)kroot,
             mm_status_str(st));
    expect(st, want, "root_create", kroot);
    if (st != MM_OK)
        return;
    FZ_CHECK(root_ok(b), "root_create returned a bad root %#llx", (unsigned long long)b);
    E.root[1] = b;
    for (unsigned i = 0; i < 256; i++)
        E.copied[i] = kroot != 0 && tab_find(tkey(V_KERNEL, E.levels - 1,
                                                  (uint64_t)(256 + i) << shift_of(E.levels))) !=
                                        NULL;
    (void)op;
}

static void op_pool(fz_in_t *in, uint8_t op)
{
    uint8_t k = fz_u8(in);
    if (op & 0x80) {
        /* Arm failure injection: the k-th allocation call from now. */
        frame_pool_fail_at(&E.pool, k & 0x3f, (k & 0x40) != 0);
        FZ_TRACE("  fail at %u%s\n", k & 0x3f, k & 0x40 ? " (sticky)" : "");
        return;
    }
    if (k & 0x80) {
        while (E.nhog != 0)
            FZ_CHECK(frame_pool_free(&E.pool, E.hog[--E.nhog], 1) == MM_OK, "unhog");
        return;
    }
    /* Leave only k % 64 frames in the pool. */
    bool armed = E.pool.fail_countdown != 0 || E.pool.failing;
    if (armed)
        return;
    size_t keep = k % 64;
    while (E.pool.frames - E.pool.live > keep && E.nhog < sizeof E.hog / sizeof E.hog[0]) {
        mm_paddr_t pa;
        FZ_CHECK(frame_pool_alloc(&E.pool, 1, 1, MM_PADDR_MAX, &pa) == MM_OK, "hog");
        E.hog[E.nhog++] = pa;
    }
}

typedef struct dump_count {
    size_t lines;
} dump_count_t;

typedef struct walk_stop {
    size_t left, seen;
} walk_stop_t;

static bool walk_until(void *arg, const x86pt_leaf_t *leaf)
{
    walk_stop_t *w = arg;
    (void)leaf;
    w->seen++;
    return --w->left != 0;
}

static void op_inspect(fz_in_t *in, int r)
{
    mm_vaddr_t a = pick_va(in), b = pick_va(in);
    if (a > b) {
        mm_vaddr_t t = a;
        a = b;
        b = t;
    }
    verify_walk(r, a, b);

    /* A walk stops as soon as its function says so. */
    size_t all = 0;
    view_iter_t vi = {r, 0, 0};
    while (view_next(&vi) != NULL)
        all++;
    walk_stop_t ws = {1 + fz_u8(in) % 8, 0};
    size_t want = ws.left < all ? ws.left : all;
    FZ_CHECK(x86pt_walk(&E.m, E.root[r], 0, UINT64_MAX, walk_until, &ws) == MM_OK, "walk");
    FZ_CHECK(ws.seen == want, "walk asked to stop after %zu leaves visited %zu (of %zu)",
             want, ws.seen, all);

    /* Dump: one line per run of leaves contiguous in both spaces with equal
     * size and flags. */
    size_t runs = 0;
    view_iter_t it = {r, 0, 0};
    const mapping_t *m, *prev = NULL;
    uint64_t run_pages = 0;
    while ((m = view_next(&it)) != NULL) {
        uint64_t pg = bytes_of(m->size);
        if (prev != NULL && prev->size == m->size &&
            effective(prev->flags) == effective(m->flags) &&
            m->va == prev->va + pg * run_pages && m->pa == prev->pa + pg * run_pages) {
            run_pages++;
            continue;
        }
        prev = m;
        run_pages = 1;
        runs++;
    }
    static char buf[1 << 16];
    size_t cap = fz_u8(in) & 1 ? sizeof buf : fz_u16(in) % 512;
    size_t len = 0;
    mm_status_t st = x86pt_dump_buf(&E.m, E.root[r], buf, cap, &len);
    FZ_CHECK(st == (len < cap ? MM_OK : MM_ERR_FULL), "dump_buf: %s with %zu of %zu bytes",
             mm_status_str(st), len, cap);
    if (cap != 0)
        FZ_CHECK(strlen(buf) == (len < cap ? len : cap - 1), "dump_buf: not terminated");
    if (st == MM_OK) {
        size_t lines = 0;
        for (size_t i = 0; i < len; i++)
            lines += buf[i] == '\n';
        FZ_CHECK(lines == runs, "dump: %zu lines, model %zu runs", lines, runs);
    }

    x86pt_audit_counts_t c;
    FZ_CHECK(x86pt_audit(&E.m, E.root[r], NULL, NULL, &c) == MM_OK, "audit");
    size_t wx = 0;
    it = (view_iter_t){r, 0, 0};
    while ((m = view_next(&it)) != NULL)
        wx += (effective(m->flags) & (MM_MAP_WRITE | MM_MAP_EXEC)) ==
              (MM_MAP_WRITE | MM_MAP_EXEC);
    FZ_CHECK(c.wx == wx && c.kernel_user_leaves == 0 && c.kernel_user_tables == 0,
             "audit: %zu W+X, %zu kernel user leaves, %zu tables; model %zu W+X", c.wx,
             c.kernel_user_leaves, c.kernel_user_tables, wx);
}

/* Calls every entry point must refuse. */
static void op_bad_args(void)
{
    mm_translation_t tr;
    mm_paddr_t out;
    x86pt_config_t cfg = E.cfg;
    x86pt_t m2;
    FZ_CHECK(x86pt_init(NULL, &cfg) == MM_ERR_INVALID, "init NULL");
    FZ_CHECK(x86pt_init(&m2, NULL) == MM_ERR_INVALID, "init NULL cfg");
    FZ_CHECK(x86pt_root_create(&E.m, 0, NULL) == MM_ERR_INVALID, "root_create NULL out");
    FZ_CHECK(x86pt_root_create(NULL, 0, &out) == MM_ERR_INVALID, "root_create NULL");
    FZ_CHECK(x86pt_translate(NULL, E.root[0], 0, &tr) == MM_ERR_INVALID, "translate NULL");
    FZ_CHECK(x86pt_walk(&E.m, E.root[0], 2, 1, walk_leaf, NULL) == MM_ERR_INVALID, "walk");
    FZ_CHECK(x86pt_walk(&E.m, E.root[0], 0, 1, NULL, NULL) == MM_ERR_INVALID, "walk NULL");
    FZ_CHECK(x86pt_dump(&E.m, E.root[0], NULL, NULL) == MM_ERR_INVALID, "dump NULL");
    FZ_CHECK(x86pt_dump_buf(&E.m, E.root[0], NULL, 4, NULL) == MM_ERR_INVALID, "dump_buf NULL");
    FZ_CHECK(x86pt_check(&E.m, E.root[0] + 1, NULL) == MM_ERR_INVALID, "check bad root");
    FZ_CHECK(x86pt_audit(&E.m, SIM_BYTES, NULL, NULL, NULL) == MM_ERR_INVALID, "audit bad root");
    FZ_CHECK(x86pt_pat_msr() == X86PT_PAT_MSR, "pat msr");
    FZ_CHECK(x86pt_pat_index(MM_MAP_WRITE_COMBINING) == 4 && x86pt_pat_index(MM_MAP_DEVICE) == 3 &&
                 x86pt_pat_index(MM_MAP_WRITE_THROUGH) == 1 && x86pt_pat_index(MM_MAP_WRITE) == 0 &&
                 x86pt_pat_index(MM_MAP_NORMAL_NC) == 2 &&
                 x86pt_pat_index(MM_MAP_DEVICE | MM_MAP_WRITE_COMBINING) == -1 &&
                 x86pt_pat_index(0x80) == -1,
             "pat index");
}

static void run_op(fz_in_t *in)
{
    uint8_t op = fz_u8(in);
    int r = (op & 0x10) && E.root[1] != 0 ? 1 : 0;
    bool iface = (op & 0x60) == 0x20;
    mm_tlb_batch_init(&E.tlb);
    memset(&E.want_tlb, 0, sizeof E.want_tlb);
    switch (op & 15) {
    case 0:
    case 1:
    case 2: op_map(in, r, op, iface); break;
    case 3:
    case 4: op_unmap_protect(in, r, op, iface, false); break;
    case 5: op_unmap_protect(in, r, op, iface, true); break;
    case 6: op_translate(in, r, op, iface); break;
    case 7: op_map_range(in, r, op); break;
    case 8: op_range_change(in, r, op, false); break;
    case 9: op_range_change(in, r, op, true); break;
    case 10: op_prepopulate(in, r, op, iface); break;
    case 11: op_root_b(in, op, iface); break;
    case 12: op_pool(in, op); break;
    case 13:
    case 14: op_inspect(in, r); break;
    default: op_bad_args(); break;
    }
    check_tlb("operation");
    mm_tlb_batch_flush(&E.tlb);
    verify((op & 15) == 13 || (op & 15) == 14);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    sim = sim_phys_create_at(FZ_SIM_ADDRESS, SIM_BYTES);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    uint8_t c = fz_u8(&in), pb = fz_u8(&in), ps = fz_u8(&in);
    if (E.pool_live)
        frame_pool_destroy(&E.pool);
    memset(&E, 0, sizeof E);
    size_t frames = POOL_MIN_FRAMES + 6 * (size_t)(ps % 251);
    frame_pool_init(&E.pool, POOL_BASE, frames);
    E.pool_live = true;

    E.cfg = (x86pt_config_t){
        .levels = c & 1 ? 5 : 4,
        .phys_bits = 32 + pb % 21,
        .nx = c & 2,
        .pages_1g = c & 4,
        .strict_nx = c & 8,
        .frames = frame_pool_allocator(&E.pool),
    };
    if ((c & 0xe0) == 0xe0) {
        /* Configurations x86pt_init must refuse. */
        x86pt_config_t bad = E.cfg;
        switch (pb % 5) {
        case 0: bad.levels = pb & 0x80 ? 3 : 6; break;
        case 1: bad.phys_bits = pb & 0x80 ? 31 : 53; break;
        case 2: bad.frames.alloc = NULL; break;
        case 3: bad.frames.free = NULL; break;
        default: bad.levels = 0; break;
        }
        FZ_CHECK(x86pt_init(&E.m, &bad) == MM_ERR_INVALID, "x86pt_init accepted a bad config");
        return 0;
    }
    FZ_CHECK(x86pt_init(&E.m, &E.cfg) == MM_OK, "x86pt_init");
    E.levels = E.cfg.levels;
    E.va_bits = E.levels == 5 ? 57 : 48;
    FZ_CHECK(x86pt_root_create(&E.m, 0, &E.root[0]) == MM_OK, "root_create");
    FZ_TRACE("config: %u levels, %u phys bits, nx %d, 1g %d, strict %d, %zu pool frames\n",
             E.cfg.levels, E.cfg.phys_bits, E.cfg.nx, E.cfg.pages_1g, E.cfg.strict_nx, frames);

    for (unsigned k = 0; k < MAX_OPS && fz_more(&in); k++)
        run_op(&in);
    verify(true);

    /* Tear down through the model: every table but the pinned kernel ones
     * must come back. */
    frame_pool_fail_at(&E.pool, 0, false);
    if (E.root[1] != 0)
        op_root_b(&(fz_in_t){NULL, 0}, 0, false);
    for (int v = 0; v < NVIEWS; v++)
        while (E.views[v].n != 0) {
            mapping_t m = E.views[v].v[E.views[v].n - 1];
            mm_tlb_batch_init(&E.tlb);
            FZ_CHECK(x86pt_unmap(&E.m, E.root[0], m.va, m.size, NULL, &E.tlb) == MM_OK,
                     "teardown unmap %#llx", (unsigned long long)m.va);
            model_unmap(v, E.views[v].n - 1);
            mm_tlb_batch_flush(&E.tlb); /* returns the deferred table frames */
        }
    verify(true);
    /* Left: the pinned kernel tables and prepopulated, still empty user
     * tables, all below the root. */
    for (size_t i = 0; i < E.ntabs; i++)
        FZ_CHECK(((E.tabs[i].key >> 56) & 15) == E.levels - 1 && E.tabs[i].count == 0,
                 "teardown: table %#llx remains", (unsigned long long)E.tabs[i].key);
    return 0;
}

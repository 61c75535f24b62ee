/* Walker, dump, audit and the consistency check. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "paging_test.h"

#define UVA 0x0000004000000000ull
#define KVA 0xffffc00000000000ull

static void layout(void)
{
    /* Text: 4 pages RX global; data: 3 pages RW; one W+X page; 2x2M WC
     * framebuffer; 1G of direct map; a user page. */
    cr_assert_eq(x86pt_map_range(&E.m, E.root, KVA, 0x100000, 4 * KB4,
                                 MM_MAP_EXEC | MM_MAP_GLOBAL, &E.tlb),
                 MM_OK);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, KVA + 4 * KB4, 0x104000, 3 * KB4,
                                 MM_MAP_WRITE | MM_MAP_GLOBAL, &E.tlb),
                 MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, KVA + 7 * KB4, 0x107000, MM_PAGE_4K,
                           MM_MAP_WRITE | MM_MAP_EXEC, &E.tlb),
                 MM_OK);
    cr_assert_eq(x86pt_map_range(&E.m, E.root, KVA + 2 * MB2, 0xfd000000, 2 * MB2,
                                 MM_MAP_WRITE | MM_MAP_WRITE_COMBINING, &E.tlb),
                 MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, KVA + GB1, 0, MM_PAGE_1G, MM_MAP_WRITE, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0x9000, MM_PAGE_4K,
                           MM_MAP_USER | MM_MAP_WRITE | MM_MAP_DEVICE, &E.tlb),
                 MM_OK);
}

static const char expected_dump[] =
    "0x0000004000000000-0x0000004000001000 -> 0x0000000000009000 4K 1x4K USR RW NX     UC\n"
    "0xffffc00000000000-0xffffc00000004000 -> 0x0000000000100000 16K 4x4K     ro x  GLB WB\n"
    "0xffffc00000004000-0xffffc00000007000 -> 0x0000000000104000 12K 3x4K     RW NX GLB WB\n"
    "0xffffc00000007000-0xffffc00000008000 -> 0x0000000000107000 4K 1x4K     RW x      WB\n"
    "0xffffc00000400000-0xffffc00000800000 -> 0x00000000fd000000 4M 2x2M     RW NX     WC\n"
    "0xffffc00040000000-0xffffc00080000000 -> 0x0000000000000000 1G 1x1G     RW NX     WB\n";

typedef struct textbuf {
    char s[4096];
    size_t n;
    int calls;
} textbuf_t;

static void sink(void *arg, const char *text, size_t len)
{
    textbuf_t *t = arg;
    cr_assert_lt(t->n + len, sizeof t->s);
    memcpy(t->s + t->n, text, len);
    t->n += len;
    t->s[t->n] = '\0';
    t->calls++;
}

Test(paging_inspect, dump_merges_runs_like_ptdump)
{
    env_setup(4, true, true);
    layout();
    textbuf_t t = {.n = 0};
    cr_assert_eq(x86pt_dump(&E.m, E.root, sink, &t), MM_OK);
    cr_assert_str_eq(t.s, expected_dump);
    cr_assert_eq(t.calls, 6, "one write per line");
}

Test(paging_inspect, dump_into_a_buffer_truncates_safely)
{
    env_setup(4, true, true);
    layout();
    char big[4096];
    size_t len = 0;
    cr_assert_eq(x86pt_dump_buf(&E.m, E.root, big, sizeof big, &len), MM_OK);
    cr_assert_str_eq(big, expected_dump);
    cr_assert_eq(len, strlen(expected_dump));
    char small[40];
    memset(small, 'z', sizeof small);
    cr_assert_eq(x86pt_dump_buf(&E.m, E.root, small, sizeof small, &len), MM_ERR_FULL);
    cr_assert_eq(len, strlen(expected_dump), "reports the size it needs");
    cr_assert_eq(small[39], '\0');
    cr_assert(strncmp(small, expected_dump, 39) == 0);
    cr_assert_eq(x86pt_dump_buf(&E.m, E.root, NULL, 0, &len), MM_ERR_FULL);
    cr_assert_eq(x86pt_dump_buf(&E.m, E.root, NULL, 5, &len), MM_ERR_INVALID);
    /* An empty hierarchy dumps to nothing. */
    mm_paddr_t r;
    cr_assert_eq(x86pt_root_create(&E.m, 0, &r), MM_OK);
    cr_assert_eq(x86pt_dump_buf(&E.m, r, big, sizeof big, &len), MM_OK);
    cr_assert_eq(len, 0);
    cr_assert_str_eq(big, "");
}

typedef struct collect {
    size_t n;
    x86pt_leaf_t leaf[16];
    size_t stop_after;
} collect_t;

static bool collect(void *arg, const x86pt_leaf_t *leaf)
{
    collect_t *c = arg;
    c->leaf[c->n++] = *leaf;
    return c->n != c->stop_after;
}

Test(paging_inspect, walker_visits_leaves_in_order_within_bounds)
{
    env_setup(4, true, true);
    layout();
    collect_t c = {.n = 0};
    cr_assert_eq(x86pt_walk(&E.m, E.root, 0, UINT64_MAX, collect, &c), MM_OK);
    cr_assert_eq(c.n, 1 + 8 + 2 + 1);
    for (size_t i = 1; i < c.n; i++)
        cr_assert_gt(c.leaf[i].va, c.leaf[i - 1].va);
    cr_assert_eq(c.leaf[0].va, UVA);
    cr_assert_eq(c.leaf[0].flags, MM_MAP_USER | MM_MAP_WRITE | MM_MAP_DEVICE);
    cr_assert_eq(c.leaf[11].size, MM_PAGE_1G);
    cr_assert_eq(c.leaf[11].entry & B_PS, B_PS);
    /* Bounds: anything overlapping [first, last]. */
    c.n = 0;
    cr_assert_eq(x86pt_walk(&E.m, E.root, KVA + 5 * KB4 + 7, KVA + 2 * MB2, collect, &c), MM_OK);
    cr_assert_eq(c.n, 4);
    cr_assert_eq(c.leaf[0].va, KVA + 5 * KB4);
    cr_assert_eq(c.leaf[3].va, KVA + 2 * MB2);
    /* Early stop. */
    c.n = 0;
    c.stop_after = 2;
    cr_assert_eq(x86pt_walk(&E.m, E.root, 0, UINT64_MAX, collect, &c), MM_OK);
    cr_assert_eq(c.n, 2);
    cr_assert_eq(x86pt_walk(&E.m, E.root, 5, 4, collect, &c), MM_ERR_INVALID);
    cr_assert_eq(x86pt_walk(&E.m, E.root, 0, 4, NULL, NULL), MM_ERR_INVALID);
}

typedef struct findings {
    size_t n;
    x86pt_finding_t f[16];
} findings_t;

static void on_finding(void *arg, const x86pt_finding_t *f)
{
    findings_t *l = arg;
    if (l->n < 16)
        l->f[l->n] = *f;
    l->n++;
}

Test(paging_inspect, audit_reports_wx_and_kernel_user_access)
{
    env_setup(4, true, true);
    layout();
    findings_t l = {0};
    x86pt_audit_counts_t c;
    cr_assert_eq(x86pt_audit(&E.m, E.root, on_finding, &l, &c), MM_OK);
    cr_assert_eq(c.wx, 1);
    cr_assert_eq(c.kernel_user_leaves + c.kernel_user_tables, 0);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.f[0].kind, X86PT_FINDING_WX);
    cr_assert_eq(l.f[0].va, KVA + 7 * KB4);
    cr_assert_eq(l.f[0].level, 1);

    /* Someone sets the user bit on a kernel PDE and a kernel PTE. */
    *raw_slot(E.root, 4, KVA, 2) |= B_US;
    *raw_slot(E.root, 4, KVA + KB4, 1) |= B_US;
    l.n = 0;
    cr_assert_eq(x86pt_audit(&E.m, E.root, on_finding, &l, &c), MM_OK);
    cr_assert_eq(c.wx, 1);
    cr_assert_eq(c.kernel_user_tables, 1);
    cr_assert_eq(c.kernel_user_leaves, 1);
    cr_assert_eq(l.n, 3);
    cr_assert_eq(l.f[0].kind, X86PT_FINDING_KERNEL_USER_TABLE);
    cr_assert_eq(l.f[0].va, KVA);
    cr_assert_eq(l.f[0].level, 2);
    cr_assert_eq(l.f[1].kind, X86PT_FINDING_KERNEL_USER_LEAF);
    cr_assert_eq(l.f[1].va, KVA + KB4);
    x86pt_check_info_t info;
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_ERR_CORRUPT);
    cr_assert_str_eq(info.problem, "user bit on a kernel-half intermediate");
    cr_assert_eq(info.bad_va, KVA);
    cr_assert_eq(info.bad_level, 2);
}

Test(paging_inspect, check_finds_corruption)
{
    env_setup(4, true, true);
    layout();
    x86pt_check_info_t info;
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_OK);
    cr_assert_eq(info.leaves, 12);
    cr_assert_eq(info.user_tables, 3);
    cr_assert_eq(info.kernel_tables, 3);

    uint64_t *pde = raw_slot(E.root, 4, KVA, 2);
    uint64_t saved = *pde;
    *pde += 1ull << 52;
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_ERR_CORRUPT);
    cr_assert_str_eq(info.problem, "stored count differs from present entries");
    *pde = saved;

    uint64_t *pte = raw_slot(E.root, 4, KVA, 1);
    saved = *pte;
    *pte |= 1ull << 47; /* beyond 46 physical bits */
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_ERR_CORRUPT);
    cr_assert_str_eq(info.problem, "frame beyond the physical address width");
    *pte = saved;

    uint64_t *pdpte = raw_slot(E.root, 4, KVA + GB1, 3);
    saved = *pdpte;
    *pdpte |= 1ull << 21; /* low bits of a 1G frame */
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_ERR_CORRUPT);
    cr_assert_str_eq(info.problem, "reserved low address bits in a huge page");
    *pdpte = saved;

    uint64_t *pml4e = raw_slot(E.root, 4, KVA, 4);
    saved = *pml4e;
    *pml4e |= B_PS;
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_ERR_CORRUPT);
    cr_assert_str_eq(info.problem, "PS set in a PML4E or PML5E");
    *pml4e = saved;

    *pml4e = (saved & ~0x000ffffffffff000ull) | SIM_BYTES;
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_ERR_CORRUPT);
    cr_assert_str_eq(info.problem, "table outside the physical width or the HHDM");
    *pml4e = saved;
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_OK);
    cr_assert_eq(x86pt_check(&E.m, E.root + 3, &info), MM_ERR_INVALID);
}

/* x86pt.h: dump "Errors: MM_ERR_INVALID (bad root, NULL write)"; audit
 * "Errors: MM_ERR_INVALID (bad root)". Read-only calls: a rejected one calls
 * no callback, writes no out-parameter and changes no table. */
Test(paging_inspect, dump_and_audit_reject_bad_root_and_null_write)
{
    env_setup(4, true, true);
    layout();
    mm_tlb_batch_flush(&E.tlb);
    const mm_paddr_t bad[] = {E.root + 8, E.root + 1, SIM_BYTES, SIM_BYTES + KB4};
    snapshot_t *s = snap_take(E.root, 4);
    textbuf_t t = {.n = 0};
    cr_assert_eq(x86pt_dump(&E.m, E.root, NULL, &t), MM_ERR_INVALID, "NULL write");
    cr_assert_eq(x86pt_dump(&E.m, E.root, NULL, NULL), MM_ERR_INVALID, "NULL write, NULL arg");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(x86pt_dump(&E.m, bad[i], sink, &t), MM_ERR_INVALID, "dump root %#llx",
                     (unsigned long long)bad[i]);
        findings_t l = {0};
        x86pt_audit_counts_t c;
        memset(&c, 0xa5, sizeof c);
        x86pt_audit_counts_t c0 = c;
        cr_assert_eq(x86pt_audit(&E.m, bad[i], on_finding, &l, &c), MM_ERR_INVALID,
                     "audit root %#llx", (unsigned long long)bad[i]);
        cr_assert_eq(l.n, 0, "no finding reported for a bad root");
        cr_assert(memcmp(&c, &c0, sizeof c) == 0, "*counts untouched on error");
        cr_assert_eq(x86pt_audit(&E.m, bad[i], NULL, NULL, NULL), MM_ERR_INVALID);
    }
    cr_assert_eq(t.calls, 0, "write never called on error");
    cr_assert_eq(t.n, 0);
    cr_assert_eq(x86pt_audit(NULL, E.root, NULL, NULL, NULL), MM_ERR_INVALID, "NULL mapper");
    cr_assert_eq(x86pt_dump(NULL, E.root, sink, &t), MM_ERR_INVALID, "NULL mapper");
    snap_assert_same(s, E.root, 4, "dump/audit errors");
    cr_assert(mm_tlb_batch_empty(&E.tlb));
    /* The same calls on the good root still work afterwards. */
    cr_assert_eq(x86pt_dump(&E.m, E.root, sink, &t), MM_OK);
    cr_assert_str_eq(t.s, expected_dump);
}

/* The kernel half in a root of its own (a64pt_config_t.kernel_root_separate,
 * TTBR1_EL1): the space mm_va_space_aarch64 describes, addresses that only
 * one arrangement has, each root refusing the other half's addresses, the
 * walker and checker naming kernel-root entries as kernel addresses, and
 * no pinned tables. */
#include <criterion/criterion.h>
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "a64_test.h"

/* E.root becomes the kernel root; *user a user root. */
static void setup_separate(unsigned va_bits, mm_paddr_t *user)
{
    sim_phys_create(SIM_BYTES);
    frame_pool_init(&E.pool, POOL_BASE, POOL_FRAMES);
    a64pt_config_t c = {.va_bits = va_bits, .lpa2 = va_bits == 52, .phys_bits = 48,
                        .kernel_root_separate = true, .frames = frame_pool_allocator(&E.pool)};
    cr_assert_eq(a64pt_init(&E.m, &c), MM_OK);
    cr_assert_eq(a64pt_kernel_root_create(&E.m, &E.root), MM_OK);
    cr_assert_eq(E.m.kernel_root, E.root);
    cr_assert_eq(a64pt_root_create(&E.m, 0, user), MM_OK);
    E.pm = a64pt_page_mapper(&E.m);
    mm_tlb_batch_init(&E.tlb);
}

Test(a64_separate, va_space_is_the_architectures_two_halves)
{
    mm_paddr_t user0;
    setup_separate(48, &user0);
    for (unsigned va_bits = 48; va_bits <= 52; va_bits += 4) {
        a64pt_t m;
        a64pt_config_t c = {.va_bits = va_bits, .lpa2 = va_bits == 52, .phys_bits = 48,
                            .kernel_root_separate = true,
                            .frames = frame_pool_allocator(&E.pool)};
        cr_assert_eq(a64pt_init(&m, &c), MM_OK);
        mm_paddr_t kroot, user;
        cr_assert_eq(a64pt_kernel_root_create(&m, &kroot), MM_OK);
        cr_assert_eq(a64pt_root_create(&m, 0, &user), MM_OK);
        mm_page_mapper_t pm = a64pt_page_mapper(&m);
        mm_va_space_t s, op, want;
        a64pt_va_space(&m, &s);
        pm.ops->va_space(pm.ctx, &op);
        cr_assert_eq(mm_va_space_aarch64(va_bits, &want), MM_OK);
        cr_assert(mm_va_space_equal(&s, &want), "%u bits", va_bits);
        cr_assert(mm_va_space_equal(&op, &want));
        cr_assert(s.kernel_root_separate);
        cr_assert_eq(s.user_hi, 1ull << va_bits);
        cr_assert_eq(s.kernel_lo, 0 - (1ull << va_bits));
        /* Each root takes exactly its own half. */
        mm_translation_t tr;
        cr_assert_eq(a64pt_translate(&m, user, s.user_hi - 1, &tr), MM_ERR_NOT_MAPPED);
        cr_assert_eq(a64pt_translate(&m, user, s.user_hi, &tr), MM_ERR_NOT_CANONICAL);
        cr_assert_eq(a64pt_translate(&m, user, s.kernel_lo, &tr), MM_ERR_NOT_CANONICAL);
        cr_assert_eq(a64pt_translate(&m, kroot, s.kernel_lo, &tr), MM_ERR_NOT_MAPPED);
        cr_assert_eq(a64pt_translate(&m, kroot, s.kernel_lo - 1, &tr), MM_ERR_NOT_CANONICAL);
        cr_assert_eq(a64pt_translate(&m, kroot, 0x1000, &tr), MM_ERR_NOT_CANONICAL);
        a64pt_root_destroy(&m, user, NULL, NULL);
    }
}

/* 0xffff000000000000 and 0x800000000000 exist only in the separate
 * arrangement (a shared 48-bit root has 2^47 per half). */
Test(a64_separate, lowest_kernel_and_highest_user_addresses_map_and_walk)
{
    mm_paddr_t user;
    setup_separate(48, &user);
    const mm_vaddr_t klo = 0xffff000000000000ull, uhi = (1ull << 48) - KB4;
    cr_assert_eq(a64pt_map(&E.m, E.root, klo, 0x5000, MM_PAGE_4K, MM_MAP_GLOBAL | MM_MAP_WRITE,
                           &E.tlb),
                 MM_OK);
    cr_assert_eq(a64pt_map(&E.m, user, 1ull << 47, 0x6000, MM_PAGE_4K, MM_MAP_USER, &E.tlb),
                 MM_OK);
    cr_assert_eq(a64pt_map(&E.m, user, uhi, 0x7000, MM_PAGE_4K, MM_MAP_USER, &E.tlb), MM_OK);
    /* Both land in root entry 0 / 256 / 511 of their own root, by the same
     * index bits VA[47:39]. */
    int level;
    cr_assert_eq(raw_addr(raw_leaf(E.root, klo, &level, NULL)), 0x5000);
    cr_assert_eq(raw_addr(raw_leaf(user, 1ull << 47, &level, NULL)), 0x6000);
    cr_assert_eq(raw_addr(raw_leaf(user, uhi, &level, NULL)), 0x7000);
    cr_assert_neq(((uint64_t *)hhdm_phys_to_virt(E.root))[0], 0);
    cr_assert_eq(((uint64_t *)hhdm_phys_to_virt(user))[0], 0);
    /* The other half's addresses are refused, and nothing changes. */
    snapshot_t *s = snap_take(user);
    cr_assert_eq(a64pt_map(&E.m, user, klo, 0x8000, MM_PAGE_4K, 0, &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    cr_assert_eq(a64pt_map_range(&E.m, user, klo, 0x8000, 2 * KB4, 0, &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    cr_assert_eq(a64pt_prepopulate_top(&E.m, user, klo, KB4), MM_ERR_NOT_CANONICAL);
    snap_assert_same(s, user, "kernel address in a user root");
    s = snap_take(E.root);
    cr_assert_eq(a64pt_map(&E.m, E.root, 0x1000, 0x8000, MM_PAGE_4K, MM_MAP_USER, &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    cr_assert_eq(a64pt_unmap(&E.m, E.root, 1ull << 47, MM_PAGE_4K, NULL, &E.tlb),
                 MM_ERR_NOT_CANONICAL);
    snap_assert_same(s, E.root, "user address in the kernel root");

    /* The checker counts each root's tables in its own half. */
    a64pt_check_info_t ki, ui;
    cr_assert_eq(a64pt_check(&E.m, E.root, &ki), MM_OK);
    cr_assert_eq(a64pt_check(&E.m, user, &ui), MM_OK);
    cr_assert_eq(ki.kernel_tables, 3);
    cr_assert_eq(ki.user_tables, 0);
    cr_assert_eq(ui.user_tables, 6, "levels 1-3 under root entries 256 and 511 (%zu)",
                 ui.user_tables);
    cr_assert_eq(ui.kernel_tables, 0);
    char buf[4096];
    size_t len;
    cr_assert_eq(a64pt_dump_buf(&E.m, E.root, buf, sizeof buf, &len), MM_OK);
    cr_assert(strstr(buf, "ffff000000000000") != NULL, "dump names the kernel address:\n%s", buf);
    a64pt_audit_counts_t c;
    cr_assert_eq(a64pt_audit(&E.m, E.root, NULL, NULL, &c), MM_OK);
    cr_assert_eq(c.wx + c.kernel_el0_leaves + c.user_pxn_clear, 0);
    a64pt_root_destroy(&E.m, user, NULL, NULL);
}

static unsigned walked;
static mm_vaddr_t walked_va[4];

static bool record_leaf(void *arg, const a64pt_leaf_t *leaf)
{
    (void)arg;
    if (walked < 4)
        walked_va[walked] = leaf->va;
    walked++;
    return true;
}

Test(a64_separate, walk_reports_kernel_root_entries_as_kernel_addresses)
{
    mm_paddr_t user;
    setup_separate(52, &user);
    const mm_vaddr_t klo = 0xfff0000000000000ull, khi = UINT64_MAX - KB4 + 1;
    cr_assert_eq(a64pt_map(&E.m, E.root, klo, 0x5000, MM_PAGE_4K, MM_MAP_GLOBAL, &E.tlb), MM_OK);
    cr_assert_eq(a64pt_map(&E.m, E.root, khi, 0x6000, MM_PAGE_4K, MM_MAP_GLOBAL, &E.tlb), MM_OK);
    cr_assert_eq(a64pt_map(&E.m, user, (1ull << 52) - KB4, 0x7000, MM_PAGE_4K, MM_MAP_USER,
                           &E.tlb),
                 MM_OK);
    walked = 0;
    cr_assert_eq(a64pt_walk(&E.m, E.root, 0, UINT64_MAX, record_leaf, NULL), MM_OK);
    cr_assert_eq(walked, 2);
    cr_assert_eq(walked_va[0], klo);
    cr_assert_eq(walked_va[1], khi);
    walked = 0;
    cr_assert_eq(a64pt_walk(&E.m, user, 0, UINT64_MAX, record_leaf, NULL), MM_OK);
    cr_assert_eq(walked, 1);
    cr_assert_eq(walked_va[0], (1ull << 52) - KB4);
    a64pt_root_destroy(&E.m, user, NULL, NULL);
}

/* Nothing is copied into user roots, so nothing is pinned: the kernel
 * root's tables go when empty (after the flush), as a user root's do. */
Test(a64_separate, kernel_root_tables_are_freed_when_empty)
{
    mm_paddr_t user;
    setup_separate(48, &user);
    a64pt_root_destroy(&E.m, user, NULL, NULL);
    const mm_vaddr_t kva = 0xffff900000000000ull;
    cr_assert_eq(a64pt_map(&E.m, E.root, kva, 0x5000, MM_PAGE_4K, MM_MAP_GLOBAL, &E.tlb), MM_OK);
    cr_assert_eq(E.pool.live, 4);
    uint64_t e0 = ((uint64_t *)hhdm_phys_to_virt(E.root))[(kva >> 39) & 511];
    cr_assert_neq(e0 & (0x7full << 52), 0, "the root entry carries a count");
    cr_assert_eq(a64pt_unmap(&E.m, E.root, kva, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(E.pool.live, 1, "only the root is left");
    assert_consistent(E.root, 0);
}

Test(a64_separate, user_root_teardown_frees_every_entry)
{
    mm_paddr_t user;
    setup_separate(48, &user);
    cr_assert_eq(a64pt_map(&E.m, user, 0x1000, 0x5000, MM_PAGE_4K, MM_MAP_USER, &E.tlb), MM_OK);
    cr_assert_eq(a64pt_map(&E.m, user, (1ull << 48) - KB4, 0x6000, MM_PAGE_4K, MM_MAP_USER,
                           &E.tlb),
                 MM_OK);
    cr_assert_eq(E.pool.live, 2 + 6);
    walked = 0;
    a64pt_root_destroy(&E.m, user, NULL, NULL);
    cr_assert_eq(E.pool.live, 1, "the user root and its six tables are back");
    cr_assert_eq(E.pool.free_errors, 0);
}

Test(a64_separate, roots_are_made_the_separate_way_only)
{
    mm_paddr_t user, r;
    setup_separate(48, &user);
    cr_assert_eq(a64pt_root_create(&E.m, E.root, &r), MM_ERR_INVALID,
                 "a user root copies nothing from a separate kernel root");
    cr_assert_eq(a64pt_kernel_root_create(&E.m, &r), MM_ERR_STATE, "one kernel root");
    cr_assert_eq(a64pt_kernel_root_create(NULL, &r), MM_ERR_INVALID);
    cr_assert_eq(a64pt_kernel_root_create(&E.m, NULL), MM_ERR_INVALID);
    a64pt_root_destroy(&E.m, user, NULL, NULL);

    /* Out of memory: no kernel root recorded, the next call can succeed. */
    a64pt_t m2;
    a64pt_config_t c = {.va_bits = 48, .phys_bits = 48, .kernel_root_separate = true,
                        .frames = frame_pool_allocator(&E.pool)};
    cr_assert_eq(a64pt_init(&m2, &c), MM_OK);
    frame_pool_fail_at(&E.pool, 1, false);
    cr_assert_eq(a64pt_kernel_root_create(&m2, &r), MM_ERR_NOMEM);
    cr_assert_eq(m2.kernel_root, 0);
    cr_assert_eq(a64pt_kernel_root_create(&m2, &r), MM_OK);
    cr_assert_eq(m2.kernel_root, r);

    /* A second mapper over the same kernel hierarchy (other frames). */
    a64pt_t m4;
    c.kernel_root = m2.kernel_root;
    cr_assert_eq(a64pt_init(&m4, &c), MM_OK);
    cr_assert_eq(a64pt_map(&m4, r, 0xffff900000000000ull, 0x5000, MM_PAGE_4K, MM_MAP_GLOBAL,
                           &E.tlb),
                 MM_OK);
    cr_assert_eq(a64pt_kernel_root_create(&m4, &r), MM_ERR_STATE);
    c.kernel_root = 0x1234;
    cr_assert_eq(a64pt_init(&m4, &c), MM_ERR_INVALID, "kernel root not page aligned");
    c.kernel_root = 1ull << 48;
    cr_assert_eq(a64pt_init(&m4, &c), MM_ERR_INVALID, "kernel root beyond phys_bits");
    c.kernel_root = 0;

    /* Without the separate arrangement it is the root the others copy. */
    a64pt_t m3;
    c.kernel_root_separate = false;
    cr_assert_eq(a64pt_init(&m3, &c), MM_OK);
    mm_paddr_t k3, u3;
    cr_assert_eq(a64pt_kernel_root_create(&m3, &k3), MM_OK);
    cr_assert_eq(a64pt_map(&m3, k3, 0xffff900000000000ull, 0x5000, MM_PAGE_4K, MM_MAP_GLOBAL,
                           &E.tlb),
                 MM_OK);
    cr_assert_eq(a64pt_root_create(&m3, k3, &u3), MM_OK);
    mm_translation_t tr;
    cr_assert_eq(a64pt_translate(&m3, u3, 0xffff900000000000ull, &tr), MM_OK);
    cr_assert_eq(tr.pa, 0x5000);
}

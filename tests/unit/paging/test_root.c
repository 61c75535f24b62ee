/* Address-space roots: shared kernel half, teardown, prepopulation. */
#include <criterion/criterion.h>

#include "paging_test.h"

#define UVA 0x0000004000000000ull
#define KVA 0xffffc00000000000ull

typedef struct leaves {
    size_t n;
    uint64_t bytes;
    mm_vaddr_t last_va;
    bool ordered;
    bool kernel_seen;
} leaves_t;

static void on_leaf(void *arg, mm_vaddr_t va, mm_paddr_t pa, mm_page_size_t size,
                    mm_map_flags_t flags)
{
    (void)pa;
    (void)flags;
    leaves_t *l = arg;
    if (l->n && va <= l->last_va)
        l->ordered = false;
    if ((int64_t)va < 0)
        l->kernel_seen = true;
    l->last_va = va;
    l->n++;
    l->bytes += 1ull << size;
}

static void roots_share_kernel_half(unsigned levels, mm_vaddr_t kva, mm_vaddr_t uva)
{
    env_setup(levels, true, true);
    /* The kernel prepopulates its whole half's root entries at boot... */
    mm_vaddr_t khalf = levels == 5 ? 0xff00000000000000ull : 0xffff800000000000ull;
    cr_assert_eq(x86pt_prepopulate_top(&E.m, E.root, khalf, 0 - khalf), MM_OK);
    cr_assert_eq(E.pool.live, 1 + 256);
    size_t kernel_frames = E.pool.live;
    /* ...so a mapping made after a user root exists is visible there. */
    mm_paddr_t user;
    cr_assert_eq(x86pt_root_create(&E.m, E.root, &user), MM_OK);
    cr_assert_eq(x86pt_map(&E.m, E.root, kva, 0x123000, MM_PAGE_4K, MM_MAP_WRITE, &E.tlb), MM_OK);
    mm_translation_t tr;
    cr_assert_eq(x86pt_translate(&E.m, user, kva, &tr), MM_OK);
    cr_assert_eq(tr.pa, 0x123000);
    /* User mappings stay private. */
    cr_assert_eq(x86pt_map_range(&E.m, user, uva, 0x200000, 2 * MB2 + 3 * KB4,
                                 MM_MAP_USER | MM_MAP_WRITE, &E.tlb),
                 MM_OK);
    cr_assert_eq(x86pt_translate(&E.m, E.root, uva, &tr), MM_ERR_NOT_MAPPED);
    /* Unmapping the kernel page through the user root frees the kernel PT
     * and PD, never the shared top-level table. */
    cr_assert_eq(x86pt_map(&E.m, user, kva + GB1, 0x5000, MM_PAGE_4K, 0, &E.tlb), MM_OK);
    cr_assert_eq(x86pt_unmap(&E.m, user, kva + GB1, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    x86pt_check_info_t info;
    cr_assert_eq(x86pt_check(&E.m, user, &info), MM_OK);
    cr_assert_eq(x86pt_check(&E.m, E.root, &info), MM_OK);

    leaves_t l = {0, 0, 0, true, false};
    size_t before = E.pool.live;
    x86pt_root_destroy(&E.m, user, on_leaf, &l);
    cr_assert_eq(l.n, 2 + 3);
    cr_assert_eq(l.bytes, 2 * MB2 + 3 * KB4);
    cr_assert(l.ordered);
    cr_assert_not(l.kernel_seen, "kernel-half leaves belong to the kernel");
    /* Root + the user tables (PML4 for LA57, PDPT, PD, PT) are gone. */
    cr_assert_eq(before - E.pool.live, 1 + (levels == 5 ? 4 : 3));
    cr_assert_eq(x86pt_translate(&E.m, E.root, kva, &tr), MM_OK, "kernel half intact");
    cr_assert_eq(x86pt_unmap(&E.m, E.root, kva, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(E.pool.live, kernel_frames);
    assert_consistent(E.root, 0);
}

Test(paging_root, four_level_roots_share_kernel_half)
{
    roots_share_kernel_half(4, KVA, UVA);
}

Test(paging_root, five_level_roots_share_kernel_half)
{
    roots_share_kernel_half(5, 0xff80000000000000ull, 0x00f0000000000000ull);
}

Test(paging_root, create_without_kernel_root_is_empty_and_destroy_frees_everything)
{
    env_setup(4, true, true);
    mm_paddr_t r;
    uint64_t frames = E.pool.frames_allocated;
    cr_assert_eq(x86pt_root_create(NULL, 0, &r), MM_ERR_INVALID);
    cr_assert_eq(x86pt_root_create(&E.m, 0, NULL), MM_ERR_INVALID);
    cr_assert_eq(E.pool.frames_allocated, frames, "a refused call allocates nothing");
    cr_assert_eq(x86pt_root_create(&E.m, 0, &r), MM_OK);
    const uint64_t *t = (const uint64_t *)(sim_phys_base() + r);
    for (unsigned i = 0; i < 512; i++)
        cr_assert_eq(t[i], 0, "root entry %u not zeroed (pool fills with junk)", i);
    for (unsigned i = 0; i < 40; i++)
        cr_assert_eq(x86pt_map(&E.m, r, (uint64_t)i * 512 * GB1 / 4, i * KB4, MM_PAGE_4K,
                               MM_MAP_USER, &E.tlb),
                     MM_OK);
    leaves_t l = {0, 0, 0, true, false};
    x86pt_root_destroy(&E.m, r, on_leaf, &l);
    cr_assert_eq(l.n, 40);
    cr_assert_eq(E.pool.live, 1);
    cr_assert_eq(E.pool.frames_allocated - E.pool.frames_freed, 1);
}

Test(paging_root, prepopulated_user_top_tables_are_fine_and_freed_with_use)
{
    env_setup(4, true, true);
    cr_assert_eq(x86pt_prepopulate_top(&E.m, E.root, 0, 2 * 512 * GB1), MM_OK);
    cr_assert_eq(E.pool.live, 3);
    assert_consistent(E.root, 0);
    /* Prepopulated user-half entries are supervisor until a user page. */
    cr_assert_eq(*raw_slot(E.root, 4, 0, 4) & 0xfff, B_P | B_RW);
    cr_assert_eq(x86pt_map(&E.m, E.root, UVA, 0, MM_PAGE_4K, MM_MAP_USER, &E.tlb), MM_OK);
    cr_assert_neq(*raw_slot(E.root, 4, 0, 4) & B_US, 0);
    cr_assert_eq(x86pt_unmap(&E.m, E.root, UVA, MM_PAGE_4K, NULL, &E.tlb), MM_OK);
    mm_tlb_batch_flush(&E.tlb);
    cr_assert_eq(E.pool.live, 2, "a user-half table is freed once used and emptied");
    assert_consistent(E.root, 0);
    /* Idempotent. */
    cr_assert_eq(x86pt_prepopulate_top(&E.m, E.root, 0, 2 * 512 * GB1), MM_OK);
    cr_assert_eq(E.pool.live, 3);
}

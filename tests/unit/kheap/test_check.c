/*
 * kheap_check (kheap/src/check.c) catches each kind of metadata damage at
 * the check written for it: region descriptors and end markers, block
 * headers, free blocks, both trees, the run lists, full runs, region order
 * and every counter. Each damage is reported as MM_ERR_CORRUPT with its own
 * message, and the heap checks clean again once the damage is undone.
 */
#include "block.h"
#include "kheap_test.h"

static kheap_t heap;

static void setup(void)
{
    cr_assert_eq(kheap_init(&heap, t_arena(1 << 20), 1 << 20), MM_OK);
}

static mm_report_t expect_corrupt(kheap_t *h, const char *message)
{
    mm_report_t r;
    memset(&r, 0, sizeof(r));
    cr_assert_eq(kheap_check(h, &r), MM_ERR_CORRUPT, "expected \"%s\"", message);
    cr_assert_eq(r.kind, MM_REPORT_CORRUPT);
    cr_assert_not_null(r.message);
    cr_assert_str_eq(r.message, message);
    return r;
}

static uint64_t with_size(uint64_t word, uintptr_t size)
{
    return (word & ~KH_SIZE_MASK) | (uint64_t)size;
}

Test(kheap_check_sites, region_descriptor_and_end_marker, .init = setup)
{
    kh_region_t *reg = (kh_region_t *)heap.region_root;
    uintptr_t base = kh_addr(reg);
    T_CHECK(&heap);

    reg->magic ^= 1;
    cr_assert_eq(expect_corrupt(&heap, "kheap: region descriptor damaged").address, base);
    reg->magic ^= 1;
    reg->node.word &= ~KH_USED; /* a descriptor is a used block, or it is not one */
    expect_corrupt(&heap, "kheap: region descriptor damaged");
    reg->node.word |= KH_USED;
    T_CHECK(&heap);

    /* A lone region is the tree's root: no cached maximum holds its size,
     * so only the region check can see it. */
    uint64_t word = reg->node.word;
    reg->node.word = with_size(word, KHEAP_REGION_MIN - KH_GRAN);
    expect_corrupt(&heap, "kheap: region size out of range");
    reg->node.word = word;
    heap.hi -= KH_GRAN; /* the region now ends past the heap's span */
    expect_corrupt(&heap, "kheap: region size out of range");
    heap.hi += KH_GRAN;
    T_CHECK(&heap);

    kh_block_t *m = kh_at(kh_region_end(reg) - KH_END_MARK);
    m->link ^= 1;
    cr_assert_eq(expect_corrupt(&heap, "kheap: region end marker damaged").address, kh_addr(m));
    m->link ^= 1;
    m->word ^= KH_PREV_FREE; /* the block below is free: the marker must say so */
    expect_corrupt(&heap, "kheap: region end marker damaged");
    m->word ^= KH_PREV_FREE;
    T_CHECK(&heap);
}

Test(kheap_check_sites, used_block_headers, .init = setup)
{
    void *a = kheap_block_alloc(&heap, 100, 0);
    void *b = kheap_block_alloc(&heap, 100, 0);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    kh_block_t *bb = kh_block_of_user((uintptr_t)b);
    uint64_t word = bb->word;
    T_CHECK(&heap);

    bb->word = with_size(word, KH_MIN_BLOCK - KH_GRAN);
    cr_assert_eq(expect_corrupt(&heap, "kheap: block size out of range").address, kh_addr(bb));
    bb->word = with_size(word, (uintptr_t)1 << 40); /* past the region's end */
    expect_corrupt(&heap, "kheap: block size out of range");
    bb->word = word;
    T_CHECK(&heap);

    bb->word |= KH_PREV_FREE; /* a is in use */
    expect_corrupt(&heap, "kheap: previous-free flag wrong");
    bb->word = word;
    T_CHECK(&heap);

    /* A stray balance factor on a used block: the check word does not
     * cover the top byte, so only this check sees it. */
    bb->word |= (uint64_t)1 << KH_BAL_SHIFT;
    mm_report_t r = expect_corrupt(&heap, "kheap: used block header damaged");
    cr_assert_eq(r.found, bb->word, "reported the header word, not the check word");
    bb->word = word;
    T_CHECK(&heap);

    cr_assert_eq(kheap_block_free(&heap, a), MM_OK);
    cr_assert_eq(kheap_block_free(&heap, b), MM_OK);
    t_assert_all_free(&heap);
}

Test(kheap_check_sites, free_blocks, .init = setup)
{
    void *a = kheap_block_alloc(&heap, 100, 0);
    void *b = kheap_block_alloc(&heap, 100, 0);
    void *c = kheap_block_alloc(&heap, 100, 0);
    cr_assert_not_null(c);
    cr_assert_eq(kheap_block_free(&heap, a), MM_OK);
    T_CHECK(&heap);

    /* b already says its neighbour below is free, so the flag check passes. */
    kh_block_t *bb = kh_block_of_user((uintptr_t)b);
    cr_assert(kh_prev_free(bb));
    bb->word &= ~KH_USED;
    cr_assert_eq(expect_corrupt(&heap, "kheap: two free blocks side by side").address,
                 kh_addr(bb));
    bb->word |= KH_USED;
    T_CHECK(&heap);

    /* c passes for a free block (used neighbour below, matching footer)
     * but was never put in the free tree. */
    kh_block_t *bc = kh_block_of_user((uintptr_t)c);
    uint64_t *footer = kh_footer_of_end(kh_addr(bc) + kh_size(bc));
    uint64_t saved = *footer;
    *footer = kh_size(bc);
    bc->word &= ~KH_USED;
    cr_assert_eq(expect_corrupt(&heap, "kheap: free block missing from the tree").address,
                 kh_addr(bc));
    bc->word |= KH_USED;
    *footer = saved;
    T_CHECK(&heap);

    /* A free block with a flag only used blocks carry. */
    kh_block_t *ba = kh_block_of_user((uintptr_t)a);
    cr_assert_not(kh_used(ba));
    ba->word |= KH_INNER;
    cr_assert_eq(expect_corrupt(&heap, "kheap: free block header damaged").address, kh_addr(ba));
    /* The walker stops at a size that makes no sense. */
    uint64_t word = bb->word;
    bb->word = (word & ~KH_SIZE_MASK) | 16;
    cr_assert_eq(kheap_walk(&heap, t_snap_cb, &(t_snap_t){0, 0, NULL}), MM_ERR_CORRUPT);
    bb->word = word;
    ba->word &= ~KH_INNER;
    T_CHECK(&heap);

    cr_assert_eq(kheap_block_free(&heap, b), MM_OK);
    cr_assert_eq(kheap_block_free(&heap, c), MM_OK);
    t_assert_all_free(&heap);
}

Test(kheap_check_sites, trees_and_region_count, .init = setup)
{
    void *p[5];
    for (int i = 0; i < 5; i++)
        cr_assert_not_null(p[i] = kheap_block_alloc(&heap, 100, 0));
    /* Three free blocks, so the free tree has children below its root. */
    cr_assert_eq(kheap_block_free(&heap, p[0]), MM_OK);
    cr_assert_eq(kheap_block_free(&heap, p[2]), MM_OK);
    cr_assert_eq(heap.free_blocks, 3);
    T_CHECK(&heap);

    kh_block_t *rroot = heap.region_root;
    uint64_t word = rroot->word;
    rroot->word = (word & ~KH_BAL_MASK) | ((uint64_t)2 << KH_BAL_SHIFT); /* +1, no children */
    mm_report_t r = expect_corrupt(&heap, "kheap: tree balance factor wrong");
    cr_assert_eq(r.address, kh_addr(rroot));
    rroot->word = word;
    rroot->rmax ^= 1;
    expect_corrupt(&heap, "kheap: tree cached maximum wrong");
    rroot->rmax ^= 1;
    T_CHECK(&heap);

    heap.regions++;
    r = expect_corrupt(&heap, "kheap: region count wrong");
    cr_assert_eq(r.found, 1);
    heap.regions--;
    T_CHECK(&heap);

    /* The children are verified first and are sound: the root is blamed. */
    kh_block_t *froot = heap.free_root;
    cr_assert(froot->left != NULL || froot->right != NULL);
    froot->lmax ^= 1;
    cr_assert_eq(expect_corrupt(&heap, "kheap: tree cached maximum wrong").address,
                 kh_addr(froot));
    froot->lmax ^= 1;
    T_CHECK(&heap);

    for (int i = 1; i < 5; i += 2)
        cr_assert_eq(kheap_block_free(&heap, p[i]), MM_OK);
    cr_assert_eq(kheap_block_free(&heap, p[4]), MM_OK);
    t_assert_all_free(&heap);
}

Test(kheap_check_sites, counters, .init = setup)
{
    void *p = kheap_block_alloc(&heap, 100, 0);
    cr_assert_not_null(p);
    T_CHECK(&heap);

    heap.free_blocks++;
    expect_corrupt(&heap, "kheap: free block count wrong");
    heap.free_blocks--;
    heap.free_bytes += KH_GRAN;
    expect_corrupt(&heap, "kheap: free byte count wrong");
    heap.free_bytes -= KH_GRAN;
    T_CHECK(&heap);

    heap.regions++;
    expect_corrupt(&heap, "kheap: region count wrong");
    heap.regions--;
    T_CHECK(&heap);

    heap.total_bytes += KH_GRAN;
    expect_corrupt(&heap, "kheap: region byte count wrong");
    heap.total_bytes -= KH_GRAN;
    T_CHECK(&heap);

    cr_assert_eq(kheap_block_free(&heap, p), MM_OK);
    t_assert_all_free(&heap);
}

/*
 * The lower region's walk runs before the overlap is seen, so a region
 * merely made longer fails its own walk (the old end marker reads as a block
 * of size 0). The damage therefore forges a consistent longer region: the
 * old end marker becomes a used block (whose content no check reads in a
 * build without red zones) reaching into the upper region's first used block, where
 * a new end marker sits among user bytes. The lower region is the tree's
 * root, so no cached maximum holds its size.
 */
#if !HADRON_MM_HEAP_REDZONES /* the forged block would fail its guard check first */
Test(kheap_check_sites, regions_overlap)
{
    kheap_t h;
    uint8_t *arena = t_arena(256 << 10);
    cr_assert_eq(kheap_init(&h, arena, 4096), MM_OK);
    cr_assert_eq(kheap_add_region(&h, arena + (128 << 10), 64 << 10), MM_OK);
    kh_region_t *lower = (kh_region_t *)arena;
    uintptr_t upper = (uintptr_t)arena + (128 << 10);
    cr_assert_eq(kh_addr(h.region_root), kh_addr(lower));
    void *big = kheap_block_alloc(&h, 8192, 0); /* does not fit the lower region */
    cr_assert_eq((uintptr_t)big, upper + KH_REGION_DESC + KH_USER_OFF);
    T_CHECK(&h);

    uintptr_t old_limit = kh_region_end(lower) - KH_END_MARK;
    uintptr_t new_limit = upper + KH_REGION_DESC + 64;
    cr_assert_geq(new_limit, (uintptr_t)big);
    kh_block_t *fake = kh_at(old_limit), *mark = kh_at(new_limit);
    kh_block_t saved_fake = *fake, saved_mark = *mark;
    uint64_t saved_word = lower->node.word;

    uintptr_t fsize = new_limit - old_limit;
    fake->word = (uint64_t)fsize | KH_USED | (saved_fake.word & KH_PREV_FREE);
    fake->link = kh_used_check(old_limit, fsize);
    mark->word = KH_USED;
    mark->link = kh_end_check(new_limit);
    lower->node.word = with_size(saved_word, new_limit + KH_END_MARK - kh_addr(lower));
    mm_report_t r = expect_corrupt(&h, "kheap: regions overlap");
    cr_assert_eq(r.address, upper);
    cr_assert_eq(r.found, new_limit + KH_END_MARK);

    lower->node.word = saved_word;
    memcpy(fake, &saved_fake, KH_HDR);
    memcpy(mark, &saved_mark, KH_HDR);
    T_CHECK(&h);
    cr_assert_eq(kheap_block_free(&h, big), MM_OK);
    t_assert_all_free(&h);
}
#endif

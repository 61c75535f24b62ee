/*
 * kheap's augmented AVL tree on its own (white box): thousands of random
 * inserts, removals, in-place moves and resizes, verified after each step
 * (order, parent links, balance factors, cached maxima), with first-fit and
 * floor queries checked against a brute-force scan.
 */
#include "block.h"
#include "kheap_test.h"

enum { SLOTS = 1500, SPACING = 4096 };

static kh_block_t *node_at(uint8_t *arena, size_t i, size_t shift)
{
    return (kh_block_t *)(arena + i * SPACING + shift * 16);
}

static void set_size(kh_block_t *b, uintptr_t size)
{
    kh_node_set_size(b, size);
}

Test(kheap_tree, random_operations_keep_every_invariant, .timeout = 120)
{
    uint8_t *arena = t_arena((size_t)SLOTS * SPACING);
    kh_block_t *root = NULL;
    kh_block_t *in[SLOTS] = {0};
    size_t shift[SLOTS] = {0};
    size_t count = 0;
    uint64_t rng = 99;
    for (int step = 0; step < 30000; step++) {
        uint64_t r = t_rand(&rng);
        size_t i = (size_t)(r % SLOTS);
        unsigned op = (unsigned)((r >> 16) % 4);
        uintptr_t size = 48 + 16 * (uintptr_t)((r >> 24) % 200);
        if (in[i] == NULL) {
            shift[i] = (size_t)((r >> 40) % 8);
            kh_block_t *b = node_at(arena, i, shift[i]);
            b->word = size;
            kh_tree_insert(&root, b);
            in[i] = b;
            count++;
        } else if (op == 0) {
            kh_tree_remove(&root, in[i]);
            in[i] = NULL;
            count--;
        } else if (op == 1) {
            /* Move the node within its slot (order kept), as carving does. */
            size_t ns = (shift[i] + 1 + (size_t)((r >> 40) % 7)) % 8;
            kh_block_t *b = node_at(arena, i, ns);
            kh_tree_replace(&root, in[i], b);
            set_size(b, size);
            kh_tree_resized(b);
            in[i] = b;
            shift[i] = ns;
        } else {
            set_size(in[i], size);
            kh_tree_resized(in[i]);
        }
        size_t n = 0;
        const char *why = NULL;
        const kh_block_t *bad = kh_tree_verify(root, &n, &why);
        cr_assert_null(bad, "step %d: %s", step, why);
        cr_assert_eq(n, count);
        if (step % 7 == 0) {
            uint32_t g = (uint32_t)(3 + (r >> 48) % 220);
            kh_block_t *want = NULL;
            for (size_t k = 0; k < SLOTS && want == NULL; k++)
                if (in[k] != NULL && kh_size(in[k]) / 16 >= g)
                    want = in[k];
            cr_assert_eq(kh_tree_first_fit(root, g), want, "step %d: first fit %u", step, g);
            if (want != NULL) {
                kh_block_t *next = NULL;
                for (size_t k = (size_t)(((uint8_t *)want - arena) / SPACING) + 1; k < SLOTS && next == NULL; k++)
                    if (in[k] != NULL && kh_size(in[k]) / 16 >= g)
                        next = in[k];
                cr_assert_eq(kh_tree_next_fit(want, g), next, "step %d: next fit", step);
            }
            uintptr_t probe = (uintptr_t)arena + (uintptr_t)((r >> 20) % ((uint64_t)SLOTS * SPACING));
            kh_block_t *fl = NULL;
            for (size_t k = 0; k < SLOTS; k++)
                if (in[k] != NULL && (uintptr_t)in[k] <= probe)
                    fl = in[k];
            cr_assert_eq(kh_tree_floor(root, probe), fl);
        }
    }
    /* In-order iteration visits every node in address order. */
    size_t seen = 0;
    uintptr_t last = 0;
    for (kh_block_t *x = kh_tree_first(root); x != NULL; x = kh_tree_succ(x)) {
        cr_assert_gt((uintptr_t)x, last);
        last = (uintptr_t)x;
        seen++;
    }
    cr_assert_eq(seen, count);
}

Test(kheap_tree, ascending_and_descending_inserts_stay_balanced)
{
    uint8_t *arena = t_arena((size_t)SLOTS * SPACING);
    for (int dir = 0; dir < 2; dir++) {
        kh_block_t *root = NULL;
        for (size_t k = 0; k < SLOTS; k++) {
            size_t i = dir ? SLOTS - 1 - k : k;
            kh_block_t *b = node_at(arena, i, 0);
            b->word = 48 + 16 * (k % 50);
            kh_tree_insert(&root, b);
        }
        size_t n = 0;
        const char *why = NULL;
        cr_assert_null(kh_tree_verify(root, &n, &why), "%s", why);
        cr_assert_eq(n, SLOTS);
        /* An AVL tree of 1500 nodes is at most 14 levels deep. */
        unsigned depth = 0;
        for (kh_block_t *x = root; x != NULL; x = x->left)
            depth++;
        cr_assert_leq(depth, 14);
        for (size_t k = 0; k < SLOTS; k += 2)
            kh_tree_remove(&root, node_at(arena, k, 0));
        cr_assert_null(kh_tree_verify(root, &n, &why), "%s", why);
        cr_assert_eq(n, SLOTS / 2);
    }
}

/* A node that shrinks takes the cached maxima above it down with it, so
 * searches never chase a block that is no longer there. */
Test(kheap_tree, shrinking_updates_the_maxima)
{
    uint8_t *arena = t_arena((size_t)SLOTS * SPACING);
    kh_block_t *root = NULL;
    for (size_t i = 0; i < 200; i++) {
        kh_block_t *b = node_at(arena, i, 0);
        b->word = i == 150 ? 16 * 1000 : 48 + 16 * (i % 7);
        kh_tree_insert(&root, b);
    }
    cr_assert_eq(kh_tree_max(root), 1000);
    kh_block_t *big = node_at(arena, 150, 0);
    set_size(big, 16 * 20);
    kh_tree_resized(big);
    cr_assert_eq(kh_tree_max(root), 20);
    cr_assert_null(kh_tree_first_fit(root, 500));
    cr_assert_eq(kh_tree_first_fit(root, 20), big);
    size_t n = 0;
    const char *why = NULL;
    cr_assert_null(kh_tree_verify(root, &n, &why), "%s", why);
}

/* Carving moves a node into memory the heap has not touched in a long time
 * (or ever): replace must not depend on what was there, only write it. */
Test(kheap_tree, replace_ignores_what_the_new_place_held)
{
    uint8_t *arena = t_arena((size_t)SLOTS * SPACING);
    kh_block_t *root = NULL;
    for (size_t i = 0; i < 100; i++) {
        kh_block_t *b = node_at(arena, i, 0);
        b->word = 48 + 16 * (i % 9);
        kh_tree_insert(&root, b);
    }
    for (size_t i = 0; i < 100; i += 3) {
        kh_block_t *to = node_at(arena, i, 3);
        memset(to, 0xa5, sizeof(*to)); /* garbage: flags, balance, links */
        kh_tree_replace(&root, node_at(arena, i, 0), to);
        set_size(to, 48 + 16 * (i % 5));
        kh_tree_resized(to);
        size_t n = 0;
        const char *why = NULL;
        cr_assert_null(kh_tree_verify(root, &n, &why), "node %zu: %s", i, why);
        cr_assert_eq(n, 100);
        cr_assert_eq(kh_size(to), 48 + 16 * (i % 5));
    }
}

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <hadron/mm/vmm_region.h>

#define P 4096ull
#define BASE 0xffffc00000000000ull

/* ---- bump --------------------------------------------------------------- */

Test(vmm_region, bump_init_rejects_bad_regions)
{
    vmm_region_bump_t r = {1, 2, 3};
    cr_assert_eq(vmm_region_bump_init(NULL, BASE, P), MM_ERR_INVALID);
    cr_assert_eq(vmm_region_bump_init(&r, BASE, 0), MM_ERR_INVALID);
    cr_assert_eq(vmm_region_bump_init(&r, BASE + 1, P), MM_ERR_ALIGN);
    cr_assert_eq(vmm_region_bump_init(&r, BASE, P + 1), MM_ERR_ALIGN);
    cr_assert_eq(vmm_region_bump_init(&r, 0xfffffffffffff000ull, 2 * P), MM_ERR_RANGE);
    cr_assert(r.base == 1 && r.size == 2 && r.used == 3, "untouched on error");
    cr_assert_eq(vmm_region_bump_init(&r, 0xffffffffffffe000ull, 2 * P), MM_OK,
                 "ending exactly at 2^64 is fine");
    mm_vaddr_t va;
    cr_assert_eq(vmm_region_bump_alloc(&r, 2 * P, &va), MM_OK);
    cr_assert_eq(va, 0xffffffffffffe000ull);
    cr_assert_eq(vmm_region_bump_alloc(&r, P, &va), MM_ERR_EXHAUSTED);
    cr_assert_eq(vmm_region_bump_unwind(&r, 0xffffffffffffe000ull, 2 * P), MM_OK);
    cr_assert_eq(vmm_region_bump_check(&r), MM_OK);
}

Test(vmm_region, bump_allocates_upwards_and_unwinds_only_the_last)
{
    vmm_region_bump_t r;
    cr_assert_eq(vmm_region_bump_init(&r, BASE, 16 * P), MM_OK);
    mm_vaddr_t a, b, c = 0;
    cr_assert_eq(vmm_region_bump_alloc(&r, 4 * P, &a), MM_OK);
    cr_assert_eq(vmm_region_bump_alloc(&r, 8 * P, &b), MM_OK);
    cr_assert_eq(a, BASE);
    cr_assert_eq(b, BASE + 4 * P);
    cr_assert(vmm_region_bump_contains(&r, BASE + 12 * P - 1));
    cr_assert_not(vmm_region_bump_contains(&r, BASE + 12 * P));
    cr_assert_not(vmm_region_bump_contains(&r, BASE - 1));

    vmm_region_bump_t before = r;
    cr_assert_eq(vmm_region_bump_alloc(&r, 5 * P, &c), MM_ERR_EXHAUSTED);
    cr_assert_eq(vmm_region_bump_alloc(&r, 0, &c), MM_ERR_INVALID);
    cr_assert_eq(vmm_region_bump_alloc(&r, P + 8, &c), MM_ERR_ALIGN);
    cr_assert_eq(vmm_region_bump_alloc(&r, P, NULL), MM_ERR_INVALID);
    cr_assert_eq(c, 0, "out untouched on error");

    cr_assert_eq(vmm_region_bump_unwind(&r, a, 4 * P), MM_ERR_STATE, "not the last");
    cr_assert_eq(vmm_region_bump_unwind(&r, b, 9 * P), MM_ERR_BAD_POINTER, "beyond watermark");
    cr_assert_eq(vmm_region_bump_unwind(&r, BASE - P, P), MM_ERR_RANGE);
    cr_assert_eq(vmm_region_bump_unwind(&r, BASE + 15 * P, 2 * P), MM_ERR_RANGE);
    cr_assert_eq(vmm_region_bump_unwind(&r, b + 1, 8 * P), MM_ERR_ALIGN);
    cr_assert_eq(vmm_region_bump_unwind(&r, b, 0), MM_ERR_INVALID);
    cr_assert_eq(memcmp(&r, &before, sizeof(r)), 0, "errors leave the region alone");

    cr_assert_eq(vmm_region_bump_unwind(&r, b, 8 * P), MM_OK);
    cr_assert_eq(r.used, 4 * P);
    cr_assert_eq(vmm_region_bump_alloc(&r, 12 * P, &c), MM_OK);
    cr_assert_eq(c, b, "unwound space is handed out again");
    cr_assert_eq(vmm_region_bump_check(&r), MM_OK);
}

Test(vmm_region, bump_check_finds_damage)
{
    vmm_region_bump_t r;
    cr_assert_eq(vmm_region_bump_init(&r, BASE, 16 * P), MM_OK);
    cr_assert_eq(vmm_region_bump_check(NULL), MM_ERR_INVALID);
    r.used = 17 * P;
    cr_assert_eq(vmm_region_bump_check(&r), MM_ERR_CORRUPT);
    r.used = 3;
    cr_assert_eq(vmm_region_bump_check(&r), MM_ERR_CORRUPT);
    r.used = 0;
    cr_assert_eq(vmm_region_bump_check(&r), MM_OK);
    /* The region's own bounds: empty, unaligned, wrapping. */
    vmm_region_bump_t g = r;
    g.size = 0;
    cr_assert_eq(vmm_region_bump_check(&g), MM_ERR_CORRUPT, "empty");
    g = r;
    g.base += 1;
    cr_assert_eq(vmm_region_bump_check(&g), MM_ERR_CORRUPT, "unaligned base");
    g = r;
    g.size = P + 1;
    cr_assert_eq(vmm_region_bump_check(&g), MM_ERR_CORRUPT, "unaligned size");
    g = r;
    g.base = 0xfffffffffffff000ull;
    g.size = 2 * P;
    cr_assert_eq(vmm_region_bump_check(&g), MM_ERR_CORRUPT, "wraps");
}

/* ---- free list ---------------------------------------------------------- */

typedef struct fl {
    vmm_region_freelist_t r;
    vmm_range_t slots[16];
} fl_t;

static void fl_init(fl_t *f, uint64_t pages, size_t capacity)
{
    cr_assert_eq(vmm_region_freelist_init(&f->r, BASE, pages * P, f->slots, capacity), MM_OK);
}

static mm_vaddr_t fl_alloc(fl_t *f, uint64_t pages)
{
    mm_vaddr_t va = 0;
    mm_status_t st = vmm_region_freelist_alloc(&f->r, pages * P, &va);
    cr_assert_eq(st, MM_OK, "alloc %llu pages: %s", (unsigned long long)pages, mm_status_str(st));
    cr_assert_eq(vmm_region_freelist_check(&f->r), MM_OK);
    return va;
}

static void fl_free(fl_t *f, mm_vaddr_t va, uint64_t pages)
{
    mm_status_t st = vmm_region_freelist_free(&f->r, va, pages * P);
    cr_assert_eq(st, MM_OK, "free: %s", mm_status_str(st));
    cr_assert_eq(vmm_region_freelist_check(&f->r), MM_OK);
}

/* Asserts that a call failed with `want` and changed nothing. */
#define EXPECT_REJECTED(f, want, call)                                                             \
    do {                                                                                           \
        fl_t before_ = *(f);                                                                       \
        mm_status_t st_ = (call);                                                                  \
        cr_assert_eq(st_, (want), "%s: got %s", #call, mm_status_str(st_));                        \
        cr_assert_eq(memcmp(&before_.r, &(f)->r, sizeof((f)->r)), 0, "region changed");            \
        cr_assert_eq(memcmp(before_.slots, (f)->slots, sizeof((f)->slots)), 0, "slots changed");   \
    } while (0)

Test(vmm_region, freelist_init_rejects_bad_regions)
{
    vmm_region_freelist_t r = {0};
    vmm_range_t s[2];
    cr_assert_eq(vmm_region_freelist_init(NULL, BASE, P, s, 2), MM_ERR_INVALID);
    cr_assert_eq(vmm_region_freelist_init(&r, BASE, 0, s, 2), MM_ERR_INVALID);
    cr_assert_eq(vmm_region_freelist_init(&r, BASE, P, NULL, 2), MM_ERR_INVALID);
    cr_assert_eq(vmm_region_freelist_init(&r, BASE + 8, P, s, 2), MM_ERR_ALIGN);
    cr_assert_eq(vmm_region_freelist_init(&r, BASE, P - 8, s, 2), MM_ERR_ALIGN);
    cr_assert_eq(vmm_region_freelist_init(&r, 0xfffffffffffff000ull, 2 * P, s, 2), MM_ERR_RANGE);
    cr_assert_eq(r.size, 0, "untouched on error");
    cr_assert_eq(vmm_region_freelist_init(&r, BASE, P, NULL, 0), MM_OK, "capacity 0 is allowed");
    cr_assert_eq(vmm_region_freelist_check(&r), MM_OK);
}

Test(vmm_region, freelist_alloc_from_watermark_until_exhausted)
{
    fl_t f;
    fl_init(&f, 8, 4);
    cr_assert_eq(fl_alloc(&f, 3), BASE);
    cr_assert_eq(fl_alloc(&f, 4), BASE + 3 * P);
    cr_assert_eq(f.r.watermark, 7 * P);
    mm_vaddr_t va = 0;
    EXPECT_REJECTED(&f, MM_ERR_EXHAUSTED, vmm_region_freelist_alloc(&f.r, 2 * P, &va));
    EXPECT_REJECTED(&f, MM_ERR_INVALID, vmm_region_freelist_alloc(&f.r, 0, &va));
    EXPECT_REJECTED(&f, MM_ERR_ALIGN, vmm_region_freelist_alloc(&f.r, 100, &va));
    EXPECT_REJECTED(&f, MM_ERR_INVALID, vmm_region_freelist_alloc(&f.r, P, NULL));
    EXPECT_REJECTED(&f, MM_ERR_INVALID, vmm_region_freelist_alloc(NULL, P, &va));
    cr_assert_eq(va, 0);
    cr_assert_eq(fl_alloc(&f, 1), BASE + 7 * P, "the last page still fits");
    cr_assert_eq(vmm_region_freelist_allocated(&f.r), 8 * P);
}

Test(vmm_region, freelist_first_fit_and_split)
{
    fl_t f;
    fl_init(&f, 64, 8);
    mm_vaddr_t a = fl_alloc(&f, 4), b = fl_alloc(&f, 1), c = fl_alloc(&f, 8), d = fl_alloc(&f, 1);
    (void)d;
    fl_free(&f, a, 4);
    fl_free(&f, c, 8);
    cr_assert_eq(f.r.count, 2);
    /* 6 pages do not fit the first hole (4): first fit takes the second. */
    mm_vaddr_t e = fl_alloc(&f, 6);
    cr_assert_eq(e, c);
    cr_assert_eq(f.r.count, 2, "split keeps the remainder in its slot");
    cr_assert_eq(f.r.ranges[1].base, c + 6 * P);
    cr_assert_eq(f.r.ranges[1].size, 2 * P);
    /* 2 pages fit the first hole: lowest address wins. */
    cr_assert_eq(fl_alloc(&f, 2), a);
    cr_assert_eq(fl_alloc(&f, 2), a + 2 * P, "exact fit removes the slot");
    cr_assert_eq(f.r.count, 1);
    (void)b;
}

Test(vmm_region, freelist_coalesces_with_both_neighbours)
{
    fl_t f;
    fl_init(&f, 64, 8);
    mm_vaddr_t a = fl_alloc(&f, 2), b = fl_alloc(&f, 3), c = fl_alloc(&f, 4);
    fl_alloc(&f, 1); /* keeps c's end off the watermark */
    fl_free(&f, a, 2);
    fl_free(&f, c, 4);
    cr_assert_eq(f.r.count, 2);
    fl_free(&f, b, 3);
    cr_assert_eq(f.r.count, 1, "a, b and c merged into one slot");
    cr_assert_eq(f.r.ranges[0].base, a);
    cr_assert_eq(f.r.ranges[0].size, 9 * P);
    cr_assert_eq(f.r.free_bytes, 9 * P);

    /* Merge with the next neighbour only. */
    fl_t g;
    fl_init(&g, 64, 8);
    mm_vaddr_t x = fl_alloc(&g, 1), y = fl_alloc(&g, 1);
    fl_alloc(&g, 1);
    fl_free(&g, y, 1);
    fl_free(&g, x, 1);
    cr_assert_eq(g.r.count, 1);
    cr_assert_eq(g.r.ranges[0].base, x);
    cr_assert_eq(g.r.ranges[0].size, 2 * P);
}

Test(vmm_region, freelist_gives_space_back_to_the_watermark)
{
    fl_t f;
    fl_init(&f, 64, 8);
    mm_vaddr_t a = fl_alloc(&f, 2), b = fl_alloc(&f, 3), c = fl_alloc(&f, 4);
    fl_free(&f, c, 4);
    cr_assert_eq(f.r.watermark, 5 * P, "a range ending at the watermark lowers it");
    cr_assert_eq(f.r.count, 0);
    fl_free(&f, a, 2);
    cr_assert_eq(f.r.count, 1);
    fl_free(&f, b, 3);
    cr_assert_eq(f.r.watermark, 0, "and takes the hole below with it");
    cr_assert_eq(f.r.count, 0);
    cr_assert_eq(f.r.free_bytes, 0);
    cr_assert_eq(fl_alloc(&f, 64), BASE, "the whole region is available again");
}

Test(vmm_region, freelist_free_errors_leave_state_unchanged)
{
    fl_t f;
    fl_init(&f, 64, 8);
    mm_vaddr_t a = fl_alloc(&f, 4), b = fl_alloc(&f, 4);
    fl_alloc(&f, 4);
    fl_free(&f, b, 4); /* hole [b, b+4) below the watermark */

    EXPECT_REJECTED(&f, MM_ERR_DOUBLE_FREE, vmm_region_freelist_free(&f.r, b, 4 * P));
    EXPECT_REJECTED(&f, MM_ERR_DOUBLE_FREE, vmm_region_freelist_free(&f.r, b + P, P));
    EXPECT_REJECTED(&f, MM_ERR_DOUBLE_FREE, vmm_region_freelist_free(&f.r, a + 3 * P, 2 * P));
    EXPECT_REJECTED(&f, MM_ERR_DOUBLE_FREE, vmm_region_freelist_free(&f.r, b + 3 * P, 2 * P));
    EXPECT_REJECTED(&f, MM_ERR_DOUBLE_FREE, vmm_region_freelist_free(&f.r, a, 12 * P));
    EXPECT_REJECTED(&f, MM_ERR_BAD_POINTER, vmm_region_freelist_free(&f.r, BASE + 12 * P, P));
    EXPECT_REJECTED(&f, MM_ERR_BAD_POINTER, vmm_region_freelist_free(&f.r, BASE + 8 * P, 8 * P));
    EXPECT_REJECTED(&f, MM_ERR_RANGE, vmm_region_freelist_free(&f.r, BASE - P, P));
    EXPECT_REJECTED(&f, MM_ERR_RANGE, vmm_region_freelist_free(&f.r, BASE + 64 * P, P));
    EXPECT_REJECTED(&f, MM_ERR_RANGE, vmm_region_freelist_free(&f.r, BASE + 63 * P, 2 * P));
    EXPECT_REJECTED(&f, MM_ERR_RANGE, vmm_region_freelist_free(&f.r, BASE, UINT64_MAX & ~(P - 1)));
    EXPECT_REJECTED(&f, MM_ERR_ALIGN, vmm_region_freelist_free(&f.r, a + 1, P));
    EXPECT_REJECTED(&f, MM_ERR_ALIGN, vmm_region_freelist_free(&f.r, a, P + 1));
    EXPECT_REJECTED(&f, MM_ERR_INVALID, vmm_region_freelist_free(&f.r, a, 0));
    EXPECT_REJECTED(&f, MM_ERR_INVALID, vmm_region_freelist_free(NULL, a, P));
    cr_assert_eq(vmm_region_freelist_check(&f.r), MM_OK);
}

/* vmm_region.h: can_alloc and can_free return what alloc and free would,
 * in the same order, and change nothing (the random run below compares them
 * with the real calls after every step). */
Test(vmm_region, freelist_can_alloc_and_can_free_predict_and_change_nothing)
{
    fl_t f;
    fl_init(&f, 20, 1);
    mm_vaddr_t a = fl_alloc(&f, 4), b = fl_alloc(&f, 4), c = fl_alloc(&f, 4);
    fl_free(&f, b, 4); /* hole [b, b+4): the only slot */

    EXPECT_REJECTED(&f, MM_OK, vmm_region_freelist_can_alloc(&f.r, 4 * P));
    EXPECT_REJECTED(&f, MM_OK, vmm_region_freelist_can_alloc(&f.r, 5 * P)); /* above the top */
    EXPECT_REJECTED(&f, MM_ERR_EXHAUSTED, vmm_region_freelist_can_alloc(&f.r, 9 * P));
    EXPECT_REJECTED(&f, MM_ERR_ALIGN, vmm_region_freelist_can_alloc(&f.r, P + 1));
    EXPECT_REJECTED(&f, MM_ERR_INVALID, vmm_region_freelist_can_alloc(&f.r, 0));
    EXPECT_REJECTED(&f, MM_ERR_INVALID, vmm_region_freelist_can_alloc(NULL, P));

    EXPECT_REJECTED(&f, MM_OK, vmm_region_freelist_can_free(&f.r, c, 4 * P));     /* top */
    EXPECT_REJECTED(&f, MM_OK, vmm_region_freelist_can_free(&f.r, a + 3 * P, P)); /* merges */
    EXPECT_REJECTED(&f, MM_ERR_FULL, vmm_region_freelist_can_free(&f.r, a, P));
    EXPECT_REJECTED(&f, MM_ERR_FULL, vmm_region_freelist_free(&f.r, a, P));
    EXPECT_REJECTED(&f, MM_ERR_DOUBLE_FREE, vmm_region_freelist_can_free(&f.r, b + P, P));
    EXPECT_REJECTED(&f, MM_ERR_BAD_POINTER, vmm_region_freelist_can_free(&f.r, c, 5 * P));
    EXPECT_REJECTED(&f, MM_ERR_RANGE, vmm_region_freelist_can_free(&f.r, BASE - P, P));
    EXPECT_REJECTED(&f, MM_ERR_ALIGN, vmm_region_freelist_can_free(&f.r, a + 1, P));
    EXPECT_REJECTED(&f, MM_ERR_INVALID, vmm_region_freelist_can_free(&f.r, a, 0));
    EXPECT_REJECTED(&f, MM_ERR_INVALID, vmm_region_freelist_can_free(NULL, a, P));

    fl_free(&f, c, 4);
    EXPECT_REJECTED(&f, MM_OK, vmm_region_freelist_can_alloc(&f.r, 16 * P));
    EXPECT_REJECTED(&f, MM_ERR_EXHAUSTED, vmm_region_freelist_can_alloc(&f.r, 17 * P));
    cr_assert_eq(f.r.watermark, 4 * P, "the hole went with the top");
}

Test(vmm_region, freelist_full_loses_nothing)
{
    fl_t f;
    fl_init(&f, 64, 2);
    mm_vaddr_t r[8];
    for (int i = 0; i < 8; i++)
        r[i] = fl_alloc(&f, 1);
    fl_free(&f, r[1], 1);
    fl_free(&f, r[3], 1);
    cr_assert_eq(f.r.count, 2, "list full");
    uint64_t allocated = vmm_region_freelist_allocated(&f.r);

    EXPECT_REJECTED(&f, MM_ERR_FULL, vmm_region_freelist_free(&f.r, r[5], P));
    cr_assert(vmm_region_freelist_is_allocated(&f.r, r[5], P), "the range stays allocated");
    cr_assert_eq(vmm_region_freelist_allocated(&f.r), allocated, "accounted for");
    cr_assert_eq(vmm_region_freelist_check(&f.r), MM_OK);

    /* Frees that need no slot still work while full. */
    fl_free(&f, r[2], 1); /* merges r1..r3, frees a slot */
    cr_assert_eq(f.r.count, 1);
    fl_free(&f, r[5], 1); /* the retry now succeeds */
    cr_assert_eq(f.r.count, 2);
    fl_free(&f, r[7], 1); /* reaches the watermark: needs no slot */
    fl_free(&f, r[6], 1); /* lowers the watermark and merges r5 */
    cr_assert_eq(f.r.watermark, 5 * P);
    cr_assert_eq(f.r.count, 1);
    fl_free(&f, r[4], 1);
    fl_free(&f, r[0], 1);
    cr_assert_eq(f.r.watermark, 0);
    cr_assert_eq(vmm_region_freelist_allocated(&f.r), 0);
}

Test(vmm_region, freelist_capacity_zero_still_reaches_the_watermark)
{
    fl_t f;
    fl_init(&f, 8, 0);
    mm_vaddr_t a = fl_alloc(&f, 1), b = fl_alloc(&f, 1);
    EXPECT_REJECTED(&f, MM_ERR_FULL, vmm_region_freelist_free(&f.r, a, P));
    fl_free(&f, b, 1);
    fl_free(&f, a, 1);
    cr_assert_eq(f.r.watermark, 0);
}

Test(vmm_region, freelist_region_ending_at_the_top_of_the_address_space)
{
    vmm_region_freelist_t r;
    vmm_range_t s[4];
    mm_vaddr_t base = 0xffffffffffff0000ull;
    cr_assert_eq(vmm_region_freelist_init(&r, base, 16 * P, s, 4), MM_OK);
    mm_vaddr_t a, b;
    cr_assert_eq(vmm_region_freelist_alloc(&r, 15 * P, &a), MM_OK);
    cr_assert_eq(vmm_region_freelist_alloc(&r, P, &b), MM_OK);
    cr_assert_eq(b, 0xfffffffffffff000ull);
    cr_assert_eq(vmm_region_freelist_alloc(&r, P, &b), MM_ERR_EXHAUSTED);
    cr_assert_eq(vmm_region_freelist_free(&r, a, P), MM_OK);
    cr_assert_eq(vmm_region_freelist_free(&r, 0xfffffffffffff000ull, P), MM_OK);
    cr_assert_eq(vmm_region_freelist_free(&r, 0xfffffffffffff000ull, P), MM_ERR_BAD_POINTER);
    cr_assert_eq(vmm_region_freelist_free(&r, 0xfffffffffffff000ull, 2 * P), MM_ERR_RANGE);
    cr_assert_eq(vmm_region_freelist_check(&r), MM_OK);
}

Test(vmm_region, freelist_is_allocated)
{
    fl_t f;
    fl_init(&f, 16, 4);
    mm_vaddr_t a = fl_alloc(&f, 2), b = fl_alloc(&f, 2);
    fl_alloc(&f, 2);
    fl_free(&f, b, 2);
    cr_assert(vmm_region_freelist_is_allocated(&f.r, a, 2 * P));
    cr_assert_not(vmm_region_freelist_is_allocated(&f.r, a, 3 * P), "runs into a hole");
    cr_assert_not(vmm_region_freelist_is_allocated(&f.r, b, P));
    cr_assert_not(vmm_region_freelist_is_allocated(&f.r, BASE + 6 * P, P), "above watermark");
    cr_assert_not(vmm_region_freelist_is_allocated(&f.r, BASE - P, P));
    cr_assert_not(vmm_region_freelist_is_allocated(NULL, a, P));
}

Test(vmm_region, freelist_check_finds_damage)
{
    fl_t f;
    fl_init(&f, 64, 8);
    mm_vaddr_t a = fl_alloc(&f, 2), b = fl_alloc(&f, 2), c = fl_alloc(&f, 2);
    fl_alloc(&f, 2);
    fl_free(&f, a, 2);
    fl_free(&f, c, 2);
    cr_assert_eq(vmm_region_freelist_check(&f.r), MM_OK);
    cr_assert_eq(vmm_region_freelist_check(NULL), MM_ERR_INVALID);

    fl_t g = f;
    g.r.ranges = g.slots;
    g.r.ranges[0].size = 4 * P; /* now touches c's hole: should have merged */
    g.r.free_bytes += 2 * P;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "adjacent holes");
    g = f;
    g.r.ranges = g.slots;
    g.r.free_bytes += P;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "free_bytes wrong");
    g = f;
    g.r.ranges = g.slots;
    vmm_range_t t = g.slots[0];
    g.slots[0] = g.slots[1];
    g.slots[1] = t;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "unsorted");
    g = f;
    g.r.ranges = g.slots;
    g.r.watermark = 6 * P; /* c's hole now touches the watermark */
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "hole at the watermark");
    g = f;
    g.r.ranges = g.slots;
    g.r.count = 9;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "count > capacity");
    /* The region's own bounds and watermark. */
    g = f;
    g.r.ranges = g.slots;
    g.r.size = 0;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "empty region");
    g = f;
    g.r.ranges = g.slots;
    g.r.base += P / 2;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "unaligned region");
    g = f;
    g.r.ranges = g.slots;
    g.r.watermark = g.r.size + P;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "watermark past the end");
    g = f;
    g.r.ranges = g.slots;
    g.r.watermark += 1;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "unaligned watermark");
    /* A hole that is empty, unaligned, or below the region. */
    g = f;
    g.r.ranges = g.slots;
    g.slots[0].size = 0;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "empty hole");
    g = f;
    g.r.ranges = g.slots;
    g.slots[0].base += 8;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "unaligned hole");
    g = f;
    g.r.ranges = g.slots;
    g.slots[0].base = BASE - 2 * P;
    cr_assert_eq(vmm_region_freelist_check(&g.r), MM_ERR_CORRUPT, "hole below the region");
    (void)b;
}

/* Random allocations and frees against a page-by-page model; FULL ranges
 * are kept and retried, and nothing may ever be lost or handed out twice. */
Test(vmm_region, freelist_random_against_a_model)
{
    enum { PAGES = 256, LIVE_MAX = 64 };
    static uint8_t owner[PAGES]; /* 0 free, else live index + 1 */
    struct { mm_vaddr_t va; uint64_t pages; } live[LIVE_MAX];
    int nlive = 0;
    fl_t f;
    fl_init(&f, PAGES, 3);
    srand(12345);
    unsigned fulls = 0;
    for (int step = 0; step < 20000; step++) {
        if (nlive < LIVE_MAX && (nlive == 0 || rand() % 2 == 0)) {
            uint64_t pages = 1 + (uint64_t)(rand() % 8);
            mm_vaddr_t va;
            mm_status_t predicted = vmm_region_freelist_can_alloc(&f.r, pages * P);
            mm_status_t st = vmm_region_freelist_alloc(&f.r, pages * P, &va);
            cr_assert_eq(st, predicted, "can_alloc predicted %s", mm_status_str(predicted));
            if (st == MM_ERR_EXHAUSTED)
                continue;
            cr_assert_eq(st, MM_OK);
            uint64_t first = (va - BASE) / P;
            for (uint64_t i = 0; i < pages; i++) {
                cr_assert_eq(owner[first + i], 0, "page handed out twice");
                owner[first + i] = 1;
            }
            live[nlive].va = va;
            live[nlive].pages = pages;
            nlive++;
        } else {
            int k = rand() % nlive;
            mm_status_t predicted =
                vmm_region_freelist_can_free(&f.r, live[k].va, live[k].pages * P);
            mm_status_t st = vmm_region_freelist_free(&f.r, live[k].va, live[k].pages * P);
            cr_assert_eq(st, predicted, "can_free predicted %s", mm_status_str(predicted));
            if (st == MM_ERR_FULL) {
                fulls++;
                cr_assert(vmm_region_freelist_is_allocated(&f.r, live[k].va, live[k].pages * P));
            } else {
                cr_assert_eq(st, MM_OK);
                uint64_t first = (live[k].va - BASE) / P;
                for (uint64_t i = 0; i < live[k].pages; i++)
                    owner[first + i] = 0;
                live[k] = live[--nlive];
            }
        }
        cr_assert_eq(vmm_region_freelist_check(&f.r), MM_OK);
        uint64_t used = 0;
        for (int i = 0; i < PAGES; i++)
            used += owner[i] != 0;
        cr_assert_eq(vmm_region_freelist_allocated(&f.r), used * P, "accounting");
    }
    cr_assert_gt(fulls, 0, "the test exercised a full list");
    /* Drain: frees that hit FULL succeed once their neighbours are gone. */
    while (nlive > 0) {
        int progress = 0;
        for (int k = nlive - 1; k >= 0; k--)
            if (vmm_region_freelist_free(&f.r, live[k].va, live[k].pages * P) == MM_OK) {
                live[k] = live[--nlive];
                progress = 1;
            }
        cr_assert(progress, "some free always makes progress");
    }
    cr_assert_eq(f.r.watermark, 0);
    cr_assert_eq(f.r.count, 0);
}

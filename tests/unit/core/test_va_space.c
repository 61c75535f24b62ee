/* The address-space descriptor (va_space.h): constructors, checker, and the
 * user/kernel/neither classification that replaced the x86 canonical rule. */
#include <criterion/criterion.h>
#include <string.h>

#include <hadron/mm/va_space.h>

/* Sign-extended spaces: the x86_64 canonical rule as two ranges. */
Test(va_space, sign_extended_48_and_57_bit)
{
    mm_va_space_t s;
    cr_assert_eq(mm_va_space_sign_extended(48, 4, &s), MM_OK);
    cr_assert_eq(s.user_lo, 0);
    cr_assert_eq(s.user_hi, 1ull << 47);
    cr_assert_eq(s.kernel_lo, 0xffff800000000000ull);
    cr_assert_eq(s.kernel_hi, UINT64_MAX);
    cr_assert_eq(s.levels, 4);
    cr_assert_not(s.kernel_root_separate);
    cr_assert_eq(mm_va_space_check(&s), MM_OK);
    cr_assert(mm_va_space_is_user(&s, 0));
    cr_assert(mm_va_space_is_user(&s, 0x00007fffffffffffull));
    cr_assert_not(mm_va_space_contains(&s, 0x0000800000000000ull));
    cr_assert(mm_va_space_is_kernel(&s, 0xffff800000000000ull));
    cr_assert_not(mm_va_space_contains(&s, 0xfff0800000000000ull));
    cr_assert_not(mm_va_space_is_user(&s, 0xffff800000000000ull));

    cr_assert_eq(mm_va_space_sign_extended(57, 5, &s), MM_OK);
    cr_assert_eq(s.levels, 5);
    cr_assert(mm_va_space_is_user(&s, 0x0000800000000000ull));
    cr_assert(mm_va_space_is_kernel(&s, 0xff00000000000000ull));
    cr_assert_not(mm_va_space_contains(&s, 0xfe00000000000000ull));
    cr_assert_not(mm_va_space_contains(&s, 0x0100000000000000ull));
}

/* AArch64: user [0, 2^N) through TTBR0, kernel [2^64 - 2^N, 2^64) through
 * TTBR1, 3/4/5 levels for 39/48/52 bits with a 4 KiB granule. */
Test(va_space, aarch64_39_48_52_bit)
{
    const struct {
        unsigned bits, levels;
        uint64_t user_hi, kernel_lo;
    } want[] = {
        {39, 3, 1ull << 39, 0xffffff8000000000ull},
        {48, 4, 1ull << 48, 0xffff000000000000ull},
        {52, 5, 1ull << 52, 0xfff0000000000000ull},
        {25, 2, 1ull << 25, 0xfffffffffe000000ull},
        {40, 4, 1ull << 40, 0xffffff0000000000ull},
    };
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
        mm_va_space_t s;
        cr_assert_eq(mm_va_space_aarch64(want[i].bits, &s), MM_OK, "%u bits", want[i].bits);
        cr_assert_eq(s.user_lo, 0);
        cr_assert_eq(s.user_hi, want[i].user_hi);
        cr_assert_eq(s.kernel_lo, want[i].kernel_lo);
        cr_assert_eq(s.kernel_hi, UINT64_MAX);
        cr_assert_eq(s.levels, want[i].levels, "%u bits", want[i].bits);
        cr_assert(s.kernel_root_separate);
        cr_assert_eq(mm_va_space_check(&s), MM_OK);
    }
    /* issue 21: 0x800000000000 (2^47) is a user address on AArch64 with 48
     * or 52 bits; only a 52-bit space reaches 2^48. */
    mm_va_space_t s52, s48;
    mm_va_space_aarch64(52, &s52);
    mm_va_space_aarch64(48, &s48);
    cr_assert(mm_va_space_is_user(&s52, 0x800000000000ull));
    cr_assert(mm_va_space_is_user(&s48, 0x800000000000ull));
    cr_assert_not(mm_va_space_contains(&s48, 1ull << 48));
    cr_assert(mm_va_space_is_user(&s52, 1ull << 48));
    cr_assert_not(mm_va_space_contains(&s52, 0xffe0000000000000ull));
}

Test(va_space, constructors_reject_what_no_cpu_has)
{
    mm_va_space_t s;
    memset(&s, 0xab, sizeof s);
    const mm_va_space_t before = s;
    const unsigned bad_aarch64[] = {0, 24, 49, 50, 51, 53, 64};
    for (unsigned i = 0; i < sizeof bad_aarch64 / sizeof bad_aarch64[0]; i++)
        cr_assert_eq(mm_va_space_aarch64(bad_aarch64[i], &s), MM_ERR_INVALID, "%u",
                     bad_aarch64[i]);
    cr_assert_eq(mm_va_space_aarch64(48, NULL), MM_ERR_INVALID);
    cr_assert_eq(mm_va_space_sign_extended(31, 4, &s), MM_ERR_INVALID);
    cr_assert_eq(mm_va_space_sign_extended(64, 4, &s), MM_ERR_INVALID);
    cr_assert_eq(mm_va_space_sign_extended(48, 1, &s), MM_ERR_INVALID);
    cr_assert_eq(mm_va_space_sign_extended(48, 6, &s), MM_ERR_INVALID);
    cr_assert_eq(mm_va_space_sign_extended(48, 4, NULL), MM_ERR_INVALID);
    cr_assert_eq(memcmp(&s, &before, sizeof s), 0, "out written on error");
}

Test(va_space, check_rejects_every_broken_field)
{
    mm_va_space_t good;
    mm_va_space_sign_extended(48, 4, &good);
    cr_assert_eq(mm_va_space_check(NULL), MM_ERR_INVALID);
#define BAD_SPACE(stmt)                                                                            \
    do {                                                                                           \
        mm_va_space_t s_ = good;                                                                   \
        stmt;                                                                                      \
        cr_assert_eq(mm_va_space_check(&s_), MM_ERR_INVALID, "%s", #stmt);                         \
    } while (0)
    BAD_SPACE(s_.levels = 1);
    BAD_SPACE(s_.levels = 6);
    BAD_SPACE(s_.user_hi = 0);
    BAD_SPACE(s_.user_hi = s_.kernel_lo + 4096);
    BAD_SPACE(s_.kernel_hi = s_.kernel_lo - 1);
    BAD_SPACE(s_.user_lo = 8);
    BAD_SPACE(s_.user_hi -= 8);
    BAD_SPACE(s_.kernel_lo += 8);
    BAD_SPACE(s_.kernel_hi -= 8);
#undef BAD_SPACE
    /* A kernel range that ends on a page boundary below 2^64 is fine. */
    mm_va_space_t s = good;
    s.kernel_hi -= 4096;
    cr_assert_eq(mm_va_space_check(&s), MM_OK);
    mm_va_space_t other = good;
    cr_assert(mm_va_space_equal(&good, &other));
    other.kernel_root_separate = true;
    cr_assert_not(mm_va_space_equal(&good, &other));
}

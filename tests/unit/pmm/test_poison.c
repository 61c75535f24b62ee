/*
 * Page poisoning. In a poison build a freed frame holds 0xDEADDEAD and a
 * write to any of its words, the first included, is reported when the frame
 * is allocated again. In other builds freeing leaves contents alone and
 * allocation reads nothing.
 */
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "pmm_fixture.h"

static uint32_t *words32(mm_paddr_t pa)
{
    return hhdm_phys_to_virt(pa);
}

#if HADRON_MM_PMM_POISON

static void expect_poison_report(mm_paddr_t frame, uint64_t offset, uint32_t found)
{
    cr_assert_eq(test_panics.count, 1);
    cr_assert_eq(test_panics.last.kind, MM_REPORT_POISON);
    cr_assert_eq(test_panics.last.address, frame, "address %#llx",
                 (unsigned long long)test_panics.last.address);
    cr_assert_eq(test_panics.last.offset, offset, "offset %#llx",
                 (unsigned long long)test_panics.last.offset);
    cr_assert_eq(test_panics.last.found, found);
    cr_assert_eq(test_panics.last.expected, 0xDEADDEADu);
}

/* Free a frame, write one 32-bit word of it, allocate it again. */
static void write_after_free(unsigned word)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    mm_paddr_t a, b = 0;
    cr_assert_eq(pmm_alloc(&p, &a), MM_OK);
    cr_assert_eq(pmm_free(&p, a), MM_OK);
    words32(a)[word] = 0x12345678u;
    bool panicked = TEST_CATCH_PANIC(pmm_alloc(&p, &b));
    cr_assert(panicked, "write to word %u went unnoticed", word);
    expect_poison_report(a, (uint64_t)word * 4, 0x12345678u);
}

Test(pmm, poison_fills_freed_frames)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    mm_paddr_t a, run;
    cr_assert_eq(pmm_alloc(&p, &a), MM_OK);
    cr_assert_eq(pmm_alloc_contig(&p, 3, 1, MM_PADDR_MAX, &run), MM_OK);
    memset(hhdm_phys_to_virt(a), 0, FX_PG);
    cr_assert_eq(pmm_free(&p, a), MM_OK);
    cr_assert_eq(pmm_free_contig(&p, run, 3), MM_OK);
    for (unsigned i = 0; i < 1024; i++)
        cr_assert_eq(words32(a)[i], 0xDEADDEADu, "word %u", i);
    for (unsigned i = 0; i < 3 * 1024; i++)
        cr_assert_eq(words32(run)[i], 0xDEADDEADu, "word %u", i);
    /* Untouched, they are handed out again without complaint. */
    mm_paddr_t b;
    cr_assert_eq(pmm_alloc(&p, &b), MM_OK);
    cr_assert_eq(b, a);
    cr_assert_eq(pmm_alloc_contig(&p, 3, 1, MM_PADDR_MAX, &b), MM_OK);
    cr_assert_eq(b, run);
    cr_assert_eq(test_panics.count, 0);
    fx_check(&p);
}

Test(pmm, poison_catches_write_to_word_0)
{
    write_after_free(0);
}

Test(pmm, poison_catches_write_to_word_1)
{
    write_after_free(1);
}

Test(pmm, poison_catches_write_to_a_middle_word)
{
    write_after_free(517);
}

Test(pmm, poison_catches_write_to_the_last_word)
{
    write_after_free(1023);
}

Test(pmm, poison_reports_the_word_holding_a_stray_byte)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    mm_paddr_t a, b;
    cr_assert_eq(pmm_alloc(&p, &a), MM_OK);
    cr_assert_eq(pmm_free(&p, a), MM_OK);
    ((uint8_t *)hhdm_phys_to_virt(a))[2049] = 0;
    cr_assert(TEST_CATCH_PANIC(pmm_alloc_zeroed(&p, &b)), "zeroing allocation verifies too");
    expect_poison_report(a, 2048, 0xDEAD00ADu);
}

Test(pmm, poison_catches_write_in_a_contiguous_run)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    mm_paddr_t run, again;
    cr_assert_eq(pmm_alloc_contig(&p, 8, 8, MM_PADDR_MAX, &run), MM_OK);
    cr_assert_eq(pmm_free_contig(&p, run, 8), MM_OK);
    words32(run + 5 * FX_PG)[0] = 0;
    cr_assert(TEST_CATCH_PANIC(pmm_alloc_contig(&p, 8, 8, MM_PADDR_MAX, &again)));
    expect_poison_report(run + 5 * FX_PG, 0, 0);
}

Test(pmm, poison_through_the_frame_allocator_interface)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    mm_frame_allocator_t fa = pmm_frame_allocator(&p);
    mm_paddr_t a, b;
    cr_assert_eq(mm_frame_alloc(&fa, &a), MM_OK);
    cr_assert_eq(mm_frame_free(&fa, a), MM_OK);
    words32(a)[0] = 0xDEADBEEFu;
    cr_assert(TEST_CATCH_PANIC(mm_frame_alloc(&fa, &b)));
    expect_poison_report(a, 0, 0xDEADBEEFu);
}

/* Frames never freed through the allocator (fresh at boot, or handed over
 * by pmm_release) carry whatever they held: they are not verified. Nor are
 * frames whose poison was dropped by a reservation. */
Test(pmm, poison_only_tracks_frames_it_filled)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    mm_paddr_t a, b;
    memset(hhdm_phys_to_virt(FX_PG), 0x77, FX_PG); /* firmware leftovers */
    cr_assert_eq(pmm_alloc(&p, &a), MM_OK);
    cr_assert_eq(a, FX_PG);

    cr_assert_eq(pmm_free(&p, a), MM_OK);
    cr_assert_eq(pmm_reserve(&p, a, FX_PG), MM_OK);
    words32(a)[0] = 1; /* e.g. firmware that owned the range wrote it */
    cr_assert_eq(pmm_release(&p, a, FX_PG), MM_OK);
    cr_assert_eq(pmm_alloc(&p, &b), MM_OK);
    cr_assert_eq(b, a);
    cr_assert_eq(test_panics.count, 0);
    fx_check(&p);
}

#else /* !HADRON_MM_PMM_POISON */

Test(pmm, no_poison_build_leaves_contents_alone)
{
    pmm_t p;
    fx_init_simple(&p, 0, 64 * FX_MIB);
    mm_paddr_t a, b;
    cr_assert_eq(pmm_alloc(&p, &a), MM_OK);
    memset(hhdm_phys_to_virt(a), 0x11, FX_PG);
    cr_assert_eq(pmm_free(&p, a), MM_OK);
    for (unsigned i = 0; i < 1024; i++)
        cr_assert_eq(words32(a)[i], 0x11111111u, "freeing wrote word %u", i);
    words32(a)[0] = 0x12345678u; /* use after free: not detectable here */
    cr_assert_eq(pmm_alloc(&p, &b), MM_OK);
    cr_assert_eq(b, a);
    cr_assert_eq(words32(b)[0], 0x12345678u);
    cr_assert_eq(test_panics.count, 0);
    cr_assert_null(p.poison_bm, "no poison bitmap without the option");
    fx_check(&p);
}

#endif

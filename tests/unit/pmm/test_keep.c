/*
 * The boot sequence when the bootloader calls the kernel image usable RAM:
 * pmm_init's keep list keeps the metadata out of it wherever it lies, a
 * late pmm_reserve over the metadata is refused, and a copied instance is
 * refused rather than obeyed.
 */
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "pmm_fixture.h"

#define IMAGE_BYTES (3 * FX_MIB + 0x567)
#define IMAGE_BYTE(i) ((uint8_t)(0xa5 ^ (i) ^ ((i) >> 9)))

static void fill_image(mm_paddr_t base, uint64_t len)
{
    uint8_t *p = hhdm_phys_to_virt(base);
    for (uint64_t i = 0; i < len; i++)
        p[i] = IMAGE_BYTE(i);
}

static void assert_image_intact(mm_paddr_t base, uint64_t len, const char *where)
{
    const uint8_t *p = hhdm_phys_to_virt(base);
    for (uint64_t i = 0; i < len; i++)
        cr_assert_eq(p[i], IMAGE_BYTE(i), "%s: image byte %#llx overwritten", where,
                     (unsigned long long)i);
}

/* One usable range [0, 256 MiB), as a bootloader that does not know the
 * kernel reports it, with the image at `image` and the boot information in
 * a frame below 1 MiB. Each call initialises a fresh instance over the same
 * simulated memory. */
static void boot_with_image_at(mm_paddr_t image, const char *where)
{
    const pmm_region_t map[] = {{0, 256 * FX_MIB, PMM_REGION_USABLE}};
    const pmm_range_t keep[] = {{image, IMAGE_BYTES}, {0x9000 + 0x10, 0x800}};
    fill_image(image, IMAGE_BYTES);
    fill_image(keep[1].base, keep[1].length);

    pmm_t p;
    memset(&p, 0, sizeof p);
    cr_assert_eq(pmm_init(&p, map, 1, keep, 2), MM_OK, "%s", where);
    fx_check(&p);
    assert_image_intact(image, IMAGE_BYTES, where);
    assert_image_intact(keep[1].base, keep[1].length, where);

    pmm_stats_t s = fx_stats(&p);
    uint64_t i0 = image / FX_PG, i1 = (image + IMAGE_BYTES + FX_PG - 1) / FX_PG;
    uint64_t m0 = s.meta_base / FX_PG, m1 = m0 + s.meta_frames;
    cr_assert(m1 <= i0 || i1 <= m0, "%s: metadata [%#llx, %#llx) over the image", where,
              (unsigned long long)m0, (unsigned long long)m1);
    cr_assert(m0 > 9 || m1 <= 9, "%s: metadata over the boot information", where);
    for (uint64_t f = i0; f < i1; f++)
        cr_assert_eq(pmm_frame_state(&p, f * FX_PG), PMM_FRAME_RESERVED, "%s: frame %#llx",
                     where, (unsigned long long)f);
    cr_assert_eq(pmm_frame_state(&p, 0x9000), PMM_FRAME_RESERVED, "%s", where);
    /* Frame 0, the metadata, the image (rounded outward), the boot frame. */
    cr_assert_eq(s.reserved_frames, 1 + s.meta_frames + (i1 - i0) + 1, "%s", where);
    cr_assert_eq(pmm_reserve(&p, image, IMAGE_BYTES), MM_OK,
                 "%s: reserving the kept image again is harmless", where);

    uint64_t n;
    uint64_t *all = fx_alloc_all(&p, &n);
    for (uint64_t k = 0; k < n; k++) {
        uint64_t f = all[k] / FX_PG;
        cr_assert(f < i0 || f >= i1, "%s: image frame %#llx handed out", where,
                  (unsigned long long)f);
        cr_assert_neq(f, 9, "%s: boot information handed out", where);
    }
    free(all);
    cr_assert_eq(n, s.free_frames, "%s", where);
    fx_check(&p);
}

Test(pmm, boot_keeps_the_kernel_image_wherever_the_map_calls_it_usable)
{
    sim_phys_create(256 * FX_MIB); /* once: the HHDM is set once per process */
    boot_with_image_at(1 * FX_MIB, "image at 1 MiB");
    boot_with_image_at(16 * FX_MIB, "image at 16 MiB (the metadata's preferred spot)");
    boot_with_image_at(16 * FX_MIB - 2 * FX_PG + 0x80, "image straddling 16 MiB, unaligned");
    boot_with_image_at(17 * FX_MIB + 0x234, "image just after 16 MiB");
    boot_with_image_at(256 * FX_MIB - IMAGE_BYTES, "image at the top of RAM");
}

/* The old sequence, init then reserve, with the image where the metadata
 * went: the reservation is refused, so the kernel learns its image was
 * written over instead of carrying on. */
Test(pmm, reserve_over_the_metadata_is_refused)
{
    pmm_t p;
    fx_init_simple(&p, 0, 256 * FX_MIB);
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.meta_base, 16 * FX_MIB);
    mm_paddr_t m_end = s.meta_base + s.meta_frames * FX_PG;

    fx_snap_t snap;
    fx_snap(&p, &snap);
    cr_assert_eq(pmm_reserve(&p, 16 * FX_MIB, IMAGE_BYTES), MM_ERR_OVERLAP, "image on it");
    cr_assert_eq(pmm_reserve(&p, s.meta_base - FX_PG, FX_PG + 1), MM_ERR_OVERLAP,
                 "one byte of it");
    cr_assert_eq(pmm_reserve(&p, m_end - 1, 2 * FX_PG), MM_ERR_OVERLAP, "its last byte");
    cr_assert_eq(pmm_reserve(&p, 0, 256 * FX_MIB), MM_ERR_OVERLAP, "all of memory");
    /* Errors keep their precedence: a range past the span is a range error. */
    cr_assert_eq(pmm_reserve(&p, s.meta_base, 512 * FX_MIB), MM_ERR_RANGE);
    fx_assert_unchanged(&p, &snap, "reservations over the metadata");

    /* Right next to it is fine on both sides. */
    cr_assert_eq(pmm_reserve(&p, s.meta_base - FX_PG, FX_PG), MM_OK);
    cr_assert_eq(pmm_reserve(&p, m_end, FX_PG), MM_OK);
    fx_check(&p);
}

Test(pmm, init_keep_errors_leave_instance_untouched)
{
    const pmm_region_t map[] = {{0, 64 * FX_MIB, PMM_REGION_USABLE}};
    sim_phys_create(64 * FX_MIB);
    pmm_t p, zero;
    memset(&p, 0, sizeof p);
    memset(&zero, 0, sizeof zero);

    cr_assert_eq(pmm_init(&p, map, 1, NULL, 1), MM_ERR_INVALID, "NULL keep with a count");
    const pmm_range_t wraps[] = {{FX_MIB, FX_PG}, {0xfffffffffffff000ull, 0x2000}};
    cr_assert_eq(pmm_init(&p, map, 1, wraps, 2), MM_ERR_INVALID, "a kept range wraps");
    const pmm_range_t everything[] = {{FX_PG, 64 * FX_MIB - FX_PG}};
    cr_assert_eq(pmm_init(&p, map, 1, everything, 1), MM_ERR_NOMEM, "nothing left to manage");
    /* Every other frame of RAM kept: no two managed frames in a row for
     * the metadata, which needs several. */
    const pmm_region_t two[] = {{0, 4 * FX_MIB, PMM_REGION_USABLE},
                                {60 * FX_MIB, 4 * FX_MIB, PMM_REGION_USABLE}};
    static pmm_range_t comb[1024];
    for (size_t i = 0; i < FX_ARRAY_LEN(comb); i++)
        comb[i] = (pmm_range_t){(i < 512 ? 0 : 60 * FX_MIB) + (2 * (i % 512) + 1) * FX_PG + 7, 1};
    cr_assert_gt(fx_meta_bytes(16384), FX_PG);
    cr_assert_eq(pmm_init(&p, two, 2, comb, FX_ARRAY_LEN(comb)), MM_ERR_NOMEM);
    cr_assert(memcmp(&p, &zero, sizeof p) == 0, "a failed init wrote the instance");
    /* Dropping the last k kept frames frees the top 2k frames in a row:
     * just enough pairs for the metadata. */
    size_t k = (size_t)((fx_meta_bytes(16384) + FX_PG - 1) / FX_PG + 1) / 2;
    cr_assert_eq(pmm_init(&p, two, 2, comb, FX_ARRAY_LEN(comb) - k), MM_OK,
                 "just enough pairs of frames left free");
    cr_assert_eq(fx_stats(&p).meta_base, 64 * FX_MIB - 2 * k * FX_PG);
    fx_check(&p);
    memset(&p, 0, sizeof p);

    /* Empty kept ranges are ignored; NULL with count 0 is no list. */
    const pmm_range_t empty[] = {{16 * FX_MIB, 0}};
    cr_assert_eq(pmm_init(&p, map, 1, empty, 1), MM_OK);
    cr_assert_eq(fx_stats(&p).meta_base, 16 * FX_MIB);
    fx_check(&p);
}

/* A pmm_t copied after pmm_init shares the bitmaps but not the lock or the
 * counts: every call through the copy is refused, the original is intact. */
Test(pmm, a_copied_instance_is_refused)
{
    static pmm_t p, copy;
    fx_init_simple(&p, 0, 32 * FX_MIB);
    mm_paddr_t pa;
    cr_assert_eq(pmm_alloc(&p, &pa), MM_OK);
    fx_snap_t snap;
    fx_snap(&p, &snap);
    memcpy(&copy, &p, sizeof p);

    mm_paddr_t out = 7;
    pmm_stats_t st;
    cr_assert_eq(pmm_alloc(&copy, &out), MM_ERR_STATE);
    cr_assert_eq(pmm_alloc_zeroed(&copy, &out), MM_ERR_STATE);
    cr_assert_eq(pmm_alloc_contig(&copy, 4, 4, MM_PADDR_MAX, &out), MM_ERR_STATE);
    cr_assert_eq(pmm_free(&copy, pa), MM_ERR_STATE);
    cr_assert_eq(pmm_free_contig(&copy, pa, 1), MM_ERR_STATE);
    cr_assert_eq(pmm_reserve(&copy, 20 * FX_MIB, FX_PG), MM_ERR_STATE);
    cr_assert_eq(pmm_release(&copy, 20 * FX_MIB, FX_PG), MM_ERR_STATE);
    cr_assert_eq(pmm_get_stats(&copy, &st), MM_ERR_STATE);
    cr_assert_eq(pmm_check(&copy, NULL), MM_ERR_STATE);
    cr_assert_eq(pmm_frame_state(&copy, pa), PMM_FRAME_OUTSIDE);
    cr_assert_eq(pmm_init(&copy, (pmm_region_t[]){{0, 32 * FX_MIB, PMM_REGION_USABLE}}, 1, NULL,
                          0),
                 MM_ERR_STATE, "a copy is not a fresh instance either");
    mm_frame_allocator_t fa = pmm_frame_allocator(&copy);
    cr_assert_eq(fa.alloc(fa.ctx, 1, 1, MM_PADDR_MAX, &out), MM_ERR_STATE);
    cr_assert_eq(out, 7);
    fx_assert_unchanged(&p, &snap, "calls through a copy");
    cr_assert_eq(pmm_free(&p, pa), MM_OK, "the original still works");
    fx_check(&p);
}

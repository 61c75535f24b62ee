#include <stdlib.h>
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "pmm_fixture.h"

/* Managed frames the map promises, minus frame 0 (never handed out). */
static uint64_t expected_managed(const pmm_region_t *map, size_t n, uint64_t span)
{
    uint64_t count = 0;
    for (uint64_t f = 1; f < span; f++)
        count += fx_map_frame_usable(map, n, f);
    return count;
}

static void assert_state(pmm_t *p, uint64_t pa, pmm_frame_state_t want)
{
    pmm_frame_state_t got = pmm_frame_state(p, pa);
    cr_assert_eq(got, want, "frame %#llx: state %d, expected %d", (unsigned long long)pa, got,
                 want);
}

/* Every frame handed out lies in a usable entry, outside the metadata, is
 * not frame 0, and comes out once; then the allocator is empty. */
static void drain_and_verify(pmm_t *p, const pmm_region_t *map, size_t n)
{
    pmm_stats_t s = fx_stats(p);
    uint8_t *seen = calloc(s.span_frames, 1);
    cr_assert_not_null(seen);
    uint64_t count;
    uint64_t *frames = fx_alloc_all(p, &count);
    uint64_t m0 = s.meta_base / FX_PG, m1 = m0 + s.meta_frames;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t f = frames[i] / FX_PG;
        cr_assert_neq(f, 0, "frame 0 handed out");
        cr_assert(f < m0 || f >= m1, "metadata frame %#llx handed out",
                  (unsigned long long)frames[i]);
        cr_assert(fx_map_frame_usable(map, n, f), "frame %#llx is not usable RAM",
                  (unsigned long long)frames[i]);
        cr_assert_not(seen[f], "frame %#llx handed out twice", (unsigned long long)frames[i]);
        seen[f] = 1;
    }
    free(frames);
    free(seen);
    fx_check(p);
}

Test(pmm, init_qemu_256m_exact)
{
    pmm_t p;
    fx_init(&p, fx_qemu_256m, fx_qemu_256m_len, 256 * FX_MIB);
    pmm_stats_t s = fx_stats(&p);

    /* Bitmap up to the end of the highest usable frame, not the 1 TiB hole. */
    cr_assert_eq(s.span_frames, 0xffe0);
    uint64_t meta = (fx_meta_bytes(0xffe0) + FX_PG - 1) / FX_PG;
    cr_assert_eq(s.meta_frames, meta);
    cr_assert_eq(s.meta_base, 16 * FX_MIB, "metadata prefers the first run above 16 MiB");

    /* [0,0x9fc00): frames 0..0x9e (0x9f000 is cut by the reserved
     * 0x9fc00), minus frame 0; [0x100000,0xffe0000): 0xfee0 frames. */
    uint64_t managed = (0x9f - 1) + 0xfee0 - meta;
    cr_assert_eq(managed, expected_managed(fx_qemu_256m, fx_qemu_256m_len, s.span_frames) - meta);
    cr_assert_eq(s.usable_frames, managed);
    cr_assert_eq(s.free_frames, managed);
    cr_assert_eq(s.used_frames, 0);
    cr_assert_eq(s.reserved_frames, s.span_frames - managed);

    assert_state(&p, 0x0, PMM_FRAME_RESERVED);
    assert_state(&p, 0x1000, PMM_FRAME_FREE);
    assert_state(&p, 0x9e000, PMM_FRAME_FREE);
    assert_state(&p, 0x9f000, PMM_FRAME_RESERVED); /* partially reserved */
    assert_state(&p, 0xa0000, PMM_FRAME_RESERVED);
    assert_state(&p, 0xff000, PMM_FRAME_RESERVED);
    assert_state(&p, 0x100000, PMM_FRAME_FREE);
    assert_state(&p, s.meta_base, PMM_FRAME_RESERVED);
    assert_state(&p, s.meta_base + (meta - 1) * FX_PG, PMM_FRAME_RESERVED);
    assert_state(&p, s.meta_base + meta * FX_PG, PMM_FRAME_FREE);
    assert_state(&p, 0xffdf000, PMM_FRAME_FREE);
    assert_state(&p, 0xffe0000, PMM_FRAME_OUTSIDE);
    assert_state(&p, 0xfd00000000, PMM_FRAME_OUTSIDE);

    drain_and_verify(&p, fx_qemu_256m, fx_qemu_256m_len);
}

Test(pmm, init_qemu_8g_exact)
{
    pmm_t p;
    fx_init(&p, fx_qemu_8g, fx_qemu_8g_len, 0x240000000ull);
    pmm_stats_t s = fx_stats(&p);

    cr_assert_eq(s.span_frames, 0x240000);
    uint64_t meta = (fx_meta_bytes(0x240000) + FX_PG - 1) / FX_PG;
    cr_assert_eq(s.meta_frames, meta);
    cr_assert_lt(s.meta_bytes, 2 * FX_MIB, "reserved entries above RAM must not grow the bitmap");
    cr_assert_eq(s.meta_base, 16 * FX_MIB);

    /* 0x9e frames low, 0xbfee0 below the PCI hole, 0x140000 above 4 GiB. */
    uint64_t managed = (0x9f - 1) + 0xbfee0 + 0x140000 - meta;
    cr_assert_eq(s.usable_frames, managed);
    cr_assert_eq(s.free_frames, managed);
    cr_assert_eq(s.reserved_frames, 0x240000 - managed);

    assert_state(&p, 0x0, PMM_FRAME_RESERVED);
    assert_state(&p, 0x9f000, PMM_FRAME_RESERVED);
    assert_state(&p, 0xbffdf000, PMM_FRAME_FREE);
    assert_state(&p, 0xbffe0000, PMM_FRAME_RESERVED);
    assert_state(&p, 0xc0000000, PMM_FRAME_RESERVED); /* hole: in no entry */
    assert_state(&p, 0xfffc0000, PMM_FRAME_RESERVED);
    assert_state(&p, 0xfffff000, PMM_FRAME_RESERVED);
    assert_state(&p, 0x100000000, PMM_FRAME_FREE);
    assert_state(&p, 0x23ffff000, PMM_FRAME_FREE);
    assert_state(&p, 0x240000000, PMM_FRAME_OUTSIDE);

    drain_and_verify(&p, fx_qemu_8g, fx_qemu_8g_len);
}

/* Unsorted, overlapping, unaligned, empty and reserved-inside-usable
 * entries; every frame's state is compared with a brute-force reading of
 * the map. */
Test(pmm, init_messy_map_matches_brute_force)
{
    const pmm_region_t map[] = {
        {0x2000000, 0x1000000, PMM_REGION_USABLE},            /* 32..48 MiB */
        {0x100800, 0xff800, PMM_REGION_USABLE},               /* unaligned start */
        {0x500000, 0, PMM_REGION_RESERVED},                   /* empty */
        {0x300000, 0x1234, PMM_REGION_ACPI_RECLAIMABLE},      /* grows to 2 frames */
        {0x1000, 0x7ffff, PMM_REGION_USABLE},                 /* unaligned end */
        {0x1000000, 0x1800000, PMM_REGION_USABLE},            /* overlaps the first */
        {0x2100000, 0x10, PMM_REGION_RESERVED},               /* inside usable */
        {0x280fff0, 0x20, PMM_REGION_BAD_MEMORY},             /* straddles a frame edge */
        {0x1000000, 0x1000, PMM_REGION_FRAMEBUFFER},          /* first usable frame */
        {0x2ffffff, 0x1, PMM_REGION_BOOTLOADER_RECLAIMABLE},  /* last usable frame */
        {0x3000000, 0x0, PMM_REGION_USABLE},                  /* empty usable */
        {0x3400800, 0x800, PMM_REGION_USABLE},                /* no whole frame */
        {0x8000000000, 0x1000, PMM_REGION_RESERVED},          /* far above RAM */
        {0x200000, 0x100000, PMM_REGION_USABLE},              /* overlaps the unaligned one */
    };
    size_t n = FX_ARRAY_LEN(map);
    pmm_t p;
    fx_init(&p, map, n, 64 * FX_MIB);
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.span_frames, 0x3000, "span ends at the highest usable frame (48 MiB)");
    uint64_t m0 = s.meta_base / FX_PG, m1 = m0 + s.meta_frames;
    uint64_t managed = 0;
    for (uint64_t f = 0; f < s.span_frames; f++) {
        bool want = f != 0 && (f < m0 || f >= m1) && fx_map_frame_usable(map, n, f);
        managed += want;
        assert_state(&p, f * FX_PG, want ? PMM_FRAME_FREE : PMM_FRAME_RESERVED);
    }
    cr_assert_eq(s.free_frames, managed);
    cr_assert_geq(s.meta_base, 16 * FX_MIB);
    cr_assert(fx_map_frame_usable(map, n, m0) && fx_map_frame_usable(map, n, m1 - 1),
              "metadata inside usable memory");
    drain_and_verify(&p, map, n);
}

/* Random maps and kept ranges over one simulated memory: each
 * initialisation must agree with the brute-force reading frame by frame. */
Test(pmm, init_random_maps_match_brute_force)
{
    sim_phys_create(16 * FX_MIB);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    static const pmm_region_type_t types[] = {
        PMM_REGION_USABLE,           PMM_REGION_USABLE, PMM_REGION_USABLE,
        PMM_REGION_RESERVED,         PMM_REGION_ACPI_RECLAIMABLE,
        PMM_REGION_ACPI_NVS,         PMM_REGION_BOOTLOADER_RECLAIMABLE,
    };
    int initialised = 0;
    for (int round = 0; round < 60; round++) {
        pmm_region_t map[12];
        size_t n = 1 + fx_rand(&rng) % FX_ARRAY_LEN(map);
        for (size_t i = 0; i < n; i++) {
            map[i].base = fx_rand(&rng) % (16 * FX_MIB);
            uint64_t room = 16 * FX_MIB - map[i].base;
            map[i].length = fx_rand(&rng) % 4 == 0 ? fx_rand(&rng) % 0x3000 : fx_rand(&rng) % room;
            if (fx_rand(&rng) % 3 == 0)
                map[i].base &= ~(FX_PG - 1);
            map[i].type = types[fx_rand(&rng) % FX_ARRAY_LEN(types)];
        }
        /* Kept ranges join the brute-force map as reserved entries. */
        pmm_range_t keep[3];
        size_t nkeep = fx_rand(&rng) % 4;
        pmm_region_t all[FX_ARRAY_LEN(map) + FX_ARRAY_LEN(keep)];
        memcpy(all, map, n * sizeof map[0]);
        for (size_t i = 0; i < nkeep; i++) {
            keep[i].base = fx_rand(&rng) % (16 * FX_MIB);
            keep[i].length = fx_rand(&rng) % (2 * FX_MIB);
            all[n + i] = (pmm_region_t){keep[i].base, keep[i].length, PMM_REGION_RESERVED};
        }
        pmm_t p;
        memset(&p, 0, sizeof p);
        mm_status_t st = pmm_init(&p, map, n, nkeep ? keep : NULL, nkeep);
        /* The span: up to the highest usable or reclaimable whole frame,
         * when there is any usable one. */
        uint64_t span = 0, reclaim_end = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t b = (map[i].base + FX_PG - 1) / FX_PG;
            uint64_t e = (map[i].base + map[i].length) / FX_PG;
            if (map[i].length == 0 || e <= b)
                continue;
            if (map[i].type == PMM_REGION_USABLE && e > span)
                span = e;
            if ((map[i].type == PMM_REGION_BOOTLOADER_RECLAIMABLE ||
                 map[i].type == PMM_REGION_ACPI_RECLAIMABLE) &&
                e > reclaim_end)
                reclaim_end = e;
        }
        if (span != 0 && reclaim_end > span)
            span = reclaim_end;
        if (st != MM_OK) {
            /* Only a map without room for the metadata may fail. */
            cr_assert_eq(st, MM_ERR_NOMEM, "round %d: %s", round, mm_status_str(st));
            cr_assert_eq(p.magic, 0, "failed init wrote the instance");
            continue;
        }
        fx_check(&p);
        initialised++;
        pmm_stats_t s = fx_stats(&p);
        cr_assert_eq(s.span_frames, span, "round %d", round);
        uint64_t m0 = s.meta_base / FX_PG, m1 = m0 + s.meta_frames;
        uint64_t managed = 0;
        for (uint64_t f = 0; f < span; f++) {
            bool want = f != 0 && (f < m0 || f >= m1) && fx_map_frame_usable(all, n + nkeep, f);
            managed += want;
            assert_state(&p, f * FX_PG, want ? PMM_FRAME_FREE : PMM_FRAME_RESERVED);
        }
        cr_assert_eq(s.free_frames, managed, "round %d", round);
        for (uint64_t f = m0; f < m1; f++)
            cr_assert(fx_map_frame_usable(all, n + nkeep, f),
                      "round %d: metadata on an unusable or kept frame", round);
    }
    cr_assert_gt(initialised, 30, "the random maps should mostly be initialisable");
}

Test(pmm, init_metadata_falls_back_below_16m)
{
    pmm_t p;
    fx_init_simple(&p, 0, 8 * FX_MIB);
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.meta_base, FX_PG, "lowest run above frame 0");
    cr_assert_eq(s.free_frames, 2048 - 1 - s.meta_frames);
}

Test(pmm, init_metadata_skips_reserved_holes)
{
    /* From 16 MiB every other frame is touched by a one-byte reserved
     * entry: the metadata needs a contiguous run and goes past them. */
    pmm_region_t map[8] = {{0, 64 * FX_MIB, PMM_REGION_USABLE}};
    for (int i = 1; i < 8; i++) {
        map[i].base = 16 * FX_MIB + (uint64_t)(2 * i - 1) * FX_PG + 100;
        map[i].length = 1;
        map[i].type = PMM_REGION_RESERVED;
    }
    pmm_t p;
    fx_init(&p, map, 8, 64 * FX_MIB);
    pmm_stats_t s = fx_stats(&p);
    cr_assert_gt(s.meta_frames, 1);
    cr_assert_eq(s.meta_base, 16 * FX_MIB + 14 * FX_PG);
}

Test(pmm, init_errors_leave_instance_untouched)
{
    pmm_region_t good[] = {{0, 16 * FX_MIB, PMM_REGION_USABLE}};
    pmm_t p, zero;
    memset(&p, 0, sizeof p);
    memset(&zero, 0, sizeof zero);

    /* Before the HHDM exists nothing can be written. */
    cr_assert_eq(pmm_init(&p, good, 1, NULL, 0), MM_ERR_STATE);
    sim_phys_create(16 * FX_MIB);

    cr_assert_eq(pmm_init(NULL, good, 1, NULL, 0), MM_ERR_INVALID);
    cr_assert_eq(pmm_init(&p, NULL, 1, NULL, 0), MM_ERR_INVALID);
    cr_assert_eq(pmm_init(&p, good, 0, NULL, 0), MM_ERR_INVALID);
    pmm_region_t bad_type[] = {{0, 16 * FX_MIB, (pmm_region_type_t)99}};
    cr_assert_eq(pmm_init(&p, bad_type, 1, NULL, 0), MM_ERR_INVALID);
    pmm_region_t wraps[] = {good[0], {0xfffffffffffff000ull, 0x2000, PMM_REGION_RESERVED}};
    cr_assert_eq(pmm_init(&p, wraps, 2, NULL, 0), MM_ERR_INVALID);
    pmm_region_t none[] = {{0, 16 * FX_MIB, PMM_REGION_RESERVED},
                           {0x1000, 0x800, PMM_REGION_USABLE}};
    cr_assert_eq(pmm_init(&p, none, 2, NULL, 0), MM_ERR_NOMEM);
    pmm_region_t only_zero[] = {{0, FX_PG, PMM_REGION_USABLE}};
    cr_assert_eq(pmm_init(&p, only_zero, 1, NULL, 0), MM_ERR_NOMEM,
                 "frame 0 cannot hold the bitmap");
    pmm_region_t beyond[] = {{0, 32 * FX_MIB, PMM_REGION_USABLE}};
    cr_assert_eq(pmm_init(&p, beyond, 1, NULL, 0), MM_ERR_RANGE, "RAM beyond the HHDM window");
    cr_assert(memcmp(&p, &zero, sizeof p) == 0, "a failed init wrote the instance");

    /* Calls on an uninitialised instance. */
    mm_paddr_t pa = 7;
    cr_assert_eq(pmm_alloc(&p, &pa), MM_ERR_STATE);
    cr_assert_eq(pmm_alloc_contig(&p, 2, 1, MM_PADDR_MAX, &pa), MM_ERR_STATE);
    cr_assert_eq(pmm_free(&p, 0x1000), MM_ERR_STATE);
    cr_assert_eq(pmm_free_contig(&p, 0x1000, 2), MM_ERR_STATE);
    cr_assert_eq(pmm_reserve(&p, 0x1000, 1), MM_ERR_STATE);
    cr_assert_eq(pmm_release(&p, 0x1000, FX_PG), MM_ERR_STATE);
    pmm_stats_t s;
    cr_assert_eq(pmm_get_stats(&p, &s), MM_ERR_STATE);
    cr_assert_eq(pmm_check(&p, NULL), MM_ERR_STATE);
    cr_assert_eq(pmm_frame_state(&p, 0x1000), PMM_FRAME_OUTSIDE);
    cr_assert_eq(pa, 7);

    cr_assert_eq(pmm_init(&p, good, 1, NULL, 0), MM_OK);
    fx_check(&p);
    pmm_t copy;
    memcpy(&copy, &p, sizeof p);
    cr_assert_eq(pmm_init(&p, good, 1, NULL, 0), MM_ERR_STATE, "initialised twice");
    cr_assert(memcmp(&copy, &p, sizeof p) == 0);
}

/* A map whose highest usable entry ends at the top of the window and whose
 * span is not a multiple of 64 frames or of 4096. */
Test(pmm, init_odd_span)
{
    pmm_t p;
    fx_init_simple(&p, 0, 20 * FX_MIB + 37 * FX_PG);
    pmm_stats_t s = fx_stats(&p);
    cr_assert_eq(s.span_frames, 5120 + 37);
    drain_and_verify(&p, (pmm_region_t[]){{0, 20 * FX_MIB + 37 * FX_PG, PMM_REGION_USABLE}}, 1);
}

Test(pmm, init_no_room_for_metadata)
{
    /* Single usable frames with gaps between them: the 128 MiB span needs
     * several metadata frames in a row and there is no such run. */
    sim_phys_create(128 * FX_MIB);
    pmm_region_t crumbs[65];
    for (int i = 0; i < 64; i++)
        crumbs[i] = (pmm_region_t){(uint64_t)(2 * i + 1) * FX_PG, FX_PG, PMM_REGION_USABLE};
    crumbs[64] = (pmm_region_t){128 * FX_MIB - FX_PG, FX_PG, PMM_REGION_USABLE};
    cr_assert_gt(fx_meta_bytes(32768), FX_PG);
    pmm_t p, zero;
    memset(&p, 0, sizeof p);
    memset(&zero, 0, sizeof zero);
    cr_assert_eq(pmm_init(&p, crumbs, 65, NULL, 0), MM_ERR_NOMEM);
    cr_assert(memcmp(&p, &zero, sizeof p) == 0);
}

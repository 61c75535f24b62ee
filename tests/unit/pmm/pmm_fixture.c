#include <stdlib.h>
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "pmm_fixture.h"

const pmm_region_t fx_qemu_256m[] = {
    {0x0, 0x9fc00, PMM_REGION_USABLE},
    {0x9fc00, 0x400, PMM_REGION_RESERVED},
    {0xf0000, 0x10000, PMM_REGION_RESERVED},
    {0x100000, 0xffe0000 - 0x100000, PMM_REGION_USABLE},
    {0xffe0000, 0x20000, PMM_REGION_RESERVED},
    {0xfffc0000, 0x40000, PMM_REGION_RESERVED},
    {0xfd00000000, 0x300000000, PMM_REGION_RESERVED},
};
const size_t fx_qemu_256m_len = FX_ARRAY_LEN(fx_qemu_256m);

const pmm_region_t fx_qemu_8g[] = {
    {0x0, 0x9fc00, PMM_REGION_USABLE},
    {0x9fc00, 0x400, PMM_REGION_RESERVED},
    {0xf0000, 0x10000, PMM_REGION_RESERVED},
    {0x100000, 0xbffe0000 - 0x100000, PMM_REGION_USABLE},
    {0xbffe0000, 0x20000, PMM_REGION_RESERVED},
    {0xfffc0000, 0x40000, PMM_REGION_RESERVED},
    {0x100000000, 0x140000000, PMM_REGION_USABLE},
    {0xfd00000000, 0x300000000, PMM_REGION_RESERVED},
};
const size_t fx_qemu_8g_len = FX_ARRAY_LEN(fx_qemu_8g);

static uint64_t words_for(uint64_t bits)
{
    return (bits + 63) / 64;
}

uint64_t fx_meta_bytes(uint64_t span)
{
    uint64_t words = words_for(span);
    /* free+usable pairs, poison, held pairs (own, remote), held groups'
     * owners (16 bits per 512 frames, in whole words) */
    uint64_t bytes = words * 8 * (HADRON_MM_PMM_POISON ? 5 : 4);
    bytes += ((span + 511) / 512 + 3) / 4 * 8;
    for (uint64_t w = words; w > 1;) {
        w = words_for(w);
        bytes += w * 8;
    }
    uint64_t chunks = words_for(words);
    bytes += chunks * 8;
    for (uint64_t w = chunks; w > 1;) {
        w = words_for(w);
        bytes += w * 8;
    }
    return bytes + chunks * 2;
}

bool fx_map_frame_usable(const pmm_region_t *map, size_t n, uint64_t frame)
{
    uint64_t lo = frame * FX_PG, hi = lo + FX_PG; /* [lo, hi) */
    bool covered = false;
    for (size_t i = 0; i < n; i++) {
        if (map[i].length == 0)
            continue;
        uint64_t b = map[i].base, e = map[i].base + map[i].length;
        if (map[i].type == PMM_REGION_USABLE) {
            if (b <= lo && e >= hi)
                covered = true;
        } else if (b < hi && e > lo) {
            return false;
        }
    }
    return covered;
}

void fx_check(pmm_t *p)
{
    const char *why = NULL;
    mm_status_t st = pmm_check(p, &why);
    cr_assert_eq(st, MM_OK, "pmm_check: %s", why ? why : mm_status_str(st));
    cr_assert_eq(test_irq_depth(), 0, "a lock was left held");
}

void fx_init(pmm_t *p, const pmm_region_t *map, size_t n, uint64_t sim_bytes)
{
    sim_phys_create(sim_bytes);
    /* The bitmap's own placement rules are what most tests pin down, so
     * they run on the locked path; test_pcp.c picks CPU indexes itself. */
    test_cpu_index = FX_NO_CPU;
    memset(p, 0, sizeof *p);
    mm_status_t st = pmm_init(p, map, n, NULL, 0);
    cr_assert_eq(st, MM_OK, "pmm_init: %s", mm_status_str(st));
    fx_check(p);
}

void fx_init_simple(pmm_t *p, uint64_t base, uint64_t len)
{
    pmm_region_t map[] = {{base, len, PMM_REGION_USABLE}};
    fx_init(p, map, 1, base + len);
}

void fx_snap(pmm_t *p, fx_snap_t *s)
{
    s->stats = fx_stats(p);
    s->hint = p->hint;
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++) {
        s->pcp_count[i] = atomic_load(&p->pcp[i].count);
        memcpy(s->pcp_frames[i], p->pcp[i].frames, sizeof s->pcp_frames[i]);
    }
    s->bytes = s->stats.meta_bytes;
    s->meta = malloc(s->bytes);
    cr_assert_not_null(s->meta);
    memcpy(s->meta, hhdm_phys_to_virt(s->stats.meta_base), s->bytes);
}

void fx_assert_unchanged(pmm_t *p, fx_snap_t *s, const char *what)
{
    pmm_stats_t now = fx_stats(p);
    cr_assert(memcmp(&now, &s->stats, sizeof now) == 0, "%s: stats changed", what);
    cr_assert_eq(p->hint, s->hint, "%s: hint changed", what);
    for (unsigned i = 0; i < HADRON_MM_MAX_CPUS; i++) {
        cr_assert_eq(atomic_load(&p->pcp[i].count), s->pcp_count[i], "%s: cache %u changed", what,
                     i);
        cr_assert(memcmp(p->pcp[i].frames, s->pcp_frames[i], sizeof s->pcp_frames[i]) == 0,
                  "%s: cache %u changed", what, i);
    }
    cr_assert(memcmp(hhdm_phys_to_virt(now.meta_base), s->meta, s->bytes) == 0,
              "%s: metadata changed", what);
    free(s->meta);
    s->meta = NULL;
    fx_check(p);
}

uint64_t *fx_alloc_all(pmm_t *p, uint64_t *count)
{
    uint64_t n = fx_stats(p).free_frames;
    uint64_t *frames = malloc((n + 1) * sizeof *frames);
    cr_assert_not_null(frames);
    for (uint64_t i = 0; i < n; i++) {
        mm_paddr_t pa;
        mm_status_t st = pmm_alloc(p, &pa);
        cr_assert_eq(st, MM_OK, "alloc %llu of %llu: %s", (unsigned long long)i,
                     (unsigned long long)n, mm_status_str(st));
        frames[i] = pa;
    }
    mm_paddr_t pa = 0;
    cr_assert_eq(pmm_alloc(p, &pa), MM_ERR_NOMEM);
    *count = n;
    return frames;
}

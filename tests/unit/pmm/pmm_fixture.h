/*
 * Shared fixtures for the pmm tests: the memory maps QEMU really reports,
 * simulated memory set-up, invariant checking and before/after snapshots.
 */
#ifndef PMM_FIXTURE_H
#define PMM_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <criterion/criterion.h>

#include <hadron/mm/pmm.h>

#include "mm_test.h"

#define FX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FX_KIB 1024ull
#define FX_MIB (1024ull * FX_KIB)
#define FX_GIB (1024ull * FX_MIB)
#define FX_PG 4096ull

/* SeaBIOS e820 through PVH, `qemu-system-x86_64 -m 256M` and `-m 8G`. */
extern const pmm_region_t fx_qemu_256m[];
extern const size_t fx_qemu_256m_len;
extern const pmm_region_t fx_qemu_8g[];
extern const size_t fx_qemu_8g_len;

/* Metadata size the pmm needs for a span (mirrors the documented layout:
 * free, usable and (poison builds) poison bitmaps, two summary trees,
 * 16-bit chunk bounds). */
uint64_t fx_meta_bytes(uint64_t span_frames);

/* Brute-force classification of one frame against a map: managed iff a
 * usable entry covers all of it and no other entry touches it (frame 0
 * and the metadata are the pmm's own business, not the map's). */
bool fx_map_frame_usable(const pmm_region_t *map, size_t n, uint64_t frame);

/* Creates simulated memory of `sim_bytes` and initialises `p` from `map`,
 * asserting success and every invariant. */
void fx_init(pmm_t *p, const pmm_region_t *map, size_t n, uint64_t sim_bytes);

/* One usable range [base, base + len) in a fresh simulated memory of
 * base + len bytes. */
void fx_init_simple(pmm_t *p, uint64_t base, uint64_t len);

/* pmm_check must pass, and no lock may be left held. */
void fx_check(pmm_t *p);

static inline pmm_stats_t fx_stats(pmm_t *p)
{
    pmm_stats_t s;
    cr_assert_eq(pmm_get_stats(p, &s), MM_OK);
    return s;
}

/* A CPU index past every cache: the locked path (fx_init's default). */
#define FX_NO_CPU HADRON_MM_MAX_CPUS

/* Everything an operation could change: stats, hint, every metadata byte
 * (bitmaps, summaries, chunk bounds) and every cache's frames. */
typedef struct fx_snap {
    pmm_stats_t stats;
    uint64_t hint;
    unsigned pcp_count[HADRON_MM_MAX_CPUS];
    uint64_t pcp_frames[HADRON_MM_MAX_CPUS][PMM_PCP_HIGH];
    uint8_t *meta;
    size_t bytes;
} fx_snap_t;

void fx_snap(pmm_t *p, fx_snap_t *s);
/* Asserts nothing changed since fx_snap, then frees the snapshot. */
void fx_assert_unchanged(pmm_t *p, fx_snap_t *s, const char *what);

/* Allocates every free frame (single-frame path) into a malloc'd array. */
uint64_t *fx_alloc_all(pmm_t *p, uint64_t *count);

/* xorshift64*: deterministic, seeded per test. */
static inline uint64_t fx_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

#endif /* PMM_FIXTURE_H */

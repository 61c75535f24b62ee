/*
 * VMM test fixture: simulated physical memory, a backing frame allocator
 * (the real PMM when it is built, else the shared test frame pool), a wrapper that
 * fails the k-th allocation, and a mapper (the fake, or a real one), with
 * the VMM set up over a default layout.
 *
 * The same test sources build two executables: test-vmm runs each FX_TEST
 * body over the fake mapper (suite vmm_fake) and the x86_64 mapper
 * (vmm_x86); test-vmm-a64 (-DVMM_TEST_MAPPER_A64=1) runs them over the
 * AArch64 mapper (vmm_a64) only, so fake-only tests are not run twice, and
 * test-vmm-a64-separate (also -DVMM_TEST_A64_SEPARATE=1) over the AArch64
 * mapper with the kernel half in a root of its own (vmm_a64_separate).
 *
 * Criterion runs every test in a fresh process, so a fixture lives in static
 * storage (the VMM keeps pointers into it).
 */
#ifndef VMM_FIXTURE_H
#define VMM_FIXTURE_H

#include <criterion/criterion.h>

#include <hadron/mm/vmm.h>

#include "fake_mapper.h"
#include "mm_test.h"

#if VMM_TEST_HAVE_PMM
#include <hadron/mm/pmm.h>
#else
#include "frame_pool.h"
#endif
#ifndef VMM_TEST_MAPPER_A64
#define VMM_TEST_MAPPER_A64 0
#endif
#ifndef VMM_TEST_A64_SEPARATE
#define VMM_TEST_A64_SEPARATE 0
#endif
/* Whether the real mapper of this executable keeps the kernel half in a
 * root of its own (AArch64 TTBR1): user roots then share nothing, hold
 * user addresses up to 2^48, and "no user half" is root 0. */
#define FX_KERNEL_ROOT_SEPARATE VMM_TEST_A64_SEPARATE
/* The real mapper of this executable (FX_REAL), its Criterion suite, and
 * whether the fake-mapper variants are built here. */
#if VMM_TEST_MAPPER_A64
#include <hadron/mm/a64pt.h>
#define FX_HAVE_REAL 1
#define FX_HAVE_FAKE 0
#if VMM_TEST_A64_SEPARATE
#define FX_REAL_SUITE vmm_a64_separate
#else
#define FX_REAL_SUITE vmm_a64
#endif
#elif VMM_TEST_HAVE_X86PT
#include <hadron/mm/x86pt.h>
#define FX_HAVE_REAL 1
#define FX_HAVE_FAKE 1
#define FX_REAL_SUITE vmm_x86
#else
#define FX_HAVE_REAL 0
#define FX_HAVE_FAKE 1
#endif

#define P 4096ull
/* The call must succeed. */
#define OK(call)                                                                                   \
    do {                                                                                           \
        mm_status_t st_ = (call);                                                                  \
        cr_assert_eq(st_, MM_OK, "%s: %s", #call, mm_status_str(st_));                             \
    } while (0)

#define FX_SIM_BYTES (64ull << 20)
#define FX_HHDM_BASE 0xffff800000000000ull

/* Fails the fail_at-th alloc call (1-based; 0 never), or every call from
 * then on when sticky. Frees pass through. */
typedef struct failing_fa {
    mm_frame_allocator_t inner;
    unsigned long calls;
    unsigned long fail_at;
    bool sticky;
    unsigned long failures;
} failing_fa_t;

typedef enum fx_kind { FX_FAKE, FX_REAL } fx_kind_t;

typedef struct fx_opts {
    uint64_t stack_size;
    vmm_range_t *heap_slots;
    size_t heap_slot_count;
    vmm_range_t *stack_slots;
    size_t stack_slot_count;
    vmm_range_t *mmio_slots;
    size_t mmio_slot_count;
    const mm_va_space_t *space; /* FX_FAKE only: the space the fake models */
    mm_vaddr_t hhdm_base;       /* 0: FX_HHDM_BASE */
    uint32_t asids;             /* vmm_config_t.asids (0: FX_ASIDS) */
    bool no_asids;              /* vmm_config_t.asids = 0 */
} fx_opts_t;

/* Identities the fixture's VMM hands out by default (a PCID-sized set). */
#define FX_ASIDS 4096u

typedef struct fx {
    fx_kind_t kind;
    layout_t layout;
#if VMM_TEST_HAVE_PMM
    pmm_t pmm;
#else
    frame_pool_t pool;
#endif
    mm_frame_allocator_t backing;
    failing_fa_t fail;
    mm_frame_allocator_t fa; /* the failing wrapper: what VMM and mapper use */
    fake_pm_t *fake;
#if VMM_TEST_MAPPER_A64
    a64pt_t a64;
#elif VMM_TEST_HAVE_X86PT
    x86pt_t x86;
#endif
    mm_page_mapper_t mapper;
    mm_paddr_t kroot;
    vmm_config_t cfg;
    vmm_t vmm;
} fx_t;

/* Everything an all-or-nothing operation must leave as it found it. */
typedef struct fx_snapshot {
    uint64_t free_frames;
    uint64_t kernel_digest;
    vmm_region_freelist_t heap, stacks, mmio;
    vmm_range_t heap_slots[VMM_DEFAULT_RANGE_SLOTS];
    vmm_range_t stack_slots[VMM_DEFAULT_RANGE_SLOTS], mmio_slots[VMM_DEFAULT_RANGE_SLOTS];
    vmm_stats_t stats;
} fx_snapshot_t;

/* Sets up memory, allocator, mapper and kernel root; vmm_init too unless
 * no_vmm. */
void fx_setup(fx_t *fx, fx_kind_t kind, const fx_opts_t *opts, bool no_vmm);
uint64_t fx_free_frames(fx_t *fx);
void fx_fail_at(fx_t *fx, unsigned long k, bool sticky);
/* Hash of every leaf and the table counts of `root`. */
uint64_t fx_digest(fx_t *fx, mm_paddr_t root);
void fx_snapshot(fx_t *fx, fx_snapshot_t *s);
void fx_assert_unchanged(fx_t *fx, const fx_snapshot_t *s);
/* vmm_check, the allocator's own check, no lock left held. */
void fx_assert_sane(fx_t *fx);
/* Translate through `root` with the fixture's mapper. */
mm_status_t fx_translate(fx_t *fx, mm_paddr_t root, mm_vaddr_t va, mm_translation_t *out);
/* Leaves mapped under root (user half only for user roots). */
size_t fx_leaf_count(fx_t *fx, mm_paddr_t root);

/* An operation under test for fx_fail_each_k. */
typedef mm_status_t (*fx_op_fn)(fx_t *fx, void *arg);

/* Runs `op` with the k-th frame-allocation call failing (only that call, or
 * every call from it on when sticky), for k = 1, 2, ... until a run makes no
 * failing call. Every run that hit a failure must return MM_ERR_NOMEM (or
 * `alt`, if not MM_OK) and leave frames, page tables, regions and stats
 * exactly as before. The last run succeeds and is kept. Returns how many
 * runs failed. */
unsigned long fx_fail_each_k(fx_t *fx, fx_op_fn op, void *arg, bool sticky);

/* Defines a test body run against the fake mapper and the real mapper of
 * this executable: suites vmm_fake and vmm_x86 in test-vmm, vmm_a64 in
 * test-vmm-a64 (Meson suite `vmm` either way). */
#if FX_HAVE_REAL
#define FX_TEST_REAL(name)                                                                         \
    Test(FX_REAL_SUITE, name)                                                                      \
    {                                                                                              \
        static fx_t fx;                                                                            \
        fx_setup(&fx, FX_REAL, NULL, false);                                                       \
        name##_body(&fx);                                                                          \
    }
#else
#define FX_TEST_REAL(name)
#endif
#if FX_HAVE_FAKE
#define FX_TEST_FAKE(name)                                                                         \
    Test(vmm_fake, name)                                                                           \
    {                                                                                              \
        static fx_t fx;                                                                            \
        fx_setup(&fx, FX_FAKE, NULL, false);                                                       \
        name##_body(&fx);                                                                          \
    }
/* A test only the fake mapper can run (it drives the fake's failure hooks). */
#define FX_FAKE_ONLY(name) Test(vmm_fake, name)
#else
#define FX_TEST_FAKE(name)
#define FX_FAKE_ONLY(name) static void __attribute__((unused)) name##_fake_only(void)
#endif
#define FX_TEST(name)                                                                              \
    static void name##_body(fx_t *fx);                                                             \
    FX_TEST_FAKE(name)                                                                             \
    FX_TEST_REAL(name)                                                                             \
    static void name##_body(fx_t *fx)

#endif

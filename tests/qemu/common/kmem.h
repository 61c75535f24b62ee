/*
 * Test kernel: the memory-management objects kmain brings up, shared by the
 * checks. Each component is optional: meson.build defines KTEST_HAVE_<X>
 * when hadron-mm's tree has that library, so the kernel grows with it.
 */
#ifndef KTEST_KMEM_H
#define KTEST_KMEM_H

#include <hadron/mm/frame_alloc.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/page_mapper.h>

#ifndef KTEST_HAVE_PMM
#define KTEST_HAVE_PMM 0
#endif
#ifndef KTEST_HAVE_PAGING
#define KTEST_HAVE_PAGING 0
#endif
#ifndef KTEST_HAVE_VMM
#define KTEST_HAVE_VMM 0
#endif
#ifndef KTEST_HAVE_KHEAP
#define KTEST_HAVE_KHEAP 0
#endif

/* The VMM maps through the kernel's page-table mapper: without it there is
 * no VMM. */
#if KTEST_HAVE_VMM && !KTEST_HAVE_PAGING
#undef KTEST_HAVE_VMM
#define KTEST_HAVE_VMM 0
#endif

#if KTEST_HAVE_PMM
#include <hadron/mm/pmm.h>

#include "reclaim.h"
#endif
#if KTEST_HAVE_PAGING
#include "arch_mm.h"
#endif
#if KTEST_HAVE_VMM
#include <hadron/mm/vmm.h>
#endif
#if KTEST_HAVE_KHEAP
#include <hadron/mm/kheap.h>
#endif

/* Where frames come from: the PMM when built in, else bootmem (a bump
 * allocator over the largest RAM range that never reuses a frame). */
extern mm_frame_allocator_t kernel_frames;
extern bool kernel_frames_ready;
/* Free frames right now, when the allocator can tell (PMM); else false. */
bool kernel_frames_free_count(uint64_t *out);

#if KTEST_HAVE_PMM
extern pmm_t kernel_pmm;
extern mm_status_t kernel_pmm_status;
extern pmm_region_t kernel_pmm_map[];
extern size_t kernel_pmm_map_count;
extern pmm_stats_t kernel_pmm_stats_at_init;
/* kernel_pmm over the boot map, the kernel image and the extra ranges
 * (reserved on top); kernel_frames from it. */
void kernel_pmm_bringup(const pmm_region_t *extra, size_t extra_count);
/* Releases the bootloader-reclaimable ranges of kernel_pmm_map (reclaim.c)
 * and records the free count around it. */
void mem_reclaim_boot(void);
extern reclaim_result_t kernel_reclaim;
extern mm_status_t kernel_reclaim_status; /* MM_ERR_STATE: not run */
extern uint64_t kernel_reclaim_free_before, kernel_reclaim_free_after;
#endif

void bootmem_init(void);
uint64_t bootmem_allocated_frames(void);

/* Physical extent of the kernel image (loaded at 1 MiB). */
uint64_t kernel_image_phys_start(void);
uint64_t kernel_image_phys_end(void);

#if KTEST_HAVE_PAGING
/* The mapper's own state (kernel_pt) and what the common checks ask of the
 * architecture live in each kernel's arch_mm.h. */
extern mm_page_mapper_t kernel_mapper;
extern mm_paddr_t kernel_root;
extern bool kernel_tables_ready;
/* Builds the kernel's own tables with paging-x86_64 (HHDM over RAM with the
 * largest pages, image text RX / rodata R / data RW NX), programs the PAT
 * and switches CR3. Returns the first error. */
mm_status_t kernel_tables_build(void);
extern const char *kernel_tables_error_step;
/* Each kernel's mapper: [va, va + len) to pa in kernel_root. */
mm_status_t arch_kernel_map_range(uint64_t va, uint64_t pa, uint64_t len, mm_map_flags_t flags,
                                  mm_tlb_batch_t *tlb);
/* kernel_tables.c: the HHDM over RAM, the image W^X; on an error
 * kernel_tables_error_step names the part. */
mm_status_t kernel_map_hhdm(mm_tlb_batch_t *tlb);
mm_status_t kernel_map_image(mm_tlb_batch_t *tlb);
#endif

#if KTEST_HAVE_VMM
extern vmm_t kernel_vmm;
extern bool kernel_vmm_ready;
extern mm_status_t kernel_vmm_status;
/* kernel_vmm over kernel_layout, the kernel root and kernel_frames, with
 * this many address-space identities; the fault handler's classifier. */
void kernel_vmm_bringup(unsigned asids);
#endif

#if KTEST_HAVE_KHEAP
extern bool kernel_heap_ready;
extern mm_status_t kernel_heap_status;
extern size_t kernel_heap_initial;
#define KERNEL_HEAP_INITIAL (256 * 1024)
#if KTEST_HAVE_VMM
/* The default heap in VMM memory, growing and shrinking through it. */
void kernel_heap_bringup_vmm(void);
#endif
#endif

/* True when the default heap grows through the VMM. */
static inline bool kernel_vmm_ready_for_heap(void)
{
#if KTEST_HAVE_VMM
    return kernel_vmm_ready;
#else
    return false;
#endif
}

/* A scratch window for the mapper checks: the top GiB of the kernel-image
 * region, which the image itself (a few hundred KiB at -2 GiB + 1 MiB) never
 * reaches and no other component manages. */
#define SCRATCH_BASE UINT64_C(0xffffffffc0000000)
#define SCRATCH_SIZE (UINT64_C(1) << 30)

void mem_init(void);
void checks_pmm(void);
void checks_reclaim(void);
void checks_paging(void);
void checks_paging_audit(mm_paddr_t root, const char *what);
void checks_vmm(void);
void checks_heap(void);
void checks_kmem(void);
void demo_print(void);

#endif /* KTEST_KMEM_H */

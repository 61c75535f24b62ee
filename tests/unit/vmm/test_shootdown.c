/* Targeted TLB shootdown (issue 22): every flush of a user space names the
 * CPUs on which the space is or has been current since its identity was
 * last flushed everywhere; kernel-half flushes name every CPU. The CPUs are
 * simulated with test_cpu_index. */
#include "vmm_fixture.h"

#define UVA 0x400000ull

/* Runs `as` on CPU `cpu` (the set only grows), then back to the kernel. */
static void run_on(fx_t *fx, vmm_as_t *as, int cpu)
{
    test_cpu_index = cpu;
    OK(vmm_as_switch(as));
    OK(vmm_switch_to_kernel(&fx->vmm));
    test_cpu_index = -1;
}

FX_TEST(unmap_in_a_space_active_on_one_cpu_of_four_names_that_cpu)
{
    vmm_as_t a;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &a));
    OK(vmm_as_map_anon(&a, UVA, 2, MM_MAP_WRITE));
    test_cpu_index = 2; /* CPU 2 of 0..3 runs it; CPU 0 edits it */
    OK(vmm_as_switch(&a));
    test_cpu_index = 0;
    int calls0 = test_tlb.page_calls;
    mm_paddr_t pa;
    OK(vmm_as_unmap(&a, UVA, MM_PAGE_4K, &pa));
    cr_assert_eq(test_tlb.page_calls, calls0 + 1);
    cr_assert_eq(test_tlb.last_pages_asid, a.asid);
    cr_assert_not(test_tlb.last_cpus_all);
    cr_assert_eq(test_tlb.last_cpus_count, 1, "one CPU of four: remote invalidations 1, not 3");
    cr_assert_eq(test_tlb.last_cpus_bits, 1ull << 2);
    OK(fx->fa.free(fx->fa.ctx, pa, 1));

    /* protect and a second CPU: both named, still not the others */
    test_cpu_index = 3;
    OK(vmm_as_switch(&a));
    test_cpu_index = 0;
    OK(vmm_as_protect(&a, UVA + P, MM_PAGE_4K, 0));
    cr_assert_eq(test_tlb.last_cpus_bits, (1ull << 2) | (1ull << 3));
    cr_assert_eq(test_tlb.last_cpus_count, 2);

    /* Switching away does not shrink the set: the CPU keeps entries tagged
     * with the space's identity. */
    OK(vmm_switch_to_kernel(&fx->vmm));
    OK(vmm_as_protect(&a, UVA + P, MM_PAGE_4K, MM_MAP_WRITE));
    cr_assert_eq(test_tlb.last_cpus_bits, (1ull << 2) | (1ull << 3));
    test_cpu_index = -1;
    OK(vmm_as_release(&a));
}

FX_TEST(kernel_half_changes_name_every_cpu)
{
    vmm_as_t a;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &a));
    run_on(fx, &a, 1);
    test_cpu_index = 1;
    OK(vmm_as_switch(&a)); /* current on CPU 1 while the kernel half changes */
    test_cpu_index = 0;
    int calls0 = test_tlb.page_calls + test_tlb.all_calls;
    vmm_stack_t s;
    OK(vmm_stack_create(&fx->vmm, &s));
    OK(vmm_stack_release(&s));
    cr_assert_gt(test_tlb.page_calls + test_tlb.all_calls, calls0);
    cr_assert_eq(test_tlb.last_pages_asid, MM_ASID_KERNEL);
    cr_assert(test_tlb.last_cpus_all, "a kernel-half change goes to every CPU");
    cr_assert_eq(test_tlb.last_cpus_count, HADRON_MM_MAX_CPUS);
    test_cpu_index = -1;
    OK(vmm_switch_to_kernel(&fx->vmm));
    OK(vmm_as_release(&a));
}

FX_TEST(unmap_in_a_space_that_ran_nowhere_since_its_last_full_flush_names_no_cpu)
{
    /* Never run: its identity is fresh. */
    vmm_as_t a;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &a));
    OK(vmm_as_map_anon(&a, UVA, 1, MM_MAP_WRITE));
    mm_paddr_t pa;
    int calls0 = test_tlb.page_calls;
    OK(vmm_as_unmap(&a, UVA, MM_PAGE_4K, &pa));
    cr_assert_eq(test_tlb.page_calls, calls0 + 1, "the hook is still called once");
    cr_assert_not(test_tlb.last_cpus_all);
    cr_assert_eq(test_tlb.last_cpus_count, 0);
    cr_assert_eq(test_tlb.last_cpus_bits, 0);
    OK(fx->fa.free(fx->fa.ctx, pa, 1));

    /* Ran on CPUs 0 and 3, then released: the retirement is the full flush
     * of the identity everywhere. The next space on the record (same
     * identity) starts with no CPU. */
    run_on(fx, &a, 0);
    run_on(fx, &a, 3);
    mm_asid_t id = a.asid;
    OK(vmm_as_release(&a));
    cr_assert_eq(test_tlb.last_retired, id);
    vmm_as_t b;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &b));
    cr_assert_eq(b.asid, id, "the record and its identity are reused");
    OK(vmm_as_map_anon(&b, UVA, 1, MM_MAP_WRITE));
    OK(vmm_as_unmap(&b, UVA, MM_PAGE_4K, &pa));
    cr_assert_eq(test_tlb.last_pages_asid, id);
    cr_assert_eq(test_tlb.last_cpus_count, 0, "the old space's CPUs are not inherited");
    OK(fx->fa.free(fx->fa.ctx, pa, 1));
    run_on(fx, &b, 1);
    OK(vmm_as_map_anon(&b, UVA, 1, MM_MAP_WRITE));
    OK(vmm_as_unmap(&b, UVA, MM_PAGE_4K, &pa));
    cr_assert_eq(test_tlb.last_cpus_bits, 1ull << 1);
    OK(fx->fa.free(fx->fa.ctx, pa, 1));
    OK(vmm_as_release(&b));
}

FX_TEST(a_cpu_without_an_index_makes_the_space_reach_every_cpu)
{
    vmm_as_t a;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &a));
    OK(vmm_as_map_anon(&a, UVA, 1, MM_MAP_WRITE));
    run_on(fx, &a, HADRON_MM_MAX_CPUS); /* early boot, or too many CPUs */
    mm_paddr_t pa;
    OK(vmm_as_unmap(&a, UVA, MM_PAGE_4K, &pa));
    cr_assert(test_tlb.last_cpus_all);
    cr_assert_eq(test_tlb.last_pages_asid, a.asid, "still the space's identity");
    OK(fx->fa.free(fx->fa.ctx, pa, 1));
    OK(vmm_as_release(&a));
}

/* Every flush of the space, whatever page it is for, names its CPUs. */
FX_TEST(every_unmap_of_a_space_names_its_cpus)
{
    vmm_as_t a;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &a));
    OK(vmm_as_map_anon(&a, UVA, MM_TLB_BATCH_MAX + 8, MM_MAP_WRITE));
    run_on(fx, &a, 2);
    for (unsigned i = 0; i < MM_TLB_BATCH_MAX + 8; i++) {
        mm_paddr_t pa;
        OK(vmm_as_unmap(&a, UVA + i * P, MM_PAGE_4K, &pa));
        OK(fx->fa.free(fx->fa.ctx, pa, 1));
        cr_assert_eq(test_tlb.last_cpus_bits, 1ull << 2);
        cr_assert_not(test_tlb.last_cpus_all);
    }
    OK(vmm_as_release(&a));
}

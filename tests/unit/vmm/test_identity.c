/* Address-space identities (ASID / PCID): handed out per space, bounded,
 * carried by every TLB batch of the space to the flush hooks, given to the
 * root-switch hook, and retired through mm_hook_asid_retire before the
 * space's tables or its identity can be reused (issue 21). */
#include <string.h>

#include "vmm_fixture.h"

FX_TEST(spaces_get_distinct_identities_and_the_batches_carry_them)
{
    vmm_as_t a, b;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &a));
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &b));
    cr_assert_neq(a.asid, MM_ASID_KERNEL);
    cr_assert_neq(b.asid, MM_ASID_KERNEL);
    cr_assert_neq(a.asid, b.asid);
    cr_assert_lt(a.asid, FX_ASIDS);

    OK(vmm_as_map_anon(&a, 0x400000, 2, MM_MAP_WRITE));
    OK(vmm_as_map_anon(&b, 0x400000, 2, MM_MAP_WRITE));
    int pages0 = test_tlb.page_calls;
    OK(vmm_as_protect(&a, 0x400000, MM_PAGE_4K, 0));
    cr_assert_eq(test_tlb.page_calls, pages0 + 1);
    cr_assert_eq(test_tlb.last_pages_asid, a.asid, "protect flushes for its space");
    mm_paddr_t pa;
    OK(vmm_as_unmap(&b, 0x401000, MM_PAGE_4K, &pa));
    cr_assert_eq(test_tlb.last_pages_asid, b.asid, "unmap flushes for its space");
    OK(fx->fa.free(fx->fa.ctx, pa, 1));

    /* Kernel-half work is the kernel's identity. */
    vmm_stack_t s;
    OK(vmm_stack_create(&fx->vmm, &s));
    OK(vmm_stack_release(&s));
    cr_assert_eq(test_tlb.last_pages_asid, MM_ASID_KERNEL);

    OK(vmm_as_switch(&a));
    cr_assert_eq(test_tlb.current_root, a.root);
    cr_assert_eq(test_tlb.current_asid, a.asid);
    OK(vmm_as_switch(&b));
    cr_assert_eq(test_tlb.current_asid, b.asid);
    OK(vmm_switch_to_kernel(&fx->vmm));
    cr_assert_eq(test_tlb.current_root,
                 FX_KERNEL_ROOT_SEPARATE && fx->kind == FX_REAL ? 0 : fx->kroot,
                 "a shared kernel root is a full root; beside a separate one, 0: no user half");
    cr_assert_eq(test_tlb.current_asid, MM_ASID_KERNEL);
    OK(vmm_as_release(&a));
    OK(vmm_as_release(&b));
    cr_assert_eq(test_tlb.irq_depth_at_retire, 0, "retired with no hadron-mm lock held");
    cr_assert_eq(test_irq_depth(), 0);
}

static fx_t *retire_fx;
static unsigned long destroys_at_retire;
static uint64_t free_at_retire;

static void on_retire(mm_asid_t asid)
{
    (void)asid;
    destroys_at_retire = retire_fx->kind == FX_FAKE ? retire_fx->fake->root_destroys : 0;
    free_at_retire = fx_free_frames(retire_fx);
}

/* vmm_as_release retires the identity before a single table frame of the
 * space is freed, and the identity comes back only with its record. */
FX_TEST(release_retires_before_freeing_and_reuse_follows_retire)
{
    vmm_as_t a;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &a));
    OK(vmm_as_map_anon(&a, 0x400000, 3, MM_MAP_WRITE));
    mm_asid_t id = a.asid;
    retire_fx = fx;
    test_on_retire = on_retire;
    unsigned long destroys0 = fx->kind == FX_FAKE ? fx->fake->root_destroys : 0;
    uint64_t free0 = fx_free_frames(fx);
    OK(vmm_as_release(&a));
    test_on_retire = NULL;
    cr_assert_eq(test_tlb.retires, 1);
    cr_assert_eq(test_tlb.last_retired, id);
    cr_assert_eq(destroys_at_retire, destroys0, "retired before the root was destroyed");
    cr_assert_eq(free_at_retire, free0, "no frame of the space was freed before the retire");
    cr_assert_gt(fx_free_frames(fx), free0);

    /* The record, and with it the identity, is reused only now. */
    vmm_as_t b;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &b));
    cr_assert_eq(b.asid, id);
    /* A copy of the released handle is stale even though the identity and
     * perhaps the root are the same again. */
    OK(vmm_as_release(&b));
    cr_assert_eq(test_tlb.retires, 2);
}

/* A forged identity is refused like any other forged field. */
FX_TEST(a_handle_with_another_identity_is_stale)
{
    vmm_as_t a;
    OK(vmm_as_create(&fx->vmm, NULL, NULL, &a));
    vmm_as_t forged = a;
    forged.asid = a.asid + 1;
    int warns = test_warnings.count;
    cr_assert_eq(vmm_as_switch(&forged), MM_ERR_STALE);
    cr_assert_eq(vmm_as_release(&forged), MM_ERR_STALE);
    cr_assert_eq(test_warnings.count, warns + 2);
    cr_assert_eq(test_tlb.switches + test_tlb.retires, 0);
    OK(vmm_as_release(&a));
}

/* Identities are bounded by vmm_config_t.asids: with 3 (the kernel's and
 * two), the third space runs untagged (identity 0) and is not retired; with
 * none, every space is untagged. */
FX_FAKE_ONLY(identities_are_bounded_and_untagged_spaces_are_not_retired)
{
    static fx_t fx;
    fx_opts_t o = {.asids = 3};
    fx_setup(&fx, FX_FAKE, &o, false);
    vmm_as_t s[3];
    for (int i = 0; i < 3; i++)
        OK(vmm_as_create(&fx.vmm, NULL, NULL, &s[i]));
    cr_assert_eq(s[0].asid, 1);
    cr_assert_eq(s[1].asid, 2);
    cr_assert_eq(s[2].asid, MM_ASID_KERNEL, "no identity left: untagged");
    OK(vmm_as_map_anon(&s[2], 0x400000, 1, 0));
    OK(vmm_as_unmap(&s[2], 0x400000, MM_PAGE_4K, NULL));
    cr_assert_eq(test_tlb.last_pages_asid, MM_ASID_KERNEL);
    OK(vmm_as_switch(&s[2]));
    cr_assert_eq(test_tlb.current_asid, MM_ASID_KERNEL);
    OK(vmm_switch_to_kernel(&fx.vmm));
    OK(vmm_as_release(&s[2]));
    cr_assert_eq(test_tlb.retires, 0, "an untagged space has nothing to retire");
    OK(vmm_as_release(&s[0]));
    OK(vmm_as_release(&s[1]));
    cr_assert_eq(test_tlb.retires, 2);
}

FX_FAKE_ONLY(without_identities_every_space_is_untagged)
{
    static fx_t fx;
    fx_opts_t o = {.no_asids = true};
    fx_setup(&fx, FX_FAKE, &o, false);
    vmm_as_t a, b;
    OK(vmm_as_create(&fx.vmm, NULL, NULL, &a));
    OK(vmm_as_create(&fx.vmm, NULL, NULL, &b));
    cr_assert_eq(a.asid, MM_ASID_KERNEL);
    cr_assert_eq(b.asid, MM_ASID_KERNEL);
    OK(vmm_as_release(&a));
    OK(vmm_as_release(&b));
    cr_assert_eq(test_tlb.retires, 0);
}

/* With a separate kernel root (AArch64 TTBR1) the kernel's view has no user
 * half: vmm_switch_to_kernel passes root 0, never the kernel root. */
FX_FAKE_ONLY(a_separate_kernel_root_is_never_switched_in_as_a_user_root)
{
    static fx_t fx;
    mm_va_space_t s;
    cr_assert_eq(mm_va_space_aarch64(48, &s), MM_OK);
    fx_opts_t o = {.space = &s, .hhdm_base = s.kernel_lo};
    fx_setup(&fx, FX_FAKE, &o, false);
    vmm_as_t a;
    OK(vmm_as_create(&fx.vmm, NULL, NULL, &a));
    OK(vmm_as_switch(&a));
    cr_assert_eq(test_tlb.current_root, a.root);
    cr_assert_eq(test_tlb.current_asid, a.asid);
    OK(vmm_switch_to_kernel(&fx.vmm));
    cr_assert_eq(test_tlb.current_root, 0);
    cr_assert_eq(test_tlb.current_asid, MM_ASID_KERNEL);
    OK(vmm_as_release(&a));
}

/* The VMM over address spaces that are not x86_64's (issue 21): the user
 * and kernel ranges come from the mapper's descriptor, and a kernel half
 * with its own root (AArch64 TTBR1) is never copied into user roots. The
 * fake mapper models the AArch64 spaces. */
#include <string.h>

#include "vmm_fixture.h"

static void setup_aarch64(fx_t *fx, unsigned va_bits, mm_va_space_t *space)
{
    cr_assert_eq(mm_va_space_aarch64(va_bits, space), MM_OK);
    fx_opts_t o = {.space = space, .hhdm_base = space->kernel_lo};
    fx_setup(fx, FX_FAKE, &o, false);
}

/* issue 21: 0x800000000000 is "not canonical" to an x86-minded VMM, but a
 * plain user address in a 52-bit AArch64 space. */
Test(vmm_va_space, aarch64_52_bit_user_address_is_mapped)
{
    static fx_t fx;
    mm_va_space_t s;
    setup_aarch64(&fx, 52, &s);
    cr_assert(fx.vmm.layout.space.kernel_root_separate);
    cr_assert_eq(fx.vmm.layout.regions[LAYOUT_HHDM].base, 0xfff0000000000000ull);
    cr_assert_eq(fx.fake->prepopulate_calls, 0, "no kernel entries to share with a TTBR1 root");

    uint64_t free0 = fx_free_frames(&fx);
    vmm_as_t as;
    OK(vmm_as_create(&fx.vmm, vmm_as_leaf_free_frames, &fx.vmm, &as));
    cr_assert_eq(fx.fake->roots[fx.fake->nroots - 1].kernel_root, 0,
                 "the user root was made without the kernel root's entries");
    mm_paddr_t pa;
    OK(fx.backing.alloc(fx.backing.ctx, 1, 1, MM_PADDR_MAX, &pa));
    OK(vmm_as_map(&as, 0x800000000000ull, pa, MM_PAGE_4K, MM_MAP_WRITE));
    mm_translation_t t;
    OK(vmm_as_translate(&as, 0x800000000123ull, &t));
    cr_assert_eq(t.pa, pa + 0x123);
    /* The top of the 52-bit user range, and one past it. */
    OK(vmm_as_map_anon(&as, (1ull << 52) - 2 * P, 2, MM_MAP_WRITE));
    uint64_t free1 = fx_free_frames(&fx);
    cr_assert_eq(vmm_as_map_anon(&as, (1ull << 52) - 2 * P, 3, 0), MM_ERR_RANGE);
    cr_assert_eq(fx_free_frames(&fx), free1);
    cr_assert_eq(vmm_as_map(&as, 1ull << 52, pa, MM_PAGE_4K, 0), MM_ERR_NOT_CANONICAL);
    cr_assert_eq(vmm_as_map(&as, 0xffe0000000000000ull, pa, MM_PAGE_4K, 0),
                 MM_ERR_NOT_CANONICAL, "the gap between the TTBR0 and TTBR1 ranges");
    cr_assert_eq(vmm_as_map(&as, s.kernel_lo, pa, MM_PAGE_4K, 0), MM_ERR_RANGE);

    cr_assert_eq(vmm_classify_fault(&fx.vmm, 0x800000000000ull, NULL), VMM_FAULT_USER);
    cr_assert_eq(vmm_classify_fault(&fx.vmm, (1ull << 52) - 1, NULL), VMM_FAULT_USER);
    cr_assert_eq(vmm_classify_fault(&fx.vmm, 1ull << 52, NULL), VMM_FAULT_NONE);
    cr_assert_eq(vmm_classify_fault(&fx.vmm, s.kernel_lo, NULL), VMM_FAULT_HHDM);

    /* Kernel work still goes to the kernel root, and stays out of user
     * roots (no sharing to model, nothing copied). */
    vmm_stack_t st;
    OK(vmm_stack_create(&fx.vmm, &st));
    cr_assert_eq(vmm_as_translate(&as, st.bottom, &t), MM_ERR_RANGE);
    OK(vmm_stack_release(&st));

    OK(vmm_as_unmap(&as, 0x800000000000ull, MM_PAGE_4K, NULL));
    OK(fx.backing.free(fx.backing.ctx, pa, 1));
    OK(vmm_as_release(&as));
    cr_assert_eq(fx_free_frames(&fx), free0);
    fx_assert_sane(&fx);
}

/* 39 bits (3 levels): the layout needs smaller regions than the defaults,
 * and the user range ends at 2^39. */
Test(vmm_va_space, aarch64_39_and_48_bit_ranges)
{
    static fx_t fx;
    mm_va_space_t s;
    setup_aarch64(&fx, 48, &s);
    cr_assert_eq(fx.vmm.layout.regions[LAYOUT_HHDM].base, 0xffff000000000000ull);
    vmm_as_t as;
    OK(vmm_as_create(&fx.vmm, vmm_as_leaf_free_frames, &fx.vmm, &as));
    OK(vmm_as_map_anon(&as, 0x800000000000ull, 1, 0));
    OK(vmm_as_map_anon(&as, (1ull << 48) - P, 1, 0));
    cr_assert_eq(vmm_as_map_anon(&as, 1ull << 48, 1, 0), MM_ERR_NOT_CANONICAL);
    OK(vmm_as_release(&as));

    mm_va_space_t s39;
    cr_assert_eq(mm_va_space_aarch64(39, &s39), MM_OK);
    cr_assert_eq(s39.levels, 3);
    layout_params_t lp = {.space = &s39, .hhdm_base = s39.kernel_lo, .phys_top = FX_SIM_BYTES,
                          .heap_size = MM_GIB, .stacks_size = MM_GIB, .mmio_size = MM_GIB};
    layout_t l39;
    OK(layout_compute(&lp, &l39));
    cr_assert_eq(l39.regions[LAYOUT_HHDM].base, 0xffffff8000000000ull);
}

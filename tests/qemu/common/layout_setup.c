/*
 * Test kernel: the layout both kernels compute once the HHDM is up, over
 * the address space their mapper will give (vmm_init refuses the layout if
 * the two ever differ).
 */
#include "kernel.h"
#include "layout_setup.h"

mm_status_t kernel_layout_setup(const mm_va_space_t *space)
{
    layout_params_t params = {
        .hhdm_base = hhdm_base,
        .phys_top = boot_info.phys_top,
        .space = space,
    };
    mm_status_t st = layout_compute(&params, &kernel_layout);
    kernel_layout_ready = st == MM_OK;
    return st;
}

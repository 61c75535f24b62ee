/*
 * Test kernel: kernel_layout (kernel.h) computed from the HHDM base and the
 * top of RAM, over the given address space; kernel_layout_ready says
 * whether it worked.
 */
#ifndef KTEST_LAYOUT_SETUP_H
#define KTEST_LAYOUT_SETUP_H

#include <hadron/mm/layout.h>

mm_status_t kernel_layout_setup(const mm_va_space_t *space);

#endif

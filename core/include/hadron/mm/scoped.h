/*
 * hadron-mm core: scope-bound release.
 *
 * Objects that own resources (kernel stacks, MMIO mappings, address spaces)
 * have a *_release() that runs their cleanup once. MM_SCOPED(fn) declares a
 * variable whose release runs when it leaves scope, for callers who want the
 * RAII behaviour of the original Rust types:
 *
 *     MM_SCOPED(vmm_stack_release) vmm_stack_t stack;
 */
#ifndef HADRON_MM_SCOPED_H
#define HADRON_MM_SCOPED_H

#define MM_SCOPED(release_fn) __attribute__((cleanup(release_fn)))

#endif /* HADRON_MM_SCOPED_H */

/*
 * hadron-mm core: hooks the embedding kernel provides.
 *
 * hadron-mm calls out to its kernel only through the functions declared in
 * this header. A kernel links definitions of the ones its components use;
 * host tests and the test kernel provide their own. The freestanding build
 * check allows exactly these names (plus the compiler's mem* builtins) as
 * undefined symbols in the archives.
 */
#ifndef HADRON_MM_HOOKS_H
#define HADRON_MM_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/report.h>
#include <hadron/mm/types.h>

/* Interrupt state saved by mm_hook_irq_save(), opaque to hadron-mm. */
typedef uintptr_t mm_irqflags_t;

/* Fatal: an invariant is broken or memory was found corrupted (poisoning,
 * red zones). Must not return. Called with hadron-mm locks possibly held, so
 * it must not allocate. `report` and the strings it points to are valid for
 * the duration of the call. */
_Noreturn void mm_hook_panic(const mm_report_t *report);

/* Non-fatal: a caller mistake was detected and rejected with state intact
 * (double free, foreign pointer passed to kfree). May log and return. Called
 * without the lock of the component that reports it; it can run with an
 * outer component's lock held (the PMM refusing a free issued by the VMM
 * under its lock), which happens only when that outer component's own data
 * is corrupt and an assertion follows. It must not allocate. */
void mm_hook_warn(const mm_report_t *report);

/* Disable interrupts on this CPU and return the previous state; restore it.
 * Used around every spinlock so an interrupt handler cannot deadlock on a
 * lock its own CPU holds. Nesting must work. */
mm_irqflags_t mm_hook_irq_save(void);
void mm_hook_irq_restore(mm_irqflags_t flags);

/* Only with the spin_yield option (on by default in native builds): called
 * by a spinlock waiter after every MM_SPIN_YIELD_SPINS failed polls, with
 * interrupts as the caller left them and possibly other hadron-mm locks
 * held (the VMM's while it waits for the PMM's). A ticket lock hands over
 * in FIFO order, so when its holder or its next waiter is descheduled every
 * other waiter spins until that thread runs again; giving up the CPU here
 * (sched_yield on a host, a directed-yield hypercall in a guest) lets it
 * run. May return at once. Must not take hadron-mm locks or allocate. */
void mm_hook_spin_yield(void);

/* Invalidate the TLB entries of `count` pages (each an address inside the
 * page; large pages included) on this CPU, and on others where the kernel
 * does shootdowns. Paging-structure caches must go too: freed table frames
 * are released right after this returns (on x86_64 INVLPG does that).
 * Called once per flushed batch: normally where the caller flushes, with
 * its page-table locks dropped, but also from inside a page-table change
 * when a batch's deferred-free list is full (mm_tlb_batch_defer_free), so
 * possibly with the caller's locks held and interrupts disabled. The same
 * holds for mm_hook_tlb_flush_all. */
void mm_hook_tlb_flush_pages(const mm_vaddr_t *pages, size_t count);

/* Invalidate every TLB entry and every paging-structure-cache entry;
 * `include_global` also drops global entries (on x86_64 by toggling CR4.PGE
 * rather than reloading CR3). Also used for a batch that holds only
 * deferred table frees. */
void mm_hook_tlb_flush_all(bool include_global);

/* Make the page-table hierarchy rooted at physical address `root` current on
 * this CPU (on x86_64: write CR3). Used by user address spaces. */
void mm_hook_switch_root(mm_paddr_t root);

#endif /* HADRON_MM_HOOKS_H */

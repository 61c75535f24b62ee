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

#include <hadron/mm/cpuset.h>
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

/* Index of the CPU the caller runs on, for per-CPU state. Called with
 * interrupts disabled by mm_hook_irq_save, so the caller cannot migrate
 * while it uses the answer; until it restores interrupts no other context
 * may get the same index (a kernel: the CPU number; a host: a number per
 * thread). A value >= HADRON_MM_MAX_CPUS (early boot before per-CPU data
 * exists, or more CPUs than configured) means "no per-CPU state": callers
 * take their shared, locked path. Must not take hadron-mm locks or
 * allocate. */
unsigned mm_hook_cpu_index(void);

/* Only with the asymmetric_barrier option (config.h): make every other CPU
 * execute a full memory barrier, then return true; false when that cannot
 * be done from here (nothing happened). True promises: every store another
 * CPU made before the call is visible to the caller, and every store the
 * caller made before the call is visible to every other CPU's loads after
 * the call returns (the sys_membarrier contract). A CPU not running (a
 * descheduled host thread) counts as done: switching it out was a barrier.
 *
 * Why: each CPU's kmem_cache front and PMM frame cache are entered with a
 * compiler barrier only (Dekker's handshake with the barrier on the rare
 * side); the other side (draining every front or cache, retiring a lookup
 * table, a fork handler, pmm_check, pmm_reserve over a cached frame) calls
 * this and then waits for the CPU to leave. Such a section is short, runs
 * with interrupts disabled and waits for no lock another CPU can hold
 * while it calls this, so the wait always ends.
 *
 * A kernel: an NMI to each other online CPU whose handler acknowledges
 * (answers even with interrupts off, so it may always return true), or an
 * ordinary IPI, returning false when the caller has interrupts disabled (a
 * CPU spinning with interrupts off would never answer). A host:
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED). Called with no hadron-mm
 * lock held, interrupts as the kheap, kmem_cache or PMM caller left them;
 * must not take hadron-mm locks or allocate. On false the heap drains only
 * its own CPU's front and keeps a retired table until a later call
 * succeeds; the PMM refuses what needs other CPUs' caches (pmm.h,
 * "Holding the caches"). */
bool mm_hook_cpu_barrier(void);

/* TLB hooks and address-space identities (types.h: mm_asid_t).
 *
 * Every flush names the identity whose entries went stale. MM_ASID_KERNEL
 * is a kernel-half change (or a user space the VMM runs untagged): its
 * entries are global or shared by every identity, so the hook drops them
 * under every identity, paging-structure caches included (x86_64 with
 * PCIDs: INVLPG reaches only the current PCID's non-global entries, so
 * other PCIDs must be invalidated too or flushed before their next use;
 * AArch64: TLBI VAAE1IS / VMALLE1IS). Any other identity is one user
 * address space, which may be current on this CPU, on others, or nowhere
 * (x86_64: INVLPG if it is current, else INVPCID, else flush that PCID at
 * its next use; AArch64: TLBI VAE1IS / ASIDE1IS with the ASID).
 *
 * Both flush hooks are called once per flushed batch: normally where the
 * caller flushes, with its page-table locks dropped, but also from inside a
 * page-table change (a batch's deferred-free list is full, see
 * mm_tlb_batch_defer_free, or break-before-make, see page_mapper.h), so
 * possibly with the caller's locks held and interrupts disabled. An empty
 * batch makes no call at all. Paging-structure caches must go too: freed
 * table frames are released right after the hook returns. */

/* Which CPUs: `cpus` (never NULL) is a private snapshot, valid for the
 * call, of the CPUs that may hold an entry the flush must drop. A set marked
 * "all CPUs" (mm_cpuset_is_all) is a kernel-half change: every CPU, the
 * caller's included. Otherwise it is the space's set (tlb.h, vmm.h): the
 * CPUs on which the space is or has been active since its identity was last
 * flushed everywhere; CPUs outside it cannot hold the space's entries and
 * need nothing, and an empty set needs no invalidation at all. The caller's
 * own CPU (mm_hook_cpu_index) is handled like any other: it is in the set
 * when it needs the flush. A kernel that does not do shootdowns may ignore
 * the set and flush locally, as before. */

/* Invalidate the entries of `count` pages (each an address inside the page;
 * large pages included) of identity `asid` on the CPUs in `cpus`. */
void mm_hook_tlb_flush_pages(mm_asid_t asid, const mm_cpuset_t *cpus, const mm_vaddr_t *pages,
                             size_t count);

/* Invalidate every entry of identity `asid` and every paging-structure-cache
 * entry it may use (MM_ASID_KERNEL: of every identity) on the CPUs in
 * `cpus`. `include_global` also drops global entries (a global mapping
 * changed). Also used for a batch that holds only deferred table frees. */
void mm_hook_tlb_flush_all(mm_asid_t asid, const mm_cpuset_t *cpus, bool include_global);

/* Make the user half translated by the root at physical address `root`
 * current on this CPU, tagged with identity `asid`. Entries already tagged
 * `asid` may be kept (x86_64: CR3 = root | PCID with the no-flush bit 63;
 * AArch64: TTBR0_EL1 = root with the ASID): the VMM retires an identity
 * before it gives it, or its root, to anything else. `asid` MM_ASID_KERNEL
 * keeps nothing: non-global entries of identity 0 must be dropped (x86_64:
 * a CR3 write without the no-flush bit). With a shared kernel root (x86_64)
 * `root` also translates the kernel half and vmm_switch_to_kernel passes the
 * kernel root; with a separate one (AArch64 TTBR1) `root` is 0 for "no user
 * half" (an empty table, or TTBR0 walks disabled). Called by vmm_as_switch
 * and vmm_switch_to_kernel with no hadron-mm lock held. */
void mm_hook_switch_root(mm_paddr_t root, mm_asid_t asid);

/* Identity `asid` (never MM_ASID_KERNEL) is being retired: invalidate every
 * TLB and paging-structure-cache entry tagged with it on every CPU, or make
 * sure each CPU does before it next uses `asid` (x86_64: INVPCID single-
 * context, or no no-flush bit at the next switch to that PCID; AArch64:
 * TLBI ASIDE1IS, DSB ISH). Called by vmm_as_release after every CPU has
 * switched away from the space and before its tables are freed and before
 * the identity is given to another address space; no hadron-mm lock held,
 * interrupts as the caller has them. Must not call vmm_* or allocate. */
void mm_hook_asid_retire(mm_asid_t asid);

#endif /* HADRON_MM_HOOKS_H */

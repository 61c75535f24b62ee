/*
 * Test kernel checks: the VMM on the real MMU: guard-page stacks (and a real
 * overflow into the guard), MMIO with the right memory types, user address
 * spaces switched in (CR3; TTBR0_EL1 with TTBR1_EL1 holding the kernel
 * root), address-space identities (PCIDs; ASIDs), out-of-memory rollback.
 * What differs between the architectures (fault records, the device to
 * map, user-mode code, the root register) is behind arch_mm.h.
 */
#include <hadron/mm/hhdm.h>

#include "kernel.h"
#include "kmem.h"

#if KTEST_HAVE_VMM && KTEST_HAVE_PAGING

static bool frames_free(uint64_t *out)
{
    return kernel_frames_free_count(out);
}

/* ---- stacks ------------------------------------------------------------ */

static volatile uint64_t recursion_limit = UINT64_MAX;
static volatile uint64_t deepest;

static uint64_t recurse(uint64_t depth)
{
    volatile uint8_t frame[512];
    frame[0] = (uint8_t)depth;
    deepest = depth;
    if (depth >= recursion_limit)
        return frame[0];
    return recurse(depth + 1) + frame[0];
}

typedef struct overflow_arg {
    uint64_t top;
} overflow_arg_t;

static void overflow_entry(void *arg)
{
    (void)arg;
    recurse(0);
}

static void run_overflow(void *arg)
{
    overflow_arg_t *o = arg;
    arch_call_on_overflow_stack(overflow_entry, NULL, (void *)(uintptr_t)o->top);
}

static void check_stacks(void)
{
    uint64_t free0 = 0, free1 = 0;
    bool counted = frames_free(&free0);
    vmm_stack_t stack = VMM_STACK_INIT;
    mm_status_t st = vmm_stack_create(&kernel_vmm, &stack);
    if (!tap_check(st == MM_OK && stack.top - stack.bottom == stack.size &&
                       layout_find(&kernel_layout, stack.bottom) == LAYOUT_STACKS,
                   "vmm: kernel stack [%#lx, %#lx) (%lu KiB) in the stacks region (%s)",
                   stack.bottom, stack.top, stack.size / MM_KIB, mm_status_str(st)))
        return;

    /* Every byte usable, zeroed. */
    bool zero = true;
    for (uint64_t a = stack.bottom; a < stack.top; a += 8) {
        zero = zero && *(volatile uint64_t *)(uintptr_t)a == 0;
        *(volatile uint64_t *)(uintptr_t)a = a;
    }
    tap_check(zero, "vmm: the stack is zeroed and writable end to end");

    vmm_fault_info_t info;
    vmm_fault_kind_t k1 = vmm_classify_fault(&kernel_vmm, stack.bottom, NULL);
    vmm_fault_kind_t k2 = vmm_classify_fault(&kernel_vmm, stack.bottom - 1, &info);
    tap_check(k1 == VMM_FAULT_STACK && k2 == VMM_FAULT_STACK_GUARD &&
                  info.stack_bottom == stack.bottom && info.stack_top == stack.top,
              "vmm: classify: bottom is %s, the byte below is %s", vmm_fault_kind_str(k1),
              vmm_fault_kind_str(k2));

    fault_record_t rec;
    uint64_t guard = stack.bottom - 8;
    bool hit = fault_probe_write(guard, 1, &rec);
    tap_check(hit && arch_fault_addr(&rec) == guard && arch_fault_is(&rec, ARCH_FAULT_WRITE),
              "vmm: a write to the guard page %#lx faults: %s", guard, rec.where);

    /* A real overflow: recurse on the new stack until it runs into the
     * guard. The fault cannot be handled on that stack, so the handler
     * runs on another one (x86_64: the #PF cannot push its frame, the CPU
     * raises #DF on its IST stack; AArch64: the recursion runs on SP_EL0,
     * the exception on SP_EL1) and sees the address in the guard page. */
    overflow_arg_t o = {stack.top};
    hit = fault_expect(run_overflow, &o, &rec);
    uint64_t at = arch_fault_addr(&rec);
    vmm_fault_kind_t k3 = vmm_classify_fault(&kernel_vmm, at, NULL);
    char how[96];
    tap_check(hit && arch_fault_is_overflow(&rec) && k3 == VMM_FAULT_STACK_GUARD &&
                  at >= stack.bottom - MM_PAGE_SIZE && at < stack.bottom,
              "vmm: recursion to depth %lu overflows into the guard: %s, " ARCH_FAULT_ADDR_NAME
              " %#lx, %s",
              deepest, arch_fault_str(&rec, how, sizeof how), at, rec.where);

    unsigned flushes = hook_tlb_page_calls + hook_tlb_all_calls;
    uint64_t stack_pages = stack.size / MM_PAGE_SIZE;
    vmm_stack_t copy = stack;
    st = vmm_stack_release(&stack);
    flushes = hook_tlb_page_calls + hook_tlb_all_calls - flushes;
    mm_status_t st2 = vmm_stack_release(&stack);
    hit = fault_probe_read(stack.top - 8, &rec);
    frames_free(&free1);
    tap_check(st == MM_OK && st2 == MM_OK && hit && (!counted || free1 == free0),
              "vmm: stack released (twice: no-op), unmapped, frames back (%lu -> %lu)", free0,
              free1);
    tap_check(flushes == 1, "vmm: releasing a %lu-page stack costs %u TLB-flush hook call(s)",
              stack_pages, flushes);

    /* A copy of the released stack, once a new stack has taken its slot:
     * refused and warned, and the new stack stays mapped and writable. */
    vmm_stack_t next = VMM_STACK_INIT;
    mm_status_t cs = vmm_stack_create(&kernel_vmm, &next);
    unsigned warns = hook_warn_count;
    mm_status_t stale = vmm_stack_release(&copy);
    bool faulted = cs != MM_OK || fault_probe_write(next.top - 8, 1, &rec) ||
                   fault_probe_write(next.bottom, 1, &rec);
    tap_check(cs == MM_OK && next.bottom == copy.bottom && stale == MM_ERR_STALE &&
                  hook_warn_count == warns + 1 && !faulted && vmm_check(&kernel_vmm) == MM_OK,
              "vmm: a stale copy of the released stack, its slot reused, is refused (%s) with "
              "a warning; the new stack stays mapped",
              mm_status_str(stale));
    vmm_stack_release(&next);
}

/* ---- MMIO ---------------------------------------------------------------- */

static void check_mmio(void)
{
    uint64_t free0 = 0, free1 = 0;
    bool counted = frames_free(&free0);
    /* Unaligned on purpose: the mapping must keep the offset in the page. */
    const arch_mmio_device_t *dev = arch_mmio_device();
    vmm_mmio_t apic = VMM_MMIO_INIT;
    mm_status_t st = vmm_mmio_map(&kernel_vmm, dev->phys, dev->size, VMM_MMIO_DEVICE, &apic);
    mm_translation_t t = {0};
    if (st == MM_OK)
        mm_pm_translate(&kernel_mapper, kernel_root, (uint64_t)(uintptr_t)apic.ptr, &t);
    uint64_t va = (uint64_t)(uintptr_t)apic.ptr;
    tap_check(st == MM_OK && (va & 0xfff) == (dev->phys & 0xfff) &&
                  layout_find(&kernel_layout, va) == LAYOUT_MMIO &&
                  mm_map_mem_type(t.flags) == MM_MEM_DEVICE && !(t.flags & MM_MAP_EXEC) &&
                  t.pa == dev->phys,
              "vmm: %s %#lx mapped uncached at %p (offset kept, NX) (%s)", dev->name, dev->phys,
              (void *)apic.ptr, mm_status_str(st));
    char regs[96] = "not mapped";
    bool plausible = st == MM_OK && dev->plausible(apic.ptr, regs, sizeof regs);
    tap_check(plausible, "vmm: %s", regs);
    vmm_mmio_release(&apic);
    fault_record_t rec;
    bool hit = st == MM_OK && fault_probe_read(va, &rec);
    tap_check(hit && arch_fault_addr(&rec) == va, "vmm: after release the MMIO address faults (%s)",
              rec.where);

    /* Write-combining over a RAM frame (standing in for a framebuffer). */
    mm_paddr_t fb;
    if (mm_frame_alloc(&kernel_frames, &fb) != MM_OK) {
        tap_fail("no frame", "vmm: write-combining mapping");
        return;
    }
    vmm_mmio_t wc = VMM_MMIO_INIT;
    st = vmm_mmio_map(&kernel_vmm, fb, 2 * MM_PAGE_SIZE, VMM_MMIO_WRITE_COMBINING, &wc);
    bool ok = st == MM_OK;
    if (ok) {
        for (unsigned i = 0; i < 512; i++)
            ((volatile uint64_t *)wc.ptr)[i] = 0xfb00000000000000u | i;
        mm_pm_translate(&kernel_mapper, kernel_root, (uint64_t)(uintptr_t)wc.ptr, &t);
        volatile uint64_t *h = hhdm_phys_to_virt(fb);
        for (unsigned i = 0; i < 512; i++)
            ok = ok && h[i] == (0xfb00000000000000u | i);
    }
    tap_check(ok && mm_map_mem_type(t.flags) == ARCH_WC_READS_AS && wc.pages == 2,
              "vmm: write-combining mapping of %#lx at %p: writes land in the frame (%s)", fb,
              (void *)wc.ptr, mm_status_str(st));
    vmm_mmio_release(&wc);
    mm_frame_free(&kernel_frames, fb);
    frames_free(&free1);
    tap_check(!counted || free1 == free0, "vmm: MMIO mappings leave no frames behind (%lu -> %lu)",
              free0, free1);
}

/* ---- user address spaces ---------------------------------------------------- */

#define USER_BASE UINT64_C(0x400000)
#define USER_PAGES 8u
#define USER_CODE UINT64_C(0x600000)

typedef struct user_run {
    uint64_t pc, sp, arg0, arg1;
} user_run_t;

static void run_user(void *arg)
{
    user_run_t *u = arg;
    enter_user(u->pc, u->sp, u->arg0, u->arg1);
}

/* User mode (ring 3, EL0) in the address space: the arch's user program
 * stores 0xffffffffdeadbeef to its own page (arg0), then reads a kernel
 * address (arg1); the CPU must refuse with a user-mode protection fault.
 * Then it jumps into its no-execute data page. */
static void check_ring3(vmm_as_t *as)
{
    const arch_user_program_t *prog = arch_user_program();
    mm_status_t st = vmm_as_map_anon(as, USER_CODE, 1, MM_MAP_EXEC); /* user r-x */
    mm_translation_t t = {0};
    if (st == MM_OK)
        st = vmm_as_translate(as, USER_CODE, &t);
    if (st != MM_OK) {
        tap_fail(mm_status_str(st), "vmm: ring 3 code page");
        return;
    }
    uint8_t *c = hhdm_phys_to_virt(t.pa);
    for (size_t i = 0; i < prog->size; i++)
        c[i] = prog->code[i];
    arch_sync_icache(c, prog->size);

    uint64_t kernel_addr = (uint64_t)(uintptr_t)&kernel_layout;
    volatile uint64_t *data = (volatile uint64_t *)(uintptr_t)USER_BASE;
    data[0] = 0;
    user_run_t run = {USER_CODE, USER_BASE + USER_PAGES * MM_PAGE_SIZE - 16, USER_BASE,
                      kernel_addr};
    fault_record_t rec;
    char how[96];
    bool hit = fault_expect(run_user, &run, &rec);
    tap_check(hit && arch_fault_is(&rec, ARCH_FAULT_USER | ARCH_FAULT_PROTECTION) &&
                  arch_fault_pc(&rec) == USER_CODE + prog->fault_offset &&
                  arch_fault_addr(&rec) == kernel_addr && data[0] == 0xffffffffdeadbeefu,
              "vmm: " ARCH_USER_MODE_NAME " code wrote its own page, then its read of kernel %#lx "
              "faulted (%s, pc %#lx)",
              kernel_addr, arch_fault_str(&rec, how, sizeof how), arch_fault_pc(&rec));
    arch_check_user_mode(USER_CODE, run.sp, USER_BASE);

    if (!arch_nx_enabled()) {
        tap_skip("CPU without NX", "vmm: ring 3 cannot execute its data pages");
        return;
    }
    run.pc = USER_BASE;
    hit = fault_expect(run_user, &run, &rec);
    tap_check(hit &&
                  arch_fault_is(&rec, ARCH_FAULT_USER | ARCH_FAULT_PROTECTION | ARCH_FAULT_FETCH) &&
                  arch_fault_addr(&rec) == USER_BASE,
              "vmm: " ARCH_USER_MODE_NAME " jumping into its no-execute data page faults (%s)",
              arch_fault_str(&rec, how, sizeof how));
}

/* ---- identities (PCIDs, ASIDs) -------------------------------------------- */

#define PCID_VA UINT64_C(0x7f0000000000)

static uint64_t user_word(void)
{
    return *(volatile uint64_t *)(uintptr_t)PCID_VA;
}

/* Maps one fresh page at PCID_VA in `as` and writes `value` into it through
 * the HHDM (not through the space, which may not be current). */
static bool pcid_map(vmm_as_t *as, uint64_t value)
{
    mm_translation_t t;
    if (vmm_as_map_anon(as, PCID_VA, 1, MM_MAP_WRITE) != MM_OK ||
        vmm_as_translate(as, PCID_VA, &t) != MM_OK)
        return false;
    *(volatile uint64_t *)hhdm_phys_to_virt(t.pa) = value;
    return true;
}

/* The same user address in three spaces, each with its own identity: every
 * read sees the right space's frame across switches, after a change made
 * while another space was current, and after an identity was retired and
 * handed to a new space with a new root. x86_64: with PCIDs (CR4.PCIDE) the
 * identities are PCIDs and a switch keeps the entries of the PCID it
 * switches to (CR3 bit 63); without them (QEMU 7.2's TCG offers no PCID)
 * the hooks ignore identities and every CR3 write drops the non-global
 * entries, which the same reads prove correct ("pcid" on the command line
 * makes their absence a failure). AArch64: the identities are ASIDs in
 * TTBR0_EL1, and every switch keeps the TLB entries of the ASID it
 * switches to. */
static void check_pcid(void)
{
    arch_identities_report();
    bool tagged = arch_identities_tag_entries();
    vmm_as_t a = VMM_AS_INIT, b = VMM_AS_INIT, c = VMM_AS_INIT;
    bool ok = vmm_as_create(&kernel_vmm, vmm_as_leaf_free_frames, &kernel_vmm, &a) == MM_OK &&
              vmm_as_create(&kernel_vmm, vmm_as_leaf_free_frames, &kernel_vmm, &b) == MM_OK &&
              a.asid != 0 && b.asid != 0 && a.asid != b.asid && pcid_map(&a, 0xaaaa) &&
              pcid_map(&b, 0xbbbb);
    unsigned kept0 = arch_kept_switches();
    uint64_t tag_a = tagged ? a.asid : 0, tag_b = tagged ? b.asid : 0;
    ok = ok && vmm_as_switch(&a) == MM_OK && arch_current_tag() == tag_a &&
         user_word() == 0xaaaa;
    ok = ok && vmm_as_switch(&b) == MM_OK && arch_current_tag() == tag_b &&
         user_word() == 0xbbbb;
    ok = ok && vmm_as_switch(&a) == MM_OK && user_word() == 0xaaaa;
    ok = ok && vmm_as_switch(&b) == MM_OK && user_word() == 0xbbbb;
    unsigned kept = arch_kept_switches() - kept0;
    tap_check(ok && (tagged ? kept >= 2 : kept == 0),
              "vmm: identities %u and %u share a user address; %u of 4 switches kept their "
              "identity's TLB entries, each read its own frame",
              a.asid, b.asid, kept);

    /* B changed while A is current: B's entries must not keep the old page. */
    ok = vmm_as_switch(&a) == MM_OK && user_word() == 0xaaaa &&
         vmm_as_unmap(&b, PCID_VA, MM_PAGE_4K, NULL) == MM_OK;
    mm_translation_t t;
    ok = ok && vmm_as_translate(&b, PCID_VA, &t) == MM_ERR_NOT_MAPPED && pcid_map(&b, 0xbbb2) &&
         vmm_as_switch(&b) == MM_OK && user_word() == 0xbbb2;
    tap_check(ok, "vmm: a page of a space changed while another was current is seen new after "
                  "the switch back (%s)",
              arch_identity_invalidation());

    /* A retired; C gets its record, so its identity, with a new root. */
    mm_asid_t a_id = a.asid;
    unsigned retired0 = hook_asid_retires;
    ok = vmm_switch_to_kernel(&kernel_vmm) == MM_OK && vmm_as_release(&a) == MM_OK &&
         hook_asid_retires == retired0 + 1 &&
         vmm_as_create(&kernel_vmm, vmm_as_leaf_free_frames, &kernel_vmm, &c) == MM_OK &&
         pcid_map(&c, 0xcccc) && vmm_as_switch(&c) == MM_OK && user_word() == 0xcccc &&
         vmm_as_switch(&b) == MM_OK && user_word() == 0xbbb2 && vmm_as_switch(&c) == MM_OK &&
         user_word() == 0xcccc;
    tap_check(ok && c.asid == a_id,
              "vmm: identity %u retired with its space (mm_hook_asid_retire) and reused by a "
              "new one: reads see the new space's frame",
              a_id);
    vmm_switch_to_kernel(&kernel_vmm);
    vmm_as_release(&a);
    vmm_as_release(&b);
    vmm_as_release(&c);
}

static void check_user_space(void)
{
    uint64_t free0 = 0, free1 = 0;
    bool counted = frames_free(&free0);
    vmm_as_t as = VMM_AS_INIT;
    mm_status_t st = vmm_as_create(&kernel_vmm, vmm_as_leaf_free_frames, &kernel_vmm, &as);
    mm_status_t st2 = st == MM_OK ? vmm_as_map_anon(&as, USER_BASE, USER_PAGES, MM_MAP_WRITE)
                                  : st;
    /* A second, 2 MiB user page backed by a contiguous run. */
    if (!tap_check(st == MM_OK && st2 == MM_OK,
                   "vmm: address space created (root %#lx), %u user pages mapped (%s, %s)",
                   as.root, USER_PAGES, mm_status_str(st), mm_status_str(st2)))
        return;

    st = vmm_as_switch(&as);
    bool on = arch_current_user_root() == as.root &&
              arch_current_tag() == (arch_identities_tag_entries() ? as.asid : 0);
    bool ok = true;
    for (unsigned p = 0; p < USER_PAGES; p++) {
        volatile uint64_t *u = (volatile uint64_t *)(uintptr_t)(USER_BASE + p * MM_PAGE_SIZE);
        ok = ok && u[0] == 0;
        u[0] = 0x5555000000000000u | p;
        u[511] = p;
    }
    for (unsigned p = 0; p < USER_PAGES; p++) {
        volatile uint64_t *u = (volatile uint64_t *)(uintptr_t)(USER_BASE + p * MM_PAGE_SIZE);
        ok = ok && u[0] == (0x5555000000000000u | p) && u[511] == p;
    }
    /* The same frames through the HHDM, via the space's own translation. */
    mm_translation_t t = {0};
    mm_status_t tr = vmm_as_translate(&as, USER_BASE + 3 * MM_PAGE_SIZE + 8, &t);
    ok = ok && tr == MM_OK && (t.flags & MM_MAP_USER) && (t.flags & MM_MAP_WRITE) &&
         !(t.flags & MM_MAP_EXEC) &&
         *(volatile uint64_t *)hhdm_phys_to_virt(t.pa - 8) == (0x5555000000000000u | 3);
    /* Kernel memory stays reachable (the kernel half is shared). */
    ok = ok && *(volatile uint64_t *)hhdm_phys_to_virt(t.pa - 8) != 0 &&
         kernel_layout.regions[LAYOUT_HHDM].size != 0;
    tap_check(st == MM_OK && on && ok,
              "vmm: switched to it (" ARCH_ROOT_REG_NAME " %#lx), user pages zeroed, written and "
              "read, same frames through the HHDM",
              arch_root_reg());
    checks_paging_audit(as.root, "the user address space");
    check_ring3(&as);

    st = vmm_switch_to_kernel(&kernel_vmm);
    fault_record_t rec;
    bool hit = fault_probe_read(USER_BASE, &rec);
    tap_check(st == MM_OK && arch_on_kernel_root() && hit && arch_fault_addr(&rec) == USER_BASE,
              "vmm: switched back to the kernel root; user addresses fault there (%s)",
              rec.where);
    st = vmm_as_release(&as);
    st2 = vmm_as_release(&as);
    frames_free(&free1);
    tap_check(st == MM_OK && st2 == MM_OK && (!counted || free1 == free0),
              "vmm: address space destroyed: pages, tables and root freed, free frames %lu -> %lu%s",
              free0, free1, counted ? "" : " (no PMM: not counted)");
}

/* ---- heap release ---------------------------------------------------------
 * Two growths of the kernel VMM's heap window (beside the kernel heap's own,
 * which this leaves alone): the lower one is released, so its addresses
 * fault and its frames are back; the next growth reuses the range with
 * fresh, zeroed frames; a second release of a range is refused. */
static bool heap_pages_hold(uint64_t va, uint64_t bytes, bool stamped)
{
    for (uint64_t a = va; a < va + bytes; a += 8) {
        uint64_t want = stamped ? a : 0;
        if (*(volatile uint64_t *)(uintptr_t)a != want)
            return false;
    }
    return true;
}

static void stamp_heap_pages(uint64_t va, uint64_t bytes)
{
    for (uint64_t a = va; a < va + bytes; a += 8)
        *(volatile uint64_t *)(uintptr_t)a = a;
}

static void check_heap_release(void)
{
    uint64_t free0 = 0, free1 = 0, free2 = 0, free3 = 0;
    bool counted = frames_free(&free0);
    vmm_stats_t s0, s1;
    vmm_stats(&kernel_vmm, &s0);
    void *a = NULL, *b = NULL, *again = NULL;
    size_t as = 0, bs = 0, agains = 0;
    mm_status_t st = vmm_heap_grow(&kernel_vmm, 64 * MM_KIB, &a, &as);
    if (st == MM_OK)
        st = vmm_heap_grow(&kernel_vmm, 64 * MM_KIB, &b, &bs);
    if (!tap_check(st == MM_OK, "vmm: heap grown twice by 64 KiB at %p and %p (%s)", a, b,
                   mm_status_str(st)))
        return;
    uint64_t va = (uint64_t)(uintptr_t)a, vb = (uint64_t)(uintptr_t)b;
    stamp_heap_pages(va, as);
    stamp_heap_pages(vb, bs);
    frames_free(&free1);

    unsigned flushes = hook_tlb_page_calls + hook_tlb_all_calls;
    st = vmm_heap_release_callback(&kernel_vmm, a, as);
    flushes = hook_tlb_page_calls + hook_tlb_all_calls - flushes;
    fault_record_t rec;
    bool hit_first = fault_probe_read(va, &rec);
    bool hit_last = fault_probe_write(va + as - 8, 1, &rec);
    frames_free(&free2);
    vmm_stats(&kernel_vmm, &s1);
    tap_check(st == MM_OK && hit_first && hit_last && flushes == 1 &&
                  (!counted || free2 == free1 + as / MM_PAGE_SIZE) &&
                  s1.heap_bytes == s0.heap_bytes + bs && heap_pages_hold(vb, bs, true),
              "vmm: heap range released with %u TLB flush(es): it faults, its %lu frames are "
              "back (%lu -> %lu), the range above keeps its data",
              flushes, as / MM_PAGE_SIZE, free1, free2);

    unsigned warns = hook_warn_count;
    mm_status_t twice = vmm_heap_release(&kernel_vmm, a, as);
    st = vmm_heap_grow(&kernel_vmm, 64 * MM_KIB, &again, &agains);
    bool fresh = st == MM_OK && heap_pages_hold((uint64_t)(uintptr_t)again, agains, false);
    if (st == MM_OK)
        stamp_heap_pages((uint64_t)(uintptr_t)again, agains);
    tap_check(twice == MM_ERR_RANGE && hook_warn_count == warns + 1 && st == MM_OK &&
                  again == a && fresh,
              "vmm: a second release is refused (%s) with a warning; regrowth reuses %p with "
              "fresh zeroed frames",
              mm_status_str(twice), again);

    mm_status_t r1 = vmm_heap_release(&kernel_vmm, b, bs);
    mm_status_t r2 = st == MM_OK ? vmm_heap_release(&kernel_vmm, again, agains) : MM_OK;
    frames_free(&free3);
    vmm_stats(&kernel_vmm, &s1);
    tap_check(r1 == MM_OK && r2 == MM_OK && s1.heap_bytes == s0.heap_bytes &&
                  s1.stranded_bytes == 0 && (!counted || free3 == free0) &&
                  vmm_check(&kernel_vmm) == MM_OK,
              "vmm: both released: heap bytes and free frames as before (%lu -> %lu), "
              "consistency check passes",
              free0, free3);
}

/* ---- out of memory half-way ----------------------------------------------
 * A second VMM over the same kernel tables but its own regions (placed after
 * the kernel's MMIO region) and a frame allocator that fails on its k-th
 * call, for the mapper's tables and the data frames alike. For every k until
 * a stack can be created: the failure must leave the PMM's free count, the
 * page tables and the region exactly as before. */
typedef struct failing_frames {
    mm_frame_allocator_t inner;
    unsigned calls, fail_at; /* fail_at 0: never */
} failing_frames_t;

static mm_status_t failing_alloc(void *ctx, size_t count, size_t align, mm_paddr_t limit,
                                 mm_paddr_t *out)
{
    failing_frames_t *f = ctx;
    if (++f->calls == f->fail_at)
        return MM_ERR_NOMEM;
    return f->inner.alloc(f->inner.ctx, count, align, limit, out);
}

static mm_status_t failing_free(void *ctx, mm_paddr_t base, size_t count)
{
    failing_frames_t *f = ctx;
    return f->inner.free(f->inner.ctx, base, count);
}

static void check_oom(void)
{
    static failing_frames_t ff;
    static vmm_t vmm2;
    static layout_t lay2;
    uint64_t free0 = 0;
    if (!frames_free(&free0)) {
        tap_skip("no PMM to count frames", "vmm: out of memory half-way through a stack");
        return;
    }
    ff = (failing_frames_t){kernel_frames, 0, 0};
    mm_frame_allocator_t fa = {&ff, failing_alloc, failing_free};
    mm_page_mapper_t mapper2 = {0};
    const layout_region_t *mmio = &kernel_layout.regions[LAYOUT_MMIO];
    layout_params_t lp = {
        .hhdm_base = hhdm_base,
        .phys_top = boot_info.phys_top,
        .regions_base = mm_align_up(mmio->base + mmio->size + MM_GIB, MM_GIB),
        .heap_size = MM_GIB,
        .stacks_size = MM_GIB,
        .mmio_size = MM_GIB,
        .space = &kernel_layout.space,
    };
    mm_status_t st = layout_compute(&lp, &lay2);
    if (st == MM_OK)
        st = arch_mapper_like_kernel(fa, &mapper2);
    vmm_config_t vc = {
        .layout = &lay2,
        .kernel_root = kernel_root,
        .mapper = mapper2,
        .frames = fa,
    };
    if (st == MM_OK)
        st = vmm_init(&vmm2, &vc);
    if (!tap_check(st == MM_OK, "vmm: a second VMM at %#lx with a failing frame allocator (%s)",
                   lay2.regions[LAYOUT_STACKS].base, mm_status_str(st)))
        return;

    uint64_t base_free = 0, now = 0;
    frames_free(&base_free);
    unsigned failures = 0, leaks = 0, k;
    vmm_stack_t stack = VMM_STACK_INIT;
    for (k = 1; k < 200; k++) {
        ff.calls = 0;
        ff.fail_at = k;
        st = vmm_stack_create(&vmm2, &stack);
        if (st == MM_OK)
            break;
        failures++;
        frames_free(&now);
        if (st != MM_ERR_NOMEM || now != base_free || vmm_check(&vmm2) != MM_OK)
            leaks++;
    }
    ff.fail_at = 0;
    /* The last attempt succeeded: the stack works and sits at the region's
     * first slot, so no failed attempt kept virtual space either. */
    bool first_slot = st == MM_OK &&
                      stack.bottom == lay2.regions[LAYOUT_STACKS].base + VMM_STACK_GUARD_SIZE;
    if (st == MM_OK)
        *(volatile uint64_t *)(uintptr_t)(stack.top - 8) = 1;
    vmm_stack_release(&stack);
    frames_free(&now);
    tap_check(failures > 0 && leaks == 0 && first_slot && now == base_free,
              "vmm: %u stack creations failing at each frame request in turn leave frames, "
              "tables and region as they were (%u leaked); attempt %u succeeds in the first slot",
              failures, leaks, k);

    /* Heap growth the same way. */
    unsigned heap_fail = 0, heap_bad = 0;
    void *hb = NULL;
    size_t hs = 0;
    for (k = 1; k < 200; k++) {
        ff.calls = 0;
        ff.fail_at = k;
        st = vmm_heap_grow(&vmm2, 64 * MM_KIB, &hb, &hs);
        if (st == MM_OK)
            break;
        heap_fail++;
        frames_free(&now);
        vmm_stats_t vs;
        vmm_stats(&vmm2, &vs);
        if (st != MM_ERR_NOMEM || now != base_free || vs.heap_bytes != 0)
            heap_bad++;
    }
    ff.fail_at = 0;
    tap_check(heap_fail > 0 && heap_bad == 0 && st == MM_OK &&
                  (uint64_t)(uintptr_t)hb == lay2.regions[LAYOUT_HEAP].base,
              "vmm: %u heap growths failing half-way change nothing (%u did); the next one "
              "starts at the heap base",
              heap_fail, heap_bad);
}

#if HADRON_MM_LOCK_ORDER
static void vmm_stats_call(void *arg)
{
    vmm_stats_t s;
    vmm_stats(arg, &s);
}

/* The lock-order canary on the kernel's own locks: with the PMM lock held,
 * a VMM call (which takes the VMM lock) breaks the order VMM -> PMM. The
 * checker must panic before it spins, naming both locks. */
static void check_lock_order(void)
{
    mm_report_t rep = {0};
    mm_irqflags_t f = mm_spin_lock_irqsave(&kernel_pmm.lock);
    bool caught = panic_expect(vmm_stats_call, &kernel_vmm, &rep);
    mm_spin_unlock_irqrestore(&kernel_pmm.lock, f);
    tap_check(caught && rep.kind == MM_REPORT_LOCK_ORDER && rep.lock != NULL &&
                  rep.held != NULL && rep.lock[0] == 'v' && rep.held[0] == 'p' &&
                  !mm_spin_is_locked(&kernel_vmm.lock),
              "lock order: the VMM lock taken under the PMM lock panics (%s: %s under %s)",
              mm_report_kind_str(rep.kind), rep.lock ? rep.lock : "-",
              rep.held ? rep.held : "-");
}
#endif

void checks_vmm(void)
{
    if (!tap_check(kernel_vmm_ready, "vmm: initialised over the kernel tables (%s)",
                   mm_status_str(kernel_vmm_status)))
        return;
    check_stacks();
    check_mmio();
    check_user_space();
    check_heap_release();
    check_pcid();
    check_oom();
#if HADRON_MM_LOCK_ORDER
    check_lock_order();
#endif
    mm_status_t st = vmm_check(&kernel_vmm);
    vmm_stats_t s;
    vmm_stats(&kernel_vmm, &s);
    tap_check(st == MM_OK && s.stacks == 0 && s.mmio_mappings == 0 && s.stranded_bytes == 0,
              "vmm: consistency check %s; no stacks or MMIO left, nothing stranded",
              mm_status_str(st));
}

#else
void checks_vmm(void)
{
}
#endif

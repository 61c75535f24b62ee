/*
 * Test kernel, x86_64: every CPU of the MADT started (INIT-SIPI-SIPI through
 * a trampoline below 1 MiB, trampoline.S), per-CPU data behind GS, and the
 * remote half of the TLB hooks.
 *
 * Shootdowns are NMIs: the requester publishes one request (a global slot,
 * one shootdown at a time), marks each target CPU pending, sends it an NMI
 * and waits until every target cleared its mark. An NMI arrives whatever
 * the target's interrupt flag, so a target spinning on a lock with
 * interrupts off (the requester's own lock, even) still answers: no
 * deadlock, no interrupt vectors. Idle CPUs wait in HLT with interrupts
 * off; an NMI wakes them for work (smp_run_on), so idle vCPUs cost the host
 * nothing under TCG.
 */
#include <hadron/mm/hhdm.h>
#include <hadron/mm/tlb.h>
#include <hadron/mm/vmm.h>

#include "cpu.h"
#include "kernel.h"
#include "kmem.h"
#include "smp.h"

percpu_t smp_percpu[SMP_MAX_CPUS];
unsigned smp_online = 1;
bool smp_percpu_ready;
volatile unsigned long smp_remote_sent;
volatile bool smp_skip_remote;

#define MSR_GS_BASE 0xc0000101u
#define LAPIC_ID 0x20u
#define LAPIC_SVR 0xf0u
#define LAPIC_ICR_LO 0x300u
#define LAPIC_ICR_HI 0x310u
#define ICR_PENDING (1u << 12)
#define ICR_INIT 0x4500u
#define ICR_SIPI 0x4600u
#define ICR_NMI 0x4400u

static vmm_mmio_t lapic_map = VMM_MMIO_INIT;
static volatile uint32_t *lapic;

static uint32_t lapic_read(uint32_t reg)
{
    return lapic[reg / 4];
}

static void lapic_write(uint32_t reg, uint32_t v)
{
    lapic[reg / 4] = v;
}

static void lapic_send(uint32_t apic_id, uint32_t icr)
{
    lapic_write(LAPIC_ICR_HI, apic_id << 24);
    lapic_write(LAPIC_ICR_LO, icr);
    for (unsigned long i = 0; (lapic_read(LAPIC_ICR_LO) & ICR_PENDING) && i < 100000000ul; i++)
        __builtin_ia32_pause();
}

unsigned smp_this_cpu(void)
{
    if (!smp_percpu_ready)
        return 0;
    unsigned v;
    __asm__ __volatile__("movl %%gs:0, %0" : "=r"(v));
    return v;
}

void smp_bsp_init(void)
{
    smp_percpu[0].index = 0;
    smp_percpu[0].online = true;
    wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)&smp_percpu[0]);
    smp_percpu_ready = true;
}

/* ---- time: PIT channel 0, as the watchdog programs it (mode 2) -------- */
#define PIT_HZ 1193182u
#define PIT_DIVISOR (PIT_HZ / 50u)

static uint16_t pit_read(void)
{
    outb(0x43, 0x00); /* latch channel 0 */
    uint8_t lo = inb(0x40);
    uint8_t hi = inb(0x40);
    return (uint16_t)(lo | hi << 8);
}

/* Waits at least `us` microseconds of PIT time, or until *flag is true
 * (flag may be NULL). Returns whether the flag was seen. */
static bool pit_wait(uint64_t us, volatile bool *flag)
{
    uint64_t want = us * PIT_HZ / 1000000u + 1, elapsed = 0;
    uint16_t prev = pit_read();
    while (elapsed < want) {
        if (flag != NULL && *flag)
            return true;
        uint16_t cur = pit_read();
        elapsed += cur <= prev ? (uint64_t)(prev - cur) : (uint64_t)prev + (PIT_DIVISOR - cur);
        prev = cur;
        __builtin_ia32_pause();
    }
    return flag != NULL && *flag;
}

/* An NMI to `pc`'s CPU. Its credit tells the handler that an NMI finding
 * nothing to do was one of these (they coalesce), not the watchdog's. */
static void send_nmi(percpu_t *pc)
{
    __atomic_fetch_add(&pc->arch.nmi_credit, 1, __ATOMIC_SEQ_CST);
    lapic_send(pc->arch.apic_id, ICR_NMI);
}

/* Takes one credit; false when there was none. */
static bool take_credit(percpu_t *pc)
{
    uint32_t c = __atomic_load_n(&pc->arch.nmi_credit, __ATOMIC_ACQUIRE);
    while (c != 0)
        if (__atomic_compare_exchange_n(&pc->arch.nmi_credit, &c, c - 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return true;
    return false;
}

/* Waits until CPU c's handler answered a request (answered(pc, want)),
 * sending the NMI again now and then. Under TCG an NMI that finds the
 * target's NMIs blocked can stay undelivered after the blocking ends,
 * until the vCPU next looks at its interrupts: a new NMI makes it look.
 * Handlers run a request once, however many NMIs come. */
static void await_answer(unsigned c, bool (*answered)(const percpu_t *pc, uint32_t want),
                         uint32_t want, const char *request)
{
    percpu_t *pc = &smp_percpu[c];
    for (unsigned long i = 1; !answered(pc, want); i++) {
        if (i % 20000 == 0)
            send_nmi(pc);
        /* The watchdog catches a CPU that never answers; this bound is a
         * last resort far beyond it. */
        if (i == 4000000000ul)
            tap_bail("CPU %u never answered a %s", c, request);
        __builtin_ia32_pause();
    }
}

/* ---- the shootdown ----------------------------------------------------- */
static atomic_flag shoot_lock = ATOMIC_FLAG_INIT;
static struct {
    mm_asid_t asid;
    bool all, global;
    size_t count;
    mm_vaddr_t pages[MM_TLB_BATCH_MAX];
} shoot_req;

static void flush_local_everything(bool global)
{
    uint64_t cr4 = read_cr4();
    if ((global || tlb_pcid_on) && (cr4 & CR4_PGE)) {
        write_cr4(cr4 & ~CR4_PGE);
        write_cr4(cr4);
    } else {
        write_cr3(read_cr3() & ~CR3_NOFLUSH);
    }
}

bool smp_nmi(void)
{
    if (!smp_percpu_ready)
        return false;
    percpu_t *pc = &smp_percpu[smp_this_cpu()];
    bool credit = take_credit(pc);
    uint32_t barrier = __atomic_load_n(&pc->arch.barrier_seq, __ATOMIC_ACQUIRE);
    if (barrier != pc->arch.barrier_done) {
        /* The NMI already serialised this CPU; the fence says so in C. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        __atomic_store_n(&pc->arch.barrier_done, barrier, __ATOMIC_RELEASE);
        credit = true;
    }
    if (!pc->shoot_pending)
        return credit; /* a wake-up, or a resent or coalesced NMI */
    /* Without PCIDs INVLPG reaches what the request names (a user space's
     * pages are only cached while it is current, kernel ones are global);
     * with PCIDs the request may be for another identity: drop all. */
    if (shoot_req.all || tlb_pcid_on) {
        flush_local_everything(shoot_req.global || tlb_pcid_on);
    } else {
        for (size_t i = 0; i < shoot_req.count; i++)
            invlpg(shoot_req.pages[i]);
    }
    pc->invalidations++;
    __atomic_store_n(&pc->shoot_pending, 0, __ATOMIC_RELEASE);
    return true;
}

static bool shootdown_done(const percpu_t *pc, uint32_t unused)
{
    (void)unused;
    return __atomic_load_n(&pc->shoot_pending, __ATOMIC_ACQUIRE) == 0;
}

void smp_shootdown(mm_asid_t asid, const mm_cpuset_t *cpus, const mm_vaddr_t *pages,
                   size_t count, bool all, bool global)
{
    if (smp_online <= 1 || smp_skip_remote)
        return;
    unsigned self = smp_this_cpu();
    while (atomic_flag_test_and_set_explicit(&shoot_lock, memory_order_acquire))
        __builtin_ia32_pause();
    shoot_req.asid = asid;
    shoot_req.all = all || count > MM_TLB_BATCH_MAX;
    shoot_req.global = global;
    shoot_req.count = shoot_req.all ? 0 : count;
    for (size_t i = 0; i < shoot_req.count; i++)
        shoot_req.pages[i] = pages[i];
    bool sent[SMP_MAX_CPUS] = {false};
    for (unsigned c = 0; c < SMP_MAX_CPUS; c++) {
        percpu_t *pc = &smp_percpu[c];
        if (c == self || !pc->online || !mm_cpuset_contains(cpus, c))
            continue;
        __atomic_store_n(&pc->shoot_pending, 1, __ATOMIC_SEQ_CST);
        send_nmi(pc);
        sent[c] = true;
        smp_remote_sent++;
    }
    for (unsigned c = 0; c < SMP_MAX_CPUS; c++)
        if (sent[c])
            await_answer(c, shootdown_done, 0, "TLB shootdown");
    atomic_flag_clear_explicit(&shoot_lock, memory_order_release);
}

/* ---- the cross-CPU barrier ------------------------------------------- */
/* An NMI to every other online CPU, whose handler fences and answers: it
 * answers with interrupts off too, so this never refuses and cannot
 * deadlock with a CPU spinning on a lock the caller holds. Requests are
 * counted per CPU, so concurrent callers need no lock. */
unsigned long smp_barriers;

static bool barrier_done(const percpu_t *pc, uint32_t want)
{
    return (int32_t)(__atomic_load_n(&pc->arch.barrier_done, __ATOMIC_ACQUIRE) - want) >= 0;
}

bool mm_hook_cpu_barrier(void)
{
    __atomic_add_fetch(&smp_barriers, 1, __ATOMIC_RELAXED);
    if (smp_online <= 1 || !smp_percpu_ready)
        return true;
    unsigned self = smp_this_cpu();
    uint32_t want[SMP_MAX_CPUS] = {0};
    bool sent[SMP_MAX_CPUS] = {false};
    for (unsigned c = 0; c < SMP_MAX_CPUS; c++) {
        percpu_t *pc = &smp_percpu[c];
        if (c == self || !pc->online)
            continue;
        want[c] = __atomic_add_fetch(&pc->arch.barrier_seq, 1, __ATOMIC_SEQ_CST);
        send_nmi(pc);
        sent[c] = true;
    }
    for (unsigned c = 0; c < SMP_MAX_CPUS; c++)
        if (sent[c])
            await_answer(c, barrier_done, want[c], "barrier request");
    return true;
}

/* ---- work for other CPUs ---------------------------------------------- */
void smp_run_on(unsigned cpu, void (*fn)(void *), void *arg)
{
    percpu_t *pc = &smp_percpu[cpu];
    uint32_t seq = smp_post_work(pc, fn, arg);
    /* An NMI that lands between the CPU's look at work_seq and its HLT is
     * lost: send again until the work is taken. */
    for (;;) {
        send_nmi(pc);
        for (unsigned i = 0; i < 100000; i++) {
            if (__atomic_load_n(&pc->work_done, __ATOMIC_ACQUIRE) == seq ||
                __atomic_load_n(&pc->work_seq, __ATOMIC_ACQUIRE) != seq)
                return;
            if (pc->work == NULL)
                return; /* taken */
            __builtin_ia32_pause();
        }
    }
}

/* ---- AP start ------------------------------------------------------------ */
extern const uint8_t ap_tramp_start[], ap_tramp_end[], ap_tramp_params[];
typedef struct ap_params {
    uint64_t cr3, cr4, efer, stack, entry, arg;
} ap_params_t;

#define AP_IST_BYTES 8192u
static uint8_t ap_ist[SMP_MAX_CPUS][3][AP_IST_BYTES] __attribute__((aligned(16)));
static tss_t ap_tss[SMP_MAX_CPUS] __attribute__((aligned(16)));
static uint64_t ap_gdt[SMP_MAX_CPUS][GDT_ENTRIES] __attribute__((aligned(16)));
static vmm_stack_t ap_stack[SMP_MAX_CPUS];
static uint64_t bsp_cr0, bsp_cr4, bsp_efer, bsp_pat;
static desc_ptr_t bsp_idtr;
static volatile bool ap_alive;
mm_status_t smp_start_status = MM_ERR_STATE;
const char *smp_start_error;

static void ap_idle(percpu_t *pc)
{
    for (;;)
        if (!smp_run_pending(pc))
            __asm__ __volatile__("hlt" ::: "memory"); /* interrupts off: an NMI wakes it */
}

__attribute__((noreturn, used)) static void ap_entry(percpu_t *pc)
{
    /* The BSP's control state, then its root (may be above 4 GiB, so the
     * trampoline ran on a copy of the top level below 4 GiB). */
    write_cr4(bsp_cr4 & ~CR4_PCIDE);
    wrmsr(MSR_EFER, bsp_efer);
    write_cr0(bsp_cr0);
    if (cpu_feat.pat)
        wrmsr(MSR_PAT, bsp_pat);
    write_cr3(kernel_root);
    write_cr4(bsp_cr4); /* PCIDE needs CR3[11:0] = 0: the kernel root's */

    unsigned i = pc->index;
    tss_t *t = &ap_tss[i];
    t->ist[0] = (uint64_t)(uintptr_t)(ap_ist[i][0] + AP_IST_BYTES); /* #DF */
    t->ist[1] = (uint64_t)(uintptr_t)(ap_ist[i][1] + AP_IST_BYTES); /* NMI */
    t->rsp[0] = (uint64_t)(uintptr_t)(ap_ist[i][2] + AP_IST_BYTES);
    t->iomap_base = sizeof *t;
    for (unsigned k = 0; k < GDT_ENTRIES; k++)
        ap_gdt[i][k] = gdt[k];
    gdt_set_tss(ap_gdt[i], t);
    desc_ptr_t g = {sizeof ap_gdt[i] - 1, (uint64_t)(uintptr_t)ap_gdt[i]};
    __asm__ __volatile__("lgdt %0" : : "m"(g));
    /* CS 0x08 and SS/DS 0x10 mean the same in both GDTs. */
    __asm__ __volatile__("movw $0x10, %%ax; movw %%ax, %%ds; movw %%ax, %%es; movw %%ax, %%ss; "
                         "xorl %%eax, %%eax; movw %%ax, %%fs; movw %%ax, %%gs"
                         ::: "rax", "memory");
    __asm__ __volatile__("ltr %w0" : : "r"(GDT_TSS_SELECTOR));
    __asm__ __volatile__("lidt %0" : : "m"(bsp_idtr));
    wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)pc);
    lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x100u);
    __atomic_store_n(&pc->online, true, __ATOMIC_RELEASE);
    __atomic_store_n(&ap_alive, true, __ATOMIC_RELEASE);
    ap_idle(pc);
    cpu_halt_forever();
}

/* One AP through the trampoline at `tramp` (physical, identity-mapped). */
static bool start_ap(unsigned index, mm_paddr_t tramp, mm_paddr_t low_root)
{
    percpu_t *pc = &smp_percpu[index];
    mm_status_t st = vmm_stack_create(&kernel_vmm, &ap_stack[index]);
    if (st != MM_OK) {
        smp_start_error = "vmm_stack_create";
        return false;
    }
    uint8_t *page = hhdm_phys_to_virt(tramp);
    size_t size = (size_t)(ap_tramp_end - ap_tramp_start);
    for (size_t k = 0; k < size; k++)
        page[k] = ap_tramp_start[k];
    ap_params_t *p = (ap_params_t *)(void *)(page + (ap_tramp_params - ap_tramp_start));
    p->cr3 = low_root;
    p->cr4 = (bsp_cr4 & (CR4_PAE | CR4_LA57)) | CR4_PAE;
    p->efer = (UINT64_C(1) << 8) | (bsp_efer & EFER_NXE); /* LME */
    p->stack = ap_stack[index].top;
    p->entry = (uint64_t)(uintptr_t)ap_entry;
    p->arg = (uint64_t)(uintptr_t)pc;
    ap_alive = false;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);

    lapic_send(pc->arch.apic_id, ICR_INIT);
    pit_wait(10000, NULL);
    for (int sipi = 0; sipi < 2 && !ap_alive; sipi++) {
        lapic_send(pc->arch.apic_id, ICR_SIPI | (uint32_t)(tramp >> 12));
        pit_wait(200, &ap_alive);
    }
    /* Generous: a loaded host may take long to schedule the new vCPU. */
    if (!pit_wait(5000000, &ap_alive)) {
        smp_start_error = "the CPU did not come up";
        return false;
    }
    return true;
}

static mm_paddr_t low_tramp, low_top;

void smp_reserve_low(void)
{
    if (!kernel_frames_ready)
        return;
    if (low_tramp == 0 &&
        pmm_alloc_contig(&kernel_pmm, 1, 1, 0x100000, &low_tramp) != MM_OK)
        low_tramp = 0;
    if (low_top == 0 &&
        pmm_alloc_contig(&kernel_pmm, 1, 1, UINT64_C(1) << 32, &low_top) != MM_OK)
        low_top = 0;
}

/* Gives back what smp_reserve_low took, when no CPU is started. */
static void release_low(void)
{
    if (low_tramp != 0)
        pmm_free(&kernel_pmm, low_tramp);
    if (low_top != 0)
        pmm_free(&kernel_pmm, low_top);
    low_tramp = low_top = 0;
}

void smp_start(void)
{
    if (!acpi_cpus.found || !kernel_vmm_ready || acpi_cpus.count < 2) {
        smp_start_error = acpi_cpus.found ? "one CPU" : acpi_cpus.why;
        release_low();
        return;
    }
    vmm_mmio_t m;
    if (vmm_mmio_map(&kernel_vmm, acpi_cpus.lapic_phys, 0x400, VMM_MMIO_DEVICE, &m) != MM_OK) {
        smp_start_error = "vmm_mmio_map(LAPIC)";
        release_low();
        return;
    }
    lapic_map = m;
    lapic = (volatile uint32_t *)lapic_map.ptr;
    lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x100u);
    uint32_t bsp_id = lapic_read(LAPIC_ID) >> 24;
    smp_percpu[0].arch.apic_id = bsp_id;

    if (cmdline_has("nowatchdog")) { /* else the watchdog runs it like this */
        outb(0x43, 0x34);
        outb(0x40, (uint8_t)PIT_DIVISOR);
        outb(0x40, (uint8_t)(PIT_DIVISOR >> 8));
    }
    bsp_cr0 = read_cr0();
    bsp_cr4 = read_cr4();
    bsp_efer = rdmsr(MSR_EFER);
    bsp_pat = cpu_feat.pat ? rdmsr(MSR_PAT) : 0;
    __asm__ __volatile__("sidt %0" : "=m"(bsp_idtr));

    /* The trampoline frame below 1 MiB (smp_reserve_low), identity-mapped
     * in the kernel root; the top level copied below 4 GiB for the 32-bit
     * CR3 load. */
    smp_reserve_low();
    mm_paddr_t tramp = low_tramp, low_root = low_top;
    if (tramp == 0 || low_root == 0) {
        smp_start_error = tramp == 0 ? "no frame below 1 MiB" : "no frame below 4 GiB";
        release_low();
        return;
    }
    low_tramp = low_top = 0;
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    mm_status_t st = mm_pm_map(&kernel_mapper, kernel_root, tramp, tramp, MM_PAGE_4K,
                               MM_MAP_EXEC, &tlb);
    mm_tlb_batch_flush(&tlb);
    if (st != MM_OK) {
        smp_start_error = "identity map of the trampoline";
        pmm_free(&kernel_pmm, tramp);
        pmm_free(&kernel_pmm, low_root);
        return;
    }
    const uint64_t *src = hhdm_phys_to_virt(kernel_root);
    uint64_t *dst = hhdm_phys_to_virt(low_root);
    for (unsigned k = 0; k < 512; k++)
        dst[k] = src[k];

    unsigned next = 1;
    for (unsigned c = 0; c < acpi_cpus.count && next < SMP_MAX_CPUS; c++) {
        if (acpi_cpus.apic_id[c] == bsp_id)
            continue;
        smp_percpu[next].index = next;
        smp_percpu[next].arch.apic_id = acpi_cpus.apic_id[c];
        if (!start_ap(next, tramp, low_root))
            break;
        next++;
        smp_online = next;
        tap_check(true, "smp: CPU %u (APIC ID %u) started: long mode on the kernel root, "
                  "guard-page stack at %#lx", next - 1, smp_percpu[next - 1].arch.apic_id,
                  ap_stack[next - 1].bottom);
    }

    /* The identity page goes now: a kernel-half change, so every CPU
     * (the APs included) drops it. */
    mm_paddr_t old;
    tlb = (mm_tlb_batch_t)MM_TLB_BATCH_INIT;
    st = mm_pm_unmap(&kernel_mapper, kernel_root, tramp, MM_PAGE_4K, &old, &tlb);
    mm_tlb_batch_flush(&tlb);
    tap_check(st == MM_OK && old == tramp, "smp: trampoline identity mapping removed");
    pmm_free(&kernel_pmm, tramp);
    pmm_free(&kernel_pmm, low_root);
    smp_start_status = smp_online == acpi_cpus.count ? MM_OK : MM_ERR_STATE;
}

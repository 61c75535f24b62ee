/*
 * Test kernel (AArch64): every CPU of the device tree started through PSCI
 * CPU_ON, per-CPU data in TPIDR_EL1, work handed to idle CPUs, and the
 * decision the TLB hooks make between local and broadcast invalidation.
 *
 * The secondary's identity mapping: a CPU comes out of CPU_ON with its MMU
 * off, running at physical addresses, and needs the instruction that turns
 * the MMU on to be mapped at the same address. The kernel's own tables
 * (paging-aarch64) map no identity, and TTBR0 is the user half. The boot
 * identity tables of boot.S are static (in the image's bss, reserved with
 * it, never written after boot), so they are kept for this: the starting
 * CPU puts them in its own TTBR0 only for the jump to the kernel's
 * addresses, then drops them and its local TLB before anything else runs.
 * No other CPU ever sees them again, and no frame is mapped for the
 * purpose. They map RAM at [1 GiB, 4 GiB) (where QEMU virt loads the
 * image): smp_start refuses an image outside it.
 *
 * Idle CPUs wait in WFE; smp_run_on publishes the work and sends SEV.
 * Under TCG WFE does not sleep (the vCPU yields and runs again), so idle
 * CPUs cost host time while the other CPUs are up: they are started only
 * after the single-CPU checks.
 */
#include <hadron/mm/hhdm.h>
#include <hadron/mm/vmm.h>

#include "cpu.h"
#include "kernel.h"
#include "kmem.h"
#include "psci.h"
#include "smp.h"

percpu_t smp_percpu[SMP_MAX_CPUS];
unsigned smp_online = 1;
bool smp_percpu_ready;
volatile unsigned long smp_remote_sent;
volatile bool smp_skip_remote;
mm_status_t smp_start_status = MM_ERR_STATE;
const char *smp_start_error;
unsigned smp_psci_version;

/* MPIDR_EL1's affinity fields: Aff3 [39:32], Aff2..Aff0 [23:0]. */
#define MPIDR_AFF_MASK UINT64_C(0xff00ffffff)
/* The boot identity's Normal-memory part (below it: Device, no fetch). */
#define BOOT_IDENTITY_START (UINT64_C(1) << 30)
#define BOOT_IDENTITY_END (UINT64_C(4) << 30)

/* What secondary.S loads before its MMU is on (offsets fixed there). */
typedef struct smp_boot_params {
    uint64_t mair, tcr, ttbr0, ttbr1, sctlr, vbar, stack, entry, arg;
} smp_boot_params_t;
_Static_assert(__builtin_offsetof(smp_boot_params_t, ttbr0) == 16, "secondary.S P_TTBR0");
_Static_assert(__builtin_offsetof(smp_boot_params_t, sctlr) == 32, "secondary.S P_SCTLR");
_Static_assert(__builtin_offsetof(smp_boot_params_t, stack) == 48, "secondary.S P_STACK");
_Static_assert(__builtin_offsetof(smp_boot_params_t, arg) == 64, "secondary.S P_ARG");

extern char secondary_entry[];
extern uint64_t boot_identity_root; /* boot.S: the TTBR0 the boot CPU started with */

static smp_boot_params_t boot_params[SMP_MAX_CPUS] __attribute__((aligned(64)));
static vmm_stack_t cpu_stack[SMP_MAX_CPUS];

unsigned smp_this_cpu(void)
{
    if (!smp_percpu_ready)
        return 0;
    const percpu_t *pc = (const percpu_t *)(uintptr_t)READ_SYSREG(tpidr_el1);
    return pc->index;
}

void smp_boot_cpu_init(void)
{
    smp_percpu[0].index = 0;
    smp_percpu[0].online = true;
    smp_percpu[0].arch.mpidr = READ_SYSREG(mpidr_el1) & MPIDR_AFF_MASK;
    WRITE_SYSREG(tpidr_el1, (uint64_t)(uintptr_t)&smp_percpu[0]);
    isb();
    smp_percpu_ready = true;
}

bool smp_flush_is_remote(const mm_cpuset_t *cpus)
{
    if (smp_skip_remote || !smp_percpu_ready)
        return false;
    unsigned self = smp_this_cpu();
    bool remote = false;
    for (unsigned c = 0; c < SMP_MAX_CPUS; c++) {
        percpu_t *pc = &smp_percpu[c];
        if (c == self || !__atomic_load_n(&pc->online, __ATOMIC_ACQUIRE) ||
            !mm_cpuset_contains(cpus, c))
            continue;
        __atomic_fetch_add(&pc->invalidations, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&smp_remote_sent, 1, __ATOMIC_RELAXED);
        remote = true;
    }
    return remote;
}

/* ---- work for other CPUs ---------------------------------------------- */
static void sev(void)
{
    __asm__ __volatile__("dsb ish\n\tsev" ::: "memory");
}

void smp_run_on(unsigned cpu, void (*fn)(void *), void *arg)
{
    percpu_t *pc = &smp_percpu[cpu];
    uint32_t seq = smp_post_work(pc, fn, arg);
    sev();
    while (pc->work != NULL && __atomic_load_n(&pc->work_done, __ATOMIC_ACQUIRE) != seq)
        cpu_relax();
}

/* A SEV between the look at work_seq and the WFE sets the event register,
 * so that WFE returns at once: no wake-up is lost. */
static _Noreturn void cpu_idle(percpu_t *pc)
{
    for (;;) {
        if (smp_run_pending(pc))
            sev();
        else
            __asm__ __volatile__("wfe" ::: "memory");
    }
}

/* secondary.S calls this on the CPU's own stack, MMU on, at EL1. */
_Noreturn void smp_secondary_main(percpu_t *pc, uint64_t entry_el);
_Noreturn void smp_secondary_main(percpu_t *pc, uint64_t entry_el)
{
    pc->arch.entry_el = (unsigned)entry_el;
    __atomic_store_n(&pc->arch.alive, true, __ATOMIC_RELEASE);
    sev();
    cpu_idle(pc);
}

/* ---- start ---------------------------------------------------------------- */
/* Waits up to `ms` of the generic timer for pc->arch.alive. */
static bool wait_alive(percpu_t *pc, uint64_t ms)
{
    uint64_t freq = READ_SYSREG(cntfrq_el0), t0 = READ_SYSREG(cntpct_el0);
    uint64_t ticks = freq / 1000 * ms;
    while (!__atomic_load_n(&pc->arch.alive, __ATOMIC_ACQUIRE)) {
        if (READ_SYSREG(cntpct_el0) - t0 > ticks)
            return false;
        cpu_relax();
    }
    return true;
}

/* Makes the parameters visible to a CPU whose MMU (and so its caches) is
 * still off: cleaned to the point of coherency. */
static void clean_to_poc(const void *p, size_t size)
{
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)63, end = (uintptr_t)p + size;
    for (; a < end; a += 64)
        __asm__ __volatile__("dc cvac, %0" : : "r"(a) : "memory");
    dsb_ish();
}

static bool start_cpu(unsigned index, const smp_boot_params_t *tmpl)
{
    percpu_t *pc = &smp_percpu[index];
    if (vmm_stack_create(&kernel_vmm, &cpu_stack[index]) != MM_OK) {
        smp_start_error = "vmm_stack_create";
        return false;
    }
    smp_boot_params_t *p = &boot_params[index];
    *p = *tmpl;
    p->stack = cpu_stack[index].top;
    p->arg = (uint64_t)(uintptr_t)pc;
    clean_to_poc(p, sizeof *p);
    /* Online from now: a flush while it comes up must reach it. */
    __atomic_store_n(&pc->online, true, __ATOMIC_SEQ_CST);
    int64_t r = psci_call(boot_info.psci, PSCI_CPU_ON_64, pc->arch.mpidr,
                          kernel_virt_to_phys(secondary_entry), kernel_virt_to_phys(p));
    if (r != PSCI_SUCCESS) {
        __atomic_store_n(&pc->online, false, __ATOMIC_SEQ_CST);
        smp_start_error = psci_status_str(r);
        return false;
    }
    /* Generous: a loaded host may take long to schedule the new vCPU. */
    if (!wait_alive(pc, 5000)) {
        smp_start_error = "the CPU did not come up";
        return false;
    }
    return true;
}

void smp_start(void)
{
    if (!kernel_vmm_ready || boot_info.cpu_count < 2) {
        smp_start_error = kernel_vmm_ready ? "one CPU" : "no VMM";
        return;
    }
    if (boot_info.psci == FDT_PSCI_NONE) {
        smp_start_error = "no /psci method in the device tree";
        return;
    }
    if (kernel_image_phys_start() < BOOT_IDENTITY_START ||
        kernel_image_phys_end() > BOOT_IDENTITY_END) {
        smp_start_error = "image outside the boot identity map's RAM part";
        return;
    }
    int64_t v = psci_call(boot_info.psci, PSCI_VERSION, 0, 0, 0);
    smp_psci_version = v < 0 ? 0 : (unsigned)v;
    smp_boot_params_t tmpl = {
        .mair = READ_SYSREG(mair_el1),
        .tcr = READ_SYSREG(tcr_el1) & ~TCR_EPD0, /* the identity is walked */
        .ttbr0 = boot_identity_root,
        .ttbr1 = READ_SYSREG(ttbr1_el1),
        .sctlr = READ_SYSREG(sctlr_el1),
        .vbar = READ_SYSREG(vbar_el1),
        .entry = (uint64_t)(uintptr_t)smp_secondary_main,
    };
    unsigned next = 1;
    for (unsigned c = 0; c < boot_info.cpu_count && next < SMP_MAX_CPUS; c++) {
        uint64_t mpidr = boot_info.cpu_mpidr[c] & MPIDR_AFF_MASK;
        if (mpidr == smp_percpu[0].arch.mpidr)
            continue;
        if (!boot_info.cpu_psci[c]) {
            smp_start_error = "a CPU whose enable-method is not psci";
            break;
        }
        smp_percpu[next].index = next;
        smp_percpu[next].arch.mpidr = mpidr;
        if (!start_cpu(next, &tmpl))
            break;
        next++;
        smp_online = next;
        tap_check(true, "smp: CPU %u (MPIDR %#lx) started: PSCI CPU_ON through %s, entered at "
                  "EL%u, runs at EL1 on the kernel root, guard-page stack at %#lx", next - 1,
                  (unsigned long)mpidr, psci_conduit_str(boot_info.psci),
                  smp_percpu[next - 1].arch.entry_el, (unsigned long)cpu_stack[next - 1].bottom);
    }
    smp_start_status = smp_online == boot_info.cpu_count ? MM_OK : MM_ERR_STATE;
}

/*
 * Test kernel: exception handling.
 *
 * A check that wants to provoke a fault runs the access through
 * fault_expect(): the handler records vector, CR2, error code and RIP, then
 * resumes after the call with kjmp_restore (the faulting instruction is
 * abandoned, not retried). Any other exception is a bug in the code under
 * test: the handler prints a diagnostic, marks the run failed and exits.
 */
#include "cpu.h"
#include "kernel.h"

static const char *const exc_names[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
    "#BR bound range", "#UD invalid opcode", "#NM device not available",
    "#DF double fault", "coprocessor overrun", "#TS invalid TSS", "#NP segment not present",
    "#SS stack fault", "#GP general protection", "#PF page fault", "reserved 15",
    "#MF x87 error", "#AC alignment check", "#MC machine check", "#XM SIMD error",
    "#VE virtualisation", "#CP control protection", "reserved 22", "reserved 23",
    "reserved 24", "reserved 25", "reserved 26", "reserved 27",
    "#HV hypervisor injection", "#VC VMM communication", "#SX security", "reserved 31",
};

fault_classifier_fn fault_vmm_classifier;

static volatile bool fault_armed;
static kjmp_buf_t fault_jmp;
static fault_record_t *volatile fault_rec;

bool fault_expect(void (*fn)(void *), void *arg, fault_record_t *rec)
{
    *rec = (fault_record_t){0};
    fault_rec = rec;
    if (kjmp_save(&fault_jmp) == 0) {
        fault_armed = true;
        fn(arg);
        fault_armed = false;
        return false;
    }
    return true;
}

typedef struct probe {
    uint64_t va;
    uint64_t value;
} probe_t;

static void probe_read(void *arg)
{
    probe_t *p = arg;
    p->value = *(volatile uint64_t *)(uintptr_t)p->va;
}

static void probe_write(void *arg)
{
    probe_t *p = arg;
    *(volatile uint64_t *)(uintptr_t)p->va = p->value;
}

static void probe_exec(void *arg)
{
    probe_t *p = arg;
    void (*fn)(void) = (void (*)(void))(uintptr_t)p->va;
    fn();
}

bool fault_probe_read(uint64_t va, fault_record_t *rec)
{
    probe_t p = {va, 0};
    return fault_expect(probe_read, &p, rec);
}

bool fault_probe_write(uint64_t va, uint64_t value, fault_record_t *rec)
{
    probe_t p = {va, value};
    return fault_expect(probe_write, &p, rec);
}

bool fault_probe_exec(uint64_t va, fault_record_t *rec)
{
    probe_t p = {va, 0};
    return fault_expect(probe_exec, &p, rec);
}

void fault_classify(uint64_t va, char *buf, size_t size)
{
    if (!kernel_layout_ready) {
        ksnprintf(buf, size, "layout not set up yet");
        return;
    }
    layout_region_id_t id = layout_find(&kernel_layout, va);
    if (id == LAYOUT_NONE) {
        ksnprintf(buf, size, "%s",
                  mm_va_space_is_user(&kernel_layout.space, va)
                      ? "lower half (user / identity)"
                      : "unmapped gap outside every region");
        return;
    }
    const layout_region_t *r = &kernel_layout.regions[id];
    int n = ksnprintf(buf, size, "%s region +0x%lx", layout_region_name(id), va - r->base);
    if (fault_vmm_classifier != NULL && n >= 0 && (size_t)n + 3 < size) {
        buf[n] = ':';
        buf[n + 1] = ' ';
        if (!fault_vmm_classifier(va, buf + n + 2, size - (size_t)n - 2))
            buf[n] = '\0';
    }
}

static void describe_pf_error(uint64_t err, char *buf, size_t size)
{
    ksnprintf(buf, size, "%s %s %s%s%s", err & PF_ERR_PRESENT ? "protection" : "not-present",
              err & PF_ERR_FETCH ? "fetch" : err & PF_ERR_WRITE ? "write" : "read",
              err & PF_ERR_USER ? "user" : "supervisor", err & PF_ERR_RSVD ? " reserved-bit" : "",
              "");
}

static bool plausible_frame(uint64_t rbp)
{
    return (rbp & 7) == 0 && rbp >= UINT64_C(0xff00000000000000) && rbp < UINT64_MAX - 16;
}

void backtrace_print(uint64_t rip, uint64_t rbp)
{
    kprintf("#   backtrace: %016lx", rip);
    for (unsigned depth = 0; depth < 16 && plausible_frame(rbp); depth++) {
        const uint64_t *f = (const uint64_t *)(uintptr_t)rbp;
        kprintf(" %016lx", f[1]);
        if (f[0] <= rbp)
            break;
        rbp = f[0];
    }
    kprintf("\n");
}

void fault_handle(isr_frame_t *frame)
{
    unsigned vec = (unsigned)frame->vector;
    uint64_t cr2 = read_cr2();

    /* A user-mode check may drop to ring 3 with DS/ES = the user selector;
     * the kernel does not rely on them, but restore them for tidiness. */
    __asm__ __volatile__("movw %w0, %%ds; movw %w0, %%es; movw %w0, %%ss" : : "r"(0x10));
    if (fault_armed && (vec == 14 || vec == 8)) {
        fault_armed = false;
        fault_record_t *rec = fault_rec;
        rec->hit = true;
        rec->vector = vec;
        rec->cr2 = cr2;
        rec->error = frame->error;
        rec->rip = frame->rip;
        rec->cs = frame->cs;
        fault_classify(cr2, rec->where, sizeof rec->where);
        kjmp_restore(&fault_jmp, 1);
    }

    kprintf("# UNEXPECTED EXCEPTION %u: %s\n", vec, vec < 32 ? exc_names[vec] : "?");
    kprintf("#   rip=%016lx error=%#lx rsp=%016lx rflags=%#lx cs=%#lx\n", frame->rip,
            frame->error, frame->rsp, frame->rflags, frame->cs);
    if (vec == 14 || vec == 8) {
        char where[160], how[64];
        fault_classify(cr2, where, sizeof where);
        describe_pf_error(frame->error, how, sizeof how);
        kprintf("#   cr2=%016lx (%s) %s\n", cr2, where, vec == 14 ? how : "");
    }
    kprintf("#   rax=%016lx rbx=%016lx rcx=%016lx rdx=%016lx\n", frame->rax, frame->rbx,
            frame->rcx, frame->rdx);
    kprintf("#   rsi=%016lx rdi=%016lx rbp=%016lx cr3=%016lx\n", frame->rsi, frame->rdi,
            frame->rbp, read_cr3());
    backtrace_print(frame->rip, frame->rbp);
    tap_fail("crashed", "no unexpected exception (%s at rip %#lx)",
             vec < 32 ? exc_names[vec] : "?", frame->rip);
    tap_bail("unexpected exception %u", vec);
}

const char *pf_error_str(uint64_t err, char *buf, size_t size)
{
    describe_pf_error(err, buf, size);
    return buf;
}

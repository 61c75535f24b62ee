/*
 * Test kernel: exception handling.
 *
 * A fault a check provoked through fault_expect() (common/fault_expect.c)
 * is recorded here: vector, CR2, error code and RIP, then the check
 * resumes. Any other exception is a bug in the code under
 * test: the handler prints a diagnostic, marks the run failed and exits.
 */
#include "cpu.h"
#include "fault_core.h"
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

const char *arch_fault_unmapped_name(uint64_t va)
{
    return mm_va_space_is_user(&kernel_layout.space, va) ? "lower half (user / identity)"
                                                         : "unmapped gap outside every region";
}

static void describe_pf_error(uint64_t err, char *buf, size_t size)
{
    ksnprintf(buf, size, "%s %s %s%s%s", err & PF_ERR_PRESENT ? "protection" : "not-present",
              err & PF_ERR_FETCH ? "fetch" : err & PF_ERR_WRITE ? "write" : "read",
              err & PF_ERR_USER ? "user" : "supervisor", err & PF_ERR_RSVD ? " reserved-bit" : "",
              "");
}

void fault_handle(isr_frame_t *frame)
{
    unsigned vec = (unsigned)frame->vector;
    uint64_t cr2 = read_cr2();

    /* A user-mode check may drop to ring 3 with DS/ES = the user selector;
     * the kernel does not rely on them, but restore them for tidiness. */
    __asm__ __volatile__("movw %w0, %%ds; movw %w0, %%es; movw %w0, %%ss" : : "r"(0x10));
    if (fault_pending() && (vec == 14 || vec == 8)) {
        fault_record_t *rec = fault_claim();
        rec->vector = vec;
        rec->cr2 = cr2;
        rec->error = frame->error;
        rec->rip = frame->rip;
        rec->cs = frame->cs;
        fault_classify(cr2, rec->where, sizeof rec->where);
        fault_resume();
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

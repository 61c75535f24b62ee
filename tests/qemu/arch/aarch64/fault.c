/*
 * Test kernel (AArch64): exception handling.
 *
 * A fault a check provoked through fault_expect() (common/fault_expect.c)
 * is recorded here: ESR_EL1, FAR_EL1 and ELR_EL1, then the check resumes.
 * An SVC from EL0 is the end of a user-mode run: it is
 * recorded the same way. Any other exception is a bug in the code under
 * test: a diagnostic, a backtrace, a "not ok" and "Bail out!".
 */
#include "cpu.h"
#include "fault_core.h"
#include "kernel.h"

const char *arch_fault_unmapped_name(uint64_t va)
{
    return mm_va_space_is_user(&kernel_layout.space, va)     ? "user half (TTBR0)"
           : mm_va_space_is_kernel(&kernel_layout.space, va) ? "unmapped gap outside every region"
                                                             : "outside both halves (address-size fault)";
}

static const char *ec_name(unsigned ec)
{
    switch (ec) {
    case EC_UNKNOWN: return "unknown (undefined instruction)";
    case EC_SVC64: return "SVC";
    case EC_IABT_LOW: return "instruction abort from EL0";
    case EC_IABT_CUR: return "instruction abort";
    case EC_PC_ALIGN: return "PC alignment";
    case EC_DABT_LOW: return "data abort from EL0";
    case EC_DABT_CUR: return "data abort";
    case EC_SP_ALIGN: return "SP alignment";
    case EC_BRK64: return "BRK";
    default: return "other";
    }
}

/* "data abort, permission fault level 3, write". */
const char *esr_str(uint64_t esr, char *buf, size_t size)
{
    unsigned ec = ESR_EC(esr), fsc = ESR_FSC(esr);
    bool abort = ec == EC_DABT_CUR || ec == EC_DABT_LOW || ec == EC_IABT_CUR || ec == EC_IABT_LOW;
    if (!abort) {
        ksnprintf(buf, size, "%s (EC %#x, ISS %#lx)", ec_name(ec), ec, esr & 0x1ffffff);
        return buf;
    }
    const char *kind = FSC_IS_TRANSLATION(fsc) ? "translation fault"
                       : FSC_IS_PERMISSION(fsc) ? "permission fault"
                       : (fsc & 0x3c) == 0x08   ? "access flag fault"
                       : (fsc & 0x3c) == 0x00   ? "address size fault"
                                                : "other fault";
    int level = (fsc == 0x2b || fsc == 0x29) ? -1 : (int)(fsc & 3);
    bool data = ec == EC_DABT_CUR || ec == EC_DABT_LOW;
    ksnprintf(buf, size, "%s, %s level %d%s", ec_name(ec), kind, level,
              data ? (ESR_WNR(esr) ? ", write" : ", read") : ", fetch");
    return buf;
}

void exc_dispatch(exc_frame_t *frame, uint64_t vector)
{
    unsigned ec = ESR_EC(frame->esr);
    bool sync = (vector & 3) == 0;
    bool from_el0 = vector >= 8;
    bool expected = ec == EC_DABT_CUR || ec == EC_DABT_LOW || ec == EC_IABT_CUR ||
                    ec == EC_IABT_LOW || (ec == EC_SVC64 && from_el0) ||
                    (ec == EC_PC_ALIGN && from_el0);
    if (fault_pending() && sync && expected) {
        fault_record_t *rec = fault_claim();
        rec->ec = ec;
        rec->esr = frame->esr;
        rec->far = ec == EC_SVC64 ? 0 : frame->far;
        rec->elr = frame->elr;
        rec->from_el0 = from_el0;
        rec->svc = ec == EC_SVC64 ? (unsigned)(frame->esr & 0xffff) : 0;
        rec->x0 = frame->x[0];
        if (ec != EC_SVC64)
            fault_classify(frame->far, rec->where, sizeof rec->where);
        fault_resume();
    }

    char how[96], where[160];
    static const char *const kinds[4] = {"sync", "IRQ", "FIQ", "SError"};
    static const char *const sources[4] = {"EL1t", "EL1h", "EL0 AArch64", "EL0 AArch32"};
    kprintf("# UNEXPECTED EXCEPTION: %s from %s: %s\n", kinds[vector & 3], sources[vector >> 2],
            esr_str(frame->esr, how, sizeof how));
    kprintf("#   elr=%016lx esr=%#lx spsr=%#lx far=%016lx\n", frame->elr, frame->esr,
            frame->spsr, frame->far);
    fault_classify(frame->far, where, sizeof where);
    kprintf("#   far is in: %s\n", where);
    for (unsigned i = 0; i < 30; i += 3)
        kprintf("#   x%-2u=%016lx x%-2u=%016lx x%-2u=%016lx\n", i, frame->x[i], i + 1,
                frame->x[i + 1], i + 2, i + 2 < 31 ? frame->x[i + 2] : 0);
    backtrace_print(frame->elr, frame->x[29]);
    tap_fail("crashed", "no unexpected exception (%s at %#lx)", ec_name(ec), frame->elr);
    tap_bail("unexpected exception, ESR %#lx", frame->esr);
}

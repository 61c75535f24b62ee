/*
 * Test kernel: provoking faults on purpose. A check runs the access through
 * fault_expect(); the kernel's exception handler (its fault.c) fills the
 * record and resumes after the call with kjmp_restore (the faulting
 * instruction is abandoned, not retried). Also what both handlers print
 * about an address: its layout region and the VMM's view of it, and the
 * frame-record backtrace.
 */
#include "fault_core.h"
#include "kernel.h"

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

bool fault_pending(void)
{
    return fault_armed;
}

fault_record_t *fault_claim(void)
{
    fault_armed = false;
    fault_record_t *rec = fault_rec;
    rec->hit = true;
    return rec;
}

_Noreturn void fault_resume(void)
{
    kjmp_restore(&fault_jmp, 1);
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
        ksnprintf(buf, size, "%s", arch_fault_unmapped_name(va));
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

static bool plausible_frame(uint64_t fp)
{
    return (fp & 7) == 0 && fp >= ARCH_FRAME_VA_MIN && fp < UINT64_MAX - 16;
}

/* A frame record (x86_64 and AAPCS64 alike): [fp] = the caller's fp,
 * [fp + 8] = the return address. */
void backtrace_print(uint64_t pc, uint64_t fp)
{
    kprintf("#   backtrace: %016lx", pc);
    for (unsigned depth = 0; depth < 16 && plausible_frame(fp); depth++) {
        const uint64_t *f = (const uint64_t *)(uintptr_t)fp;
        kprintf(" %016lx", f[1]);
        if (f[0] <= fp)
            break;
        fp = f[0];
    }
    kprintf("\n");
}

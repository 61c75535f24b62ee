/*
 * Test kernel: IDT for the 32 exception vectors, and a TSS whose IST1 gives
 * the double-fault handler its own stack (a kernel stack overflow faults
 * again while pushing the #PF frame; #DF on IST1 still runs) and whose RSP0
 * is the stack an exception from ring 3 (the user-mode checks) lands on.
 * The watchdog's NMI runs on IST2, so it works even on an overflowing stack.
 */
#include "cpu.h"
#include "smp.h"
#include "kernel.h"

typedef struct __attribute__((packed)) idt_gate {
    uint16_t off_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t off_mid;
    uint32_t off_hi;
    uint32_t zero;
} idt_gate_t;

extern const uint64_t isr_stub_table[32];

static idt_gate_t idt[32] __attribute__((aligned(16)));
static tss_t tss __attribute__((aligned(16)));
static uint8_t df_stack[16384] __attribute__((aligned(16)));
static uint8_t nmi_stack[16384] __attribute__((aligned(16)));
/* Where the CPU switches to when an exception interrupts ring 3. */
static uint8_t ring0_stack[16384] __attribute__((aligned(16)));

#define IST_DOUBLE_FAULT 1
#define IST_NMI 2

static void set_gate(unsigned vec, uint64_t handler, uint8_t ist)
{
    idt[vec] = (idt_gate_t){
        .off_lo = (uint16_t)handler,
        .selector = 0x08,
        .ist = ist,
        .type_attr = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
        .off_mid = (uint16_t)(handler >> 16),
        .off_hi = (uint32_t)(handler >> 32),
        .zero = 0,
    };
}

static void tss_init(void)
{
    tss.ist[IST_DOUBLE_FAULT - 1] = (uint64_t)(uintptr_t)(df_stack + sizeof df_stack);
    tss.ist[IST_NMI - 1] = (uint64_t)(uintptr_t)(nmi_stack + sizeof nmi_stack);
    tss.rsp[0] = (uint64_t)(uintptr_t)(ring0_stack + sizeof ring0_stack);
    tss.iomap_base = sizeof tss;
    gdt_set_tss(gdt, &tss);
    __asm__ __volatile__("ltr %w0" : : "r"(GDT_TSS_SELECTOR));
}

void idt_init(void)
{
    tss_init();
    for (unsigned v = 0; v < 32; v++)
        set_gate(v, isr_stub_table[v], v == 8 ? IST_DOUBLE_FAULT : v == 2 ? IST_NMI : 0);
    desc_ptr_t p = {sizeof idt - 1, (uint64_t)(uintptr_t)idt};
    __asm__ __volatile__("lidt %0" : : "m"(p));
}

void isr_dispatch(isr_frame_t *frame)
{
    if (frame->vector == 2) {
        /* A shootdown NMI (smp.c), else the watchdog's (BSP only). */
        if (!smp_nmi() && smp_this_cpu() == 0)
            watchdog_nmi(frame);
    }
    else
        fault_handle(frame);
}

/*
 * Test kernel: a watchdog for hangs. A deadlocked spinlock spins with
 * interrupts off, so an ordinary timer interrupt would never arrive: the PIT
 * (ISA IRQ 0, IOAPIC input 2) is routed to the CPU as an NMI instead. Each
 * NMI checks whether a TAP line was printed since the last progress; after
 * WATCHDOG_SECONDS without one it prints where the CPU is (RIP and a frame-
 * pointer backtrace, for addr2line) and, for every CPU, the hadron-mm lock
 * it spins for, that lock's holder and the locks it holds (lock_order
 * builds: mm_lock_debug_snapshot, safe from an NMI), and fails the run at
 * once, instead of leaving the runner's timeout to kill a silent QEMU.
 *
 * Programmed once, through the boot identity map, before kmain drops it:
 * the PIT runs periodically and an edge-triggered NMI needs no EOI, so no
 * mapping of the IOAPIC is needed afterwards.
 */
#include "cpu.h"
#include "kernel.h"
#include "smp.h"

#define PIT_HZ 1193182u
#define WATCHDOG_HZ 50u
#define WATCHDOG_SECONDS 10u
#define IOAPIC_PHYS 0xfec00000u
#define IOAPIC_PIT_PIN 2u

static volatile uint64_t wd_ticks, wd_progress_tick;
static unsigned wd_seconds = WATCHDOG_SECONDS;
static volatile unsigned wd_last_count;
static bool wd_running;

static void ioapic_write(uint32_t reg, uint32_t value)
{
    volatile uint32_t *base = (volatile uint32_t *)(uintptr_t)IOAPIC_PHYS; /* identity */
    base[0] = reg;
    base[4] = value;
}

void watchdog_start(void)
{
    /* Both 8259s masked: nothing arrives as an ordinary interrupt. */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    /* IOAPIC input 2 (the PIT): NMI delivery (100b), edge, to APIC ID 0. */
    ioapic_write(0x10 + 2 * IOAPIC_PIT_PIN + 1, 0);
    ioapic_write(0x10 + 2 * IOAPIC_PIT_PIN, 0x400u | 2u);
    /* PIT channel 0, rate generator at WATCHDOG_HZ. */
    uint16_t divisor = (uint16_t)(PIT_HZ / WATCHDOG_HZ);
    outb(0x43, 0x34);
    outb(0x40, (uint8_t)divisor);
    outb(0x40, (uint8_t)(divisor >> 8));
    wd_running = true;
}

void watchdog_set_seconds(unsigned seconds)
{
    wd_seconds = seconds;
}

void watchdog_nmi(isr_frame_t *frame)
{
    if (!wd_running)
        return;
    wd_ticks++;
    unsigned count = tap_progress();
    if (count != wd_last_count) {
        wd_last_count = count;
        wd_progress_tick = wd_ticks;
        return;
    }
    if (wd_ticks - wd_progress_tick < (uint64_t)wd_seconds * WATCHDOG_HZ)
        return;
    wd_running = false;
    kprintf("\n# WATCHDOG: no progress for %u s after check %u (a hang: deadlock or "
            "endless loop)\n",
            wd_seconds, count);
    kprintf("#   rip=%016lx rsp=%016lx rflags=%#lx (interrupts %s)\n", frame->rip, frame->rsp,
            frame->rflags, (frame->rflags & RFLAGS_IF) ? "on" : "off");
    backtrace_print(frame->rip, frame->rbp);
    lock_state_print(smp_online);
    tap_fail("hang", "no hang (stuck at rip %#lx)", frame->rip);
    tap_bail("watchdog");
}

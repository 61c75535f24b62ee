/*
 * Test kernel (AArch64): the PL011 UART, polled. QEMU's model needs no
 * baud-rate setup; the data register is written when the transmit FIFO
 * has room (FR.TXFF clear).
 */
#include "kernel.h"

#define PL011_DR 0x00u
#define PL011_FR 0x18u
#define PL011_FR_TXFF (1u << 5)

static volatile uint32_t *uart;

void serial_init(uint64_t va)
{
    uart = (volatile uint32_t *)(uintptr_t)va;
}

void serial_putc(char c)
{
    if (uart == NULL)
        return;
    if (c == '\n')
        serial_putc('\r');
    for (unsigned spin = 0; spin < 100000 && (uart[PL011_FR / 4] & PL011_FR_TXFF); spin++)
        ;
    uart[PL011_DR / 4] = (uint8_t)c;
}

void serial_write(const char *s)
{
    while (*s)
        serial_putc(*s++);
}

/*
 * Test kernel (AArch64): the exit status through Arm semihosting (QEMU
 * -semihosting). SYS_EXIT (0x18) on AArch64 takes a pointer to two 64-bit
 * words: the reason ADP_Stopped_ApplicationExit (0x20026) and the exit
 * code, which QEMU uses as its own exit status. The call is HLT #0xF000
 * with the operation in w0 and the parameter in x1.
 */
#include "cpu.h"
#include "kernel.h"

#define SEMIHOSTING_SYS_EXIT 0x18u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

_Noreturn void qemu_exit(uint32_t code)
{
    static volatile uint64_t block[2];
    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = code;
    register uint64_t x0 __asm__("x0") = SEMIHOSTING_SYS_EXIT;
    register uint64_t x1 __asm__("x1") = (uint64_t)(uintptr_t)block;
    __asm__ __volatile__("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    /* Without -semihosting HLT is an undefined instruction; if it ever
     * returns, stop here and let the runner's timeout end the run. */
    cpu_halt_forever();
}

/*
 * Test kernel (AArch64): system registers and barriers as inline functions.
 */
#ifndef KTEST_CPU_H
#define KTEST_CPU_H

#include <stdint.h>

#define READ_SYSREG(name)                                                                          \
    ({                                                                                             \
        uint64_t v_;                                                                               \
        __asm__ __volatile__("mrs %0, " #name : "=r"(v_));                                          \
        v_;                                                                                        \
    })
#define WRITE_SYSREG(name, v)                                                                      \
    __asm__ __volatile__("msr " #name ", %0" : : "r"((uint64_t)(v)) : "memory")

static inline void isb(void)
{
    __asm__ __volatile__("isb" : : : "memory");
}

static inline void dsb_ish(void)
{
    __asm__ __volatile__("dsb ish" : : : "memory");
}

static inline void dsb_ishst(void)
{
    __asm__ __volatile__("dsb ishst" : : : "memory");
}

/* TCR_EL1 fields used here. */
#define TCR_T0SZ(t) ((t) & 0x3fu)
#define TCR_T1SZ(t) (((t) >> 16) & 0x3fu)
#define TCR_EPD0 (UINT64_C(1) << 7)
#define TCR_AS (UINT64_C(1) << 36)
#define TCR_DS (UINT64_C(1) << 59)
#define SCTLR_M (UINT64_C(1) << 0)
#define SCTLR_C (UINT64_C(1) << 2)
#define SCTLR_WXN (UINT64_C(1) << 19)
#define TTBR_ASID_SHIFT 48

_Noreturn static inline void cpu_halt_forever(void)
{
    for (;;)
        __asm__ __volatile__("wfe");
}

#endif /* KTEST_CPU_H */

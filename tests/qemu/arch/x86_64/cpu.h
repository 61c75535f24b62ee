/*
 * Test kernel: privileged x86_64 instructions as inline functions.
 */
#ifndef KTEST_CPU_H
#define KTEST_CPU_H

#include <stdbool.h>
#include <stdint.h>

#define CR0_WP (UINT64_C(1) << 16)
#define CR0_PG (UINT64_C(1) << 31)
#define CR4_PAE (UINT64_C(1) << 5)
#define CR4_PGE (UINT64_C(1) << 7)
#define CR4_LA57 (UINT64_C(1) << 12)
#define CR4_PCIDE (UINT64_C(1) << 17)
#define CR3_NOFLUSH (UINT64_C(1) << 63) /* with CR4.PCIDE: keep the PCID's entries */
#define CR3_PCID_MASK UINT64_C(0xfff)
#define MSR_EFER 0xc0000080u
#define EFER_NXE (UINT64_C(1) << 11)
#define MSR_PAT 0x277u
#define RFLAGS_IF (UINT64_C(1) << 9)

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ __volatile__("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ __volatile__("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

#define DEFINE_CR(n)                                                                               \
    static inline uint64_t read_cr##n(void)                                                        \
    {                                                                                              \
        uint64_t v;                                                                                \
        __asm__ __volatile__("mov %%cr" #n ", %0" : "=r"(v));                                      \
        return v;                                                                                  \
    }                                                                                              \
    static inline void write_cr##n(uint64_t v)                                                     \
    {                                                                                              \
        __asm__ __volatile__("mov %0, %%cr" #n : : "r"(v) : "memory");                             \
    }
DEFINE_CR(0)
DEFINE_CR(2)
DEFINE_CR(3)
DEFINE_CR(4)
#undef DEFINE_CR

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ __volatile__("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
                         : "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ __volatile__("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                         : "a"(leaf), "c"(sub));
}

static inline void invlpg(uint64_t va)
{
    __asm__ __volatile__("invlpg (%0)" : : "r"(va) : "memory");
}

/* INVPCID types (SDM vol. 2 INVPCID). */
enum { INVPCID_ADDRESS = 0, INVPCID_CONTEXT = 1, INVPCID_ALL_GLOBAL = 2, INVPCID_ALL = 3 };

static inline void invpcid(uint64_t type, uint64_t pcid, uint64_t va)
{
    struct {
        uint64_t pcid, va;
    } desc = {pcid, va};
    __asm__ __volatile__("invpcid %0, %1" : : "m"(desc), "r"(type) : "memory");
}

static inline uint64_t read_rflags(void)
{
    uint64_t f;
    __asm__ __volatile__("pushfq; popq %0" : "=r"(f) : : "memory");
    return f;
}

static inline _Noreturn void cpu_halt_forever(void)
{
    for (;;)
        __asm__ __volatile__("cli; hlt");
}

/* CPU features the kernel cares about, read once by cpu_features_init(). */
typedef struct cpu_features {
    bool nx;        /* CPUID 0x80000001 EDX[20] */
    bool page1g;    /* CPUID 0x80000001 EDX[26] */
    bool pge;       /* CPUID 1 EDX[13] */
    bool pat;       /* CPUID 1 EDX[16] */
    bool la57;      /* CPUID 7.0 ECX[16] */
    bool pcid;      /* CPUID 1 ECX[17] */
    bool invpcid;   /* CPUID 7.0 EBX[10] */
    unsigned phys_bits;
    unsigned virt_bits;
    char vendor[13];
} cpu_features_t;

extern cpu_features_t cpu_feat;
void cpu_features_init(void);

/* The 64-bit TSS, the operand of LGDT/LIDT, and the boot GDT (boot.S):
 * null, code 0x08, data 0x10, the TSS's two slots at 0x18, user data and
 * code. Every CPU's GDT is a copy with its own TSS. */
typedef struct __attribute__((packed)) tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} tss_t;

typedef struct __attribute__((packed)) desc_ptr {
    uint16_t limit;
    uint64_t base;
} desc_ptr_t;

#define GDT_ENTRIES 7u
#define GDT_TSS_SELECTOR 0x18u
extern uint64_t gdt[GDT_ENTRIES];

/* Points gdt_table's TSS slots (3 and 4) at t: an available 64-bit TSS. */
static inline void gdt_set_tss(uint64_t *gdt_table, const tss_t *t)
{
    uint64_t base = (uint64_t)(uintptr_t)t, limit = sizeof *t - 1;
    gdt_table[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (UINT64_C(0x89) << 40) |
                   (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    gdt_table[4] = base >> 32;
}

#endif /* KTEST_CPU_H */

/* Flag validation and the leaf-entry encodings (SDM vol. 3 4.5, 4.9.2). */
#include "x86pt_internal.h"

MM_STATIC_ASSERT(((X86PT_PAT_MSR >> 0) & 0xff) == X86PT_MT_WB, "PA0 is WB");
MM_STATIC_ASSERT(((X86PT_PAT_MSR >> 8) & 0xff) == X86PT_MT_WT, "PA1 is WT");
MM_STATIC_ASSERT(((X86PT_PAT_MSR >> 16) & 0xff) == X86PT_MT_UC_MINUS, "PA2 is UC-");
MM_STATIC_ASSERT(((X86PT_PAT_MSR >> 24) & 0xff) == X86PT_MT_UC, "PA3 is UC");
MM_STATIC_ASSERT(((X86PT_PAT_MSR >> 32) & 0xff) == X86PT_MT_WC, "PA4 is WC");

uint64_t x86pt_pat_msr(void)
{
    return X86PT_PAT_MSR;
}

int x86pt_pat_index(mm_map_flags_t flags)
{
    return pt_pat_index(flags);
}

mm_status_t x86pt_init(x86pt_t *m, const x86pt_config_t *cfg)
{
    if (m == NULL || cfg == NULL)
        return MM_ERR_INVALID;
    if (cfg->levels != 4 && cfg->levels != 5)
        return MM_ERR_INVALID;
    if (cfg->phys_bits < 32 || cfg->phys_bits > 52)
        return MM_ERR_INVALID;
    if (cfg->frames.alloc == NULL || cfg->frames.free == NULL)
        return MM_ERR_INVALID;
    m->frames = cfg->frames;
    m->levels = cfg->levels;
    m->va_bits = cfg->levels == 5 ? 57u : 48u;
    m->phys_bits = cfg->phys_bits;
    m->nx = cfg->nx;
    m->pages_1g = cfg->pages_1g;
    m->strict_nx = cfg->strict_nx;
    m->nx_bit = cfg->nx ? PTE_NX : 0;
    m->phys_end = (mm_paddr_t)1 << cfg->phys_bits;
    return MM_OK;
}

void x86pt_va_space(const x86pt_t *m, mm_va_space_t *out)
{
    /* Both halves hang off one root (CR3), the user half below the
     * non-canonical hole and the kernel half above it. */
    mm_status_t st = mm_va_space_sign_extended(m->va_bits, m->levels, out);
    MM_ASSERT(st == MM_OK);
    (void)st;
}

/*
 * Test kernel: CPU feature discovery (CPUID).
 */
#include "cpu.h"

cpu_features_t cpu_feat;

void cpu_features_init(void)
{
    uint32_t r[4];
    cpuid(0, 0, r);
    uint32_t max_leaf = r[0];
    uint32_t *v = (uint32_t *)cpu_feat.vendor;
    v[0] = r[1];
    v[1] = r[3];
    v[2] = r[2];
    cpu_feat.vendor[12] = '\0';

    cpuid(1, 0, r);
    cpu_feat.pge = (r[3] >> 13) & 1;
    cpu_feat.pat = (r[3] >> 16) & 1;
    cpu_feat.pcid = (r[2] >> 17) & 1;
    if (max_leaf >= 7) {
        cpuid(7, 0, r);
        cpu_feat.la57 = (r[2] >> 16) & 1;
        cpu_feat.invpcid = (r[1] >> 10) & 1;
    }
    cpuid(0x80000000, 0, r);
    uint32_t max_ext = r[0];
    if (max_ext >= 0x80000001) {
        cpuid(0x80000001, 0, r);
        cpu_feat.nx = (r[3] >> 20) & 1;
        cpu_feat.page1g = (r[3] >> 26) & 1;
    }
    cpu_feat.phys_bits = 36;
    cpu_feat.virt_bits = 48;
    if (max_ext >= 0x80000008) {
        cpuid(0x80000008, 0, r);
        cpu_feat.phys_bits = r[0] & 0xff;
        cpu_feat.virt_bits = (r[0] >> 8) & 0xff;
    }
}

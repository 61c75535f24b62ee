/*
 * Test kernel, x86_64: the CPUs of the ACPI MADT. Runs while the boot
 * identity map covers the low 4 GiB, so tables are read at their physical
 * addresses; a table above 4 GiB is not read (and said so). Every table's
 * length is bounded and its checksum verified before a field is used.
 */
#include "kernel.h"
#include "smp.h"

acpi_cpus_t acpi_cpus;

static const uint8_t *phys(uint64_t pa)
{
    return (const uint8_t *)(uintptr_t)pa;
}

static bool sum_ok(const uint8_t *p, uint32_t len)
{
    uint8_t s = 0;
    for (uint32_t i = 0; i < len; i++)
        s = (uint8_t)(s + p[i]);
    return s == 0;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

#define IDENT_LIMIT (UINT64_C(4) << 30)
#define TABLE_MAX (UINT32_C(1) << 20) /* no sane SDT is larger */

/* A valid RSDP at pa (v1: 20 bytes; v2: its length, both checksums). */
static bool rsdp_ok(uint64_t pa)
{
    const uint8_t *p = phys(pa);
    for (int i = 0; i < 8; i++)
        if (p[i] != (uint8_t)"RSD PTR "[i])
            return false;
    if (!sum_ok(p, 20))
        return false;
    if (p[15] >= 2) {
        uint32_t len = rd32(p + 20);
        if (len < 36 || len > 4096 || !sum_ok(p, len))
            return false;
    }
    return true;
}

static uint64_t rsdp_scan(uint64_t from, uint64_t to)
{
    for (uint64_t a = from; a + 36 <= to; a += 16)
        if (rsdp_ok(a))
            return a;
    return 0;
}

/* A system description table at pa with signature sig: length bounded,
 * checksum right; NULL otherwise. */
static const uint8_t *sdt(uint64_t pa, const char *sig)
{
    if (pa == 0 || pa >= IDENT_LIMIT - 36)
        return NULL;
    const uint8_t *p = phys(pa);
    uint32_t len = rd32(p + 4);
    if (len < 36 || len > TABLE_MAX || pa + len > IDENT_LIMIT)
        return NULL;
    if (sig != NULL)
        for (int i = 0; i < 4; i++)
            if (p[i] != (uint8_t)sig[i])
                return NULL;
    return sum_ok(p, len) ? p : NULL;
}

static void madt_read(const uint8_t *m)
{
    uint32_t len = rd32(m + 4);
    acpi_cpus.lapic_phys = rd32(m + 36);
    for (uint32_t off = 44; off + 2 <= len;) {
        uint8_t type = m[off], elen = m[off + 1];
        if (elen < 2 || off + elen > len)
            break;
        uint32_t id = UINT32_MAX, flags = 0;
        if (type == 0 && elen >= 8) { /* processor local APIC */
            id = m[off + 3];
            flags = rd32(m + off + 4);
        } else if (type == 9 && elen >= 16) { /* processor local x2APIC */
            id = rd32(m + off + 4);
            flags = rd32(m + off + 8);
        } else if (type == 5 && elen >= 12) { /* local APIC address override */
            acpi_cpus.lapic_phys = rd64(m + off + 4);
        }
        /* enabled, or online capable */
        if (id != UINT32_MAX && (flags & 3u) != 0) {
            if (acpi_cpus.count < SMP_MAX_CPUS)
                acpi_cpus.apic_id[acpi_cpus.count++] = id;
            else
                acpi_cpus.ignored++;
        }
        off += elen;
    }
    acpi_cpus.found = acpi_cpus.count > 0;
    if (!acpi_cpus.found)
        acpi_cpus.why = "the MADT lists no enabled CPU";
}

void acpi_scan_cpus(void)
{
    uint64_t rsdp = 0;
    if (boot_info.rsdp != 0 && boot_info.rsdp < IDENT_LIMIT - 36 && rsdp_ok(boot_info.rsdp)) {
        rsdp = boot_info.rsdp;
        acpi_cpus.rsdp_source = boot_info.protocol == BOOT_PROTO_PVH ? "PVH start info"
                                                                    : "Multiboot2 ACPI tag";
    } else {
        /* The BIOS places it in the first KiB of the EBDA or in the
         * 0xe0000-0xfffff area, 16-byte aligned. */
        uint64_t ebda = (uint64_t)(phys(0x40e)[0] | phys(0x40e)[1] << 8) << 4;
        if (ebda >= 0x80000 && ebda < 0xa0000)
            rsdp = rsdp_scan(ebda, ebda + 1024);
        if (rsdp == 0)
            rsdp = rsdp_scan(0xe0000, 0x100000);
        acpi_cpus.rsdp_source = "BIOS area scan";
    }
    acpi_cpus.rsdp = rsdp;
    if (rsdp == 0) {
        acpi_cpus.why = "no valid RSDP";
        return;
    }
    const uint8_t *r = phys(rsdp);
    const uint8_t *root = NULL;
    unsigned entry_size = 4;
    if (r[15] >= 2 && rd64(r + 24) != 0) {
        root = sdt(rd64(r + 24), "XSDT");
        entry_size = 8;
    }
    if (root == NULL) {
        root = sdt(rd32(r + 16), "RSDT");
        entry_size = 4;
    }
    if (root == NULL) {
        acpi_cpus.why = "no valid RSDT/XSDT below 4 GiB";
        return;
    }
    uint32_t len = rd32(root + 4);
    for (uint32_t off = 36; off + entry_size <= len; off += entry_size) {
        uint64_t pa = entry_size == 8 ? rd64(root + off) : rd32(root + off);
        const uint8_t *m = sdt(pa, "APIC");
        if (m != NULL && rd32(m + 4) >= 44) {
            madt_read(m);
            return;
        }
    }
    acpi_cpus.why = "no valid MADT below 4 GiB";
}

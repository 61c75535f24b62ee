/*
 * The AArch64 test kernel's device-tree reader (tests/qemu/arch/aarch64/
 * fdt.c) on blobs built here token by token (Devicetree Specification,
 * "Flattened Devicetree (DTB) Format"): cell sizes of the root and of
 * /reserved-memory, the reservation block, bootargs and the PL011, the
 * CPUs under /cpus and the /psci conduit, and malformed trees refused with a reason instead of a fault.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "fdt.h"

/* A blob under construction: header, rsvmap, struct and strings blocks. */
typedef struct blob {
    uint8_t b[4096];
    uint32_t rsv[16][4]; /* (base, size) as 4 big-endian words each */
    unsigned nrsv;
    uint8_t st[2048];
    size_t nst;
    char strs[512];
    size_t nstrs;
} blob_t;

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void tok(blob_t *t, uint32_t v)
{
    put32(t->st + t->nst, v);
    t->nst += 4;
}

static void begin(blob_t *t, const char *name)
{
    tok(t, 1);
    size_t n = strlen(name) + 1;
    memcpy(t->st + t->nst, name, n);
    t->nst += (n + 3) & ~(size_t)3;
}

static void end(blob_t *t)
{
    tok(t, 2);
}

static uint32_t str_off(blob_t *t, const char *name)
{
    for (size_t o = 0; o < t->nstrs; o += strlen(t->strs + o) + 1)
        if (strcmp(t->strs + o, name) == 0)
            return (uint32_t)o;
    uint32_t o = (uint32_t)t->nstrs;
    memcpy(t->strs + o, name, strlen(name) + 1);
    t->nstrs += strlen(name) + 1;
    return o;
}

static void prop(blob_t *t, const char *name, const void *v, uint32_t len)
{
    tok(t, 3);
    tok(t, len);
    tok(t, str_off(t, name));
    memcpy(t->st + t->nst, v, len);
    t->nst += (len + 3) & ~(uint32_t)3;
}

static void prop_cells(blob_t *t, const char *name, const uint32_t *cells, unsigned n)
{
    uint8_t v[64];
    for (unsigned i = 0; i < n; i++)
        put32(v + 4 * i, cells[i]);
    prop(t, name, v, 4 * n);
}

static void prop_u32(blob_t *t, const char *name, uint32_t v)
{
    prop_cells(t, name, &v, 1);
}

/* Lays out header, rsvmap (with its terminator), struct, strings. */
static const void *finish(blob_t *t)
{
    tok(t, 9);
    uint32_t off_rsv = 40, off_struct = off_rsv + 16 * (t->nrsv + 1);
    uint32_t off_strings = off_struct + (uint32_t)t->nst;
    uint32_t total = off_strings + (uint32_t)t->nstrs;
    cr_assert_leq(total, sizeof t->b);
    memset(t->b, 0, sizeof t->b);
    put32(t->b + 0, 0xd00dfeed);
    put32(t->b + 4, total);
    put32(t->b + 8, off_struct);
    put32(t->b + 12, off_strings);
    put32(t->b + 16, off_rsv);
    put32(t->b + 20, 17);
    put32(t->b + 24, 16);
    put32(t->b + 32, (uint32_t)t->nstrs);
    put32(t->b + 36, (uint32_t)t->nst);
    for (unsigned i = 0; i < t->nrsv; i++)
        for (unsigned w = 0; w < 4; w++)
            put32(t->b + off_rsv + 16 * i + 4 * w, t->rsv[i][w]);
    memcpy(t->b + off_struct, t->st, t->nst);
    memcpy(t->b + off_strings, t->strs, t->nstrs);
    return t->b;
}

/* /cpus as QEMU virt writes it (#address-cells 1, #size-cells 0, one
 * cpu@N per CPU with enable-method "psci", a cpu-map beside them); the
 * second CPU names its enable-method before its reg. */
static void virt_cpus(blob_t *t)
{
    begin(t, "psci");
    prop(t, "compatible", "arm,psci-1.0\0arm,psci-0.2\0arm,psci", 35);
    prop(t, "method", "hvc", 4);
    end(t);
    begin(t, "cpus");
    prop_u32(t, "#address-cells", 1);
    prop_u32(t, "#size-cells", 0);
    begin(t, "cpu-map");
    begin(t, "cluster0");
    end(t);
    end(t);
    begin(t, "cpu@0");
    prop(t, "device_type", "cpu", 4);
    prop_u32(t, "reg", 0);
    prop(t, "enable-method", "psci", 5);
    end(t);
    begin(t, "cpu@1");
    prop(t, "enable-method", "psci", 5);
    prop_u32(t, "reg", 1);
    end(t);
    end(t);
}

/* QEMU virt's shape: 2/2 cells at the root, /memory with two ranges,
 * /reserved-memory with 1/1 cells and two children, one rsvmap entry, a
 * PL011 whose reg comes before its compatible, /chosen bootargs, two CPUs
 * and PSCI through HVC. */
static const void *virt_like(blob_t *t)
{
    memset(t, 0, sizeof *t);
    t->nrsv = 1;
    uint32_t r[4] = {0, 0x40000000, 0, 0x1000};
    memcpy(t->rsv[0], r, sizeof r);
    begin(t, "");
    prop_u32(t, "#address-cells", 2);
    prop_u32(t, "#size-cells", 2);
    begin(t, "chosen");
    prop(t, "bootargs", "demo pcid", 10);
    end(t);
    begin(t, "memory@40000000");
    prop(t, "device_type", "memory", 7);
    uint32_t mem[] = {0, 0x40000000, 0, 0x08000000, 0x1, 0x00000000, 0, 0x10000000};
    prop_cells(t, "reg", mem, 8);
    end(t);
    begin(t, "reserved-memory");
    prop_u32(t, "#address-cells", 1);
    prop_u32(t, "#size-cells", 1);
    begin(t, "secmon@44000000");
    uint32_t res1[] = {0x44000000, 0x200000};
    prop_cells(t, "reg", res1, 2);
    end(t);
    begin(t, "dma@46000000");
    uint32_t res2[] = {0x46000000, 0x100000};
    prop_cells(t, "reg", res2, 2);
    end(t);
    end(t);
    begin(t, "pl011@9000000");
    uint32_t uart[] = {0, 0x09000000, 0, 0x1000};
    prop_cells(t, "reg", uart, 4);
    prop(t, "compatible", "arm,pl011\0arm,primecell", 23);
    end(t);
    begin(t, "memoryless");
    uint32_t bogus[] = {0, 0x1000, 0, 0x1000};
    prop_cells(t, "reg", bogus, 4);
    end(t);
    virt_cpus(t);
    end(t);
    return finish(t);
}

Test(fdt, reads_memory_reservations_bootargs_and_the_pl011)
{
    static blob_t t;
    fdt_info_t info;
    const char *why = fdt_parse(virt_like(&t), &info);
    cr_assert_null(why, "%s", why);
    cr_assert_eq(info.memory_count, 2);
    cr_assert_eq(info.memory[0].base, 0x40000000);
    cr_assert_eq(info.memory[0].size, 0x08000000);
    cr_assert_eq(info.memory[1].base, 0x100000000ull);
    cr_assert_eq(info.memory[1].size, 0x10000000);
    cr_assert_eq(info.rsvmap_entries, 1);
    cr_assert_eq(info.reserved_nodes, 2);
    cr_assert_eq(info.reserved_count, 3, "rsvmap + two /reserved-memory children");
    cr_assert_eq(info.reserved[0].base, 0x40000000);
    cr_assert_eq(info.reserved[1].base, 0x44000000, "1-cell address of /reserved-memory");
    cr_assert_eq(info.reserved[1].size, 0x200000);
    cr_assert_eq(info.reserved[2].base, 0x46000000);
    cr_assert_eq(info.uart_phys, 0x09000000, "reg before compatible");
    cr_assert_str_eq(info.bootargs, "demo pcid");
    cr_assert_eq(info.total_size, (uint32_t)t.b[4] << 24 | (uint32_t)t.b[5] << 16 |
                                      (uint32_t)t.b[6] << 8 | t.b[7],
                 "totalsize: the blob's extent, reserved with it");
    cr_assert_eq(info.memory_count, 2, "\"memoryless\" is not a memory node");
}

typedef void (*breaker_fn)(uint8_t *b);

static void bad_magic(uint8_t *b)
{
    b[0] = 0;
}

static void old_version(uint8_t *b)
{
    put32(b + 20, 16);
}

static void struct_past_total(uint8_t *b)
{
    put32(b + 36, 0x100000);
}

static void no_end_token(uint8_t *b)
{
    /* The last token (FDT_END) becomes NOP: the block runs out. */
    uint32_t off = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11];
    uint32_t size = (uint32_t)b[36] << 24 | (uint32_t)b[37] << 16 | (uint32_t)b[38] << 8 | b[39];
    put32(b + off + size - 4, 4);
}

static void unknown_token(uint8_t *b)
{
    uint32_t off = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11];
    put32(b + off, 7);
}

/* The strings block loses its last byte (the final NUL). */
static void unterminated_name(uint8_t *b)
{
    uint32_t n = (uint32_t)b[32] << 24 | (uint32_t)b[33] << 16 | (uint32_t)b[34] << 8 | b[35];
    put32(b + 32, n - 1);
}

Test(fdt, malformed_blobs_are_refused_with_a_reason)
{
    static const breaker_fn breakers[] = {bad_magic,     old_version,      struct_past_total,
                                          no_end_token,  unknown_token,    unterminated_name};
    for (unsigned i = 0; i < sizeof breakers / sizeof breakers[0]; i++) {
        static blob_t t;
        uint8_t *b = (uint8_t *)virt_like(&t);
        breakers[i](b);
        fdt_info_t info;
        const char *why = fdt_parse(b, &info);
        cr_assert_not_null(why, "breaker %u accepted", i);
        if (breakers[i] == unterminated_name)
            cr_assert_str_eq(why, "property name runs past the strings block");
    }
}

Test(fdt, reg_cell_sizes_outside_1_2_and_odd_lengths_are_refused)
{
    static blob_t t;
    memset(&t, 0, sizeof t);
    begin(&t, "");
    prop_u32(&t, "#address-cells", 3);
    begin(&t, "memory");
    uint32_t mem[] = {0, 0, 0x40000000, 0, 0x1000};
    prop_cells(&t, "reg", mem, 5);
    end(&t);
    end(&t);
    fdt_info_t info;
    cr_assert_not_null(fdt_parse(finish(&t), &info));

    memset(&t, 0, sizeof t);
    begin(&t, "");
    begin(&t, "memory");
    uint32_t odd[] = {0, 0x40000000, 0x1000, 7}; /* 2 + 1 cells per tuple, 4 cells */
    prop_cells(&t, "reg", odd, 4);
    end(&t);
    end(&t);
    cr_assert_not_null(fdt_parse(finish(&t), &info));

    memset(&t, 0, sizeof t);
    begin(&t, "");
    end(&t);
    cr_assert_str_eq(fdt_parse(finish(&t), &info), "no /memory node with a reg");
}

Test(fdt, reads_the_cpus_and_the_psci_conduit)
{
    static blob_t t;
    fdt_info_t info;
    const char *why = fdt_parse(virt_like(&t), &info);
    cr_assert_null(why, "%s", why);
    cr_assert_eq(info.cpu_count, 2, "cpu-map is not a CPU");
    cr_assert_eq(info.cpu_mpidr[0], 0);
    cr_assert_eq(info.cpu_mpidr[1], 1, "enable-method before reg");
    cr_assert(info.cpu_psci[0] && info.cpu_psci[1]);
    cr_assert_eq(info.cpus_ignored, 0);
    cr_assert_eq(info.psci, FDT_PSCI_HVC);
}

/* A tree with /cpus of `ac` address cells and `n` CPUs with 2-word MPIDRs
 * (affinity 1 = i / 4, affinity 0 = i % 4), the last one without an
 * enable-method, and a /psci node whose method is `method` (NULL: no node). */
static const void *cpus_tree(blob_t *t, uint32_t ac, unsigned n, const char *method)
{
    memset(t, 0, sizeof *t);
    begin(t, "");
    begin(t, "memory");
    uint32_t mem[] = {0, 0x40000000, 0x1000};
    prop_cells(t, "reg", mem, 3);
    end(t);
    if (method != NULL) {
        begin(t, "psci");
        prop(t, "method", method, (uint32_t)strlen(method) + 1);
        end(t);
    }
    begin(t, "cpus");
    prop_u32(t, "#address-cells", ac);
    prop_u32(t, "#size-cells", 0);
    for (unsigned i = 0; i < n; i++) {
        begin(t, "cpu@0");
        uint32_t reg[2] = {0, (i / 4) << 8 | (i % 4)};
        if (ac == 1)
            prop_u32(t, "reg", reg[1]);
        else
            prop_cells(t, "reg", reg, 2);
        if (i + 1 < n)
            prop(t, "enable-method", "spin-table\0psci", 16);
        end(t);
    }
    end(t);
    end(t);
    return finish(t);
}

Test(fdt, cpus_with_two_address_cells_smc_and_more_than_kept)
{
    static blob_t t;
    fdt_info_t info;
    const char *why = fdt_parse(cpus_tree(&t, 2, FDT_MAX_CPUS + 2, "smc"), &info);
    cr_assert_null(why, "%s", why);
    cr_assert_eq(info.psci, FDT_PSCI_SMC);
    cr_assert_eq(info.cpu_count, FDT_MAX_CPUS);
    cr_assert_eq(info.cpus_ignored, 2, "counted, not kept");
    cr_assert_eq(info.cpu_mpidr[5], 0x101, "affinity 1 and 0 from the second cell");
    cr_assert(info.cpu_psci[0], "psci found in a stringlist");

    why = fdt_parse(cpus_tree(&t, 1, 2, NULL), &info);
    cr_assert_null(why, "%s", why);
    cr_assert_eq(info.psci, FDT_PSCI_NONE, "no /psci node");
    cr_assert(info.cpu_psci[0] && !info.cpu_psci[1], "no enable-method: not psci");
}

Test(fdt, malformed_cpus_and_psci_are_refused_with_a_reason)
{
    static blob_t t;
    fdt_info_t info;
    cr_assert_str_eq(fdt_parse(cpus_tree(&t, 3, 1, "hvc"), &info),
                     "/cpus #address-cells outside 1..2");
    cr_assert_str_eq(fdt_parse(cpus_tree(&t, 1, 1, "svc"), &info),
                     "/psci method neither \"hvc\" nor \"smc\"");
    cr_assert_str_eq(fdt_parse(cpus_tree(&t, 1, 1, "hvc-ish"), &info),
                     "/psci method neither \"hvc\" nor \"smc\"");

    /* A cpu node without reg, and one whose reg is two addresses. */
    memset(&t, 0, sizeof t);
    begin(&t, "");
    begin(&t, "memory");
    uint32_t mem[] = {0, 0x40000000, 0x1000};
    prop_cells(&t, "reg", mem, 3);
    end(&t);
    begin(&t, "cpus");
    prop_u32(&t, "#address-cells", 1);
    begin(&t, "cpu@0");
    prop(&t, "enable-method", "psci", 5);
    end(&t);
    end(&t);
    end(&t);
    cr_assert_str_eq(fdt_parse(finish(&t), &info), "cpu node without reg");

    memset(&t, 0, sizeof t);
    begin(&t, "");
    begin(&t, "memory");
    prop_cells(&t, "reg", mem, 3);
    end(&t);
    begin(&t, "cpus");
    prop_u32(&t, "#address-cells", 1);
    begin(&t, "cpu@0");
    uint32_t two[] = {0, 1};
    prop_cells(&t, "reg", two, 2);
    end(&t);
    end(&t);
    end(&t);
    cr_assert_str_eq(fdt_parse(finish(&t), &info),
                     "cpu reg not one address of /cpus #address-cells");

    /* A cpu node cut off by the end of the structure block. */
    cpus_tree(&t, 1, 1, "hvc");
    put32(t.b + 36, (uint32_t)t.nst - 12); /* ends inside cpu@0 */
    cr_assert_not_null(fdt_parse(t.b, &info));
}

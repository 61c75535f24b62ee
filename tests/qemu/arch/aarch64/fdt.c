/*
 * Test kernel (AArch64): what the flattened device tree (Devicetree
 * Specification, "Flattened Devicetree (DTB) Format") tells about memory.
 *
 *   header        big-endian words: magic 0xd00dfeed, totalsize,
 *                 off_dt_struct, off_dt_strings, off_mem_rsvmap, version,
 *                 ..., size_dt_strings (word 8), size_dt_struct (word 9)
 *   rsvmap        (address, size) pairs of 64-bit big-endian words, ended
 *                 by (0, 0): memory the OS must not use
 *   struct block  tokens FDT_BEGIN_NODE (name, NUL, padded to 4),
 *                 FDT_END_NODE, FDT_PROP (len, nameoff, value padded to 4),
 *                 FDT_NOP, FDT_END
 *
 * Read here: the root's #address-cells/#size-cells, /memory (a node named
 * "memory" or "memory@...") reg, the children of /reserved-memory (with
 * that node's own cell sizes) reg, /chosen bootargs, and the first node
 * whose compatible lists "arm,pl011", the CPUs (each /cpus/cpu@N: its reg,
 * one address of /cpus' #address-cells, is the MPIDR affinity; its
 * enable-method) and /psci method (the PSCI conduit, "hvc" or "smc").
 * Every offset and length is checked
 * against totalsize: a malformed tree is refused with the reason.
 */
#include "fdt.h"

#define FDT_MAGIC 0xd00dfeedu
#define FDT_BEGIN_NODE 1u
#define FDT_END_NODE 2u
#define FDT_PROP 3u
#define FDT_NOP 4u
#define FDT_END 9u
#define FDT_MAX_DEPTH 16u

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static bool str_eq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* "memory" or "memory@..." */
static bool node_is(const char *name, const char *base)
{
    while (*base && *name == *base)
        name++, base++;
    return *base == '\0' && (*name == '\0' || *name == '@');
}

/* Whether a stringlist property value holds `want`. */
static bool list_has(const uint8_t *v, uint32_t len, const char *want)
{
    uint32_t i = 0;
    while (i < len) {
        const char *s = (const char *)v + i;
        uint32_t n = 0;
        while (i + n < len && s[n] != '\0')
            n++;
        if (i + n >= len)
            return false;
        if (str_eq(s, want))
            return true;
        i += n + 1;
    }
    return false;
}

static uint64_t read_cells(const uint8_t *p, uint32_t cells)
{
    return cells == 2 ? be64(p) : be32(p);
}

/* reg = (address, size) tuples of the given cell counts. */
static const char *add_reg(fdt_info_t *out, const uint8_t *v, uint32_t len, uint32_t ac,
                           uint32_t sc, bool memory)
{
    if (ac < 1 || ac > 2 || sc < 1 || sc > 2)
        return "reg with #address-cells or #size-cells outside 1..2";
    uint32_t tuple = (ac + sc) * 4;
    if (len % tuple != 0)
        return "reg length not a multiple of its tuple";
    for (uint32_t off = 0; off < len; off += tuple) {
        fdt_range_t r = {read_cells(v + off, ac), read_cells(v + off + ac * 4, sc)};
        if (r.size == 0)
            continue;
        if (r.base + r.size < r.base)
            return "reg range wraps past 2^64";
        if (memory) {
            if (out->memory_count == FDT_MAX_RANGES)
                return "more /memory ranges than the kernel keeps";
            out->memory[out->memory_count++] = r;
        } else {
            if (out->reserved_count == FDT_MAX_RANGES)
                return "more reserved ranges than the kernel keeps";
            out->reserved[out->reserved_count++] = r;
        }
    }
    return NULL;
}

/* One cpu node at its end: reg must be exactly one address of /cpus'
 * #address-cells (a node listing several threads is not what QEMU or this
 * kernel makes); CPUs past FDT_MAX_CPUS are counted, not kept. */
static const char *add_cpu(fdt_info_t *out, const uint8_t *reg, uint32_t len, uint32_t ac,
                           bool psci)
{
    if (ac < 1 || ac > 2)
        return "/cpus #address-cells outside 1..2";
    if (reg == NULL)
        return "cpu node without reg";
    if (len != ac * 4)
        return "cpu reg not one address of /cpus #address-cells";
    if (out->cpu_count == FDT_MAX_CPUS) {
        out->cpus_ignored++;
        return NULL;
    }
    out->cpu_mpidr[out->cpu_count] = read_cells(reg, ac);
    out->cpu_psci[out->cpu_count] = psci;
    out->cpu_count++;
    return NULL;
}

const char *fdt_parse(const void *blob, fdt_info_t *out)
{
    const uint8_t *b = blob;
    *out = (fdt_info_t){0};
    if (be32(b) != FDT_MAGIC)
        return "no FDT magic at the address in x0";
    uint32_t total = be32(b + 4), off_struct = be32(b + 8), off_strings = be32(b + 12);
    uint32_t off_rsv = be32(b + 16), version = be32(b + 20);
    uint32_t size_strings = be32(b + 32), size_struct = be32(b + 36);
    if (version < 17)
        return "FDT version below 17";
    if (total < 40 || off_struct > total || size_struct > total - off_struct ||
        off_strings > total || size_strings > total - off_strings || off_rsv > total - 16 ||
        (off_rsv & 7) != 0 || (off_struct & 3) != 0)
        return "FDT header offsets outside totalsize";
    out->total_size = total;

    for (uint32_t o = off_rsv;; o += 16) {
        if (o > total - 16)
            return "memory reservation block runs past totalsize";
        fdt_range_t r = {be64(b + o), be64(b + o + 8)};
        if (r.base == 0 && r.size == 0)
            break;
        if (out->reserved_count == FDT_MAX_RANGES)
            return "more reserved ranges than the kernel keeps";
        out->reserved[out->reserved_count++] = r;
        out->rsvmap_entries++;
    }

    /* Per depth: the cell sizes a node gives its children, and what the
     * node is. Depth 0 is the root. */
    uint32_t ac[FDT_MAX_DEPTH + 1], sc[FDT_MAX_DEPTH + 1];
    enum {
        N_OTHER,
        N_MEMORY,
        N_RESMEM,
        N_RESMEM_CHILD,
        N_CHOSEN,
        N_CPUS,
        N_CPU,
        N_PSCI
    } kind[FDT_MAX_DEPTH + 1];
    int depth = -1;
    const uint8_t *s = b + off_struct, *end = s + size_struct;
    /* A node's reg may come before its compatible: keep the last reg. */
    const uint8_t *reg = NULL;
    uint32_t reg_len = 0;
    bool pl011 = false;
    /* The cpu node being read: its reg and enable-method, taken at its end. */
    const uint8_t *cpu_reg = NULL;
    uint32_t cpu_reg_len = 0;
    bool cpu_psci = false;
    for (;;) {
        if (s + 4 > end)
            return "structure block ends without FDT_END";
        uint32_t tok = be32(s);
        s += 4;
        if (tok == FDT_BEGIN_NODE) {
            const char *name = (const char *)s;
            size_t n = 0;
            while (s + n < end && name[n] != '\0')
                n++;
            if (s + n >= end)
                return "node name runs past the structure block";
            s += (n + 1 + 3) & ~(size_t)3;
            if (++depth > (int)FDT_MAX_DEPTH)
                return "nodes nested deeper than the kernel follows";
            ac[depth] = 2;
            sc[depth] = 1;
            kind[depth] = N_OTHER;
            if (depth == 1 && node_is(name, "memory"))
                kind[depth] = N_MEMORY;
            else if (depth == 1 && str_eq(name, "reserved-memory"))
                kind[depth] = N_RESMEM;
            else if (depth == 1 && str_eq(name, "chosen"))
                kind[depth] = N_CHOSEN;
            else if (depth == 1 && str_eq(name, "cpus"))
                kind[depth] = N_CPUS;
            else if (depth == 1 && node_is(name, "psci"))
                kind[depth] = N_PSCI;
            else if (depth == 2 && kind[1] == N_RESMEM)
                kind[depth] = N_RESMEM_CHILD;
            else if (depth == 2 && kind[1] == N_CPUS && node_is(name, "cpu"))
                kind[depth] = N_CPU;
            if (kind[depth] == N_CPU) {
                cpu_reg = NULL;
                cpu_psci = false;
            }
            if (kind[depth] == N_RESMEM_CHILD)
                out->reserved_nodes++;
            reg = NULL;
            pl011 = false;
        } else if (tok == FDT_END_NODE) {
            if (depth < 0)
                return "FDT_END_NODE without a node";
            if (pl011 && reg != NULL && out->uart_phys == 0 && depth >= 1)
                out->uart_phys = read_cells(reg, ac[depth - 1]);
            if (depth == 2 && kind[2] == N_CPU) {
                const char *why = add_cpu(out, cpu_reg, cpu_reg_len, ac[1], cpu_psci);
                if (why != NULL)
                    return why;
            }
            depth--;
            reg = NULL;
            pl011 = false;
        } else if (tok == FDT_PROP) {
            if (s + 8 > end || depth < 0)
                return "property outside a node or past the structure block";
            uint32_t len = be32(s), nameoff = be32(s + 4);
            s += 8;
            if (len > (uint32_t)(end - s) || nameoff >= size_strings)
                return "property runs past its block";
            const uint8_t *v = s;
            const char *pname = (const char *)b + off_strings + nameoff;
            const char *strings_end = (const char *)b + off_strings + size_strings;
            size_t k = 0;
            while (pname + k < strings_end && pname[k] != '\0')
                k++;
            if (pname + k >= strings_end)
                return "property name runs past the strings block";
            s += (len + 3) & ~(uint32_t)3;
            if (str_eq(pname, "#address-cells") && len == 4)
                ac[depth] = be32(v);
            else if (str_eq(pname, "#size-cells") && len == 4)
                sc[depth] = be32(v);
            else if (str_eq(pname, "compatible") && list_has(v, len, "arm,pl011"))
                pl011 = true;
            else if (str_eq(pname, "enable-method") && kind[depth] == N_CPU)
                cpu_psci = list_has(v, len, "psci");
            else if (str_eq(pname, "method") && kind[depth] == N_PSCI) {
                if (len == 4 && str_eq((const char *)v, "hvc"))
                    out->psci = FDT_PSCI_HVC;
                else if (len == 4 && str_eq((const char *)v, "smc"))
                    out->psci = FDT_PSCI_SMC;
                else
                    return "/psci method neither \"hvc\" nor \"smc\"";
            } else if (str_eq(pname, "bootargs") && depth == 1 && kind[1] == N_CHOSEN) {
                uint32_t n = len < sizeof out->bootargs ? len : sizeof out->bootargs - 1;
                for (uint32_t i = 0; i < n; i++)
                    out->bootargs[i] = (char)v[i];
                out->bootargs[n] = '\0';
            } else if (str_eq(pname, "reg") && kind[depth] == N_CPU) {
                cpu_reg = v;
                cpu_reg_len = len;
            } else if (str_eq(pname, "reg") && depth >= 1) {
                reg = v;
                reg_len = len;
                const char *why = NULL;
                if (kind[depth] == N_MEMORY)
                    why = add_reg(out, v, len, ac[0], sc[0], true);
                else if (kind[depth] == N_RESMEM_CHILD)
                    why = add_reg(out, v, len, ac[1], sc[1], false);
                if (why != NULL)
                    return why;
                if (reg_len < ac[depth - 1] * 4)
                    reg = NULL;
            }
        } else if (tok == FDT_NOP) {
            continue;
        } else if (tok == FDT_END) {
            break;
        } else {
            return "unknown structure block token";
        }
    }
    if (depth != -1)
        return "structure block ends inside a node";
    if (out->memory_count == 0)
        return "no /memory node with a reg";
    return NULL;
}

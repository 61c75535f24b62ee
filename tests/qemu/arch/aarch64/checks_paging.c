/*
 * Test kernel (AArch64) checks: paging-aarch64 on the real (emulated) MMU.
 * The kernel runs on tables the mapper built (TTBR1_EL1); these checks
 * read them back, provoke permission and translation faults, and change
 * scratch mappings with the TLB maintenance the hooks do.
 */
#include <hadron/mm/hhdm.h>

#include "cpu.h"
#include "kernel.h"
#include "kmem.h"
#include "smp.h"

static const char *size_name(mm_page_size_t s)
{
    return s == MM_PAGE_1G ? "1G" : s == MM_PAGE_2M ? "2M" : "4K";
}

/* The HHDM: writable, execute-never, with the largest blocks alignment
 * allows (RAM starts at 1 GiB on virt: 1 GiB blocks from 1 GiB of RAM). */
static void check_hhdm(void)
{
    mm_translation_t t = {0};
    uint64_t va = hhdm_base + boot_info.ram_runs[0].addr;
    mm_status_t st = a64pt_translate(&kernel_pt, kernel_root, va, &t);
    mm_page_size_t want = boot_info.ram_runs[0].size >= MM_GIB ? MM_PAGE_1G : MM_PAGE_2M;
    tap_check(st == MM_OK && t.pa == boot_info.ram_runs[0].addr && t.size == want &&
                  (t.flags & MM_MAP_WRITE) && !(t.flags & MM_MAP_EXEC) &&
                  (t.flags & MM_MAP_GLOBAL) && mm_map_mem_type(t.flags) == MM_MEM_WRITE_BACK,
              "paging: HHDM at %#lx -> %#lx in %s blocks, RW, XN, global, write-back", va, t.pa,
              size_name(t.size));
    fault_record_t rec;
    bool hit = fault_probe_exec(va, &rec);
    char how[96];
    tap_check(hit && rec.ec == EC_IABT_CUR && FSC_IS_PERMISSION(ESR_FSC(rec.esr)) && rec.far == va,
              "paging: executing HHDM memory faults (%s)", esr_str(rec.esr, how, sizeof how));
    st = a64pt_translate(&kernel_pt, kernel_root, kernel_uart_va, &t);
    tap_check(st == MM_OK && mm_map_mem_type(t.flags) == MM_MEM_DEVICE && !(t.flags & MM_MAP_EXEC),
              "paging: the PL011 page at %#lx is Device-nGnRE, execute-never (TAP runs through it)",
              kernel_uart_va);
}

static void check_image_rights(void)
{
    mm_translation_t tt = {0}, tr = {0}, td = {0};
    a64pt_translate(&kernel_pt, kernel_root, (uint64_t)(uintptr_t)__text_start, &tt);
    a64pt_translate(&kernel_pt, kernel_root, (uint64_t)(uintptr_t)__rodata_start, &tr);
    a64pt_translate(&kernel_pt, kernel_root, (uint64_t)(uintptr_t)__data_start, &td);
    tap_check((tt.flags & MM_MAP_EXEC) && !(tt.flags & MM_MAP_WRITE) &&
                  !(tr.flags & (MM_MAP_EXEC | MM_MAP_WRITE)) && (td.flags & MM_MAP_WRITE) &&
                  !(td.flags & MM_MAP_EXEC) && tt.pa == kernel_phys_base,
              "paging: image text RX at %#lx, rodata R, data RW XN", tt.pa);
    char how[96];
    fault_record_t rec;
    uint64_t text = (uint64_t)(uintptr_t)__text_start + 64;
    bool hit = fault_probe_write(text, 0, &rec);
    tap_check(hit && rec.ec == EC_DABT_CUR && FSC_IS_PERMISSION(ESR_FSC(rec.esr)) &&
                  ESR_WNR(rec.esr) && rec.far == text,
              "paging: writing kernel text faults (%s)", esr_str(rec.esr, how, sizeof how));
    uint64_t ro = (uint64_t)(uintptr_t)__rodata_start;
    hit = fault_probe_write(ro, 0, &rec);
    tap_check(hit && rec.ec == EC_DABT_CUR && FSC_IS_PERMISSION(ESR_FSC(rec.esr)) &&
                  rec.far == ro,
              "paging: writing rodata faults (%s)", esr_str(rec.esr, how, sizeof how));
    uint64_t data = (uint64_t)(uintptr_t)__data_start;
    hit = fault_probe_exec(data, &rec);
    tap_check(hit && rec.ec == EC_IABT_CUR && FSC_IS_PERMISSION(ESR_FSC(rec.esr)) &&
                  rec.far == data,
              "paging: executing kernel data faults (%s)", esr_str(rec.esr, how, sizeof how));
}

/* Scratch mappings in the top GiB of the kernel-image region. */
static void check_scratch(void)
{
    mm_paddr_t f1, f2;
    if (mm_frame_alloc(&kernel_frames, &f1) != MM_OK ||
        mm_frame_alloc(&kernel_frames, &f2) != MM_OK) {
        tap_fail("no frames", "paging: scratch mappings");
        return;
    }
    volatile uint64_t *h1 = hhdm_phys_to_virt(f1), *h2 = hhdm_phys_to_virt(f2);
    h1[0] = 0x1111;
    h2[0] = 0x2222;
    uint64_t va = SCRATCH_BASE;
    volatile uint64_t *s = (volatile uint64_t *)(uintptr_t)va;
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    mm_status_t st = a64pt_map(&kernel_pt, kernel_root, va, f1, MM_PAGE_4K,
                               MM_MAP_WRITE | MM_MAP_GLOBAL, &tlb);
    bool ok = st == MM_OK && s[0] == 0x1111;
    s[1] = 0xabcd;
    ok = ok && h1[1] == 0xabcd;
    tap_check(ok, "paging: a frame mapped at %#lx and its HHDM alias see each other's writes (%s)",
              va, mm_status_str(st));

    /* Unmap + map another frame, one flush: the new frame is seen. */
    unsigned pages0 = hook_tlb_page_calls, all0 = hook_tlb_all_calls;
    st = a64pt_unmap(&kernel_pt, kernel_root, va, MM_PAGE_4K, NULL, &tlb);
    mm_status_t st2 = a64pt_map(&kernel_pt, kernel_root, va, f2, MM_PAGE_4K,
                                MM_MAP_WRITE | MM_MAP_GLOBAL, &tlb);
    mm_tlb_batch_flush(&tlb);
    unsigned calls = (hook_tlb_page_calls - pages0) + (hook_tlb_all_calls - all0);
    tap_check(st == MM_OK && st2 == MM_OK && s[0] == 0x2222 && calls == 1,
              "paging: remapped to another frame with one flush (%s): reads see it "
              "(%u hook call)",
              smp_online > 1 ? "TLBI VAAE1IS" : "TLBI VAAE1, local: no other CPU online", calls);

    /* Memory types: each reads back as what was asked; the attribute
     * change of a present page goes through break-before-make inside the
     * mapper, with one synchronous flush. */
    static const struct {
        mm_map_flags_t flag;
        mm_mem_type_t type;
        const char *name;
        unsigned flushes; /* 1 when AttrIndx changes, 0 when it stays */
    } types[] = {
        {MM_MAP_WRITE_THROUGH, MM_MEM_WRITE_THROUGH, "write-through", 1},
        {MM_MAP_NORMAL_NC, MM_MEM_NORMAL_NC, "normal non-cacheable", 1},
        {MM_MAP_WRITE_COMBINING, MM_MEM_NORMAL_NC, "write-combining (same AttrIndx as NC)", 0},
        {0, MM_MEM_WRITE_BACK, "write-back", 1},
    };
    for (unsigned i = 0; i < sizeof types / sizeof types[0]; i++) {
        unsigned before = hook_tlb_page_calls + hook_tlb_all_calls;
        st = a64pt_protect(&kernel_pt, kernel_root, va, MM_PAGE_4K,
                           MM_MAP_WRITE | MM_MAP_GLOBAL | types[i].flag, &tlb);
        unsigned during = hook_tlb_page_calls + hook_tlb_all_calls - before;
        mm_translation_t t = {0};
        a64pt_translate(&kernel_pt, kernel_root, va, &t);
        s[2] = 0x3000 + i;
        tap_check(st == MM_OK && mm_map_mem_type(t.flags) == types[i].type && during == types[i].flushes &&
                      h2[2] == 0x3000 + i,
                  "paging: protect to %s: %u synchronous flush (break-before-make), the page "
                  "still reads and writes",
                  types[i].name, during);
    }
    mm_tlb_batch_flush(&tlb);

    /* Unmapped: the exact address faults. */
    st = a64pt_unmap(&kernel_pt, kernel_root, va, MM_PAGE_4K, NULL, &tlb);
    mm_tlb_batch_flush(&tlb);
    fault_record_t rec;
    char how[96];
    bool hit = fault_probe_read(va + 0x18, &rec);
    tap_check(st == MM_OK && hit && rec.far == va + 0x18 && FSC_IS_TRANSLATION(ESR_FSC(rec.esr)),
              "paging: after unmap + flush, a read at %#lx faults there (%s)", va + 0x18,
              esr_str(rec.esr, how, sizeof how));
    mm_frame_free(&kernel_frames, f1);
    mm_frame_free(&kernel_frames, f2);
}

static void print_finding(void *arg, const a64pt_finding_t *f)
{
    unsigned *n = arg;
    if ((*n)++ < 4)
        tap_diag("  audit finding at %#lx, level %d", f->va, f->level);
}

void checks_paging_audit(mm_paddr_t root, const char *what)
{
    a64pt_audit_counts_t counts = {0};
    unsigned printed = 0;
    mm_status_t st = a64pt_audit(&kernel_pt, root, print_finding, &printed, &counts);
    tap_check(st == MM_OK && counts.wx == 0 && counts.kernel_el0_leaves == 0 &&
                  counts.user_pxn_clear == 0,
              "paging: audit of %s: %zu W+X pages, %zu EL0-accessible kernel pages, %zu user "
              "pages executable at EL1",
              what, counts.wx, counts.kernel_el0_leaves, counts.user_pxn_clear);
    a64pt_check_info_t info = {0};
    st = a64pt_check(&kernel_pt, root, &info);
    tap_check(st == MM_OK, "paging: consistency check of %s: %zu kernel tables, %zu user tables, "
                           "%zu leaves%s%s",
              what, info.kernel_tables, info.user_tables, info.leaves,
              st == MM_OK ? "" : " - ", st == MM_OK ? "" : info.problem);
}

void checks_paging(void)
{
    uint64_t ttbr1 = READ_SYSREG(ttbr1_el1);
    if (!tap_check(kernel_tables_ready && (ttbr1 & ~(UINT64_C(0xffff) << 48)) == kernel_root &&
                       (READ_SYSREG(tcr_el1) & TCR_EPD0),
                   "paging: the kernel runs on its own %u-level tables in TTBR1_EL1 (root %#lx), "
                   "TTBR0 walks off%s%s",
                   kernel_pt.levels, kernel_root, kernel_tables_ready ? "" : ", failed at ",
                   kernel_tables_error_step))
        return;
    mm_va_space_t mine;
    a64pt_va_space(&kernel_pt, &mine);
    tap_check(mine.kernel_root_separate && mm_va_space_equal(&mine, &kernel_layout.space),
              "paging: the kernel half has its own root (TTBR1): user [0, %#lx) in TTBR0 roots, "
              "kernel [%#lx, 2^64); the layout was computed for this space",
              mine.user_hi, mine.kernel_lo);
    check_hhdm();
    check_image_rights();
    check_scratch();
    checks_paging_audit(kernel_root, "the kernel tables");
}

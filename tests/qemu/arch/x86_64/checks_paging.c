/*
 * Test kernel checks: paging-x86_64 on the real (emulated) MMU. The kernel
 * already runs on tables the mapper built; these checks read and write
 * through them, change them under the CPU and look at the raw entries.
 */
#include <hadron/mm/hhdm.h>

#include "cpu.h"
#include "kernel.h"
#include "kmem.h"

#if KTEST_HAVE_PAGING

#define PTE_PWT (UINT64_C(1) << 3)
#define PTE_PCD (UINT64_C(1) << 4)
#define PTE_PAT_4K (UINT64_C(1) << 7)
#define PTE_G (UINT64_C(1) << 8)
#define PTE_PAT_HUGE (UINT64_C(1) << 12)

static const char *size_str(mm_page_size_t s)
{
    return s == MM_PAGE_1G ? "1G" : s == MM_PAGE_2M ? "2M" : "4K";
}

typedef struct leaf_probe {
    bool found;
    x86pt_leaf_t leaf;
} leaf_probe_t;

static bool take_leaf(void *arg, const x86pt_leaf_t *leaf)
{
    leaf_probe_t *p = arg;
    p->found = true;
    p->leaf = *leaf;
    return false;
}

/* The raw leaf entry that maps va, if any. */
static bool raw_leaf(uint64_t va, x86pt_leaf_t *out)
{
    leaf_probe_t p = {false, {0}};
    if (x86pt_walk(&kernel_pt, kernel_root, va, va, take_leaf, &p) != MM_OK || !p.found)
        return false;
    *out = p.leaf;
    return true;
}

static volatile uint64_t *va_ptr(uint64_t va)
{
    return (volatile uint64_t *)(uintptr_t)va;
}

static const uint64_t rodata_word = 0x0123456789abcdefu;
static uint8_t data_code[16] __attribute__((aligned(16))) = {0xc3}; /* ret */

static void check_image_rights(void)
{
    fault_record_t rec;
    char how[64];
    uint64_t text = (uint64_t)(uintptr_t)kmain;
    bool hit = fault_probe_write(text, 0, &rec);
    tap_check(hit && rec.cr2 == text && rec.error == (PF_ERR_PRESENT | PF_ERR_WRITE),
              "paging: write to kernel text %#lx faults (%s)", text,
              pf_error_str(rec.error, how, sizeof how));
    uint64_t ro = (uint64_t)(uintptr_t)&rodata_word;
    hit = fault_probe_write(ro, 0, &rec);
    tap_check(hit && rec.cr2 == ro && rec.error == (PF_ERR_PRESENT | PF_ERR_WRITE) &&
                  rodata_word == 0x0123456789abcdefu,
              "paging: write to kernel rodata %#lx faults (%s)", ro,
              pf_error_str(rec.error, how, sizeof how));
    if (!kernel_pt.nx) {
        tap_skip("CPU without NX", "paging: data is not executable");
        return;
    }
    uint64_t code = (uint64_t)(uintptr_t)data_code;
    hit = fault_probe_exec(code, &rec);
    tap_check(hit && rec.cr2 == code && rec.error == (PF_ERR_PRESENT | PF_ERR_FETCH),
              "paging: executing kernel data %#lx faults (%s)", code,
              pf_error_str(rec.error, how, sizeof how));
    /* The same byte through the HHDM: also no-execute. */
    uint64_t alias = (uint64_t)(uintptr_t)hhdm_phys_to_virt(kernel_virt_to_phys(data_code));
    hit = fault_probe_exec(alias, &rec);
    tap_check(hit && rec.cr2 == alias && (rec.error & PF_ERR_FETCH),
              "paging: executing through the HHDM %#lx faults (%s)", alias,
              pf_error_str(rec.error, how, sizeof how));
    x86pt_leaf_t leaf;
    tap_check(raw_leaf(text, &leaf) && (leaf.entry & PTE_G) && (leaf.flags & MM_MAP_EXEC) &&
                  !(leaf.flags & MM_MAP_WRITE),
              "paging: kernel text is global, executable, read-only (entry %#lx)", leaf.entry);
}

static void check_hhdm(void)
{
    /* Every RAM range: its last word through the HHDM. */
    bool all_ok = true;
    for (size_t i = 0; i < boot_info.map_count; i++) {
        const pmm_region_t *r = &boot_info.map[i];
        if (r->type != PMM_REGION_USABLE && r->type != PMM_REGION_BOOTLOADER_RECLAIMABLE)
            continue;
        uint64_t start = mm_align_up(r->base, MM_PAGE_SIZE);
        uint64_t end = mm_align_down(r->base + r->length, MM_PAGE_SIZE);
        if (end <= start)
            continue;
        /* Restore the word: the frame may be free, and poisoned. */
        volatile uint64_t *w = hhdm_phys_to_virt(end - 8);
        uint64_t saved = *w;
        *w = end ^ 0x5a5a5a5a5a5a5a5au;
        all_ok = all_ok && *w == (end ^ 0x5a5a5a5a5a5a5a5au);
        *w = saved;
    }
    /* The page size the HHDM must use for the largest aligned chunk of the
     * RAM runs it maps (boot_info.ram_runs). */
    mm_page_size_t best = MM_PAGE_4K;
    uint64_t best_va = 0;
    bool gib_chunk = false; /* some RAM run holds a whole aligned GiB */
    for (size_t i = 0; i < boot_info.ram_run_count; i++) {
        uint64_t start, end;
        if (!boot_ram_run_pages(i, &start, &end))
            continue;
        uint64_t g = mm_align_up(start, MM_GIB);
        uint64_t m = mm_align_up(start, MM_SIZE_2M);
        gib_chunk = gib_chunk || g + MM_GIB <= end;
        if (g + MM_GIB <= end && best < MM_PAGE_1G && kernel_pt.pages_1g) {
            best = MM_PAGE_1G;
            best_va = hhdm_base + g;
        } else if (m + MM_SIZE_2M <= end && best < MM_PAGE_2M) {
            best = MM_PAGE_2M;
            best_va = hhdm_base + m;
        }
    }
    tap_check(all_ok, "paging: the last word of every RAM range is writable through the HHDM");
    mm_translation_t t = {0};
    mm_status_t st = x86pt_translate(&kernel_pt, kernel_root, best_va, &t);
    tap_check(st == MM_OK && t.size == best && (t.flags & MM_MAP_WRITE) &&
                  !(t.flags & MM_MAP_EXEC),
              "paging: HHDM uses %s pages where RAM allows (%#lx: %s, RW NX)%s", size_str(best),
              best_va, st == MM_OK ? size_str(t.size) : mm_status_str(st),
              gib_chunk && !cpu_feat.page1g ? ": 1 GiB would fit, the CPU has no 1 GiB pages"
              : !gib_chunk                 ? ": no whole aligned GiB of RAM here"
                                           : "");

    /* The legacy VGA hole is not RAM: not mapped in the HHDM. */
    fault_record_t rec;
    uint64_t hole = hhdm_base + 0xb8000;
    bool hit = fault_probe_read(hole, &rec);
    tap_check(hit && rec.cr2 == hole && !(rec.error & PF_ERR_PRESENT),
              "paging: HHDM leaves non-RAM (VGA hole %#lx) unmapped", hole);
}

/* Map/alias/remap/unmap in the scratch window, through the mapper. */
static void check_scratch(void)
{
    mm_paddr_t a, b;
    if (mm_frame_alloc(&kernel_frames, &a) != MM_OK || mm_frame_alloc(&kernel_frames, &b) != MM_OK) {
        tap_fail("no frames", "paging: scratch frames");
        return;
    }
    volatile uint64_t *ha = hhdm_phys_to_virt(a), *hb = hhdm_phys_to_virt(b);
    ha[0] = 0xaaaaaaaa00000001u;
    hb[0] = 0xbbbbbbbb00000002u;

    uint64_t v1 = SCRATCH_BASE, v2 = SCRATCH_BASE + MM_PAGE_SIZE;
    mm_tlb_batch_t tlb = MM_TLB_BATCH_INIT;
    mm_status_t s1 = mm_pm_map(&kernel_mapper, kernel_root, v1, a, MM_PAGE_4K, MM_MAP_WRITE, &tlb);
    mm_status_t s2 = mm_pm_map(&kernel_mapper, kernel_root, v2, a, MM_PAGE_4K, MM_MAP_WRITE, &tlb);
    mm_tlb_batch_flush(&tlb);
    bool ok = s1 == MM_OK && s2 == MM_OK;
    if (ok) {
        va_ptr(v1)[1] = 0x1111222233334444u;
        ok = va_ptr(v2)[1] == 0x1111222233334444u && ha[1] == 0x1111222233334444u &&
             va_ptr(v2)[0] == 0xaaaaaaaa00000001u;
    }
    tap_check(ok, "paging: one frame at %#lx and %#lx: a write through one is read through the "
                  "other and the HHDM (%s, %s)",
              v1, v2, mm_status_str(s1), mm_status_str(s2));

    /* Remap v1 to frame b. Read first so the old translation is cached. */
    uint64_t before = va_ptr(v1)[0];
    mm_paddr_t old = 0;
    s1 = mm_pm_unmap(&kernel_mapper, kernel_root, v1, MM_PAGE_4K, &old, &tlb);
    s2 = mm_pm_map(&kernel_mapper, kernel_root, v1, b, MM_PAGE_4K, MM_MAP_WRITE, &tlb);
    uint64_t unflushed = va_ptr(v1)[0];
    bool batched = tlb.count > 0 || tlb.flush_all;
    unsigned calls = hook_tlb_page_calls + hook_tlb_all_calls;
    mm_tlb_batch_flush(&tlb);
    uint64_t after = va_ptr(v1)[0];
    tap_check(s1 == MM_OK && s2 == MM_OK && old == a && before == 0xaaaaaaaa00000001u &&
                  batched && hook_tlb_page_calls + hook_tlb_all_calls == calls + 1 &&
                  after == 0xbbbbbbbb00000002u,
              "paging: remap %#lx from frame %#lx to %#lx, one flush, the CPU sees the new frame",
              v1, a, b);
    tap_diag("before the flush the CPU saw %s", unflushed == 0xaaaaaaaa00000001u
                                                   ? "the OLD frame (stale TLB entry): the flush "
                                                     "is what makes the change visible"
                                                   : "the new frame already");

    /* Unmap v2: access faults with CR2 = v2 exactly. */
    s1 = mm_pm_unmap(&kernel_mapper, kernel_root, v2, MM_PAGE_4K, &old, &tlb);
    mm_tlb_batch_flush(&tlb);
    fault_record_t rec;
    uint64_t probe = v2 + 0x18;
    bool hit = fault_probe_read(probe, &rec);
    tap_check(s1 == MM_OK && hit && rec.cr2 == probe && rec.error == 0,
              "paging: after unmap a read of %#lx faults (cr2 %#lx, not-present)", probe, rec.cr2);

    /* Write-combining 4 KiB page: PAT index 4 = PAT bit 7, PCD/PWT clear. */
    uint64_t v3 = SCRATCH_BASE + 2 * MM_PAGE_SIZE;
    s1 = mm_pm_map(&kernel_mapper, kernel_root, v3, a, MM_PAGE_4K,
                   MM_MAP_WRITE | MM_MAP_WRITE_COMBINING, &tlb);
    mm_tlb_batch_flush(&tlb);
    x86pt_leaf_t leaf = {0};
    ok = s1 == MM_OK && raw_leaf(v3, &leaf);
    if (ok) {
        va_ptr(v3)[2] = 0x5c5c5c5c5c5c5c5cu;
        ok = ha[2] == 0x5c5c5c5c5c5c5c5cu;
    }
    tap_check(ok && mm_map_mem_type(leaf.flags) == MM_MEM_WRITE_COMBINING && (leaf.entry & PTE_PAT_4K) &&
                  !(leaf.entry & (PTE_PCD | PTE_PWT)) && rdmsr(MSR_PAT) == X86PT_PAT_MSR,
              "paging: write-combining 4K page (entry %#lx: PAT bit 7, PAT MSR %#lx) works",
              leaf.entry, rdmsr(MSR_PAT));

    /* Uncached: the local APIC's version register. */
    uint64_t v4 = SCRATCH_BASE + 3 * MM_PAGE_SIZE;
    s2 = mm_pm_map(&kernel_mapper, kernel_root, v4, 0xfee00000u, MM_PAGE_4K,
                   MM_MAP_WRITE | MM_MAP_DEVICE, &tlb);
    mm_tlb_batch_flush(&tlb);
    uint32_t ver = 0;
    ok = s2 == MM_OK && raw_leaf(v4, &leaf);
    if (ok)
        ver = *(volatile uint32_t *)(uintptr_t)(v4 + 0x30);
    tap_check(ok && (leaf.entry & PTE_PCD) && (leaf.entry & PTE_PWT) && (ver & 0xff) != 0 &&
                  ver != 0xffffffffu && ((ver >> 16) & 0xff) >= 3,
              "paging: local APIC mapped uncached (entry %#lx), version register %#x "
              "(version %#x, %u LVT entries)",
              leaf.entry, ver, ver & 0xff, ((ver >> 16) & 0xff) + 1);

    mm_pm_unmap(&kernel_mapper, kernel_root, v1, MM_PAGE_4K, NULL, &tlb);
    mm_pm_unmap(&kernel_mapper, kernel_root, v3, MM_PAGE_4K, NULL, &tlb);
    mm_pm_unmap(&kernel_mapper, kernel_root, v4, MM_PAGE_4K, NULL, &tlb);
    mm_tlb_batch_flush(&tlb);
    mm_frame_free(&kernel_frames, a);
    mm_frame_free(&kernel_frames, b);

    /* Write-combining 2 MiB page: the PAT bit moves to bit 12. */
    mm_paddr_t big;
    if (kernel_frames.alloc(kernel_frames.ctx, 512, 512, MM_PADDR_MAX, &big) != MM_OK) {
        tap_skip("no 2 MiB run", "paging: write-combining 2M page");
    } else {
        uint64_t v5 = SCRATCH_BASE + MM_SIZE_2M;
        s1 = mm_pm_map(&kernel_mapper, kernel_root, v5, big, MM_PAGE_2M,
                       MM_MAP_WRITE | MM_MAP_WRITE_COMBINING, &tlb);
        mm_tlb_batch_flush(&tlb);
        ok = s1 == MM_OK && raw_leaf(v5, &leaf);
        if (ok) {
            va_ptr(v5 + MM_SIZE_2M - 8)[0] = 0x2222222222222222u;
            ok = *(volatile uint64_t *)hhdm_phys_to_virt(big + MM_SIZE_2M - 8) ==
                 0x2222222222222222u;
        }
        tap_check(ok && leaf.size == MM_PAGE_2M && (leaf.entry & PTE_PAT_HUGE) &&
                      !(leaf.entry & (PTE_PCD | PTE_PWT)),
                  "paging: write-combining 2M page (entry %#lx: PAT bit 12) works", leaf.entry);
        mm_pm_unmap(&kernel_mapper, kernel_root, v5, MM_PAGE_2M, NULL, &tlb);
        mm_tlb_batch_flush(&tlb);
        kernel_frames.free(kernel_frames.ctx, big, 512);
    }
}

typedef struct audit_log {
    unsigned printed;
} audit_log_t;

static void print_finding(void *arg, const x86pt_finding_t *f)
{
    audit_log_t *log = arg;
    if (log->printed++ < 8)
        tap_diag("audit: %s at %#lx (level %u, entry %#lx)",
                 f->kind == X86PT_FINDING_WX                ? "W+X leaf"
                 : f->kind == X86PT_FINDING_KERNEL_USER_LEAF ? "user leaf in kernel half"
                                                             : "user table in kernel half",
                 f->va, f->level, f->entry);
}

void checks_paging_audit(mm_paddr_t root, const char *what)
{
    x86pt_audit_counts_t counts = {0};
    audit_log_t log = {0};
    mm_status_t st = x86pt_audit(&kernel_pt, root, print_finding, &log, &counts);
    tap_check(st == MM_OK && counts.wx == 0 && counts.kernel_user_leaves == 0 &&
                  counts.kernel_user_tables == 0,
              "paging: audit of %s: %zu W+X pages, %zu user pages and %zu user tables in the "
              "kernel half",
              what, counts.wx, counts.kernel_user_leaves, counts.kernel_user_tables);
    x86pt_check_info_t info = {0};
    st = x86pt_check(&kernel_pt, root, &info);
    tap_check(st == MM_OK, "paging: consistency check of %s: %zu kernel tables, %zu user tables, "
                           "%zu leaves%s%s",
              what, info.kernel_tables, info.user_tables, info.leaves,
              st == MM_OK ? "" : " - ", st == MM_OK ? "" : info.problem);
}

void checks_paging(void)
{
    if (!tap_check(kernel_tables_ready && read_cr3() == kernel_root,
                   "paging: the kernel runs on its own %u-level tables (root %#lx)%s%s",
                   kernel_pt.levels, kernel_root, kernel_tables_ready ? "" : ", failed at ",
                   kernel_tables_error_step))
        return;
    check_hhdm();
    check_image_rights();
    check_scratch();
    checks_paging_audit(kernel_root, "the kernel tables");
}

#else
void checks_paging(void)
{
}
#endif

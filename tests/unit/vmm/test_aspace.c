/* User address spaces: create, map, unmap, protect, translate, switch and
 * destroy, and the kernel half they share. */
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "vmm_fixture.h"

/* Fails with `want` and changes neither the kernel side nor the space. */
#define AS_REJECTED(fx, as, want, call)                                                            \
    do {                                                                                           \
        fx_snapshot_t snap_;                                                                       \
        fx_snapshot((fx), &snap_);                                                                 \
        uint64_t dig_ = (as)->vmm ? fx_digest((fx), (as)->root) : 0;                               \
        mm_status_t st_ = (call);                                                                  \
        cr_assert_eq(st_, (want), "%s: got %s", #call, mm_status_str(st_));                        \
        fx_assert_unchanged((fx), &snap_);                                                         \
        if ((as)->vmm)                                                                             \
            cr_assert_eq(fx_digest((fx), (as)->root), dig_, "address space changed");              \
        fx_assert_sane(fx);                                                                        \
    } while (0)

/* The end of the user half: 2^47 (x86_64 and AArch64 with one root per
 * space), 2^48 beside a separate kernel root. */
#define USER_TOP (FX_KERNEL_ROOT_SEPARATE ? 1ull << 48 : 1ull << 47)

FX_TEST(create_map_many_destroy_returns_every_frame)
{
    uint64_t free0 = fx_free_frames(fx);
    vmm_as_t as;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &as));
    cr_assert_neq(as.root, 0);
    cr_assert_neq(as.root, fx->kroot);

    /* Across several page tables, page directories and root entries. */
    OK(vmm_as_map_anon(&as, 0x400000 - 3 * P, 600, MM_MAP_WRITE));
    OK(vmm_as_map_anon(&as, 0x40000000 - 2 * P, 4, 0));
    OK(vmm_as_map_anon(&as, USER_TOP - 10 * P, 10, MM_MAP_WRITE));
    OK(vmm_as_map_anon(&as, 0x8000000000ull, 1, MM_MAP_EXEC));
    /* Frames of the caller's, freed by the same callback. */
    mm_paddr_t pa, huge;
    OK(fx->backing.alloc(fx->backing.ctx, 1, 1, MM_PADDR_MAX, &pa));
    OK(vmm_as_map(&as, 0x10000000, pa, MM_PAGE_4K, MM_MAP_WRITE));
    OK(fx->backing.alloc(fx->backing.ctx, 512, 512, MM_PADDR_MAX, &huge));
    OK(vmm_as_map(&as, 0x20000000, huge, MM_PAGE_2M, MM_MAP_WRITE));
    cr_assert_eq(fx_leaf_count(fx, as.root), 617);
    fx_assert_sane(fx);

    mm_translation_t t;
    OK(vmm_as_translate(&as, 0x400000 + 5, &t));
    const uint8_t *mem = hhdm_phys_to_virt(t.page_pa);
    for (unsigned i = 0; i < P; i++)
        cr_assert_eq(mem[i], 0, "anonymous pages are zeroed");
    cr_assert_eq(t.flags, MM_MAP_USER | MM_MAP_WRITE);
    OK(vmm_as_translate(&as, 0x20000000 + 0x12345, &t));
    cr_assert_eq(t.pa, huge + 0x12345);
    cr_assert_eq(t.size, MM_PAGE_2M);

    OK(vmm_as_release(&as));
    cr_assert_null(as.vmm);
    cr_assert_eq(fx_free_frames(fx), free0, "tables, user frames and root all back");
    OK(vmm_as_release(&as));
    OK(vmm_as_release(NULL));
    cr_assert_eq(fx_free_frames(fx), free0);
    fx_assert_sane(fx);
}

FX_TEST(destroy_without_callback_leaves_user_frames_to_the_caller)
{
    uint64_t free0 = fx_free_frames(fx);
    vmm_as_t as;
    OK(vmm_as_create(&fx->vmm, NULL, NULL, &as));
    mm_paddr_t pa[3];
    for (int i = 0; i < 3; i++) {
        OK(fx->backing.alloc(fx->backing.ctx, 1, 1, MM_PADDR_MAX, &pa[i]));
        OK(vmm_as_map(&as, 0x1000000 + (uint64_t)i * 0x40000000, pa[i], MM_PAGE_4K, 0));
    }
    OK(vmm_as_release(&as));
    cr_assert_eq(fx_free_frames(fx), free0 - 3, "only the caller's frames remain out");
    for (int i = 0; i < 3; i++)
        OK(fx->backing.free(fx->backing.ctx, pa[i], 1));
}

FX_TEST(map_unmap_protect_translate)
{
    vmm_as_t as;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &as));
    mm_paddr_t pa;
    OK(fx->backing.alloc(fx->backing.ctx, 1, 1, MM_PADDR_MAX, &pa));
    mm_vaddr_t va = 0x7f0000001000ull;
    OK(vmm_as_map(&as, va, pa, MM_PAGE_4K, MM_MAP_WRITE));
    mm_translation_t t;
    OK(vmm_as_translate(&as, va + 0x10, &t));
    cr_assert_eq(t.pa, pa + 0x10);
    cr_assert_eq(t.flags, MM_MAP_USER | MM_MAP_WRITE, "user implied");
    AS_REJECTED(fx, &as, MM_ERR_EXISTS, vmm_as_map(&as, va, pa, MM_PAGE_4K, 0));

    memset(&test_tlb, 0, sizeof(test_tlb));
    OK(vmm_as_protect(&as, va, MM_PAGE_4K, MM_MAP_EXEC));
    OK(vmm_as_translate(&as, va, &t));
    cr_assert_eq(t.flags, MM_MAP_USER | MM_MAP_EXEC);
    cr_assert_eq(test_tlb.page_calls, 1, "protect flushes before returning");
    cr_assert_eq(test_tlb.last_pages[0], va);

    memset(&test_tlb, 0, sizeof(test_tlb));
    mm_paddr_t got = 0;
    OK(vmm_as_unmap(&as, va, MM_PAGE_4K, &got));
    cr_assert_eq(got, pa);
    cr_assert_eq(test_tlb.page_calls, 1, "unmap flushes before returning the frame");
    AS_REJECTED(fx, &as, MM_ERR_NOT_MAPPED, vmm_as_translate(&as, va, &t));
    AS_REJECTED(fx, &as, MM_ERR_NOT_MAPPED, vmm_as_unmap(&as, va, MM_PAGE_4K, NULL));
    AS_REJECTED(fx, &as, MM_ERR_NOT_MAPPED, vmm_as_protect(&as, va, MM_PAGE_4K, 0));
    OK(fx->backing.free(fx->backing.ctx, pa, 1));

    mm_paddr_t huge;
    OK(fx->backing.alloc(fx->backing.ctx, 512, 512, MM_PADDR_MAX, &huge));
    OK(vmm_as_map(&as, 0x40000000, huge, MM_PAGE_2M, MM_MAP_WRITE));
    AS_REJECTED(fx, &as, MM_ERR_SIZE_MISMATCH, vmm_as_unmap(&as, 0x40000000, MM_PAGE_4K, NULL));
    AS_REJECTED(fx, &as, MM_ERR_EXISTS,
                vmm_as_map(&as, 0x40000000 + 5 * P, huge, MM_PAGE_4K, 0));
    OK(vmm_as_unmap(&as, 0x40000000, MM_PAGE_2M, &got));
    cr_assert_eq(got, huge);
    OK(fx->backing.free(fx->backing.ctx, huge, 512));
    OK(vmm_as_release(&as));
}

FX_TEST(kernel_half_and_bad_arguments_are_rejected)
{
    vmm_as_t as;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &as));
    OK(vmm_as_map_anon(&as, 0x1000, 1, 0));
    mm_paddr_t pa = 0x200000;
    mm_vaddr_t kva = fx->layout.regions[LAYOUT_HEAP].base;
    mm_translation_t t;

    AS_REJECTED(fx, &as, MM_ERR_RANGE, vmm_as_map(&as, kva, pa, MM_PAGE_4K, 0));
    AS_REJECTED(fx, &as, MM_ERR_RANGE, vmm_as_map(&as, 0xffff800000000000ull, pa, MM_PAGE_4K, 0));
    AS_REJECTED(fx, &as, MM_ERR_RANGE, vmm_as_map_anon(&as, kva, 1, 0));
    AS_REJECTED(fx, &as, MM_ERR_RANGE, vmm_as_unmap(&as, kva, MM_PAGE_4K, NULL));
    AS_REJECTED(fx, &as, MM_ERR_RANGE, vmm_as_protect(&as, kva, MM_PAGE_4K, 0));
    AS_REJECTED(fx, &as, MM_ERR_RANGE, vmm_as_translate(&as, kva, &t));
    AS_REJECTED(fx, &as, MM_ERR_NOT_CANONICAL, vmm_as_map(&as, USER_TOP, pa, MM_PAGE_4K, 0));
    AS_REJECTED(fx, &as, MM_ERR_NOT_CANONICAL, vmm_as_translate(&as, USER_TOP + P, &t));
    AS_REJECTED(fx, &as, MM_ERR_RANGE, vmm_as_map_anon(&as, USER_TOP - 2 * P, 3, 0));
    AS_REJECTED(fx, &as, MM_ERR_RANGE, vmm_as_map_anon(&as, P, SIZE_MAX, 0));
    AS_REJECTED(fx, &as, MM_ERR_RANGE, vmm_as_map(&as, USER_TOP - P, pa, MM_PAGE_2M, 0));
    AS_REJECTED(fx, &as, MM_ERR_ALIGN, vmm_as_map(&as, 0x2001, pa, MM_PAGE_4K, 0));
    AS_REJECTED(fx, &as, MM_ERR_ALIGN, vmm_as_map(&as, 0x2000, pa + 8, MM_PAGE_4K, 0));
    AS_REJECTED(fx, &as, MM_ERR_ALIGN, vmm_as_map(&as, 0x201000, pa, MM_PAGE_2M, 0));
    AS_REJECTED(fx, &as, MM_ERR_ALIGN, vmm_as_map_anon(&as, 0x2010, 1, 0));
    AS_REJECTED(fx, &as, MM_ERR_ALIGN, vmm_as_unmap(&as, 0x1008, MM_PAGE_4K, NULL));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_map(&as, 0x2000, pa, (mm_page_size_t)13, 0));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_map(&as, 0x2000, pa, MM_PAGE_4K, MM_MAP_GLOBAL));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_map(&as, 0x2000, pa, MM_PAGE_4K, 1u << 20));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_map_anon(&as, 0x2000, 1, MM_MAP_GLOBAL));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_map_anon(&as, 0x2000, 0, 0));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_protect(&as, 0x1000, MM_PAGE_4K, MM_MAP_GLOBAL));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_map(NULL, 0x2000, pa, MM_PAGE_4K, 0));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_translate(&as, 0x1000, NULL));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_translate(NULL, 0x1000, &t));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_unmap(NULL, 0x1000, MM_PAGE_4K, NULL));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_protect(NULL, 0x1000, MM_PAGE_4K, 0));
    AS_REJECTED(fx, &as, MM_ERR_INVALID, vmm_as_map_anon(NULL, 0x1000, 1, 0));
    cr_assert_eq(vmm_as_switch(NULL), MM_ERR_INVALID);
    cr_assert_eq(vmm_as_create(&fx->vmm, NULL, NULL, NULL), MM_ERR_INVALID);
    vmm_as_t other;
    cr_assert_eq(vmm_as_create(NULL, NULL, NULL, &other), MM_ERR_INVALID);
    cr_assert_null(other.vmm);
    OK(vmm_as_release(&as));

    /* A released space refuses everything. */
    vmm_as_t dead = VMM_AS_INIT;
    AS_REJECTED(fx, &dead, MM_ERR_STATE, vmm_as_map(&dead, 0x2000, pa, MM_PAGE_4K, 0));
    AS_REJECTED(fx, &dead, MM_ERR_STATE, vmm_as_map_anon(&dead, 0x2000, 1, 0));
    AS_REJECTED(fx, &dead, MM_ERR_STATE, vmm_as_unmap(&dead, 0x2000, MM_PAGE_4K, NULL));
    AS_REJECTED(fx, &dead, MM_ERR_STATE, vmm_as_protect(&dead, 0x2000, MM_PAGE_4K, 0));
    AS_REJECTED(fx, &dead, MM_ERR_STATE, vmm_as_translate(&dead, 0x2000, &t));
    cr_assert_eq(vmm_as_switch(&as), MM_ERR_STATE);
}

FX_TEST(switch_goes_through_the_hook)
{
    vmm_as_t a, b;
    OK(vmm_as_create(&fx->vmm, NULL, NULL, &a));
    OK(vmm_as_create(&fx->vmm, NULL, NULL, &b));
    OK(vmm_as_switch(&a));
    cr_assert_eq(test_tlb.current_root, a.root);
    OK(vmm_as_switch(&b));
    cr_assert_eq(test_tlb.current_root, b.root);
    OK(vmm_switch_to_kernel(&fx->vmm));
    cr_assert_eq(test_tlb.current_root, FX_KERNEL_ROOT_SEPARATE ? 0 : fx->kroot,
                 "the kernel root, or 0 (no user half) beside a separate kernel root");
    cr_assert_eq(test_tlb.switches, 3);
    cr_assert_eq(vmm_switch_to_kernel(NULL), MM_ERR_INVALID);
    OK(vmm_as_release(&a));
    OK(vmm_as_release(&b));
}

static void assert_same_translation(fx_t *fx, mm_paddr_t user_root, mm_vaddr_t va)
{
    mm_translation_t k, u;
    OK(fx_translate(fx, fx->kroot, va, &k));
    mm_status_t st = fx_translate(fx, user_root, va, &u);
    if (FX_KERNEL_ROOT_SEPARATE) {
        /* The kernel's addresses are not addresses of a user root at all:
         * TTBR1 translates them whatever TTBR0 holds. */
        cr_assert_eq(st, MM_ERR_NOT_CANONICAL, "kernel page %#llx in a user root: %s",
                     (unsigned long long)va, mm_status_str(st));
        return;
    }
    cr_assert_eq(st, MM_OK, "kernel page %#llx not visible in the address space: %s",
                 (unsigned long long)va, mm_status_str(st));
    cr_assert_eq(u.pa, k.pa);
    cr_assert_eq(u.flags, k.flags);
}

FX_TEST(kernel_mappings_made_later_are_shared)
{
    vmm_as_t as;
    OK(vmm_as_create(&fx->vmm, NULL, NULL, &as));
    void *hb;
    size_t hs;
    OK(vmm_heap_init(&fx->vmm, 0, &hb, &hs));
    vmm_stack_t s;
    OK(vmm_stack_create(&fx->vmm, &s));
    vmm_mmio_t m;
    OK(vmm_mmio_map(&fx->vmm, 0xfee00020, 8, VMM_MMIO_DEVICE, &m));
    assert_same_translation(fx, as.root, (mm_vaddr_t)(uintptr_t)hb);
    assert_same_translation(fx, as.root, (mm_vaddr_t)(uintptr_t)hb + hs - 1);
    assert_same_translation(fx, as.root, s.bottom);
    assert_same_translation(fx, as.root, s.top - 1);
    assert_same_translation(fx, as.root, (mm_vaddr_t)(uintptr_t)m.ptr);

    /* Tables freed and re-created below the shared entries stay shared. */
    OK(vmm_stack_release(&s));
    OK(vmm_mmio_release(&m));
    mm_translation_t t;
    cr_assert_eq(fx_translate(fx, as.root, s.bottom, &t), MM_ERR_NOT_MAPPED);
    OK(vmm_stack_create(&fx->vmm, &s));
    OK(vmm_mmio_map(&fx->vmm, 0xfee00000, 8, VMM_MMIO_DEVICE, &m));
    assert_same_translation(fx, as.root, s.bottom);
    assert_same_translation(fx, as.root, (mm_vaddr_t)(uintptr_t)m.ptr);

    /* Destroying the space leaves the kernel half alone. */
    uint64_t kdig = fx_digest(fx, fx->kroot);
    OK(vmm_as_release(&as));
    cr_assert_eq(fx_digest(fx, fx->kroot), kdig);
    OK(fx_translate(fx, fx->kroot, s.bottom, &t));
    OK(vmm_stack_release(&s));
    OK(vmm_mmio_release(&m));
    fx_assert_sane(fx);
}

typedef struct as_arg {
    vmm_as_t as;
    mm_vaddr_t va;
    size_t pages;
} as_arg_t;

static mm_status_t op_as_create(fx_t *fx, void *arg)
{
    as_arg_t *a = arg;
    mm_status_t st = vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &a->as);
    if (st != MM_OK)
        cr_assert_null(a->as.vmm);
    return st;
}

static mm_status_t op_map_anon(fx_t *fx, void *arg)
{
    as_arg_t *a = arg;
    uint64_t dig = fx_digest(fx, a->as.root);
    mm_status_t st = vmm_as_map_anon(&a->as, a->va, a->pages, MM_MAP_WRITE);
    if (st != MM_OK)
        cr_assert_eq(fx_digest(fx, a->as.root), dig, "user tables changed");
    return st;
}

FX_TEST(create_and_map_anon_are_all_or_nothing_for_every_failing_allocation)
{
    uint64_t free0 = fx_free_frames(fx);
    as_arg_t a = {VMM_AS_INIT, 0, 0};
    cr_assert_geq(fx_fail_each_k(fx, op_as_create, &a, false), 1);
    /* 40 pages straddling a 2 MiB and a 1 GiB boundary: new tables at
     * several levels half way. */
    a.va = 0x40000000 - 20 * P;
    a.pages = 40;
    cr_assert_geq(fx_fail_each_k(fx, op_map_anon, &a, false), 42);
    a.va = 0x8000000000ull - 3 * P; /* across a root entry */
    a.pages = 6;
    cr_assert_geq(fx_fail_each_k(fx, op_map_anon, &a, true), 6);
    cr_assert_eq(fx_leaf_count(fx, a.as.root), 46);
    OK(vmm_as_release(&a.as));
    cr_assert_eq(fx_free_frames(fx), free0);
}

FX_TEST(map_anon_over_an_existing_page_rolls_back)
{
    vmm_as_t as;
    OK(vmm_as_create(&fx->vmm, vmm_as_leaf_free_frames, &fx->vmm, &as));
    OK(vmm_as_map_anon(&as, 0x100000 + 5 * P, 1, 0));
    memset(&test_tlb, 0, sizeof(test_tlb));
    AS_REJECTED(fx, &as, MM_ERR_EXISTS, vmm_as_map_anon(&as, 0x100000, 10, MM_MAP_WRITE));
    cr_assert_eq(test_tlb.page_calls, 1, "the five pages mapped were flushed");
    cr_assert_eq(fx_leaf_count(fx, as.root), 1);
    OK(vmm_as_release(&as));
}

#if VMM_TEST_HAVE_X86PT && !VMM_TEST_MAPPER_A64
/* The raw x86_64 entries: user bit on the user-half path only. */
#define PTE_P 1ull
#define PTE_US 4ull
#define PTE_ADDR 0x000ffffffffff000ull

static uint64_t pte(mm_paddr_t table, unsigned idx)
{
    return ((const uint64_t *)hhdm_phys_to_virt(table))[idx];
}

/* The entries on the path to va, root first. */
static void path(mm_paddr_t root, mm_vaddr_t va, uint64_t e[4])
{
    mm_paddr_t table = root;
    for (int level = 4; level >= 1; level--) {
        e[4 - level] = pte(table, (unsigned)((va >> (12 + 9 * (level - 1))) & 511));
        cr_assert(e[4 - level] & PTE_P, "level %d not present", level);
        table = e[4 - level] & PTE_ADDR;
    }
}

Test(vmm_x86, user_bit_only_on_the_user_half)
{
    static fx_t fx;
    fx_setup(&fx, FX_REAL, NULL, false);
    vmm_as_t as;
    OK(vmm_as_create(&fx.vmm, vmm_as_leaf_free_frames, &fx.vmm, &as));
    OK(vmm_as_map_anon(&as, 0x400000, 3, MM_MAP_WRITE));
    vmm_stack_t s;
    OK(vmm_stack_create(&fx.vmm, &s));
    void *hb;
    size_t hs;
    OK(vmm_heap_grow(&fx.vmm, 1, &hb, &hs));

    uint64_t e[4];
    path(as.root, 0x401000, e);
    for (int i = 0; i < 4; i++)
        cr_assert(e[i] & PTE_US, "user path level %d lacks the user bit", 4 - i);
    path(as.root, s.bottom, e);
    for (int i = 0; i < 4; i++)
        cr_assert_not(e[i] & PTE_US, "kernel path level %d has the user bit", 4 - i);
    path(as.root, (mm_vaddr_t)(uintptr_t)hb, e);
    for (int i = 0; i < 4; i++)
        cr_assert_not(e[i] & PTE_US, "kernel heap path level %d has the user bit", 4 - i);
    /* Every kernel-half root entry is the kernel root's. */
    for (unsigned i = 256; i < 512; i++)
        cr_assert_eq(pte(as.root, i), pte(fx.kroot, i), "root entry %u not shared", i);

    x86pt_audit_counts_t c;
    OK(x86pt_audit(&fx.x86, as.root, NULL, NULL, &c));
    cr_assert_eq(c.kernel_user_leaves + c.kernel_user_tables + c.wx, 0);
    OK(x86pt_audit(&fx.x86, fx.kroot, NULL, NULL, &c));
    cr_assert_eq(c.kernel_user_leaves + c.kernel_user_tables + c.wx, 0);
    x86pt_check_info_t info;
    OK(x86pt_check(&fx.x86, as.root, &info));
    cr_assert_eq(info.user_tables, 3, "PDPT, PD, PT under the user root entry");
    OK(vmm_as_release(&as));
    OK(vmm_stack_release(&s));
}
#endif

#if VMM_TEST_MAPPER_A64
/* The raw AArch64 descriptors (Arm ARM page descriptors): user pages are EL0
 * accessible (AP[1]), not global (nG), never executable at EL1 (PXN);
 * kernel pages reached through a user root are neither EL0 accessible nor
 * EL0 executable, and the kernel half of every root is the kernel root's. */
#define D_VALID 1ull
#define D_AP1 (1ull << 6)
#define D_NG (1ull << 11)
#define D_PXN (1ull << 53)
#define D_UXN (1ull << 54)
#define D_ADDR 0x0000fffffffff000ull

static uint64_t a64_leaf(mm_paddr_t root, mm_vaddr_t va)
{
    const uint64_t *t = hhdm_phys_to_virt(root);
    for (int level = 0; level <= 3; level++) {
        uint64_t e = t[(va >> (12 + 9 * (3 - level))) & 511];
        cr_assert(e & D_VALID, "level %d invalid", level);
        if (level == 3 || (e & 3) == 1)
            return e;
        t = hhdm_phys_to_virt(e & D_ADDR);
    }
    return 0;
}

Test(vmm_a64, user_pages_are_el0_and_not_global_kernel_pages_are_neither)
{
    static fx_t fx;
    fx_setup(&fx, FX_REAL, NULL, false);
    vmm_as_t as;
    OK(vmm_as_create(&fx.vmm, vmm_as_leaf_free_frames, &fx.vmm, &as));
    OK(vmm_as_map_anon(&as, 0x400000, 3, MM_MAP_WRITE));
    vmm_stack_t s;
    OK(vmm_stack_create(&fx.vmm, &s));
    void *hb;
    size_t hs;
    OK(vmm_heap_grow(&fx.vmm, 1, &hb, &hs));

    uint64_t e = a64_leaf(as.root, 0x401000);
    cr_assert_eq(e & (D_AP1 | D_NG | D_PXN | D_UXN), D_AP1 | D_NG | D_PXN | D_UXN,
                 "user data: EL0, nG, PXN, UXN (no exec asked): %#llx", (unsigned long long)e);
    /* Kernel pages: through the user root when it shares the kernel half,
     * else in the kernel root alone (TTBR1). */
    mm_paddr_t kr = FX_KERNEL_ROOT_SEPARATE ? fx.kroot : as.root;
    e = a64_leaf(kr, s.bottom);
    cr_assert_eq(e & (D_AP1 | D_NG | D_UXN), D_UXN, "kernel stack: not EL0, global");
    e = a64_leaf(kr, (mm_vaddr_t)(uintptr_t)hb);
    cr_assert_eq(e & (D_AP1 | D_UXN), D_UXN, "kernel heap: not EL0");
    const uint64_t *u = hhdm_phys_to_virt(as.root), *k = hhdm_phys_to_virt(fx.kroot);
    for (unsigned i = FX_KERNEL_ROOT_SEPARATE ? 0 : 256; i < 512; i++) {
        if (FX_KERNEL_ROOT_SEPARATE)
            cr_assert(i == 0 || u[i] == 0, "user root entry %u: only entry 0 is used", i);
        else
            cr_assert_eq(u[i], k[i], "root entry %u not shared", i);
    }

    a64pt_audit_counts_t c;
    OK(a64pt_audit(&fx.a64, as.root, NULL, NULL, &c));
    cr_assert_eq(c.wx + c.kernel_el0_leaves + c.user_pxn_clear, 0);
    OK(a64pt_audit(&fx.a64, fx.kroot, NULL, NULL, &c));
    cr_assert_eq(c.wx + c.kernel_el0_leaves + c.user_pxn_clear, 0);
    a64pt_check_info_t info;
    OK(a64pt_check(&fx.a64, as.root, &info));
    cr_assert_eq(info.user_tables, 3, "levels 1, 2 and 3 under the user root entry");
    OK(vmm_as_release(&as));
    OK(vmm_stack_release(&s));
}
#endif

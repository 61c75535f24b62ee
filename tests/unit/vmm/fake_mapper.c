#include <stdlib.h>
#include <string.h>

#include "fake_mapper.h"

#define TOP_SHIFT 39u

/* The kernel half of the space the fake was told to model (x86_64 4-level
 * unless a test set pm->space). */
#define kernel_half(va) mm_va_space_is_kernel(&pm->space, (va))

static unsigned top_slot(mm_vaddr_t va)
{
    return (unsigned)((va >> TOP_SHIFT) & 511u);
}

static int cmp_key(mm_paddr_t ra, mm_vaddr_t va, mm_paddr_t rb, mm_vaddr_t vb)
{
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (va != vb)
        return va < vb ? -1 : 1;
    return 0;
}

/* Index of the first entry >= (root, va). */
static size_t lower_bound(const fake_pm_t *pm, mm_paddr_t root, mm_vaddr_t va)
{
    size_t lo = 0, hi = pm->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_key(pm->e[mid].root, pm->e[mid].va, root, va) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint64_t last_of(const fake_entry_t *e)
{
    return e->va + (mm_page_bytes(e->size) - 1);
}

/* The entry of `root` covering va, or NULL (no kernel-half delegation). */
static const fake_entry_t *find_cover(const fake_pm_t *pm, mm_paddr_t root, mm_vaddr_t va)
{
    size_t i = lower_bound(pm, root, va);
    if (i < pm->n && pm->e[i].root == root && pm->e[i].va == va)
        return &pm->e[i];
    if (i > 0 && pm->e[i - 1].root == root && last_of(&pm->e[i - 1]) >= va)
        return &pm->e[i - 1];
    return NULL;
}

static fake_root_t *find_root(fake_pm_t *pm, mm_paddr_t root)
{
    for (size_t i = 0; i < pm->nroots; i++)
        if (pm->roots[i].live && pm->roots[i].root == root)
            return &pm->roots[i];
    return NULL;
}

static fake_table_t *find_table(fake_pm_t *pm, mm_paddr_t root, unsigned shift, uint64_t key)
{
    for (size_t i = 0; i < pm->ntables; i++)
        if (pm->tables[i].root == root && pm->tables[i].shift == shift &&
            pm->tables[i].key == key)
            return &pm->tables[i];
    return NULL;
}

static void drop_table(fake_pm_t *pm, fake_table_t *t)
{
    pm->frames.free(pm->frames.ctx, t->frame, 1);
    *t = pm->tables[--pm->ntables];
}

static mm_status_t f_map(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_paddr_t pa,
                         mm_page_size_t size, mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    fake_pm_t *pm = ctx;
    (void)tlb;
    pm->map_calls++;
    if (pm->fail_map_at != 0 && pm->map_calls == pm->fail_map_at)
        return pm->fail_map_status;
    if (!mm_va_space_contains(&pm->space, va))
        return MM_ERR_NOT_CANONICAL;
    if (size != MM_PAGE_4K && size != MM_PAGE_2M && size != MM_PAGE_1G)
        return MM_ERR_INVALID;
    uint64_t bytes = mm_page_bytes(size);
    if (!mm_is_aligned(va, bytes) || !mm_is_aligned(pa, bytes))
        return MM_ERR_ALIGN;
    if (pa >= (1ull << 46))
        return MM_ERR_RANGE;
    if (!mm_map_flags_valid(flags))
        return MM_ERR_INVALID;
    if ((flags & MM_MAP_USER) && kernel_half(va))
        return MM_ERR_INVALID;
    /* Anything overlapping: a larger page covering va or anything inside. */
    if (find_cover(pm, root, va) != NULL)
        return MM_ERR_EXISTS;
    size_t i = lower_bound(pm, root, va);
    if (i < pm->n && pm->e[i].root == root && pm->e[i].va <= va + (bytes - 1))
        return MM_ERR_EXISTS;
    if (pm->n == pm->cap)
        return MM_ERR_NOMEM;

    unsigned shift = (unsigned)size;
    uint64_t key = va >> (shift + 9);
    fake_table_t *t = find_table(pm, root, shift, key);
    if (t == NULL) {
        if (pm->ntables == FAKE_MAX_TABLES)
            return MM_ERR_NOMEM;
        mm_paddr_t frame;
        if (pm->frames.alloc(pm->frames.ctx, 1, 1, MM_PADDR_MAX, &frame) != MM_OK)
            return MM_ERR_NOMEM;
        t = &pm->tables[pm->ntables++];
        *t = (fake_table_t){root, key, shift, frame, 0};
    }
    t->count++;
    memmove(&pm->e[i + 1], &pm->e[i], (pm->n - i) * sizeof(pm->e[0]));
    pm->e[i] = (fake_entry_t){root, va, pa, size, flags};
    pm->n++;
    return MM_OK;
}

static mm_status_t f_unmap(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                           mm_paddr_t *pa_out, mm_tlb_batch_t *tlb)
{
    fake_pm_t *pm = ctx;
    pm->unmap_calls++;
    if (!mm_va_space_contains(&pm->space, va))
        return MM_ERR_NOT_CANONICAL;
    if (!mm_is_aligned(va, mm_page_bytes(size)))
        return MM_ERR_ALIGN;
    const fake_entry_t *c = find_cover(pm, root, va);
    if (c == NULL)
        return MM_ERR_NOT_MAPPED;
    if (c->va != va || c->size != size)
        return MM_ERR_SIZE_MISMATCH;
    size_t i = (size_t)(c - pm->e);
    if (pa_out != NULL)
        *pa_out = c->pa;
    mm_tlb_batch_add(tlb, va, size, (c->flags & MM_MAP_GLOBAL) != 0);
    fake_table_t *t = find_table(pm, root, (unsigned)size, va >> ((unsigned)size + 9));
    if (t != NULL && --t->count == 0)
        drop_table(pm, t);
    memmove(&pm->e[i], &pm->e[i + 1], (pm->n - i - 1) * sizeof(pm->e[0]));
    pm->n--;
    return MM_OK;
}

static mm_status_t f_protect(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_page_size_t size,
                             mm_map_flags_t flags, mm_tlb_batch_t *tlb)
{
    fake_pm_t *pm = ctx;
    pm->protect_calls++;
    if (!mm_va_space_contains(&pm->space, va))
        return MM_ERR_NOT_CANONICAL;
    if (!mm_is_aligned(va, mm_page_bytes(size)))
        return MM_ERR_ALIGN;
    if ((flags & ~(mm_map_flags_t)MM_MAP_FLAGS_ALL) != 0)
        return MM_ERR_INVALID;
    fake_entry_t *c = (fake_entry_t *)find_cover(pm, root, va);
    if (c == NULL)
        return MM_ERR_NOT_MAPPED;
    if (c->va != va || c->size != size)
        return MM_ERR_SIZE_MISMATCH;
    if (c->flags != flags)
        mm_tlb_batch_add(tlb, va, size, (c->flags & MM_MAP_GLOBAL) != 0);
    c->flags = flags;
    return MM_OK;
}

static mm_status_t f_translate(void *ctx, mm_paddr_t root, mm_vaddr_t va, mm_translation_t *out)
{
    fake_pm_t *pm = ctx;
    pm->translate_calls++;
    if (!mm_va_space_contains(&pm->space, va))
        return MM_ERR_NOT_CANONICAL;
    mm_paddr_t where = root;
    fake_root_t *r = find_root(pm, root);
    if (kernel_half(va) && r != NULL && r->kernel_root != 0) {
        unsigned s = top_slot(va) - 256;
        if (!(r->shared[s / 64] >> (s % 64) & 1))
            return MM_ERR_NOT_MAPPED;
        where = r->kernel_root;
    }
    const fake_entry_t *c = find_cover(pm, where, va);
    if (c == NULL)
        return MM_ERR_NOT_MAPPED;
    out->page_va = c->va;
    out->page_pa = c->pa;
    out->pa = c->pa + (va - c->va);
    out->size = c->size;
    out->flags = c->flags;
    return MM_OK;
}

static mm_status_t f_root_create(void *ctx, mm_paddr_t kernel_root, mm_paddr_t *root_out)
{
    fake_pm_t *pm = ctx;
    pm->root_creates++;
    size_t slot = pm->nroots;
    for (size_t i = 0; i < pm->nroots; i++)
        if (!pm->roots[i].live)
            slot = i;
    if (slot == FAKE_MAX_ROOTS)
        return MM_ERR_NOMEM;
    mm_paddr_t frame;
    if (pm->frames.alloc(pm->frames.ctx, 1, 1, MM_PADDR_MAX, &frame) != MM_OK)
        return MM_ERR_NOMEM;
    fake_root_t *r = &pm->roots[slot];
    *r = (fake_root_t){.root = frame, .kernel_root = kernel_root, .live = true};
    if (kernel_root != 0)
        for (size_t i = 0; i < pm->ntables; i++) {
            const fake_table_t *t = &pm->tables[i];
            if (t->root == kernel_root && t->shift == 0 && t->key >= 256) {
                unsigned s = (unsigned)t->key - 256;
                r->shared[s / 64] |= 1ull << (s % 64);
            }
        }
    if (slot == pm->nroots)
        pm->nroots++;
    *root_out = frame;
    return MM_OK;
}

static void f_root_destroy(void *ctx, mm_paddr_t root, mm_leaf_fn leaf, void *leaf_arg)
{
    fake_pm_t *pm = ctx;
    pm->root_destroys++;
    size_t i = lower_bound(pm, root, 0);
    while (i < pm->n && pm->e[i].root == root && !kernel_half(pm->e[i].va)) {
        fake_entry_t e = pm->e[i];
        if (leaf != NULL)
            leaf(leaf_arg, e.va, e.pa, e.size, e.flags);
        memmove(&pm->e[i], &pm->e[i + 1], (pm->n - i - 1) * sizeof(pm->e[0]));
        pm->n--;
    }
    for (size_t t = 0; t < pm->ntables;) {
        if (pm->tables[t].root == root)
            drop_table(pm, &pm->tables[t]);
        else
            t++;
    }
    fake_root_t *r = find_root(pm, root);
    if (r != NULL) {
        r->live = false;
        pm->frames.free(pm->frames.ctx, root, 1);
    }
}

static mm_status_t f_prepopulate_top(void *ctx, mm_paddr_t root, mm_vaddr_t va, uint64_t len)
{
    fake_pm_t *pm = ctx;
    pm->prepopulate_calls++;
    pm->last_prepop_va = va;
    pm->last_prepop_len = len;
    if (len == 0)
        return MM_OK;
    uint64_t last = va + (len - 1);
    if (last < va || !mm_va_space_contains(&pm->space, va) || !mm_va_space_contains(&pm->space, last) ||
        kernel_half(va) != kernel_half(last))
        return MM_ERR_NOT_CANONICAL;
    size_t before = pm->ntables;
    for (unsigned s = top_slot(va); s <= top_slot(last); s++) {
        if (find_table(pm, root, 0, s) != NULL)
            continue;
        mm_paddr_t frame;
        if (pm->ntables == FAKE_MAX_TABLES ||
            pm->frames.alloc(pm->frames.ctx, 1, 1, MM_PADDR_MAX, &frame) != MM_OK) {
            while (pm->ntables > before)
                drop_table(pm, &pm->tables[pm->ntables - 1]);
            return MM_ERR_NOMEM;
        }
        pm->tables[pm->ntables++] = (fake_table_t){root, s, 0, frame, 0};
    }
    return MM_OK;
}

static void f_va_space(void *ctx, mm_va_space_t *out)
{
    const fake_pm_t *pm = ctx;
    *out = pm->space;
}

static const mm_page_mapper_ops_t fake_ops = {
    .map = f_map,
    .unmap = f_unmap,
    .protect = f_protect,
    .translate = f_translate,
    .root_create = f_root_create,
    .root_destroy = f_root_destroy,
    .prepopulate_top = f_prepopulate_top,
    .va_space = f_va_space,
};

fake_pm_t *fake_pm_create(mm_frame_allocator_t frames, size_t max_entries)
{
    fake_pm_t *pm = calloc(1, sizeof(*pm));
    pm->frames = frames;
    pm->cap = max_entries;
    mm_va_space_sign_extended(48, 4, &pm->space);
    pm->e = calloc(max_entries, sizeof(pm->e[0]));
    return pm;
}

void fake_pm_destroy(fake_pm_t *pm)
{
    if (pm == NULL)
        return;
    free(pm->e);
    free(pm);
}

mm_page_mapper_t fake_pm_mapper(fake_pm_t *pm)
{
    return (mm_page_mapper_t){&fake_ops, pm};
}

size_t fake_pm_leaf_count(const fake_pm_t *pm, mm_paddr_t root)
{
    size_t n = 0;
    for (size_t i = 0; i < pm->n; i++)
        n += pm->e[i].root == root;
    return n;
}

size_t fake_pm_table_count(const fake_pm_t *pm, mm_paddr_t root)
{
    size_t n = 0;
    for (size_t i = 0; i < pm->ntables; i++)
        n += pm->tables[i].root == root;
    for (size_t i = 0; i < pm->nroots; i++)
        n += pm->roots[i].live && pm->roots[i].root == root;
    return n;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (i * 8)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t fake_pm_digest(const fake_pm_t *pm, mm_paddr_t root)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < pm->n; i++) {
        const fake_entry_t *e = &pm->e[i];
        if (e->root != root)
            continue;
        h = mix(mix(mix(mix(h, e->va), e->pa), (uint64_t)e->size), e->flags);
    }
    /* Tables are an unordered set: combine order-independently. */
    uint64_t t = 0;
    for (size_t i = 0; i < pm->ntables; i++)
        if (pm->tables[i].root == root)
            t += mix(mix(mix(0xcbf29ce484222325ull, pm->tables[i].key), pm->tables[i].shift),
                     pm->tables[i].count);
    return mix(h, t);
}

bool fake_pm_kernel_half_clean(const fake_pm_t *pm, mm_paddr_t root)
{
    const fake_root_t *r = NULL;
    for (size_t i = 0; i < pm->nroots; i++)
        if (pm->roots[i].live && pm->roots[i].root == root)
            r = &pm->roots[i];
    for (size_t i = 0; i < pm->n; i++) {
        const fake_entry_t *e = &pm->e[i];
        if (e->root != root || !kernel_half(e->va))
            continue;
        if ((e->flags & MM_MAP_USER) || (r != NULL && r->kernel_root != 0))
            return false;
    }
    return true;
}

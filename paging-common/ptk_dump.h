/*
 * The page-table kit's dump (ptk.h): a ptdump-like text listing of merged
 * leaf runs, one line per run of pages of one size, with contiguous frames
 * and equal flags. Freestanding: no printf, every number is formatted
 * here. Included only by each mapper's dump.c.
 */
#ifndef HADRON_MM_PTK_DUMP_H
#define HADRON_MM_PTK_DUMP_H

#include "ptk.h"

typedef void (*ptk_write_fn)(void *arg, const char *text, size_t len);

typedef struct ptk_dump_ctx {
    ptk_write_fn write;
    const char *const *mem_names; /* per mm_mem_type_t, with a leading space */
    void *arg;
    bool active;           /* a run is open */
    mm_vaddr_t va;
    mm_paddr_t pa;
    uint64_t pages;
    mm_page_size_t size;
    mm_map_flags_t flags;
} ptk_dump_ctx_t;

/* A line is at most ~120 characters; build it here and write it once. */
typedef struct ptk_line {
    char buf[160];
    size_t len;
} ptk_line_t;

static inline void ptk_put_str(ptk_line_t *l, const char *s)
{
    while (*s != '\0' && l->len < sizeof l->buf)
        l->buf[l->len++] = *s++;
}

static inline void ptk_put_hex16(ptk_line_t *l, uint64_t x)
{
    static const char digits[] = "0123456789abcdef";
    ptk_put_str(l, "0x");
    for (int shift = 60; shift >= 0 && l->len < sizeof l->buf; shift -= 4)
        l->buf[l->len++] = digits[(x >> shift) & 0xf];
}

static inline void ptk_put_dec(ptk_line_t *l, uint64_t x)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + x % 10u);
        x /= 10u;
    } while (x != 0);
    while (n != 0 && l->len < sizeof l->buf)
        l->buf[l->len++] = tmp[--n];
}

/* Bytes with the largest unit that divides them exactly: 4K, 12K, 2M, 1G. */
static inline void ptk_put_size(ptk_line_t *l, uint64_t bytes)
{
    static const char units[] = "KMGTPE";
    unsigned u = 0;
    uint64_t v = bytes >> 10; /* every size here is a multiple of 4 KiB */
    while (u + 1 < sizeof units - 1 && v != 0 && (v & 1023u) == 0) {
        v >>= 10;
        u++;
    }
    ptk_put_dec(l, v);
    char unit[2] = {units[u], '\0'};
    ptk_put_str(l, unit);
}

static inline void ptk_dump_flush(ptk_dump_ctx_t *d)
{
    if (!d->active)
        return;
    uint64_t page = mm_page_bytes(d->size);
    uint64_t bytes = d->pages * page; /* cannot wrap: a run lies in 2^64 */
    ptk_line_t l = {.len = 0};
    ptk_put_hex16(&l, d->va);
    ptk_put_str(&l, "-");
    ptk_put_hex16(&l, d->va + bytes);
    ptk_put_str(&l, " -> ");
    ptk_put_hex16(&l, d->pa);
    ptk_put_str(&l, " ");
    ptk_put_size(&l, bytes);
    ptk_put_str(&l, " ");
    ptk_put_dec(&l, d->pages);
    ptk_put_str(&l, "x");
    ptk_put_size(&l, page);
    ptk_put_str(&l, (d->flags & MM_MAP_USER) ? " USR" : "    ");
    ptk_put_str(&l, (d->flags & MM_MAP_WRITE) ? " RW" : " ro");
    ptk_put_str(&l, (d->flags & MM_MAP_EXEC) ? " x " : " NX");
    ptk_put_str(&l, (d->flags & MM_MAP_GLOBAL) ? " GLB" : "    ");
    ptk_put_str(&l, d->mem_names[mm_map_mem_type(d->flags)]);
    ptk_put_str(&l, "\n");
    d->write(d->arg, l.buf, l.len);
    d->active = false;
}

static inline bool ptk_dump_leaf(ptk_visit_t *v, const ptk_leaf_t *leaf, unsigned level)
{
    (void)level;
    ptk_dump_ctx_t *d = v->arg;
    uint64_t page = mm_page_bytes(leaf->size);
    if (d->active && leaf->size == d->size && leaf->flags == d->flags &&
        leaf->va == d->va + d->pages * page && leaf->pa == d->pa + d->pages * page) {
        d->pages++;
        return true;
    }
    ptk_dump_flush(d);
    d->active = true;
    d->va = leaf->va;
    d->pa = leaf->pa;
    d->pages = 1;
    d->size = leaf->size;
    d->flags = leaf->flags;
    return true;
}

/* Writes the listing of the hierarchy at `root` (checked by the caller)
 * through `write`, naming memory types with `mem_names`. O(entries). */
static inline void ptk_dump(const ptk_ops_t *ops, const ptk_geom_t *g, const void *m,
                            mm_paddr_t root, const char *const *mem_names, ptk_write_fn write,
                            void *arg)
{
    ptk_dump_ctx_t d = {.write = write, .mem_names = mem_names, .arg = arg, .active = false};
    ptk_visit_t v = {.m = m, .first = 0, .last = UINT64_MAX, .leaf = ptk_dump_leaf, .arg = &d};
    ptk_visit(ops, g, &v, root);
    ptk_dump_flush(&d);
}

typedef struct ptk_buf_sink {
    char *buf;
    size_t cap;
    size_t len; /* total produced, may exceed cap */
} ptk_buf_sink_t;

static inline void ptk_buf_write(void *arg, const char *text, size_t len)
{
    ptk_buf_sink_t *s = arg;
    for (size_t i = 0; i < len; i++, s->len++)
        if (s->cap != 0 && s->len < s->cap - 1)
            s->buf[s->len] = text[i];
}

/* The listing into buf (NUL-terminated, truncated to cap - 1 bytes);
 * *len_out gets the full length. MM_ERR_FULL when it did not fit. */
static inline mm_status_t ptk_dump_buf(const ptk_ops_t *ops, const ptk_geom_t *g, const void *m,
                                       mm_paddr_t root, const char *const *mem_names, char *buf,
                                       size_t cap, size_t *len_out)
{
    ptk_buf_sink_t s = {buf, cap, 0};
    ptk_dump(ops, g, m, root, mem_names, ptk_buf_write, &s);
    if (cap != 0)
        buf[s.len < cap ? s.len : cap - 1] = '\0';
    if (len_out != NULL)
        *len_out = s.len;
    return s.len < cap ? MM_OK : MM_ERR_FULL;
}

#endif /* HADRON_MM_PTK_DUMP_H */

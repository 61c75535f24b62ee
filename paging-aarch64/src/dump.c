/* ptdump-like text listing of merged leaf runs. Freestanding: no printf,
 * every number is formatted here. */
#include "a64_internal.h"

typedef struct dump_ctx {
    a64pt_write_fn write;
    void *arg;
    bool active;           /* a run is open */
    mm_vaddr_t va;
    mm_paddr_t pa;
    uint64_t pages;
    mm_page_size_t size;
    mm_map_flags_t flags;
} dump_ctx_t;

/* A line is at most ~120 characters; build it here and write it once. */
typedef struct line {
    char buf[160];
    size_t len;
} line_t;

static void put_str(line_t *l, const char *s)
{
    while (*s != '\0' && l->len < sizeof l->buf)
        l->buf[l->len++] = *s++;
}

static void put_hex16(line_t *l, uint64_t x)
{
    static const char digits[] = "0123456789abcdef";
    put_str(l, "0x");
    for (int shift = 60; shift >= 0 && l->len < sizeof l->buf; shift -= 4)
        l->buf[l->len++] = digits[(x >> shift) & 0xf];
}

static void put_dec(line_t *l, uint64_t x)
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
static void put_size(line_t *l, uint64_t bytes)
{
    static const char units[] = "KMGTPE";
    unsigned u = 0;
    uint64_t v = bytes >> 10; /* every size here is a multiple of 4 KiB */
    while (u + 1 < sizeof units - 1 && v != 0 && (v & 1023u) == 0) {
        v >>= 10;
        u++;
    }
    put_dec(l, v);
    char unit[2] = {units[u], '\0'};
    put_str(l, unit);
}

static void flush_run(dump_ctx_t *d)
{
    if (!d->active)
        return;
    uint64_t page = mm_page_bytes(d->size);
    uint64_t bytes = d->pages * page; /* cannot wrap: a run lies in 2^64 */
    line_t l = {.len = 0};
    put_hex16(&l, d->va);
    put_str(&l, "-");
    put_hex16(&l, d->va + bytes);
    put_str(&l, " -> ");
    put_hex16(&l, d->pa);
    put_str(&l, " ");
    put_size(&l, bytes);
    put_str(&l, " ");
    put_dec(&l, d->pages);
    put_str(&l, "x");
    put_size(&l, page);
    put_str(&l, (d->flags & MM_MAP_USER) ? " USR" : "    ");
    put_str(&l, (d->flags & MM_MAP_WRITE) ? " RW" : " ro");
    put_str(&l, (d->flags & MM_MAP_EXEC) ? " x " : " NX");
    put_str(&l, (d->flags & MM_MAP_GLOBAL) ? " GLB" : "    ");
    mm_mem_type_t type = mm_map_mem_type(d->flags);
    put_str(&l, type == MM_MEM_DEVICE          ? " DEV"
                : type == MM_MEM_WRITE_THROUGH ? " WT"
                : type == MM_MEM_NORMAL_NC     ? " NC"
                                               : " WB");
    put_str(&l, "\n");
    d->write(d->arg, l.buf, l.len);
    d->active = false;
}

static bool dump_leaf(a64_visit_t *v, const ptk_leaf_t *leaf, unsigned level)
{
    (void)level;
    dump_ctx_t *d = v->arg;
    uint64_t page = mm_page_bytes(leaf->size);
    if (d->active && leaf->size == d->size && leaf->flags == d->flags &&
        leaf->va == d->va + d->pages * page && leaf->pa == d->pa + d->pages * page) {
        d->pages++;
        return true;
    }
    flush_run(d);
    d->active = true;
    d->va = leaf->va;
    d->pa = leaf->pa;
    d->pages = 1;
    d->size = leaf->size;
    d->flags = leaf->flags;
    return true;
}

mm_status_t a64pt_dump(const a64pt_t *m, mm_paddr_t root, a64pt_write_fn write, void *arg)
{
    if (!a64_root_ok(m, root) || write == NULL)
        return MM_ERR_INVALID;
    dump_ctx_t d = {.write = write, .arg = arg, .active = false};
    a64_visit_t v = {.m = m, .first = 0, .last = UINT64_MAX, .leaf = dump_leaf, .arg = &d};
    a64_visit(&v, root);
    flush_run(&d);
    return MM_OK;
}

typedef struct buf_sink {
    char *buf;
    size_t cap;
    size_t len; /* total produced, may exceed cap */
} buf_sink_t;

static void buf_write(void *arg, const char *text, size_t len)
{
    buf_sink_t *s = arg;
    for (size_t i = 0; i < len; i++, s->len++)
        if (s->cap != 0 && s->len < s->cap - 1)
            s->buf[s->len] = text[i];
}

mm_status_t a64pt_dump_buf(const a64pt_t *m, mm_paddr_t root, char *buf, size_t cap,
                           size_t *len_out)
{
    if (buf == NULL && cap != 0)
        return MM_ERR_INVALID;
    buf_sink_t s = {buf, cap, 0};
    mm_status_t st = a64pt_dump(m, root, buf_write, &s);
    if (st != MM_OK)
        return st;
    if (cap != 0)
        buf[s.len < cap ? s.len : cap - 1] = '\0';
    if (len_out != NULL)
        *len_out = s.len;
    return s.len < cap ? MM_OK : MM_ERR_FULL;
}

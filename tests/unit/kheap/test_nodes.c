/*
 * kheap node pool (kheap/src/nodes.c): once the heap has enough free
 * blocks, their tree nodes move into dense chunks. Placement must stay
 * exactly address-ordered first fit for the caller's blocks, a
 * heap that holds nothing must give its chunks back, a heap with no room
 * for a chunk must keep working with nodes in the blocks, and kheap_check
 * must see damage to pooled nodes, spares and chunks.
 */
#include "../../../kheap/src/block.h"
#include "kheap_test.h"

static kheap_stats_t stats_of(kheap_t *h)
{
    kheap_stats_t st;
    cr_assert_eq(kheap_get_stats(h, &st), MM_OK);
    return st;
}

/* Internal blocks that are not map leaves (runs are off here): chunks. */
typedef struct chunk_list {
    size_t n;
    uintptr_t at[64];
    size_t size[64];
} chunk_list_t;

static bool chunk_cb(void *arg, const kheap_block_info_t *info)
{
    chunk_list_t *l = arg;
    if (info->internal) {
        cr_assert_lt(l->n, 64);
        l->at[l->n] = (uintptr_t)info->block;
        l->size[l->n] = info->size;
        l->n++;
    }
    return true;
}

static chunk_list_t chunks_of(kheap_t *h)
{
    chunk_list_t l;
    l.n = 0;
    cr_assert_eq(kheap_walk(h, chunk_cb, &l), MM_OK);
    return l;
}

/* A heap with runs off (pool on, as kheap_init leaves it) and `holes` free
 * blocks between used ones, the pool not yet filled. */
static void holey_heap(kheap_t *h, size_t bytes, void **keep, unsigned holes)
{
    cr_assert_eq(kheap_init(h, t_arena(bytes), bytes), MM_OK);
    cr_assert_eq(kheap_set_small_runs(h, false), MM_OK);
    for (unsigned i = 0; i < 2 * holes; i++) {
        keep[i] = kheap_alloc(h, 200, 0);
        cr_assert_not_null(keep[i]);
    }
    for (unsigned i = 0; i < 2 * holes; i += 2) {
        cr_assert_eq(kheap_free(h, keep[i]), MM_OK);
        keep[i] = NULL;
    }
}

Test(kheap_nodes, a_chunk_comes_with_enough_free_blocks)
{
    kheap_t h;
    void *keep[64];
    holey_heap(&h, 1 << 20, keep, KHEAP_NODE_POOL_FROM - 2);
    /* 14 holes and the rest of the region: one free block too few. */
    cr_assert_eq(stats_of(&h).free_blocks, KHEAP_NODE_POOL_FROM - 1);
    void *p = kheap_alloc(&h, 64, 0);
    cr_assert_not_null(p);
    cr_assert_eq(stats_of(&h).node_chunks, 0);
    cr_assert_eq(kheap_free(&h, p), MM_OK);

    /* One more hole: frees never take a chunk, the next allocation does. */
    void *a = kheap_alloc(&h, 5000, 0), *b = kheap_alloc(&h, 5000, 0);
    cr_assert_not_null(b);
    cr_assert_eq(kheap_free(&h, a), MM_OK);
    kheap_stats_t st = stats_of(&h);
    cr_assert_eq(st.free_blocks, KHEAP_NODE_POOL_FROM);
    cr_assert_eq(st.node_chunks, 0);
    p = kheap_alloc(&h, 64, 0);
    cr_assert_not_null(p);
    st = stats_of(&h);
    cr_assert_eq(st.node_chunks, 1);
    cr_assert_geq(st.node_bytes, KHEAP_NODE_CHUNK_MIN);
    chunk_list_t l = chunks_of(&h);
    cr_assert_eq(l.n, 1, "the walker reports the chunk as internal");
    cr_assert_eq(l.size[0], st.node_bytes);
    cr_assert_eq(l.at[0], (uintptr_t)a - T_USER_OFF,
                 "the chunk takes the snuggest hole that holds it, not the region's rest");
    T_CHECK(&h);

    /* Everything freed: the chunk goes too, and the region is whole. */
    cr_assert_eq(kheap_free(&h, p), MM_OK);
    cr_assert_eq(kheap_free(&h, b), MM_OK);
    for (unsigned i = 1; i < 2 * (KHEAP_NODE_POOL_FROM - 2); i += 2)
        cr_assert_eq(kheap_free(&h, keep[i]), MM_OK);
    st = stats_of(&h);
    cr_assert_eq(st.node_chunks, 0);
    cr_assert_eq(st.node_bytes, 0);
    t_assert_all_free(&h);
    T_CHECK(&h);
}

/* Remove a chunk the heap placed from the model's free intervals: it must
 * lie inside one of them and start where one starts (a chunk is placed like
 * a run: at the start of one of the first holes that hold it). */
static void tm_take_chunk(t_model_t *m, uintptr_t at, size_t size)
{
    for (size_t i = 0; i < m->niv; i++) {
        if (m->iv[i].s != at)
            continue;
        uintptr_t e = m->iv[i].e;
        cr_assert_leq(at + size, e, "chunk %#lx overruns its hole", (unsigned long)at);
        memmove(&m->iv[i], &m->iv[i + 1], (m->niv - i - 1) * sizeof(t_iv_t));
        m->niv--;
        if (at + size < e)
            tm_insert_free(m, at + size, e);
        return;
    }
    cr_assert_fail("chunk at %#lx does not start a free block", (unsigned long)at);
}

static void take_new_chunks(t_model_t *m, kheap_t *h, chunk_list_t *known)
{
    chunk_list_t now = chunks_of(h);
    for (size_t i = 0; i < now.n; i++) {
        bool seen = false;
        for (size_t k = 0; k < known->n; k++)
            seen = seen || known->at[k] == now.at[i];
        if (!seen)
            tm_take_chunk(m, now.at[i], now.size[i]);
    }
    *known = now;
}

/* A random trace with the pool on, against the model: every address the
 * heap returns is the model's first fit once the chunks are accounted as
 * taken, the free set matches after every step, and kheap_check holds. */
static void pooled_trace(uint64_t seed, bool aligned)
{
    static t_model_t m;
    memset(&m, 0, sizeof(m));
    kheap_t h;
    const size_t bytes = 1 << 21;
    void *arena = t_arena(bytes);
    cr_assert_eq(kheap_init(&h, arena, bytes), MM_OK);
    cr_assert_eq(kheap_set_small_runs(&h, false), MM_OK);
    tm_add_region(&m, arena, bytes);
    chunk_list_t known = {0, {0}, {0}};
    void *live[600];
    unsigned nlive = 0;
    uint64_t rs = seed;
    bool pooled = false;
    for (int step = 0; step < 3000; step++) {
        uint64_t r = t_rand(&rs);
        if (nlive > 0 && (nlive == 600 || r % 100 < 45)) {
            unsigned i = (unsigned)(t_rand(&rs) % nlive);
            cr_assert_eq(kheap_free(&h, live[i]), MM_OK);
            tm_free(&m, (uintptr_t)live[i]);
            live[i] = live[--nlive];
        } else {
            size_t size = 1 + (size_t)(t_rand(&rs) % (r % 8 == 0 ? 6000 : 300));
            size_t align = aligned && r % 16 == 1 ? (size_t)64 << (t_rand(&rs) % 7) : 0;
            void *p = kheap_alloc(&h, size, align);
            cr_assert_not_null(p);
            take_new_chunks(&m, &h, &known);
            cr_assert_eq((uintptr_t)p, tm_alloc(&m, size, align), "step %d", step);
            live[nlive++] = p;
        }
        pooled = pooled || stats_of(&h).node_chunks != 0;
        if (step % 7 == 0)
            tm_assert_matches(&m, &h);
        T_CHECK(&h);
    }
    cr_assert(pooled, "the trace used the pool");
    while (nlive > 0)
        cr_assert_eq(kheap_free(&h, live[--nlive]), MM_OK);
    cr_assert_eq(stats_of(&h).node_chunks, 0);
    t_assert_all_free(&h);
    T_CHECK(&h);
}

Test(kheap_nodes, random_traces_stay_first_fit, .timeout = 60)
{
    for (uint64_t seed = 1; seed <= 3; seed++)
        pooled_trace(seed, false);
}

Test(kheap_nodes, random_aligned_traces_stay_first_fit, .timeout = 60)
{
    pooled_trace(77, true);
}

/* Pooled free blocks, mixed with blocks that still hold their own node. */
static void pooled_heap(kheap_t *h, void **keep)
{
    holey_heap(h, 1 << 20, keep, 24);
    void *p = kheap_alloc(h, 64, 0); /* takes the chunk */
    cr_assert_not_null(p);
    cr_assert_eq(stats_of(h).node_chunks, 1);
    cr_assert_eq(kheap_free(h, p), MM_OK);
    T_CHECK(h);
}

/* The caller's blocks, as the walker reports them. */
static bool ptr_cb(void *arg, const kheap_block_info_t *info)
{
    chunk_list_t *l = arg;
    if (info->ptr != NULL) {
        cr_assert_lt(l->n, 64);
        l->at[l->n] = (uintptr_t)info->ptr;
        l->size[l->n] = info->size;
        l->n++;
    }
    return true;
}

Test(kheap_nodes, turning_the_pool_off_gives_the_chunks_back)
{
    kheap_t h;
    void *keep[48];
    pooled_heap(&h, keep);
    chunk_list_t before = {0, {0}, {0}}, after = {0, {0}, {0}};
    cr_assert_eq(kheap_walk(&h, ptr_cb, &before), MM_OK);
    kheap_stats_t st0 = stats_of(&h);
    cr_assert_eq(kheap_set_node_pool(&h, false), MM_OK);
    kheap_stats_t st = stats_of(&h);
    cr_assert_eq(st.node_chunks, 0);
    cr_assert_eq(chunks_of(&h).n, 0);
    cr_assert_eq(st.free_bytes, st0.free_bytes + st0.node_bytes, "the chunk's memory is free");
    T_CHECK(&h);
    cr_assert_eq(kheap_walk(&h, ptr_cb, &after), MM_OK);
    cr_assert_eq(before.n, after.n);
    cr_assert_eq(memcmp(before.at, after.at, before.n * sizeof(uintptr_t)), 0,
                 "the caller's blocks did not move");
    /* Off, no allocation takes a chunk. */
    void *p = kheap_alloc(&h, 64, 0);
    cr_assert_eq(stats_of(&h).node_chunks, 0);
    cr_assert_eq(kheap_free(&h, p), MM_OK);
    cr_assert_eq(kheap_set_node_pool(&h, true), MM_OK);
    p = kheap_alloc(&h, 64, 0);
    cr_assert_eq(stats_of(&h).node_chunks, 1, "on again, the next allocation takes one");
    cr_assert_eq(kheap_free(&h, p), MM_OK);
    T_CHECK(&h);
    for (unsigned i = 1; i < 48; i += 2)
        cr_assert_eq(kheap_free(&h, keep[i]), MM_OK);
    t_assert_all_free(&h);
}

Test(kheap_nodes, no_room_for_a_chunk_keeps_nodes_in_blocks)
{
    /* 64-byte blocks filling a small heap, every other one freed: many free
     * blocks, none big enough for a chunk. */
    kheap_t h;
    const size_t bytes = 8192;
    cr_assert_eq(kheap_init(&h, t_arena(bytes), bytes), MM_OK);
    cr_assert_eq(kheap_set_small_runs(&h, false), MM_OK);
    void *p[256];
    unsigned n = 0;
    const size_t req = 64 - T_USER_OFF - T_BACK; /* a 64-byte block */
    while (n < 256 && (p[n] = kheap_alloc(&h, req, 0)) != NULL)
        n++;
    cr_assert_gt(n, 2 * KHEAP_NODE_POOL_FROM);
    for (unsigned i = 0; i < n; i += 2)
        cr_assert_eq(kheap_free(&h, p[i]), MM_OK);
    cr_assert_geq(stats_of(&h).free_blocks, KHEAP_NODE_POOL_FROM);
    void *q = kheap_alloc(&h, req, 0);
    cr_assert_not_null(q, "the allocation itself still fits a hole");
    cr_assert_eq(stats_of(&h).node_chunks, 0);
    T_CHECK(&h);
    cr_assert_eq(kheap_free(&h, q), MM_OK);
    for (unsigned i = 1; i < n; i += 2)
        cr_assert_eq(kheap_free(&h, p[i]), MM_OK);
    t_assert_all_free(&h);
}

Test(kheap_nodes, double_free_into_a_pooled_block_changes_nothing)
{
    kheap_t h;
    void *keep[48];
    pooled_heap(&h, keep);
    /* keep[1] sits between two pooled holes: its free merges all three. */
    cr_assert_eq(kheap_free(&h, keep[1]), MM_OK);
    t_snap_t before = t_snapshot(&h);
    int warned = test_warnings.count;
    cr_assert_eq(kheap_free(&h, keep[1]), MM_ERR_DOUBLE_FREE);
    cr_assert_eq(test_warnings.count, warned + 1);
    cr_assert_eq(test_warnings.last.kind, MM_REPORT_DOUBLE_FREE);
    cr_assert_eq(test_warnings.last.address, (uint64_t)(uintptr_t)keep[1]);
    t_snap_t after = t_snapshot(&h);
    cr_assert(t_snap_equal(&before, &after));
    t_snap_free(&before);
    t_snap_free(&after);
    T_CHECK(&h);
}

Test(kheap_nodes, check_sees_damaged_pool_metadata)
{
    kheap_t h;
    void *keep[48];
    pooled_heap(&h, keep);
    kh_block_t *b = kh_block_of_user((uintptr_t)keep[1]);
    kh_block_t *hole = kh_at(kh_addr(b) - *kh_footer_of_end(kh_addr(b)));
    cr_assert(kh_pooled(hole), "the hole below keep[1] has a pooled node");
    mm_report_t r;

    hole->link += sizeof(kh_pnode_t) / 2; /* not a node slot */
    cr_assert_eq(kheap_check(&h, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: free block header damaged");
    cr_assert_eq(r.address, kh_addr(hole));
    hole->link -= sizeof(kh_pnode_t) / 2;
    T_CHECK(&h);

    kh_pnode_t *node = (kh_pnode_t *)(uintptr_t)hole->link;
    node->at += KH_GRAN; /* the node names another block */
    cr_assert_eq(kheap_check(&h, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: free block missing from the tree");
    cr_assert_eq(r.address, kh_addr(hole));
    node->at -= KH_GRAN;
    T_CHECK(&h);

    kh_block_t *spare = h.node_spare;
    cr_assert_not_null(spare);
    spare->word ^= 1;
    cr_assert_eq(kheap_check(&h, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: spare node list damaged");
    cr_assert_eq(r.address, kh_addr(spare));
    spare->word ^= 1;
    T_CHECK(&h);

    h.node_spares++;
    cr_assert_eq(kheap_check(&h, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: pooled node count wrong");
    h.node_spares--;
    T_CHECK(&h);

    chunk_list_t l = chunks_of(&h);
    uint64_t *check = (uint64_t *)(l.at[0] + KH_USER_OFF + 8);
    *check ^= 1;
    cr_assert_eq(kheap_check(&h, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: node chunk damaged");
    cr_assert_eq(r.address, l.at[0]);
    *check ^= 1;
    T_CHECK(&h);

    h.node_chunk_bytes += KH_GRAN;
    cr_assert_eq(kheap_check(&h, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: node chunk count wrong");
    h.node_chunk_bytes -= KH_GRAN;
    T_CHECK(&h);
}

Test(kheap_nodes, bad_calls)
{
    cr_assert_eq(kheap_set_node_pool(NULL, true), MM_ERR_INVALID);
    kheap_t h;
    memset(&h, 0, sizeof(h));
    cr_assert_eq(kheap_set_node_pool(&h, true), MM_ERR_STATE);
    cr_assert_eq(kheap_set_node_pool(&h, false), MM_ERR_STATE);
}

Test(kheap_nodes, a_failed_allocation_keeps_no_chunk)
{
    /* Free regions only (no used block separates them): an allocation that
     * cannot be served may take a chunk first, which must not outlive the
     * failure, or the empty heap would not be one free block per region. */
    kheap_t h;
    cr_assert_eq(kheap_init(&h, NULL, 0), MM_OK);
    for (unsigned i = 0; i < KHEAP_NODE_POOL_FROM + 1; i++)
        cr_assert_eq(kheap_add_region(&h, t_arena(4096), 4096), MM_OK);
    cr_assert_geq(stats_of(&h).free_blocks, KHEAP_NODE_POOL_FROM);
    cr_assert_null(kheap_alloc(&h, 8192, 0));
    cr_assert_eq(stats_of(&h).node_chunks, 0);
    T_CHECK(&h);
    t_assert_all_free(&h);
}

Test(kheap_nodes, check_sees_chunks_kept_by_an_empty_heap)
{
    kheap_t h;
    void *keep[48];
    pooled_heap(&h, keep);
    /* Free everything with the automatic release held off, as a heap whose
     * last free forgot its chunks would be. */
    h.node_collapsing = true;
    for (unsigned i = 1; i < 48; i += 2)
        cr_assert_eq(kheap_free(&h, keep[i]), MM_OK);
    h.node_collapsing = false;
    mm_report_t r;
    cr_assert_eq(kheap_check(&h, &r), MM_ERR_CORRUPT);
    cr_assert_str_eq(r.message, "kheap: node chunks kept by an empty heap");
    cr_assert_eq(r.found, 1);
    /* Turning the pool off frees them: the heap is whole again. */
    cr_assert_eq(kheap_set_node_pool(&h, false), MM_OK);
    T_CHECK(&h);
    t_assert_all_free(&h);
}

/* An empty heap whose one big block is also where a new node chunk would
 * go: the chunk taken before the request must not make the request fail
 * (found by fuzz-kheap: alloc(267, 64) NULL with a 1120-byte free block). */
Test(kheap_nodes, a_chunk_never_takes_the_only_block_that_holds_the_request)
{
    kheap_t h;
    uint8_t *a = t_arena(64 * 1024);
    cr_assert_eq(kheap_init(&h, a, 1184), MM_OK);
    for (unsigned i = 0; i < KHEAP_NODE_POOL_FROM + 4; i++)
        cr_assert_eq(kheap_add_region(&h, a + 2048 + i * 256, 160), MM_OK);
    kheap_stats_t st = stats_of(&h);
    cr_assert_gt(st.free_blocks, KHEAP_NODE_POOL_FROM);
    cr_assert_eq(st.node_chunks, 0);
    void *p = kheap_alloc(&h, 267, 64);
    cr_assert_not_null(p, "the first region's block holds it");
    cr_assert_lt((uintptr_t)p, (uintptr_t)a + 1184);
    cr_assert_eq((uintptr_t)p % 64, 0);
    cr_assert_eq(kheap_check(&h, NULL), MM_OK);
    cr_assert_eq(kheap_free(&h, p), MM_OK);
    t_assert_all_free(&h);
}

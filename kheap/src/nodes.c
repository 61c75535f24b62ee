/*
 * kheap: free blocks, and the pool that keeps their tree nodes out of line.
 *
 * Why a pool: a node inside its free block puts every level of a tree
 * search on a different cold cache line and, in a big heap, a different
 * page; with thousands of free blocks a first-fit descent or an insertion
 * was a dozen cache and TLB misses. Pooled nodes are 48-byte slots packed in
 * a few chunks, so the same search stays in cache. The block then keeps
 * only its header (size, and a link to the node) and its footer.
 *
 * Why a fallback: a free must never need memory. A node is taken from the
 * pool only if one is spare; otherwise the block holds its own node, as
 * every free block can (KH_MIN_BLOCK). Such a node moves into the pool the
 * next time its block changes while the pool has a spare. Chunks are heap
 * blocks like runs and map leaves, taken before an allocation when the pool
 * is dry (kheap_nodes_refill) and freed when the heap holds nothing else.
 */
#include "block.h"

typedef struct kh_node_chunk {
    struct kh_node_chunk *next;
    uint64_t check;         /* KH_MAGIC_CHUNK ^ mix(address) ^ nodes */
    uint64_t nodes;
    uint64_t pad;           /* nodes start 16-byte aligned */
    kh_pnode_t node[];
} kh_node_chunk_t;

#define KH_MAGIC_CHUNK 0x6e6f64656368756eull /* "nodechun" */
#define KH_SPARE_WORD 0x5350415245214e44ull  /* "SPARE!ND": word of a spare node */

_Static_assert(sizeof(kh_node_chunk_t) % KH_GRAN == 0, "node chunk header");

static uint64_t kh_chunk_check(uintptr_t chunk, uint64_t nodes)
{
    return KH_MAGIC_CHUNK ^ kh_mix(chunk) ^ nodes;
}

static kh_block_t *kh_node_take(kheap_t *heap)
{
    kh_block_t *n = heap->node_spare;
    if (n == NULL || heap->node_collapsing)
        return NULL;
    heap->node_spare = (kh_block_t *)(uintptr_t)n->link;
    heap->node_spares--;
    n->word = KH_POOLED;
    return n;
}

static void kh_node_give(kheap_t *heap, kh_block_t *n)
{
    n->word = KH_SPARE_WORD;
    n->link = (uint64_t)(uintptr_t)heap->node_spare;
    heap->node_spare = n;
    heap->node_spares++;
}

/* Header and footer of the free block of `node` at [at, at + size). */
static void kh_free_write(kh_block_t *node, uintptr_t at, uintptr_t size)
{
    kh_node_set_size(node, size);
    if (kh_pooled(node)) {
        kh_block_t *h = kh_at(at);
        h->word = (uint64_t)size | KH_POOLED;
        h->link = (uint64_t)(uintptr_t)node;
        ((kh_pnode_t *)node)->at = at;
    }
    kh_set_footer(at + size, size);
}

void kheap_free_add(kheap_t *heap, uintptr_t at, uintptr_t size)
{
    kh_block_t *n = kh_node_take(heap);
    if (n == NULL) {
        n = kh_at(at);
        n->word = 0;
    }
    kh_free_write(n, at, size);
    kheap_tree_insert(&heap->free_root, n);
    heap->free_blocks++;
}

void kheap_free_del(kheap_t *heap, kh_block_t *node)
{
    kheap_tree_remove(&heap->free_root, node);
    heap->free_blocks--;
    if (kh_pooled(node))
        kh_node_give(heap, node);
}

kh_block_t *kheap_free_set(kheap_t *heap, kh_block_t *node, uintptr_t at, uintptr_t size)
{
    if (!kh_pooled(node)) {
        kh_block_t *p = kh_node_take(heap);
        if (p != NULL) {
            kheap_tree_replace(&heap->free_root, node, p);
            p->word |= KH_POOLED;
            node = p;
        } else if (kh_addr(node) != at) {
            kh_block_t *r = kh_at(at);
            kheap_tree_replace(&heap->free_root, node, r);
            node = r;
        }
    }
    kh_free_write(node, at, size);
    kheap_tree_resized(node);
    return node;
}

void kheap_nodes_refill(kheap_t *heap)
{
    if (!heap->node_pool || heap->node_spare != NULL || heap->node_collapsing ||
        heap->free_blocks < KHEAP_NODE_POOL_FROM)
        return;
    uintptr_t bytes = (uintptr_t)heap->node_total * sizeof(kh_pnode_t);
    if (bytes < KHEAP_NODE_CHUNK_MIN)
        bytes = KHEAP_NODE_CHUNK_MIN;
    if (bytes > KHEAP_NODE_CHUNK_MAX)
        bytes = KHEAP_NODE_CHUNK_MAX;
    /* Placed like a run (the snuggest of the first few holes that hold it),
     * for the same reason: it is the heap's own block, and cutting it from
     * the lowest big hole would cut up the holes large requests need. */
    kh_block_t *b = kheap_carve_run_locked(heap, kh_block_size_for(bytes), KH_GRAN);
    if (b == NULL)
        return;
    b->word |= KH_NODES;
    /* The chunk may have taken a tail too small to stay free: use it. */
    uintptr_t base = kh_user_of(b), room = kh_addr(b) + kh_size(b) - base;
    kh_node_chunk_t *c = (kh_node_chunk_t *)base;
    uint64_t n = (room - sizeof(kh_node_chunk_t)) / sizeof(kh_pnode_t);
    c->next = heap->node_chunk;
    c->nodes = n;
    c->check = kh_chunk_check(base, n);
    c->pad = 0;
    heap->node_chunk = c;
    /* Highest first, so the spares are handed out in address order. */
    for (uint64_t i = n; i-- > 0;)
        kh_node_give(heap, &c->node[i].n);
    heap->node_total += (size_t)n;
    heap->node_chunks++;
    heap->node_chunk_bytes += kh_size(b);
}

bool kheap_nodes_collapse(kheap_t *heap, bool force)
{
    if (heap->node_chunk == NULL || heap->node_collapsing)
        return false;
    if (!force && heap->free_bytes + heap->node_chunk_bytes +
                          heap->regions * (size_t)KHEAP_REGION_OVERHEAD !=
                      heap->total_bytes)
        return false;
    heap->node_collapsing = true;
    /* Every pooled node back into its block, which always has room. */
    for (kh_block_t *n = kheap_tree_first(heap->free_root); n != NULL; n = kheap_tree_succ(n)) {
        if (!kh_pooled(n))
            continue;
        uintptr_t at = kt_key(n), size = kh_size(n);
        kh_block_t *r = kh_at(at);
        kheap_tree_replace(&heap->free_root, n, r);
        kh_node_set_size(r, size);
        n = r;
    }
    heap->node_spare = NULL;
    heap->node_spares = heap->node_total = 0;
    while (heap->node_chunk != NULL) {
        kh_node_chunk_t *c = heap->node_chunk;
        heap->node_chunk = c->next;
        c->check = 0; /* a stale copy must never pass for a chunk */
        kh_block_t *b = kh_block_of_user(kh_addr(c));
        heap->node_chunks--;
        heap->node_chunk_bytes -= kh_size(b);
        b->word &= ~KH_KIND;
        kheap_release(heap, b);
    }
    heap->node_collapsing = false;
    return true;
}

bool kheap_nodes_listed(const kheap_t *heap, uintptr_t base)
{
    size_t seen = 0;
    for (const kh_node_chunk_t *c = heap->node_chunk; c != NULL && seen++ < heap->node_chunks;
         c = c->next)
        if (kh_addr(c) == base)
            return c->check == kh_chunk_check(base, c->nodes);
    return false;
}

bool kheap_nodes_owns(const kheap_t *heap, uintptr_t ptr)
{
    size_t seen = 0;
    for (const kh_node_chunk_t *c = heap->node_chunk; c != NULL && seen++ < heap->node_chunks;
         c = c->next) {
        uintptr_t first = kh_addr(&c->node[0]);
        if (ptr >= first && ptr < first + c->nodes * sizeof(kh_pnode_t))
            return (ptr - first) % sizeof(kh_pnode_t) == 0;
    }
    return false;
}

bool kheap_nodes_verify(const kheap_t *heap, size_t chunk_blocks, size_t pooled,
                        const char **why, uintptr_t *where)
{
    size_t chunks = 0, nodes = 0, bytes = 0;
    for (const kh_node_chunk_t *c = heap->node_chunk; c != NULL; c = c->next) {
        const kh_block_t *b = kh_block_of_user(kh_addr(c));
        *where = kh_addr(c);
        if (++chunks > heap->node_chunks || kheap_region_find((kheap_t *)heap, kh_addr(c)) == NULL ||
            !kh_is_valid_used(b) || kh_kind(b) != KH_NODES ||
            c->check != kh_chunk_check(kh_addr(c), c->nodes) ||
            sizeof(kh_node_chunk_t) + c->nodes * sizeof(kh_pnode_t) >
                kh_size(b) - (kh_addr(c) - kh_addr(b))) {
            *why = "kheap: node chunk damaged";
            return false;
        }
        nodes += (size_t)c->nodes;
        bytes += kh_size(b);
    }
    *where = 0;
    if (chunks != heap->node_chunks || chunks != chunk_blocks || nodes != heap->node_total ||
        bytes != heap->node_chunk_bytes) {
        *why = "kheap: node chunk count wrong";
        return false;
    }
    size_t spares = 0;
    for (const kh_block_t *n = heap->node_spare; n != NULL;
         n = (const kh_block_t *)(uintptr_t)n->link) {
        *where = kh_addr(n);
        if (++spares > heap->node_spares || !kheap_nodes_owns(heap, kh_addr(n)) ||
            n->word != KH_SPARE_WORD) {
            *why = "kheap: spare node list damaged";
            return false;
        }
    }
    *where = 0;
    if (spares != heap->node_spares || pooled + spares != heap->node_total) {
        *why = "kheap: pooled node count wrong";
        return false;
    }
    return true;
}

mm_status_t kheap_set_node_pool(kheap_t *heap, bool on)
{
    if (heap == NULL)
        return MM_ERR_INVALID;
    if (!kh_ready(heap))
        return MM_ERR_STATE;
    mm_irqflags_t f = kh_lock(heap);
    heap->node_pool = on;
    if (!on)
        kheap_nodes_collapse(heap, true);
    kh_unlock(heap, f);
    return MM_OK;
}

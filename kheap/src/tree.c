/*
 * kheap: an AVL tree of blocks keyed by their own address, each node caching
 * the largest node size (in granules) of its left and right subtrees.
 *
 * Why AVL with parent links: allocation and free mostly change one node's
 * size or move its start within its gap (splitting or merging), which keeps
 * the order; with parent links those are O(1) plus a walk up the cached
 * maxima that stops as soon as an ancestor is unaffected. Only inserting or
 * deleting a node needs the O(log n) path. Keeping the children's maxima in
 * the parent (rather than a node's own maximum in itself) means the
 * first-fit descent reads only the nodes on its path.
 *
 * The parent pointer lives in the header's link word and the balance factor
 * in the top byte of the size word, so a free block needs just 40 bytes of
 * node, keyed by its own address.
 */
#include "block.h"



/* Balance factor h(right) - h(left) in {-1, 0, 1}, stored plus one in the
 * top byte of the size word. Balance factors instead of heights mean a
 * retrace never reads a sibling: the nodes it touches are the path. */
static inline int kt_bal(const kh_block_t *b)
{
    return (int)(b->word >> KH_BAL_SHIFT) - 1;
}

static inline void kt_set_bal(kh_block_t *b, int v)
{
    b->word = (b->word & ~KH_BAL_MASK) | ((uint64_t)(v + 1) << KH_BAL_SHIFT);
}

static inline void kt_set_parent(kh_block_t *b, kh_block_t *p)
{
    b->link = (uint64_t)(uintptr_t)p;
}

static inline uint32_t kt_smax_or0(const kh_block_t *b)
{
    return b ? kt_smax(b) : 0u;
}

/* Point p's child slot (or the root) that held `old` at `repl`. */
static inline void kt_relink(kh_block_t **root, kh_block_t *p, kh_block_t *old, kh_block_t *repl)
{
    if (p == NULL)
        *root = repl;
    else if (p->left == old)
        p->left = repl;
    else
        p->right = repl;
}

/* Single rotations. They keep the cached maxima right using only the two
 * nodes involved (a subtree's maximum is cached in its parent), and leave
 * the link from above and the balance factors to the caller. */
static kh_block_t *kt_rot_left(kh_block_t *x, kh_block_t *z)
{
    kh_block_t *t = z->left;
    x->right = t;
    x->rmax = z->lmax;
    if (t)
        kt_set_parent(t, x);
    z->left = x;
    kt_set_parent(x, z);
    z->lmax = kt_smax(x);
    return z;
}

static kh_block_t *kt_rot_right(kh_block_t *x, kh_block_t *z)
{
    kh_block_t *t = z->right;
    x->left = t;
    x->lmax = z->rmax;
    if (t)
        kt_set_parent(t, x);
    z->right = x;
    kt_set_parent(x, z);
    z->rmax = kt_smax(x);
    return z;
}

/* x is right-heavy by two, z = x->right. Returns the subtree's new root. */
static kh_block_t *kt_fix_right_heavy(kh_block_t *x, kh_block_t *z)
{
    if (kt_bal(z) >= 0) {
        bool even = kt_bal(z) == 0; /* only after a deletion */
        kt_rot_left(x, z);
        kt_set_bal(x, even ? 1 : 0);
        kt_set_bal(z, even ? -1 : 0);
        return z;
    }
    kh_block_t *y = z->left;
    int by = kt_bal(y);
    kt_rot_right(z, y);
    x->right = y;
    kt_set_parent(y, x);
    kt_rot_left(x, y);
    kt_set_bal(x, by > 0 ? -1 : 0);
    kt_set_bal(z, by < 0 ? 1 : 0);
    kt_set_bal(y, 0);
    return y;
}

static kh_block_t *kt_fix_left_heavy(kh_block_t *x, kh_block_t *z)
{
    if (kt_bal(z) <= 0) {
        bool even = kt_bal(z) == 0;
        kt_rot_right(x, z);
        kt_set_bal(x, even ? -1 : 0);
        kt_set_bal(z, even ? 1 : 0);
        return z;
    }
    kh_block_t *y = z->right;
    int by = kt_bal(y);
    kt_rot_left(z, y);
    x->left = y;
    kt_set_parent(y, x);
    kt_rot_right(x, y);
    kt_set_bal(x, by < 0 ? 1 : 0);
    kt_set_bal(z, by > 0 ? -1 : 0);
    kt_set_bal(y, 0);
    return y;
}

/* z's subtree grew one level taller. */
static void kt_insert_fixup(kh_block_t **root, kh_block_t *z)
{
    for (kh_block_t *x = kt_parent(z); x != NULL; z = x, x = kt_parent(z)) {
        kh_block_t *g = kt_parent(x), *n;
        if (z == x->right) {
            if (kt_bal(x) < 0) {
                kt_set_bal(x, 0);
                return;
            }
            if (kt_bal(x) == 0) {
                kt_set_bal(x, 1);
                continue;
            }
            n = kt_fix_right_heavy(x, z);
        } else {
            if (kt_bal(x) > 0) {
                kt_set_bal(x, 0);
                return;
            }
            if (kt_bal(x) == 0) {
                kt_set_bal(x, -1);
                continue;
            }
            n = kt_fix_left_heavy(x, z);
        }
        kt_set_parent(n, g);
        kt_relink(root, g, x, n);
        return; /* after an insertion a rotation restores the old height */
    }
}

/* x's left (left_shrank) or right subtree became one level lower. */
static void kt_delete_fixup(kh_block_t **root, kh_block_t *x, bool left_shrank)
{
    while (x != NULL) {
        kh_block_t *g = kt_parent(x), *n;
        bool x_is_left = g != NULL && g->left == x;
        int b = kt_bal(x);
        if (left_shrank ? b < 0 : b > 0) {
            kt_set_bal(x, 0); /* x got lower too */
            n = x;
        } else if (b == 0) {
            kt_set_bal(x, left_shrank ? 1 : -1);
            return;
        } else {
            kh_block_t *z = left_shrank ? x->right : x->left;
            bool height_kept = kt_bal(z) == 0;
            n = left_shrank ? kt_fix_right_heavy(x, z) : kt_fix_left_heavy(x, z);
            kt_set_parent(n, g);
            kt_relink(root, g, x, n);
            if (height_kept)
                return;
        }
        left_shrank = x_is_left;
        x = g;
    }
}

void kh_tree_insert(kh_block_t **root, kh_block_t *node)
{
    uintptr_t key = kh_addr(node);
    kh_block_t *p = NULL, **slot = root;
    while (*slot != NULL) {
        p = *slot;
        MM_ASSERT(kh_addr(p) != key);
        slot = &p->child[key > kh_addr(p)];
    }
    node->left = node->right = NULL;
    node->lmax = node->rmax = 0;
    kt_set_bal(node, 0);
    kt_set_parent(node, p);
    *slot = node;
    kh_tree_resized(node);
    kt_insert_fixup(root, node);
}

void kh_tree_remove(kh_block_t **root, kh_block_t *n)
{
    kh_block_t *p = kt_parent(n);
    if (n->left == NULL || n->right == NULL) {
        kh_block_t *child = n->left ? n->left : n->right;
        bool was_left = p != NULL && p->left == n;
        kt_relink(root, p, n, child);
        if (child)
            kt_set_parent(child, p);
        if (p != NULL) {
            if (was_left)
                p->lmax = kt_smax_or0(child);
            else
                p->rmax = kt_smax_or0(child);
            kh_tree_resized(p);
        }
        kt_delete_fixup(root, p, was_left);
        return;
    }
    /* Two children: the successor s (leftmost of the right subtree) takes
     * n's place. Maxima are fixed first (inside n's right subtree, then
     * from s up), then balance, whose rotations keep the maxima. */
    kh_block_t *s = n->right;
    while (s->left)
        s = s->left;
    kh_block_t *start;
    bool left_shrank;
    if (s == n->right) {
        start = s;
        left_shrank = false;
    } else {
        start = kt_parent(s);
        left_shrank = true;
        start->left = s->right;
        if (s->right)
            kt_set_parent(s->right, start);
        start->lmax = kt_smax_or0(s->right);
        s->right = n->right;
        s->rmax = n->rmax;
        kt_set_parent(n->right, s);
    }
    s->left = n->left;
    s->lmax = n->lmax;
    kt_set_parent(n->left, s);
    kt_set_parent(s, p);
    kt_relink(root, p, n, s);
    kt_set_bal(s, kt_bal(n));
    if (start != s)
        kh_tree_resized(start);
    kh_tree_resized(s);
    kt_delete_fixup(root, start, left_shrank);
}

void kh_tree_replace(kh_block_t **root, kh_block_t *old, kh_block_t *repl)
{
    /* The two nodes may overlap (a block start moving by less than a node),
     * so read the old one completely before writing the new one. */
    kh_block_t n = *old;
    kh_block_t *p = kt_parent(&n);
    /* Only written, never read: repl is usually memory the heap has not
     * touched for a long time (or ever: a read there would cost a fault on
     * the zero page and then another on the first write). */
    repl->word = n.word & KH_BAL_MASK;
    repl->link = n.link;
    repl->left = n.left;
    repl->right = n.right;
    repl->lmax = n.lmax;
    repl->rmax = n.rmax;
    if (repl->left)
        kt_set_parent(repl->left, repl);
    if (repl->right)
        kt_set_parent(repl->right, repl);
    kt_relink(root, p, old, repl);
}

/* The parent's cache of x's subtree, by index rather than by a branch the
 * CPU would have to guess. */
static inline uint32_t *kt_slot_of(kh_block_t *p, const kh_block_t *x)
{
    return &p->max[p->left != x];
}

void kh_tree_resized(kh_block_t *x)
{
    for (kh_block_t *p = kt_parent(x); p != NULL; x = p, p = kt_parent(x)) {
        uint32_t m = kt_smax(x);
        uint32_t *slot = kt_slot_of(p, x);
        if (*slot == m)
            return;
        *slot = m;
    }
}

/* Lowest node of at least g granules in the subtree x, known to have one.
 * The direction is data-dependent and unpredictable: pick it without a
 * branch; only the exit is a branch. */
static kh_block_t *kt_descend(kh_block_t *x, uint32_t g)
{
    for (;;) {
        bool right = x->lmax < g;
        if (right && kt_gran(x) >= g)
            return x;
        x = x->child[right];
    }
}

kh_block_t *kh_tree_first_fit(kh_block_t *root, uint32_t g)
{
    if (root == NULL || kt_smax(root) < g)
        return NULL;
    return kt_descend(root, g);
}

kh_block_t *kh_tree_next_fit(kh_block_t *x, uint32_t g)
{
    if (x->rmax >= g)
        return kt_descend(x->right, g);
    for (kh_block_t *p = kt_parent(x); p != NULL; x = p, p = kt_parent(x)) {
        if (p->left != x)
            continue;
        if (kt_gran(p) >= g)
            return p;
        if (p->rmax >= g)
            return kt_descend(p->right, g);
    }
    return NULL;
}

uint32_t kh_tree_max(kh_block_t *root)
{
    return root != NULL ? kt_smax(root) : 0u;
}

kh_block_t *kh_tree_floor(kh_block_t *x, uintptr_t addr)
{
    kh_block_t *best = NULL;
    while (x != NULL) {
        bool below = kh_addr(x) <= addr;
        best = below ? x : best;
        x = x->child[below];
    }
    return best;
}

kh_block_t *kh_tree_first(kh_block_t *x)
{
    if (x == NULL)
        return NULL;
    while (x->left)
        x = x->left;
    return x;
}

kh_block_t *kh_tree_succ(kh_block_t *x)
{
    if (x->right)
        return kh_tree_first(x->right);
    for (kh_block_t *p = kt_parent(x); p != NULL; x = p, p = kt_parent(x))
        if (p->left == x)
            return p;
    return NULL;
}

/* ---- verification (kh_blocks_check) ---------------------------------------- */

typedef struct kt_verify_state {
    size_t count;
    const kh_block_t *bad;
    const char *why;
} kt_verify_state_t;

/* Returns the subtree height, or -1 after recording the first problem. The
 * address bounds make a cycle impossible to follow forever; the depth bound
 * keeps a damaged tree from exhausting a kernel stack. */
static int kt_verify_rec(const kh_block_t *x, const kh_block_t *parent, uintptr_t lo,
                         uintptr_t hi, unsigned depth, kt_verify_state_t *st)
{
    if (x == NULL)
        return 0;
#define KT_BAD(msg)                                                                                \
    do {                                                                                           \
        st->bad = x;                                                                               \
        st->why = msg;                                                                             \
        return -1;                                                                                 \
    } while (0)
    if (depth > 96)
        KT_BAD("kheap: free tree too deep");
    uintptr_t key = kh_addr(x);
    if ((key & (KH_GRAN - 1)) != 0 || key <= lo || key >= hi)
        KT_BAD("kheap: tree node out of address order");
    if (kt_parent(x) != parent)
        KT_BAD("kheap: tree parent link wrong");
    st->count++;
    int hl = kt_verify_rec(x->left, x, lo, key, depth + 1, st);
    if (hl < 0)
        return -1;
    int hr = kt_verify_rec(x->right, x, key, hi, depth + 1, st);
    if (hr < 0)
        return -1;
    if (x->lmax != kt_smax_or0(x->left) || x->rmax != kt_smax_or0(x->right))
        KT_BAD("kheap: tree cached maximum wrong");
    if (hl - hr > 1 || hr - hl > 1)
        KT_BAD("kheap: tree out of balance");
    if (kt_bal(x) != hr - hl)
        KT_BAD("kheap: tree balance factor wrong");
    return 1 + (hl > hr ? hl : hr);
#undef KT_BAD
}

const kh_block_t *kh_tree_verify(const kh_block_t *root, size_t *count, const char **why)
{
    kt_verify_state_t st = {0, NULL, NULL};
    int h = kt_verify_rec(root, NULL, 0, UINTPTR_MAX, 0, &st);
    *count = st.count;
    if (h < 0) {
        *why = st.why;
        return st.bad;
    }
    return NULL;
}

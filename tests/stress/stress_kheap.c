/*
 * One kernel heap shared by threads that allocate (various sizes and
 * alignments: size-class objects and blocks), reallocate, free their own
 * allocations and each other's (through a mailbox), while the heap grows
 * through a callback, plus the kmalloc family on the default heap.
 *
 * Each block is filled with its owner's pattern and checked when freed, so
 * a block handed out twice or written by the allocator while in use shows
 * up even without ThreadSanitizer. The growth callback checks that it is
 * never entered twice at once (kheap.h promises one growth at a time). At
 * the end everything is freed, kheap_check must pass, and each region must
 * be one free block again.
 */
#include <string.h>

#include <hadron/mm/kheap.h>

#include "mm_test.h"
#include "stress.h"

#define THREADS 2
#define LIVE_MAX 128
#define MAILBOX 64
#define GROW_ARENA (32u << 20)

static kheap_t heap;
static _Alignas(4096) uint8_t initial[256 << 10];
static _Alignas(4096) uint8_t grow_arena[GROW_ARENA];
static _Alignas(4096) uint8_t default_arena[1 << 20];
static size_t grow_used;          /* only touched inside the callback */
static atomic_int growing;
static atomic_long grow_calls;
static long rounds;

typedef struct block {
    uint8_t *p;
    size_t n;
    uint8_t pat;
} block_t;

/* Blocks handed from one thread to another to free. */
static pthread_mutex_t mbox_lock = PTHREAD_MUTEX_INITIALIZER;
static block_t mbox[MAILBOX];
static int mbox_n;

static mm_status_t grow(void *ctx, size_t min_bytes, void **base, size_t *size)
{
    (void)ctx;
    CHECK(atomic_fetch_add(&growing, 1) == 0, "growth callback entered twice at once");
    atomic_fetch_add(&grow_calls, 1);
    mm_status_t st = MM_ERR_NOMEM;
    size_t want = min_bytes + 4096;
    if (grow_used + want <= GROW_ARENA) {
        *base = grow_arena + grow_used;
        *size = want;
        grow_used += want + 64; /* not adjacent: separate regions */
        st = MM_OK;
    }
    atomic_fetch_sub(&growing, 1);
    return st;
}

static _Thread_local char self_tag;

static uintptr_t self(void *ctx)
{
    (void)ctx;
    return (uintptr_t)&self_tag;
}

static void fill(block_t *b)
{
    memset(b->p, b->pat, b->n);
}

static void verify(const block_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        CHECK(b->p[i] == b->pat, "block %p+%zu: byte %zu is %#x, not %#x", (void *)b->p, b->n, i,
              b->p[i], b->pat);
}

typedef struct worker {
    int id;
    uint64_t seed;
    long ran, allocs, nulls, mailed, reallocs;
} worker_t;

static void release(block_t *b, bool kmalloced)
{
    verify(b);
    if (kmalloced) {
        kfree(b->p);
        return;
    }
    CHECK(kheap_free(&heap, b->p) == MM_OK, "free %p", (void *)b->p);
}

static void *run(void *arg)
{
    worker_t *w = arg;
    block_t live[LIVE_MAX];
    int n = 0;
    long r;
    for (r = 0; stress_more(r, rounds); r++) {
        uint64_t x = stress_rand(&w->seed);
        switch (x % 8) {
        case 0:
        case 1:
        case 2: { /* allocate */
            if (n == LIVE_MAX)
                break;
            size_t size = (x >> 8) % 4 == 0 ? 1 + (x >> 16) % 9000 : 1 + (x >> 16) % 300;
            size_t align = (x >> 40) % 7 == 0 ? (size_t)64 << ((x >> 44) % 7) : 0;
            uint8_t *p = kheap_alloc(&heap, size, align);
            if (p == NULL) {
                w->nulls++;
                break;
            }
            CHECK(align == 0 || (uintptr_t)p % align == 0, "misaligned %p", (void *)p);
            live[n] = (block_t){p, size, (uint8_t)(w->id * 16 + (r & 15))};
            fill(&live[n++]);
            w->allocs++;
            break;
        }
        case 3: { /* reallocate */
            if (n == 0)
                break;
            block_t *b = &live[(x >> 8) % n];
            verify(b);
            size_t size = 1 + (x >> 20) % 5000;
            void *q = NULL;
            mm_status_t st = kheap_realloc(&heap, b->p, size, &q);
            if (st == MM_ERR_NOMEM)
                break;
            CHECK(st == MM_OK && q != NULL, "realloc: %s", mm_status_str(st));
            size_t keep = size < b->n ? size : b->n;
            for (size_t i = 0; i < keep; i++)
                CHECK(((uint8_t *)q)[i] == b->pat, "realloc lost byte %zu", i);
            b->p = q;
            b->n = size;
            fill(b);
            w->reallocs++;
            break;
        }
        case 4: { /* post one to another thread */
            if (n == 0)
                break;
            pthread_mutex_lock(&mbox_lock);
            if (mbox_n < MAILBOX) {
                mbox[mbox_n++] = live[--n];
                w->mailed++;
            }
            pthread_mutex_unlock(&mbox_lock);
            break;
        }
        case 5: { /* free one from the mailbox */
            block_t b = {0};
            pthread_mutex_lock(&mbox_lock);
            if (mbox_n > 0)
                b = mbox[--mbox_n];
            pthread_mutex_unlock(&mbox_lock);
            if (b.p != NULL)
                release(&b, false);
            break;
        }
        case 6: { /* the kmalloc family on the default heap */
            size_t size = 1 + (x >> 8) % 2000;
            block_t b = {kmalloc(size), size, (uint8_t)(0xa0 + w->id)};
            if (b.p == NULL)
                break;
            CHECK(ksize(b.p) >= size, "ksize");
            fill(&b);
            release(&b, true);
            break;
        }
        default: /* free one of ours */
            if (n != 0) {
                int i = (int)((x >> 8) % (uint64_t)n);
                release(&live[i], false);
                live[i] = live[--n];
            }
            break;
        }
        CHECK(test_irq_depth() == 0, "interrupts left disabled");
    }
    w->ran = r;
    while (n > 0)
        release(&live[--n], false);
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = stress_rounds(argc, argv, 30000);
    CHECK(kheap_init(&heap, initial, sizeof initial) == MM_OK, "kheap_init");
    CHECK(kheap_set_grow(&heap, grow, self, NULL) == MM_OK, "kheap_set_grow");
    CHECK(kheap_default_init(default_arena, sizeof default_arena) == MM_OK, "default heap");

    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++)
        w[i] = (worker_t){.id = i + 1, .seed = 0xd1b54a32d192ed03ull * (uint64_t)(i + 3)};
    stress_run(THREADS, run, w, sizeof w[0]);
    while (mbox_n > 0)
        release(&mbox[--mbox_n], false);

    mm_report_t rep;
    mm_status_t st = kheap_check(&heap, &rep);
    CHECK(st == MM_OK, "kheap_check: %s: %s", mm_status_str(st), rep.message);
    CHECK(kheap_check(kheap_default(), &rep) == MM_OK, "default heap: %s", rep.message);
    kheap_stats_t s;
    CHECK(kheap_get_stats(&heap, &s) == MM_OK, "stats");
    CHECK(s.class_objects == 0, "%zu class objects still live", s.class_objects);
    /* What the threads' fronts hold goes back, and with it every slab. */
    kheap_drain(&heap);
    CHECK(kheap_get_stats(&heap, &s) == MM_OK, "stats");
    CHECK(s.free_blocks <= s.regions + 2 * THREADS && s.class_slabs == 0,
          "after freeing everything: %zu free blocks in %zu regions, %zu class slabs",
          s.free_blocks, s.regions, s.class_slabs);
    CHECK(!s.tracking || s.live_count == 0, "tracking: %zu still live", s.live_count);
    CHECK(!mm_spin_is_locked(&heap.lock) && !mm_spin_is_locked(&heap.class_index.lock),
          "lock left held");
    long ran = 0, allocs = 0, nulls = 0;
    for (int i = 0; i < THREADS; i++) {
        ran += w[i].ran;
        allocs += w[i].allocs;
        nulls += w[i].nulls;
    }
    printf("kheap: %d threads, %ld of %ld rounds%s: %ld allocations (%ld failed), %ld growths, "
           "%zu regions: ok\n",
           THREADS, ran, THREADS * rounds, stress_cut_note(), allocs, nulls,
           atomic_load(&grow_calls), s.regions);
    return 0;
}

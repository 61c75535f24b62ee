#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hadron/mm/hhdm.h>

#include "frame_pool.h"

static void pool_lock(frame_pool_t *p)
{
    while (atomic_flag_test_and_set_explicit(&p->lock, memory_order_acquire))
        ;
}

static void pool_unlock(frame_pool_t *p)
{
    atomic_flag_clear_explicit(&p->lock, memory_order_release);
}

void frame_pool_init(frame_pool_t *p, mm_paddr_t base, size_t frames)
{
    memset(p, 0, sizeof *p);
    atomic_flag_clear(&p->lock);
    p->base = base;
    p->frames = frames;
    p->scribble = true;
    p->used = calloc(frames ? frames : 1, 1);
    if (p->used == NULL) {
        perror("frame_pool_init");
        abort();
    }
}

void frame_pool_destroy(frame_pool_t *p)
{
    free(p->used);
    p->used = NULL;
}

void frame_pool_fail_at(frame_pool_t *p, uint64_t k, bool sticky)
{
    pool_lock(p);
    p->fail_countdown = k;
    p->fail_sticky = sticky;
    p->failing = false;
    pool_unlock(p);
}

static bool injected_failure(frame_pool_t *p)
{
    if (p->failing)
        return true;
    if (p->fail_countdown == 0)
        return false;
    if (--p->fail_countdown != 0)
        return false;
    p->failing = p->fail_sticky;
    return true;
}

static bool run_free(const frame_pool_t *p, size_t first, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (p->used[first + i])
            return false;
    return true;
}

mm_status_t frame_pool_alloc(frame_pool_t *p, size_t count, size_t align_frames,
                             mm_paddr_t limit, mm_paddr_t *out)
{
    pool_lock(p);
    p->alloc_calls++;
    mm_status_t st = MM_ERR_NOMEM;
    if (count == 0 || !mm_is_pow2(align_frames)) {
        st = MM_ERR_INVALID;
        goto done;
    }
    if (injected_failure(p))
        goto done;
    for (size_t n = 0; n < p->frames; n++) {
        /* Single frames go next-fit so freed frames are not reused at once
         * (stale pointers show up); runs go first-fit. */
        size_t first = count == 1 ? (p->hint + n) % p->frames : n;
        if (first + count > p->frames)
            continue;
        mm_paddr_t pa = p->base + (mm_paddr_t)first * MM_FRAME_SIZE;
        if (!mm_is_aligned(pa >> MM_PAGE_SHIFT, align_frames))
            continue;
        if (limit != MM_PADDR_MAX && pa + (mm_paddr_t)count * MM_FRAME_SIZE > limit)
            continue;
        if (!run_free(p, first, count))
            continue;
        memset(p->used + first, 1, count);
        if (count == 1)
            p->hint = (first + 1) % p->frames;
        p->frames_allocated += count;
        p->live += count;
        if (p->live > p->peak)
            p->peak = p->live;
        if (p->scribble)
            memset(hhdm_phys_to_virt(pa), FRAME_POOL_JUNK, count * MM_FRAME_SIZE);
        *out = pa;
        st = MM_OK;
        break;
    }
done:
    if (st != MM_OK)
        p->alloc_failures++;
    pool_unlock(p);
    return st;
}

mm_status_t frame_pool_free(frame_pool_t *p, mm_paddr_t base, size_t count)
{
    pool_lock(p);
    p->free_calls++;
    mm_status_t st = MM_OK;
    if (count == 0 || !mm_is_aligned(base, MM_FRAME_SIZE) || base < p->base) {
        st = MM_ERR_INVALID;
        goto done;
    }
    size_t first = (size_t)((base - p->base) / MM_FRAME_SIZE);
    if (first >= p->frames || count > p->frames - first) {
        st = MM_ERR_INVALID;
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        if (!p->used[first + i]) {
            st = MM_ERR_DOUBLE_FREE;
            goto done;
        }
    }
    memset(p->used + first, 0, count);
    p->frames_freed += count;
    p->live -= count;
done:
    if (st != MM_OK)
        p->free_errors++;
    pool_unlock(p);
    return st;
}

bool frame_pool_is_allocated(const frame_pool_t *p, mm_paddr_t frame)
{
    if (frame < p->base || !mm_is_aligned(frame, MM_FRAME_SIZE))
        return false;
    size_t i = (size_t)((frame - p->base) / MM_FRAME_SIZE);
    return i < p->frames && p->used[i];
}

static mm_status_t pool_alloc_cb(void *ctx, size_t count, size_t align_frames,
                                 mm_paddr_t limit, mm_paddr_t *out)
{
    return frame_pool_alloc(ctx, count, align_frames, limit, out);
}

static mm_status_t pool_free_cb(void *ctx, mm_paddr_t base, size_t count)
{
    return frame_pool_free(ctx, base, count);
}

mm_frame_allocator_t frame_pool_allocator(frame_pool_t *p)
{
    mm_frame_allocator_t fa = {p, pool_alloc_cb, pool_free_cb};
    return fa;
}

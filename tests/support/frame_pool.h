/*
 * Host test fixture: a counting frame allocator over a window of simulated
 * physical memory, implementing mm_frame_allocator_t.
 *
 * Meant for any component that takes frames through the interface (the
 * page-table mapper, the VMM): it counts every call, hands out frames
 * filled with a junk pattern (the interface promises unspecified contents,
 * so users that forget to zero them fail fast), detects double and foreign
 * frees, and can be told to fail its k-th allocation call from now to drive
 * out-of-memory paths.
 *
 * Host only (uses malloc); a spinlock makes it safe across threads.
 */
#ifndef FRAME_POOL_H
#define FRAME_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hadron/mm/frame_alloc.h>

#define FRAME_POOL_JUNK 0xa5u

typedef struct frame_pool {
    mm_paddr_t base;       /* physical address of the first frame */
    size_t frames;         /* frames in the window */
    uint8_t *used;         /* one byte per frame: 1 = allocated */
    size_t hint;           /* next-fit start for single frames */
    bool scribble;         /* fill allocated frames with FRAME_POOL_JUNK (default on) */

    /* Counters (read them directly). */
    uint64_t alloc_calls;      /* every alloc call, failed ones included */
    uint64_t alloc_failures;   /* calls that returned an error (injected or real) */
    uint64_t free_calls;       /* every free call */
    uint64_t free_errors;      /* frees rejected (double, foreign, misaligned) */
    uint64_t frames_allocated; /* frames handed out in total */
    uint64_t frames_freed;     /* frames taken back in total */
    size_t live;               /* frames currently allocated */
    size_t peak;               /* maximum of live */

    /* Failure injection: when fail_countdown reaches 0 on an alloc call,
     * that call fails; with fail_sticky every later call fails too. */
    uint64_t fail_countdown;   /* 0: disarmed */
    bool fail_sticky;
    bool failing;

    atomic_flag lock;
} frame_pool_t;

/* Manage [base, base + frames * 4 KiB), which must lie inside simulated
 * physical memory when scribbling (sim_phys_create first). Aborts on
 * malloc failure. */
void frame_pool_init(frame_pool_t *p, mm_paddr_t base, size_t frames);
void frame_pool_destroy(frame_pool_t *p);

/* The mm_frame_allocator_t view of `p`. */
mm_frame_allocator_t frame_pool_allocator(frame_pool_t *p);

/* Make the k-th alloc call from now fail (k >= 1; 0 disarms). With `sticky`
 * every call after it fails as well, until disarmed. */
void frame_pool_fail_at(frame_pool_t *p, uint64_t k, bool sticky);

/* True when `frame` is a frame of the pool currently handed out. */
bool frame_pool_is_allocated(const frame_pool_t *p, mm_paddr_t frame);

/* Direct calls, same contract as the interface. */
mm_status_t frame_pool_alloc(frame_pool_t *p, size_t count, size_t align_frames,
                             mm_paddr_t limit, mm_paddr_t *out);
mm_status_t frame_pool_free(frame_pool_t *p, mm_paddr_t base, size_t count);

#endif /* FRAME_POOL_H */

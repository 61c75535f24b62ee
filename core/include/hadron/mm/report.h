/*
 * hadron-mm core: structured reports handed to the kernel's hooks.
 *
 * A report carries numbers, not formatted text, so no formatting code is
 * needed in freestanding builds and tests can check each field.
 */
#ifndef HADRON_MM_REPORT_H
#define HADRON_MM_REPORT_H

#include <stdint.h>

typedef enum mm_report_kind {
    MM_REPORT_ASSERT,       /* internal invariant broken */
    MM_REPORT_POISON,       /* freed memory written after free */
    MM_REPORT_DOUBLE_FREE,  /* block/frame freed twice */
    MM_REPORT_BAD_POINTER,  /* pointer not from this allocator / mid-block */
    MM_REPORT_REDZONE,      /* guard bytes around a heap block overwritten */
    MM_REPORT_CORRUPT,      /* allocator metadata damaged */
    MM_REPORT_LOCK_ORDER,   /* lock taken out of order or taken again (lock_order) */
    MM_REPORT_LOCKUP,       /* a lock's holder kept it past the spin budget (lock_order) */
    MM_REPORT_KIND_COUNT
} mm_report_kind_t;

typedef struct mm_report {
    mm_report_kind_t kind;
    const char *message;  /* static text: what was detected */
    const char *file;     /* source location of the detection */
    int line;
    uint64_t address;     /* the frame's physical / block's virtual address */
    uint64_t offset;      /* byte offset of the first bad byte or word */
    uint64_t found;       /* value found there (if meaningful) */
    uint64_t expected;    /* value expected there (if meaningful) */
    /* MM_REPORT_LOCK_ORDER: the lock being taken and the held lock it
     * conflicts with (the same name when it is taken again); address is
     * the lock taken, found its rank, expected the held lock's rank. */
    const char *lock;
    const char *held;
    /* MM_REPORT_LOCKUP: lock names the lock waited for (held NULL), address
     * is that lock, cpu the waiting CPU, holder_cpu the CPU holding it
     * (MM_LOCK_NO_CPU, UINT_MAX, when none is recorded: a CPU without an
     * index, or a lock re-initialised or corrupted while held), offset the
     * polls spun without the lock changing hands, found its now_serving,
     * expected the waiter's ticket. MM_REPORT_LOCK_ORDER: cpu the CPU taking
     * the lock, holder_cpu the holder of `held` (that same CPU). Other
     * kinds: both 0. */
    unsigned cpu;
    unsigned holder_cpu;
} mm_report_t;

/* Static name of a report kind ("poison", "double-free", ...). Never NULL. */
const char *mm_report_kind_str(mm_report_kind_t kind);

#endif /* HADRON_MM_REPORT_H */

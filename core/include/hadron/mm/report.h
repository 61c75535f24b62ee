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
} mm_report_t;

/* Static name of a report kind ("poison", "double-free", ...). Never NULL. */
const char *mm_report_kind_str(mm_report_kind_t kind);

#endif /* HADRON_MM_REPORT_H */

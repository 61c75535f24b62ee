/*
 * hadron-mm core: status codes.
 *
 * Every fallible call returns an mm_status_t; results come back through
 * out-parameters. A caller mistake is a status and leaves state unchanged;
 * internal corruption is an assertion (see assert.h), never a status.
 */
#ifndef HADRON_MM_STATUS_H
#define HADRON_MM_STATUS_H

typedef enum mm_status {
    MM_OK = 0,
    MM_ERR_INVALID,       /* argument malformed (NULL, zero size, bad enum, ...) */
    MM_ERR_ALIGN,         /* address or size not aligned as required */
    MM_ERR_RANGE,         /* address outside the managed range or window */
    MM_ERR_NOT_CANONICAL, /* virtual address not canonical for the paging mode */
    MM_ERR_NOMEM,         /* out of memory (frames, table pages, heap) */
    MM_ERR_EXISTS,        /* already mapped / already present */
    MM_ERR_NOT_MAPPED,    /* nothing mapped there */
    MM_ERR_SIZE_MISMATCH, /* mapping exists with another page size */
    MM_ERR_EXHAUSTED,     /* address-space region exhausted */
    MM_ERR_FULL,          /* bookkeeping capacity reached; nothing was lost */
    MM_ERR_DOUBLE_FREE,   /* freeing something already free */
    MM_ERR_NOT_USABLE,    /* frame was never usable RAM (reserved/hole) */
    MM_ERR_OVERLAP,       /* range overlaps another range it must not */
    MM_ERR_STATE,         /* object in the wrong state (uninitialised, set twice) */
    MM_ERR_UNSUPPORTED,   /* the CPU or configuration cannot honour the request */
    MM_ERR_BAD_POINTER,   /* pointer not owned by this allocator */
    MM_ERR_CORRUPT,       /* consistency check found damage */
    MM_ERR_STALE,         /* handle stale (its object was released) or forged */
    MM_STATUS_COUNT
} mm_status_t;

/* Static, human-readable name of a status ("MM_ERR_NOMEM: out of memory").
 * Unknown values give "MM_STATUS_UNKNOWN". Never NULL; O(1); no locking. */
const char *mm_status_str(mm_status_t status);

#endif /* HADRON_MM_STATUS_H */

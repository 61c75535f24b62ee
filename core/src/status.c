#include <hadron/mm/status.h>

static const char *const status_names[MM_STATUS_COUNT] = {
    [MM_OK] = "MM_OK: success",
    [MM_ERR_INVALID] = "MM_ERR_INVALID: invalid argument",
    [MM_ERR_ALIGN] = "MM_ERR_ALIGN: misaligned address or size",
    [MM_ERR_RANGE] = "MM_ERR_RANGE: address out of range",
    [MM_ERR_NOT_CANONICAL] = "MM_ERR_NOT_CANONICAL: non-canonical virtual address",
    [MM_ERR_NOMEM] = "MM_ERR_NOMEM: out of memory",
    [MM_ERR_EXISTS] = "MM_ERR_EXISTS: already mapped or present",
    [MM_ERR_NOT_MAPPED] = "MM_ERR_NOT_MAPPED: not mapped",
    [MM_ERR_SIZE_MISMATCH] = "MM_ERR_SIZE_MISMATCH: page size mismatch",
    [MM_ERR_EXHAUSTED] = "MM_ERR_EXHAUSTED: address region exhausted",
    [MM_ERR_FULL] = "MM_ERR_FULL: bookkeeping capacity reached",
    [MM_ERR_DOUBLE_FREE] = "MM_ERR_DOUBLE_FREE: already free",
    [MM_ERR_NOT_USABLE] = "MM_ERR_NOT_USABLE: not usable memory",
    [MM_ERR_OVERLAP] = "MM_ERR_OVERLAP: overlapping ranges",
    [MM_ERR_STATE] = "MM_ERR_STATE: wrong state for this operation",
    [MM_ERR_UNSUPPORTED] = "MM_ERR_UNSUPPORTED: not supported",
    [MM_ERR_BAD_POINTER] = "MM_ERR_BAD_POINTER: pointer not owned here",
    [MM_ERR_CORRUPT] = "MM_ERR_CORRUPT: corruption detected",
    [MM_ERR_STALE] = "MM_ERR_STALE: stale or forged handle",
};

const char *mm_status_str(mm_status_t status)
{
    if ((unsigned)status >= MM_STATUS_COUNT || status_names[status] == 0)
        return "MM_STATUS_UNKNOWN";
    return status_names[status];
}

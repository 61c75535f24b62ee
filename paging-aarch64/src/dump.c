/* The page-table listing (ptk_dump.h) with Arm's memory-type names. */
#include "a64_internal.h"
#include "ptk_dump.h"

/* Write-combining is mapped as normal non-cacheable and reads back as it. */
static const char *const a64_mem_names[MM_MEM_TYPE_COUNT] = {
    [MM_MEM_WRITE_BACK] = " WB",     [MM_MEM_WRITE_THROUGH] = " WT",
    [MM_MEM_WRITE_COMBINING] = " NC", [MM_MEM_NORMAL_NC] = " NC",
    [MM_MEM_DEVICE] = " DEV",
};

mm_status_t a64pt_dump(const a64pt_t *m, mm_paddr_t root, a64pt_write_fn write, void *arg)
{
    if (!a64_root_ok(m, root) || write == NULL)
        return MM_ERR_INVALID;
    ptk_geom_t g = a64_geom(m);
    ptk_dump(&a64_ops, &g, m, root, a64_mem_names, write, arg);
    return MM_OK;
}

mm_status_t a64pt_dump_buf(const a64pt_t *m, mm_paddr_t root, char *buf, size_t cap,
                           size_t *len_out)
{
    if ((buf == NULL && cap != 0) || !a64_root_ok(m, root))
        return MM_ERR_INVALID;
    ptk_geom_t g = a64_geom(m);
    return ptk_dump_buf(&a64_ops, &g, m, root, a64_mem_names, buf, cap, len_out);
}

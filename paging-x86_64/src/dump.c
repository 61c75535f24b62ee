/* The page-table listing (ptk_dump.h) with x86's memory-type names. */
#include "ptk_dump.h"
#include "x86pt_internal.h"

/* Device memory is strong UC, normal non-cacheable UC-. */
static const char *const pt_mem_names[MM_MEM_TYPE_COUNT] = {
    [MM_MEM_WRITE_BACK] = " WB",     [MM_MEM_WRITE_THROUGH] = " WT",
    [MM_MEM_WRITE_COMBINING] = " WC", [MM_MEM_NORMAL_NC] = " UC-",
    [MM_MEM_DEVICE] = " UC",
};

mm_status_t x86pt_dump(const x86pt_t *m, mm_paddr_t root, x86pt_write_fn write, void *arg)
{
    if (!pt_root_ok(m, root) || write == NULL)
        return MM_ERR_INVALID;
    ptk_geom_t g = pt_geom(m);
    ptk_dump(&pt_ops, &g, m, root, pt_mem_names, write, arg);
    return MM_OK;
}

mm_status_t x86pt_dump_buf(const x86pt_t *m, mm_paddr_t root, char *buf, size_t cap,
                           size_t *len_out)
{
    if ((buf == NULL && cap != 0) || !pt_root_ok(m, root))
        return MM_ERR_INVALID;
    ptk_geom_t g = pt_geom(m);
    return ptk_dump_buf(&pt_ops, &g, m, root, pt_mem_names, buf, cap, len_out);
}

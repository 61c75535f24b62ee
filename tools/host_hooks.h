/*
 * The kernel hooks for host programs (benchmarks and demos): they play the
 * kernel, so they provide every mm_hook_*. Panics print the report and
 * abort; warnings go to `host_hooks_on_warn` (stderr by default); TLB and
 * root-switch hooks only count, so a benchmark can report flush calls.
 */
#ifndef HOST_HOOKS_H
#define HOST_HOOKS_H

#include <hadron/mm/hooks.h>

typedef struct host_hook_counts {
    unsigned long tlb_page_calls; /* mm_hook_tlb_flush_pages calls */
    unsigned long tlb_pages;      /* pages passed over those calls */
    unsigned long tlb_all_calls;  /* mm_hook_tlb_flush_all calls */
    unsigned long root_switches;
    unsigned long asid_retires;   /* mm_hook_asid_retire calls */
    unsigned long warnings;
} host_hook_counts_t;

extern host_hook_counts_t host_hook_counts;

/* Called for each warning after counting it; NULL: print to stderr. */
extern void (*host_hooks_on_warn)(const mm_report_t *report);

#endif /* HOST_HOOKS_H */

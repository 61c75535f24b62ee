#ifndef CONSUMER_MM_H
#define CONSUMER_MM_H

#include <hadron/mm/pmm.h>

mm_status_t consumer_mm_init(pmm_t *pmm, uint64_t hhdm, uint64_t phys_bytes);

#endif

/* hadron-mm core: everything in one include. */
#ifndef HADRON_MM_CORE_H
#define HADRON_MM_CORE_H

#include <hadron/mm/config.h>
#include <hadron/mm/assert.h>
#include <hadron/mm/cpuset.h>
#include <hadron/mm/frame_alloc.h>
#include <hadron/mm/hooks.h>
#include <hadron/mm/page_mapper.h>
#include <hadron/mm/report.h>
#include <hadron/mm/scoped.h>
#include <hadron/mm/spinlock.h>
#include <hadron/mm/status.h>
#include <hadron/mm/tlb.h>
#include <hadron/mm/types.h>
#include <hadron/mm/va_space.h>

#endif /* HADRON_MM_CORE_H */

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <hadron/mm/hhdm.h>

#include "mm_test.h"

static uint8_t *sim_base;

void *sim_phys_create(uint64_t bytes)
{
    return sim_phys_create_at(0, bytes);
}

void *sim_phys_create_at(uintptr_t hint, uint64_t bytes)
{
    void *p = mmap((void *)hint, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("sim_phys_create: mmap");
        abort();
    }
    mm_status_t st = hhdm_init((uint64_t)(uintptr_t)p, bytes);
    if (st != MM_OK) {
        fprintf(stderr, "sim_phys_create: hhdm_init: %s\n", mm_status_str(st));
        abort();
    }
    sim_base = p;
    return p;
}

uint8_t *sim_phys_base(void)
{
    return sim_base;
}

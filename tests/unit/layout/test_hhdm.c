#include <criterion/criterion.h>

#include <hadron/mm/hhdm.h>

#define OFFSET 0xffff800000000000ull
#define WINDOW (4ull << 30)

Test(hhdm, unset_checked_forms_report_state)
{
    void *v = (void *)1;
    mm_paddr_t p = 1;
    cr_assert_not(hhdm_is_ready());
    cr_assert_eq(hhdm_phys_to_virt_checked(0x1000, &v), MM_ERR_STATE);
    cr_assert_eq(hhdm_virt_to_phys_checked((void *)OFFSET, &p), MM_ERR_STATE);
    cr_assert_eq(v, (void *)1);
    cr_assert_eq(p, 1);
}

Test(hhdm, translates_both_ways)
{
    cr_assert_eq(hhdm_init(OFFSET, WINDOW), MM_OK);
    cr_assert(hhdm_is_ready());
    cr_assert_eq(hhdm_offset(), OFFSET);
    cr_assert_eq((uint64_t)(uintptr_t)hhdm_phys_to_virt(0x1234), OFFSET + 0x1234);
    cr_assert_eq(hhdm_virt_to_phys((void *)(uintptr_t)(OFFSET + 0x5678)), 0x5678);

    void *v;
    mm_paddr_t p;
    cr_assert_eq(hhdm_phys_to_virt_checked(WINDOW - 1, &v), MM_OK);
    cr_assert_eq((uint64_t)(uintptr_t)v, OFFSET + WINDOW - 1);
    cr_assert_eq(hhdm_virt_to_phys_checked((void *)(uintptr_t)OFFSET, &p), MM_OK);
    cr_assert_eq(p, 0);
}

Test(hhdm, checked_forms_reject_outside_window)
{
    cr_assert_eq(hhdm_init(OFFSET, WINDOW), MM_OK);
    void *v = (void *)7;
    mm_paddr_t p = 7;
    cr_assert_eq(hhdm_phys_to_virt_checked(WINDOW, &v), MM_ERR_RANGE);
    cr_assert_eq(hhdm_phys_to_virt_checked(UINT64_MAX, &v), MM_ERR_RANGE);
    cr_assert_eq(hhdm_virt_to_phys_checked((void *)(uintptr_t)(OFFSET - 1), &p), MM_ERR_RANGE);
    cr_assert_eq(hhdm_virt_to_phys_checked((void *)(uintptr_t)(OFFSET + WINDOW), &p),
                 MM_ERR_RANGE);
    cr_assert_eq(hhdm_virt_to_phys_checked((void *)0x1000, &p), MM_ERR_RANGE);
    cr_assert_eq(v, (void *)7);
    cr_assert_eq(p, 7);
}

Test(hhdm, set_once)
{
    cr_assert_eq(hhdm_init(OFFSET, WINDOW), MM_OK);
    cr_assert_eq(hhdm_init(OFFSET + WINDOW, WINDOW), MM_ERR_STATE);
    cr_assert_eq(hhdm_offset(), OFFSET, "second init changed the offset");
    cr_assert_eq(hhdm_window_size, WINDOW);
}

Test(hhdm, bad_arguments_leave_it_unset)
{
    cr_assert_eq(hhdm_init(OFFSET + 1, WINDOW), MM_ERR_ALIGN);
    cr_assert_eq(hhdm_init(OFFSET, 0), MM_ERR_INVALID);
    cr_assert_eq(hhdm_init(OFFSET, 4097), MM_ERR_INVALID);
    cr_assert_eq(hhdm_init(0xfffffffffffff000ull, 0x2000), MM_ERR_RANGE);
    cr_assert_not(hhdm_is_ready());
    cr_assert_eq(hhdm_init(0xfffffffffffff000ull, 0x1000), MM_OK, "window ending at 2^64");
}

/* hhdm.h: "Safe against concurrent callers (one wins)"; later callers get
 * MM_ERR_STATE and "the first setting stays". Threads released together
 * race with different offsets and windows: exactly one MM_OK, everyone else
 * MM_ERR_STATE, and the offset and window are the winner's pair. */
#include <pthread.h>
#include <stdatomic.h>

#define RACERS 16

static atomic_int race_go;
static atomic_int race_ready;

typedef struct racer {
    unsigned i;
    mm_status_t st;
} racer_t;

static uint64_t racer_offset(unsigned i) { return OFFSET + (uint64_t)i * (64ull << 30); }
static uint64_t racer_window(unsigned i) { return WINDOW + (uint64_t)i * 0x1000; }

static void *racer(void *arg)
{
    racer_t *r = arg;
    atomic_fetch_add(&race_ready, 1);
    while (!atomic_load(&race_go))
        ;
    r->st = hhdm_init(racer_offset(r->i), racer_window(r->i));
    return NULL;
}

Test(hhdm, concurrent_callers_one_wins)
{
    pthread_t t[RACERS];
    racer_t r[RACERS];
    for (unsigned i = 0; i < RACERS; i++) {
        r[i] = (racer_t){.i = i, .st = MM_ERR_INVALID};
        cr_assert_eq(pthread_create(&t[i], NULL, racer, &r[i]), 0);
    }
    while (atomic_load(&race_ready) != RACERS)
        ;
    atomic_store(&race_go, 1);
    for (unsigned i = 0; i < RACERS; i++)
        cr_assert_eq(pthread_join(t[i], NULL), 0);
    unsigned wins = 0, winner = RACERS;
    for (unsigned i = 0; i < RACERS; i++) {
        if (r[i].st == MM_OK) {
            wins++;
            winner = i;
        } else {
            cr_assert_eq(r[i].st, MM_ERR_STATE, "racer %u: %s", i, mm_status_str(r[i].st));
        }
    }
    cr_assert_eq(wins, 1, "exactly one caller wins");
    cr_assert(hhdm_is_ready());
    cr_assert_eq(hhdm_offset(), racer_offset(winner), "the winner's offset stays");
    cr_assert_eq(hhdm_window_size, racer_window(winner), "with the winner's window");
    mm_paddr_t p;
    cr_assert_eq(hhdm_virt_to_phys_checked((void *)(uintptr_t)racer_offset(winner), &p), MM_OK);
    cr_assert_eq(p, 0);
    cr_assert_eq(hhdm_init(OFFSET, WINDOW), MM_ERR_STATE, "still set once");
}

/*
 * Shared by the libFuzzer harnesses: reading the input as a stream of
 * operations, failing loudly on a mismatch with the reference model, and an
 * optional trace of every operation (HADRON_FUZZ_TRACE=1) for turning a
 * crashing input into a unit test.
 *
 * Every harness reads its input the same way: a short header that sets up
 * the component, then operations, each one opcode byte followed by that
 * operation's arguments. Reads past the end return zeros, so every input is
 * valid and a truncated operation still runs (with zero arguments).
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in_t;

static inline bool fz_more(const fz_in_t *in)
{
    return in->n != 0;
}

static inline uint8_t fz_u8(fz_in_t *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fz_u16(fz_in_t *in)
{
    uint16_t lo = fz_u8(in);
    return (uint16_t)(lo | (uint16_t)fz_u8(in) << 8);
}

static inline uint32_t fz_u32(fz_in_t *in)
{
    uint32_t lo = fz_u16(in);
    return lo | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(fz_in_t *in)
{
    uint64_t lo = fz_u32(in);
    return lo | (uint64_t)fz_u32(in) << 32;
}

/* For the reference models' hot loops: not instrumented for coverage, so
 * the fuzzer's time goes to the component (and its feedback comes from
 * there) rather than to comparisons in the model's scans. */
#if defined(__clang__) && __clang_major__ >= 13
#define FZ_NOCOV __attribute__((no_sanitize("coverage")))
#else
#define FZ_NOCOV
#endif

/* libFuzzer's entry points, which each harness defines. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where the harnesses map simulated memory: a fixed address, so a run does
 * the same whatever the process mapped before (run_fuzz.py). Inside the
 * application range of AddressSanitizer on x86_64, below its allocator. */
#define FZ_SIM_ADDRESS ((uintptr_t)0x500000000000ull)

/* Set from HADRON_FUZZ_TRACE by fz_init(). */
extern int fz_trace;

void fz_init(void);

#define FZ_TRACE(...)                                                                              \
    do {                                                                                           \
        if (fz_trace)                                                                              \
            fprintf(stderr, __VA_ARGS__);                                                          \
    } while (0)

/* A mismatch with the model or a broken invariant: report and abort, which
 * libFuzzer records as a crash (and saves the input). */
#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0)) {                                                        \
            fprintf(stderr, "\nFUZZ MISMATCH at %s:%d: %s\n  ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif /* FUZZ_COMMON_H */

/* Deliberately unfit for a kernel in one way only: no undefined symbol, but
 * FP/vector registers (double arithmetic and a vectorisable loop). The
 * freestanding check must reject it on its register test alone. See
 * not_freestanding.c for how FP comes back under each cross file. */
#if defined(__aarch64__)
#define FP_BACK __attribute__((target("fp-armv8,neon")))
#else
#define FP_BACK
#endif

FP_BACK double simd_only_scale(double x, double y)
{
    return x * y + 0.5;
}

FP_BACK void simd_only_add(unsigned *restrict a, const unsigned *restrict b, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        a[i] += b[i];
}

/* Deliberately unfit for a kernel: the freestanding check must reject this
 * archive (a libc call and floating-point arithmetic), proving it can fail.
 * On AArch64 the cross file's -mgeneral-regs-only forbids FP in C, so the
 * function asks for FP/SIMD back through a target attribute, as code built
 * without the flag would have it: its double arithmetic then uses d0-d9 and
 * the loop below is vectorised into v registers. */
int printf(const char *fmt, ...);

#if defined(__aarch64__)
#define FP_BACK __attribute__((target("fp-armv8,neon")))
#else
#define FP_BACK
#endif

FP_BACK double not_freestanding_scale(double x, double y)
{
    printf("%f\n", x);
    return x * y + 0.5;
}

FP_BACK void not_freestanding_add(unsigned *restrict a, const unsigned *restrict b, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        a[i] += b[i];
}

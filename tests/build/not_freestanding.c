/* Deliberately unfit for a kernel: the freestanding check must reject this
 * archive (a libc call and floating-point arithmetic), proving it can fail. */
int printf(const char *fmt, ...);

double not_freestanding_scale(double x, double y)
{
    printf("%f\n", x);
    return x * y + 0.5;
}

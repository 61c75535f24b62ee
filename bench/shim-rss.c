/*
 * shim-rss: a program that frees its large blocks. It allocates 256 blocks
 * of 1 MiB and 20,000 small ones, writes every byte, frees the large blocks,
 * keeps working with the small ones, and prints its resident memory at its
 * peak and after the frees (VmHWM and VmRSS from /proc/self/status). Run
 * under glibc and under the malloc shim by bench/shim-programs.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, n) == 0)
            v = strtol(line + n + 1, NULL, 10);
    if (f != NULL)
        fclose(f);
    return v;
}

int main(void)
{
    enum { LARGE = 256, SMALL = 20000 };
    static char *large[LARGE], *small[SMALL];
    for (int i = 0; i < LARGE; i++) {
        large[i] = malloc(1 << 20);
        memset(large[i], i, 1 << 20);
        for (int k = 0; k < SMALL / LARGE; k++) {
            int j = i * (SMALL / LARGE) + k;
            small[j] = malloc(16 + (size_t)(j % 200));
            memset(small[j], 1, 16 + (size_t)(j % 200));
        }
    }
    for (int j = LARGE * (SMALL / LARGE); j < SMALL; j++)
        small[j] = malloc(16 + (size_t)(j % 200));
    for (int i = 0; i < LARGE; i++)
        free(large[i]);
    unsigned long sum = 0;
    for (int round = 0; round < 20; round++)
        for (int j = 0; j < SMALL; j++) {
            sum += (unsigned char)small[j][0];
            free(small[j]);
            small[j] = malloc(16 + (size_t)((j + round) % 200));
            small[j][0] = (char)round;
        }
    printf("peak_kib %ld after_free_kib %ld (%lu)\n", status_kib("VmHWM:"), status_kib("VmRSS:"),
           sum);
    return 0;
}

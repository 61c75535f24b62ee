/*
 * Test kernel (AArch64): memcpy and memset, which the compiler and hadron-mm's
 * archives may call. Word-sized loops when both pointers allow it: page
 * zeroing and the PMM's bitmap setup run through memset, and a byte loop
 * costs many translated blocks under TCG.
 */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memset(void *dst, int c, size_t n);

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0) {
        for (; n >= 8; n -= 8, d += 8, s += 8)
            *(uint64_t *)(void *)d = *(const uint64_t *)(const void *)s;
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    uint64_t w = (uint8_t)c * UINT64_C(0x0101010101010101);
    while (n > 0 && ((uintptr_t)d & 7) != 0) {
        *d++ = (unsigned char)c;
        n--;
    }
    for (; n >= 8; n -= 8, d += 8)
        *(volatile uint64_t *)(void *)d = w;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

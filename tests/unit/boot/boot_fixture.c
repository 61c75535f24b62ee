/*
 * Fixtures of the boot tests (see boot_fixture.h).
 */
#include "boot_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

const boot_capture_t boot_captures[] = {
    {"grub-bios-256M.mbi", false, 256ull << 20, 1712, 7, 0},
    {"grub-bios-2G.mbi", false, 2ull << 30, 1712, 7, 0},
    {"grub-bios-8G.mbi", false, 8ull << 30, 1736, 8, 0},
    {"grub-uefi-256M.mbi", true, 256ull << 20, 7800, 19, 121},
    {"grub-uefi-2G.mbi", true, 2ull << 30, 7800, 19, 121},
    {"grub-uefi-8G.mbi", true, 8ull << 30, 7776, 20, 120},
};
const size_t boot_capture_count = sizeof boot_captures / sizeof boot_captures[0];

uint8_t *boot_copy(const void *src, size_t len)
{
    /* aligned_alloc wants a multiple of the alignment; ASan still flags
     * reads past len only when len is exact, so keep len and pad nothing:
     * malloc's 16-byte alignment is enough. */
    uint8_t *p = malloc(len ? len : 1);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 8, 0);
    memcpy(p, src, len);
    return p;
}

uint8_t *boot_load(const char *file, size_t *size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", BOOT_FIXTURE_DIR, file);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    static uint8_t tmp[1 << 16];
    size_t n = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "# mbi ", 6) != 0 || !colon)
            continue;
        for (char *p = colon + 1;;) {
            char *end;
            unsigned long v = strtoul(p, &end, 16);
            if (end == p)
                break;
            cr_assert_lt(n, sizeof tmp);
            tmp[n++] = (uint8_t)v;
            p = end;
        }
    }
    fclose(f);
    cr_assert_gt(n, 16, "%s holds no dump", path);
    *size = n;
    return boot_copy(tmp, n);
}

mb2_info_t boot_parse_capture(const uint8_t *mbi, size_t size)
{
    mb2_info_t info;
    mb2_error_t err = mb2_parse(mbi, size, &info);
    cr_assert_eq(err, MB2_OK, "mb2_parse: %s", mb2_error_str(err));
    return info;
}

void mb_begin(mb_builder_t *b)
{
    memset(b, 0, sizeof *b);
    b->len = 8;
}

void mb_tag(mb_builder_t *b, uint32_t type, uint32_t size, const void *body, size_t body_len)
{
    cr_assert_leq(b->len + 8 + body_len + 8, sizeof b->buf);
    memcpy(b->buf + b->len, &type, 4);
    memcpy(b->buf + b->len + 4, &size, 4);
    if (body_len)
        memcpy(b->buf + b->len + 8, body, body_len);
    b->len += (8 + body_len + 7) & ~(size_t)7;
}

void mb_tag_ok(mb_builder_t *b, uint32_t type, const void *body, size_t body_len)
{
    mb_tag(b, type, (uint32_t)(8 + body_len), body, body_len);
}

void mb_end(mb_builder_t *b)
{
    mb_tag(b, MB2_TAG_END, 8, NULL, 0);
}

uint8_t *mb_finish(mb_builder_t *b)
{
    uint32_t total = (uint32_t)b->len;
    memcpy(b->buf, &total, 4);
    return boot_copy(b->buf, b->len);
}

size_t boot_union(const pmm_region_t *map, size_t n, bool (*pick)(pmm_region_type_t),
                  uint64_t (*out)[2], size_t cap)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pick(map[i].type) || map[i].length == 0)
            continue;
        cr_assert_lt(m, cap);
        out[m][0] = map[i].base;
        out[m][1] = map[i].base + map[i].length;
        m++;
    }
    /* Sort (insertion) and merge. */
    for (size_t i = 1; i < m; i++)
        for (size_t j = i; j > 0 && out[j - 1][0] > out[j][0]; j--) {
            uint64_t t0 = out[j][0], t1 = out[j][1];
            out[j][0] = out[j - 1][0];
            out[j][1] = out[j - 1][1];
            out[j - 1][0] = t0;
            out[j - 1][1] = t1;
        }
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (k > 0 && out[i][0] <= out[k - 1][1]) {
            if (out[i][1] > out[k - 1][1])
                out[k - 1][1] = out[i][1];
        } else {
            out[k][0] = out[i][0];
            out[k][1] = out[i][1];
            k++;
        }
    }
    return k;
}

/*
 * Test kernel: a small printf. Supports %[-0#][width][.prec][hh|h|l|ll|z]
 * d i u x X o p s c % ; enough for diagnostics and tables.
 */
#include "kernel.h"

typedef struct spec {
    bool left;
    bool zero;
    bool alt; /* '#': 0x prefix for x/X (none for a zero value, as in C) */
    int width;
    int prec; /* -1: none */
} spec_t;

static void pad(fmt_sink_fn sink, void *ctx, char c, int n)
{
    while (n-- > 0)
        sink(c, ctx);
}

static void emit_str(fmt_sink_fn sink, void *ctx, const spec_t *sp, const char *s)
{
    if (s == NULL)
        s = "(null)";
    int len = 0;
    while (s[len] && (sp->prec < 0 || len < sp->prec))
        len++;
    if (!sp->left)
        pad(sink, ctx, ' ', sp->width - len);
    for (int i = 0; i < len; i++)
        sink(s[i], ctx);
    if (sp->left)
        pad(sink, ctx, ' ', sp->width - len);
}

static void emit_num(fmt_sink_fn sink, void *ctx, const spec_t *sp, uint64_t v, bool neg,
                     unsigned base, bool upper, const char *prefix)
{
    char digits[24];
    int n = 0;
    const char *tab = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        digits[n++] = tab[v % base];
        v /= base;
    } while (v != 0);
    int plen = 0;
    while (prefix[plen])
        plen++;
    int body = n + plen + (neg ? 1 : 0);
    if (!sp->left && !sp->zero)
        pad(sink, ctx, ' ', sp->width - body);
    if (neg)
        sink('-', ctx);
    for (int i = 0; i < plen; i++)
        sink(prefix[i], ctx);
    if (!sp->left && sp->zero)
        pad(sink, ctx, '0', sp->width - body);
    while (n > 0)
        sink(digits[--n], ctx);
    if (sp->left)
        pad(sink, ctx, ' ', sp->width - body);
}

void kvformat(fmt_sink_fn sink, void *ctx, const char *fmt, va_list ap)
{
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            sink(*p, ctx);
            continue;
        }
        spec_t sp = {false, false, false, 0, -1};
        p++;
        for (;; p++) {
            if (*p == '-')
                sp.left = true;
            else if (*p == '0')
                sp.zero = true;
            else if (*p == '#')
                sp.alt = true;
            else
                break;
        }
        if (*p == '*') {
            sp.width = va_arg(ap, int);
            p++;
        }
        while (*p >= '0' && *p <= '9')
            sp.width = sp.width * 10 + (*p++ - '0');
        if (*p == '.') {
            p++;
            sp.prec = 0;
            while (*p >= '0' && *p <= '9')
                sp.prec = sp.prec * 10 + (*p++ - '0');
        }
        int lng = 0; /* 0 int, 1 long, 2 long long, -1 short, -2 char */
        for (;; p++) {
            if (*p == 'l' || *p == 'z')
                lng++;
            else if (*p == 'h')
                lng--;
            else
                break;
        }
        if (*p == '\0')
            return;
        uint64_t u;
        switch (*p) {
        case 'd':
        case 'i': {
            int64_t v = lng >= 1 ? va_arg(ap, long) : va_arg(ap, int);
            if (lng == -1)
                v = (short)v;
            else if (lng <= -2)
                v = (signed char)v;
            emit_num(sink, ctx, &sp, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0, 10, false,
                     "");
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o':
            u = lng >= 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            if (lng == -1)
                u = (unsigned short)u;
            else if (lng <= -2)
                u = (unsigned char)u;
            emit_num(sink, ctx, &sp, u, false, *p == 'u' ? 10 : *p == 'o' ? 8 : 16, *p == 'X',
                     sp.alt && u != 0 && (*p == 'x' || *p == 'X') ? "0x" : "");
            break;
        case 'p':
            u = (uint64_t)(uintptr_t)va_arg(ap, void *);
            emit_num(sink, ctx, &sp, u, false, 16, false, "0x");
            break;
        case 's':
            emit_str(sink, ctx, &sp, va_arg(ap, const char *));
            break;
        case 'c': {
            char s[2] = {(char)va_arg(ap, int), 0};
            emit_str(sink, ctx, &sp, s);
            break;
        }
        default:
            sink('%', ctx);
            sink(*p, ctx);
            break;
        }
    }
}

typedef struct bufctx {
    char *buf;
    size_t size;
    size_t len;
} bufctx_t;

static void buf_sink(char c, void *ctx)
{
    bufctx_t *b = ctx;
    if (b->len + 1 < b->size)
        b->buf[b->len] = c;
    b->len++;
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    bufctx_t b = {buf, size, 0};
    kvformat(buf_sink, &b, fmt, ap);
    if (size != 0)
        buf[b.len < size ? b.len : size - 1] = '\0';
    return (int)b.len;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = kvsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

static void serial_sink(char c, void *ctx)
{
    (void)ctx;
    serial_putc(c);
}

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvformat(serial_sink, NULL, fmt, ap);
    va_end(ap);
}

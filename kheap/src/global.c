/*
 * kheap: the kernel's global allocator, the kmalloc family over one default
 * instance. Zero-filled static storage is a valid "not initialised" heap, so
 * calls before kheap_default_init fail cleanly instead of touching garbage.
 */
#include <hadron/mm/hooks.h>
#include <hadron/mm/kheap.h>

static kheap_t kh_default_heap;

kheap_t *kheap_default(void)
{
    return &kh_default_heap;
}

mm_status_t kheap_default_init(void *base, size_t size)
{
    return kheap_init(&kh_default_heap, base, size);
}

void *kmalloc(size_t size)
{
    return kheap_alloc(&kh_default_heap, size, 0);
}

void *kmalloc_aligned(size_t size, size_t align)
{
    return kheap_alloc(&kh_default_heap, size, align);
}

void *kcalloc(size_t count, size_t size)
{
    return kheap_calloc(&kh_default_heap, count, size);
}

void *krealloc(void *ptr, size_t size)
{
    void *out = NULL;
    (void)kheap_realloc(&kh_default_heap, ptr, size, &out);
    return out;
}

void kfree(void *ptr)
{
    mm_status_t st = kheap_free(&kh_default_heap, ptr);
    if (st == MM_ERR_STATE) {
        /* Before kheap_default_init no pointer can be the heap's. */
        mm_report_t r = {
            .kind = MM_REPORT_BAD_POINTER,
            .message = "kfree: the default heap is not initialised",
            .file = __FILE__,
            .line = __LINE__,
            .address = (uint64_t)(uintptr_t)ptr,
        };
        mm_hook_warn(&r);
    }
}

size_t ksize(const void *ptr)
{
    return kheap_usable_size(&kh_default_heap, ptr);
}

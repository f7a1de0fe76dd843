#include "CPlatform_malloc.h"

/* A C library header first: it is what defines __GLIBC__. */
#include <stdlib.h>

#if defined(__GLIBC__)
#include <malloc.h>

int dp_malloc_trim(void) {
    return malloc_trim(0);
}

int dp_malloc_set_mmap_threshold(int bytes, int max_blocks) {
    return mallopt(M_MMAP_THRESHOLD, bytes) && mallopt(M_MMAP_MAX, max_blocks);
}

size_t dp_heap_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
#else
int dp_malloc_trim(void) {
    return 0;
}

int dp_malloc_set_mmap_threshold(int bytes, int max_blocks) {
    (void)bytes;
    (void)max_blocks;
    return 0;
}

size_t dp_heap_in_use(void) {
    return 0;
}
#endif

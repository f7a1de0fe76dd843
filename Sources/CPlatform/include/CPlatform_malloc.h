/*
 * glibc's allocator controls, for HeapTrim (Daemon/HeapTrim.swift): give free
 * heap pages back to the system, give large blocks mappings of their own, and
 * read how much heap is in use. Where the C library is not glibc they do nothing.
 */
#ifndef DTLS_PROXYD_CMALLOC_H
#define DTLS_PROXYD_CMALLOC_H

#include <stddef.h>

/* malloc_trim(0): 1 if memory was released, else 0. */
int dp_malloc_trim(void);

/* mallopt(M_MMAP_THRESHOLD, bytes) and mallopt(M_MMAP_MAX, max_blocks): blocks
 * of at least `bytes` get their own mapping, at most `max_blocks` at a time.
 * 1 on success, as mallopt. */
int dp_malloc_set_mmap_threshold(int bytes, int max_blocks);

/* Bytes of heap in use (mallinfo2: uordblks + hblkhd), for leak tests. */
size_t dp_heap_in_use(void);

#endif

/* blockcache.h - a per-thread cache of small malloc blocks.
 *
 * The HTTP workers and the writer allocate and free a few hundred small
 * blocks per request (jansson values, SQLite statements and rows, Lua
 * objects).  glibc serves them from arenas that ~100 threads share behind
 * a lock (allotd bounds the arenas, see bin/allotd.c); each thread's own
 * tcache holds only 7 blocks per size, so a request's burst spills into
 * the locked path.  This cache keeps the small blocks a thread frees on a
 * free list of that thread, one list per glibc chunk size, and hands them
 * out again without a lock.
 *
 * The blocks are ordinary malloc blocks, no header of ours: a block taken
 * here may be given to free(), and any malloc block may be given to
 * blockcache_free, from any thread (a jansson value built on a worker and
 * released on the writer is the normal case).  The size class of a block
 * is read from glibc (malloc_usable_size), so it needs no bookkeeping.
 *
 * Bounded: at most BLOCKCACHE_CLASS_COUNT_MAX blocks per size class and
 * BLOCKCACHE_THREAD_BYTES_MAX bytes per thread, whatever is freed; a
 * thread's blocks go back to malloc when it exits.  Off (everything goes
 * straight to malloc/free) in the sanitizer build, so that ASan sees every
 * use after free, without glibc, and when ALLOT_BLOCKCACHE=0 is set in the
 * environment. */
#ifndef ENG_BLOCKCACHE_H
#define ENG_BLOCKCACHE_H

#include <stdbool.h>
#include <stddef.h>

/* The largest block kept: glibc's chunk of 1,040 bytes.  Larger requests
 * go straight to malloc. */
#define BLOCKCACHE_BLOCK_BYTES_MAX 1032u
/* Blocks kept per size class and bytes kept per thread, at most. */
#define BLOCKCACHE_CLASS_COUNT_MAX 64u
#define BLOCKCACHE_THREAD_BYTES_MAX (64u * 1024u)

/* true when the cache is in use in this process (decided once). */
bool blockcache_on(void);

/* malloc(bytes), from this thread's cache when it holds a block of the
 * size.  NULL when malloc fails (never from a cache hit). */
void *blockcache_malloc(size_t bytes);

/* free(p) (NULL is fine), or keeps p in this thread's cache. */
void blockcache_free(void *p);

/* The usable size a request of bytes (at most BLOCKCACHE_BLOCK_BYTES_MAX)
 * gets: its size class. */
size_t blockcache_class_bytes(size_t bytes);

/* The usable size of a malloc block (its size class when cached). */
size_t blockcache_size(void *p);

/* Gives every block this thread keeps back to free() (the thread-exit
 * path, and tests). */
void blockcache_flush(void);

/* This thread's figures, for tests and benchmarks. */
struct blockcache_stats {
    unsigned long hits;       /* blockcache_malloc served from the cache */
    unsigned long misses;     /* blockcache_malloc that called malloc */
    unsigned long kept;       /* blockcache_free that kept the block */
    unsigned long released;   /* blockcache_free that called free */
    size_t bytes_kept;        /* bytes on this thread's lists now */
    unsigned blocks_kept;     /* blocks on this thread's lists now */
    unsigned class_count_max; /* the fullest class's blocks now */
};
void blockcache_stats(struct blockcache_stats *out);

#endif

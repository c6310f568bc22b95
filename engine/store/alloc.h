/* alloc.h - noticing allocation failures wherever they happen.
 *
 * jansson and SQLite report running out of memory in ways that are easy to
 * read as an answer (a member silently missing from an object, a column
 * read as ""), so the engine wraps both allocators: every failed allocation
 * is counted on the calling thread, and an operation during which the count
 * moved fails as "overloaded" (503) and is rolled back, whatever answer the
 * code reached.  The wrappers call whatever allocators were installed
 * before them (a test's failing allocator included).
 *
 * When no allocator was installed before them (jansson's is malloc/free),
 * they serve small blocks from a per-thread cache (util/blockcache.h)
 * instead: fewer trips through glibc's shared arenas and their locks.  A
 * failure is counted all the same (a cache hit never fails). */
#ifndef ENG_ALLOC_H
#define ENG_ALLOC_H

#include <stdbool.h>

/* Installs the wrappers once per process; SQLite's only if SQLite has not
 * been initialised yet (it cannot be swapped after). */
void eng_alloc_install(void);

/* true when the installed wrappers go through the block cache. */
bool eng_alloc_cached(void);

/* Counts a failure noticed another way (SQLite reporting SQLITE_NOMEM). */
void eng_alloc_note_failure(void);

/* Allocation failures seen on this thread so far. */
unsigned long eng_alloc_failures(void);

#endif

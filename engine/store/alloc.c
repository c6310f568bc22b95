/* alloc.c - counting allocation failures per thread (see alloc.h). */
#include "alloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include <jansson.h>
#include <sqlite3.h>

#include "blockcache.h"

static _Thread_local unsigned long failures;

static json_malloc_t json_prev_malloc;
static json_free_t json_prev_free;
static sqlite3_mem_methods sqlite_prev;

static void *
json_counted_malloc(size_t n)
{
    void *p = json_prev_malloc(n);
    if (p == NULL) {
        failures++;
    }
    return p;
}

static void
json_counted_free(void *p)
{
    json_prev_free(p);
}

static void *
sqlite_counted_malloc(int n)
{
    void *p = sqlite_prev.xMalloc(n);
    if (p == NULL) {
        failures++;
    }
    return p;
}

static void *
sqlite_counted_realloc(void *old, int n)
{
    void *p = sqlite_prev.xRealloc(old, n);
    if (p == NULL && n > 0) {
        failures++;
    }
    return p;
}

static void
sqlite_free(void *p)
{
    sqlite_prev.xFree(p);
}

static int
sqlite_size(void *p)
{
    return sqlite_prev.xSize(p);
}

static int
sqlite_roundup(int n)
{
    return sqlite_prev.xRoundup(n);
}

static int
sqlite_init(void *p)
{
    return sqlite_prev.xInit(p);
}

static void
sqlite_shutdown(void *p)
{
    sqlite_prev.xShutdown(p);
}

/* The same over the per-thread block cache (util/blockcache.h): used when
 * nobody installed an allocator before us, so the blocks are plain malloc
 * blocks (SQLite's own default would put a size header in front). */
static void *
json_cached_malloc(size_t n)
{
    void *p = blockcache_malloc(n);
    if (p == NULL) {
        failures++;
    }
    return p;
}

static void *
sqlite_cached_malloc(int n)
{
    void *p = blockcache_malloc(n > 0 ? (size_t)n : 1u);
    if (p == NULL) {
        failures++;
    }
    return p;
}

static void *
sqlite_cached_realloc(void *old, int n)
{
    size_t want = n > 0 ? (size_t)n : 1u;
    if (blockcache_size(old) >= want) {
        return old; /* SQLite reads the size back with xSize */
    }
    void *p = realloc(old, want);
    if (p == NULL) {
        failures++;
    }
    return p;
}

static int
sqlite_cached_size(void *p)
{
    return (int)blockcache_size(p);
}

static int
sqlite_cached_roundup(int n)
{
    return (n + 7) & ~7;
}

static int
sqlite_cached_init(void *p)
{
    (void)p;
    return SQLITE_OK;
}

static void
sqlite_cached_shutdown(void *p)
{
    (void)p;
}

static bool cached;

static void
install_once(void)
{
    json_get_alloc_funcs(&json_prev_malloc, &json_prev_free);
    /* A test's failing allocator (tests/c/test_faults.c) installed before
     * us must see every allocation: no cache in front of it. */
    cached = blockcache_on() && json_prev_malloc == malloc && json_prev_free == free;
    if (cached) {
        json_set_alloc_funcs(json_cached_malloc, blockcache_free);
    } else {
        json_set_alloc_funcs(json_counted_malloc, json_counted_free);
    }
    /* SQLite's allocation statistics (which nothing here reads) take one
     * process-wide mutex around every sqlite3_malloc and sqlite3_free:
     * with 64 requests reading at once it was the lock their threads
     * slept on most (issue 12, engine/README.md "Per-request costs"). */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    static sqlite3_mem_methods wrapped;
    if (cached) {
        wrapped = (sqlite3_mem_methods){sqlite_cached_malloc, blockcache_free,
                                        sqlite_cached_realloc, sqlite_cached_size,
                                        sqlite_cached_roundup, sqlite_cached_init,
                                        sqlite_cached_shutdown, NULL};
        (void)sqlite3_config(SQLITE_CONFIG_MALLOC, &wrapped);
    } else if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_prev) == SQLITE_OK) {
        wrapped = (sqlite3_mem_methods){sqlite_counted_malloc, sqlite_free,
                                        sqlite_counted_realloc, sqlite_size,
                                        sqlite_roundup, sqlite_init,
                                        sqlite_shutdown, sqlite_prev.pAppData};
        (void)sqlite3_config(SQLITE_CONFIG_MALLOC, &wrapped);
    }
}

void
eng_alloc_install(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_once);
}

bool
eng_alloc_cached(void)
{
    return cached;
}

unsigned long
eng_alloc_failures(void)
{
    return failures;
}

void
eng_alloc_note_failure(void)
{
    failures++;
}

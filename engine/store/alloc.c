/* alloc.c - counting allocation failures per thread (see alloc.h). */
#include "alloc.h"

#include <pthread.h>
#include <stddef.h>

#include <jansson.h>
#include <sqlite3.h>

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

static void
install_once(void)
{
    json_get_alloc_funcs(&json_prev_malloc, &json_prev_free);
    json_set_alloc_funcs(json_counted_malloc, json_counted_free);
    /* SQLite's allocation statistics (which nothing here reads) take one
     * process-wide mutex around every sqlite3_malloc and sqlite3_free:
     * with 64 requests reading at once it was the lock their threads
     * slept on most (issue 12, engine/README.md "Per-request costs"). */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    static sqlite3_mem_methods wrapped;
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_prev) == SQLITE_OK) {
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

/* blockcache.c - a per-thread cache of small malloc blocks (see
 * blockcache.h). */
#include "blockcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GLIBC__)
#include <malloc.h>
#define BLOCKCACHE_GLIBC 1
#else
#define BLOCKCACHE_GLIBC 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define BLOCKCACHE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BLOCKCACHE_SANITIZED 1
#endif
#endif
#ifndef BLOCKCACHE_SANITIZED
#define BLOCKCACHE_SANITIZED 0
#endif

/* glibc's chunks (x86_64) are multiples of 16 bytes with 8 of them its
 * own: usable sizes 24, 40, 56, ... 1032.  A request of n bytes gets the
 * smallest of them that holds n; a block's class is the largest class
 * size its usable size holds (exact on x86_64, safe everywhere: a block
 * never serves a request larger than it). */
#define CLASS_BYTES_MIN 24u
#define CLASS_STEP 16u
#define CLASS_COUNT ((BLOCKCACHE_BLOCK_BYTES_MAX - CLASS_BYTES_MIN) / CLASS_STEP + 1u)

enum thread_state { THREAD_NEW = 0, THREAD_LIVE, THREAD_DEAD };

struct thread_cache {
    void *head[CLASS_COUNT]; /* free lists linked through a block's first word */
    uint16_t count[CLASS_COUNT];
    size_t bytes;
    enum thread_state state;
    unsigned long hits, misses, kept, released;
};

static _Thread_local struct thread_cache tc;

enum { UNDECIDED = 0, ON, OFF };
static atomic_int mode = UNDECIDED;
static pthread_key_t exit_key;
static bool exit_key_ok;

static void
thread_exit(void *arg)
{
    (void)arg;
    blockcache_flush();
    tc.state = THREAD_DEAD; /* later frees of this thread go to free() */
}

static void
decide_once(void)
{
    bool on = BLOCKCACHE_GLIBC && !BLOCKCACHE_SANITIZED;
    const char *env = getenv("ALLOT_BLOCKCACHE");
    if (env != NULL && strcmp(env, "0") == 0) {
        on = false;
    }
    /* Without the key a thread's blocks could not be given back at its
     * exit: no cache then. */
    exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
    atomic_store(&mode, on && exit_key_ok ? ON : OFF);
}

static inline bool
cache_on(void)
{
    int m = atomic_load_explicit(&mode, memory_order_acquire);
    if (m == UNDECIDED) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, decide_once);
        m = atomic_load(&mode);
    }
    return m == ON;
}

bool
blockcache_on(void)
{
    return cache_on();
}

static inline size_t
class_bytes(unsigned k)
{
    return CLASS_BYTES_MIN + (size_t)k * CLASS_STEP;
}

/* Registers this thread for the flush at its exit; false once it has
 * exited (or when registering fails): the caller bypasses the cache. */
static bool
thread_live(struct thread_cache *t)
{
    if (t->state == THREAD_LIVE) {
        return true;
    }
    if (t->state == THREAD_DEAD || pthread_setspecific(exit_key, t) != 0) {
        return false;
    }
    t->state = THREAD_LIVE;
    return true;
}

static inline unsigned
class_of(size_t bytes)
{
    return bytes <= CLASS_BYTES_MIN ? 0u
                                    : (unsigned)((bytes - CLASS_BYTES_MIN + CLASS_STEP - 1) / CLASS_STEP);
}

size_t
blockcache_class_bytes(size_t bytes)
{
    return class_bytes(class_of(bytes));
}

void *
blockcache_malloc(size_t bytes)
{
    if (bytes > BLOCKCACHE_BLOCK_BYTES_MAX || !cache_on()) {
        return malloc(bytes);
    }
    unsigned k = class_of(bytes);
    struct thread_cache *t = &tc;
    void *p = t->head[k];
    if (p != NULL) {
        void *next;
        memcpy(&next, p, sizeof next);
        t->head[k] = next;
        t->count[k]--;
        t->bytes -= class_bytes(k);
        t->hits++;
        return p;
    }
    t->misses++;
    /* The class size, so that the block comes back to this class. */
    return malloc(class_bytes(k));
}

void
blockcache_free(void *p)
{
    if (p == NULL) {
        return;
    }
    if (!cache_on()) {
        free(p);
        return;
    }
#if BLOCKCACHE_GLIBC
    size_t usable = malloc_usable_size(p);
#else
    size_t usable = 0; /* never: the cache is off without glibc */
#endif
    struct thread_cache *t = &tc;
    if (usable < CLASS_BYTES_MIN || usable > BLOCKCACHE_BLOCK_BYTES_MAX) {
        free(p);
        return;
    }
    unsigned k = (unsigned)((usable - CLASS_BYTES_MIN) / CLASS_STEP);
    size_t size = class_bytes(k);
    if (t->count[k] >= BLOCKCACHE_CLASS_COUNT_MAX || t->bytes + size > BLOCKCACHE_THREAD_BYTES_MAX ||
        !thread_live(t)) {
        t->released++;
        free(p);
        return;
    }
    memcpy(p, &t->head[k], sizeof t->head[k]);
    t->head[k] = p;
    t->count[k]++;
    t->bytes += size;
    t->kept++;
}

size_t
blockcache_size(void *p)
{
#if BLOCKCACHE_GLIBC
    return p != NULL ? malloc_usable_size(p) : 0;
#else
    (void)p;
    return 0;
#endif
}

void
blockcache_flush(void)
{
    struct thread_cache *t = &tc;
    for (unsigned k = 0; k < CLASS_COUNT; k++) {
        void *p = t->head[k];
        while (p != NULL) {
            void *next;
            memcpy(&next, p, sizeof next);
            free(p);
            p = next;
        }
        t->head[k] = NULL;
        t->count[k] = 0;
    }
    t->bytes = 0;
}

void
blockcache_stats(struct blockcache_stats *out)
{
    const struct thread_cache *t = &tc;
    unsigned blocks = 0, fullest = 0;
    for (unsigned k = 0; k < CLASS_COUNT; k++) {
        blocks += t->count[k];
        if (t->count[k] > fullest) {
            fullest = t->count[k];
        }
    }
    *out = (struct blockcache_stats){t->hits, t->misses, t->kept, t->released,
                                     t->bytes, blocks, fullest};
}

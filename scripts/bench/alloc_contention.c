/* alloc_contention.c - malloc/free against the block cache, many threads.
 *
 * Each of ALLOC_THREADS threads (default 64) runs "requests" shaped like a
 * booking on an HTTP worker: 200 small blocks (sizes drawn like the
 * engine's: mostly jansson values, strings and Lua objects of 24-256
 * bytes, a few up to 1 KiB), a third of them kept until the end of the
 * request, and one block in ten handed to the next thread, which frees it
 * (a jansson value released on another thread).  The arenas are bounded
 * as allotd bounds them (M_ARENA_MAX = cores).  Run once with plain
 * malloc/free and once through util/blockcache; prints, per mode, requests
 * per second (wall clock: a ratio between the two modes is what to read on
 * a shared machine), CPU microseconds per request and voluntary context
 * switches per request (a thread sleeping on an arena lock: the
 * contention itself, nearly independent of the machine's load).
 *   build/alloc_contention [requests-per-thread]   (default 3000) */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "blockcache.h"

#define BLOCKS 200
#define HANDOFF_MAX 4096

struct mailbox { /* blocks handed to one thread */
    pthread_mutex_t mu;
    void *blocks[HANDOFF_MAX];
    int count;
};

static int threads = 64;
static long requests = 3000;
static int use_cache;
static struct mailbox *boxes;
static atomic_long lost;
static atomic_ulong hits, misses;

static uint64_t
next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static size_t
draw_size(uint64_t *s)
{
    uint64_t r = next_rand(s) % 100;
    if (r < 55) {
        return 16 + next_rand(s) % 48; /* values, small strings, Lua objects */
    }
    if (r < 90) {
        return 64 + next_rand(s) % 192; /* objects, tables, statements */
    }
    return 256 + next_rand(s) % 768; /* buckets, buffers */
}

static void *
get(size_t n)
{
    return use_cache ? blockcache_malloc(n) : malloc(n);
}

static void
put(void *p)
{
    if (use_cache) {
        blockcache_free(p);
    } else {
        free(p);
    }
}

static void *
worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t seed = 0x9E3779B97F4A7C15u ^ (uint64_t)(me + 1);
    void *kept[BLOCKS];
    struct mailbox *out = &boxes[(me + 1) % threads];
    struct mailbox *in = &boxes[me];
    void *handed[BLOCKS];
    for (long r = 0; r < requests; r++) {
        int nkept = 0, nhanded = 0;
        for (int i = 0; i < BLOCKS; i++) {
            size_t n = draw_size(&seed);
            unsigned char *p = get(n);
            if (p == NULL) {
                atomic_fetch_add(&lost, 1);
                continue;
            }
            memset(p, (int)(i & 0xff), n);
            uint64_t r3 = next_rand(&seed) % 30;
            if (r3 < 3) {
                handed[nhanded++] = p;
            } else if (r3 < 13) {
                kept[nkept++] = p;
            } else {
                put(p);
            }
        }
        while (nkept > 0) {
            put(kept[--nkept]);
        }
        pthread_mutex_lock(&out->mu); /* once per request */
        while (nhanded > 0 && out->count < HANDOFF_MAX) {
            out->blocks[out->count++] = handed[--nhanded];
        }
        pthread_mutex_unlock(&out->mu);
        while (nhanded > 0) {
            put(handed[--nhanded]);
        }
        void *taken[HANDOFF_MAX];
        pthread_mutex_lock(&in->mu);
        int ntaken = in->count;
        memcpy(taken, in->blocks, (size_t)ntaken * sizeof taken[0]);
        in->count = 0;
        pthread_mutex_unlock(&in->mu);
        for (int i = 0; i < ntaken; i++) {
            put(taken[i]);
        }
    }
    struct blockcache_stats st;
    blockcache_stats(&st);
    atomic_fetch_add(&hits, st.hits);
    atomic_fetch_add(&misses, st.misses);
    return NULL;
}

static double
seconds(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void
run(int cache)
{
    use_cache = cache;
    atomic_store(&hits, 0);
    atomic_store(&misses, 0);
    pthread_t tid[1024];
    struct rusage ru0, ru1;
    struct timespec t0, t1;
    getrusage(RUSAGE_SELF, &ru0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < threads; i++) {
        pthread_create(&tid[i], NULL, worker, (void *)(intptr_t)i);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &ru1);
    for (int i = 0; i < threads; i++) { /* what the last round handed over */
        for (int j = 0; j < boxes[i].count; j++) {
            put(boxes[i].blocks[j]);
        }
        boxes[i].count = 0;
    }
    double total = (double)threads * (double)requests;
    double cpu = seconds(&(struct timespec){ru0.ru_utime.tv_sec, ru0.ru_utime.tv_usec * 1000},
                         &(struct timespec){ru1.ru_utime.tv_sec, ru1.ru_utime.tv_usec * 1000}) +
                 seconds(&(struct timespec){ru0.ru_stime.tv_sec, ru0.ru_stime.tv_usec * 1000},
                         &(struct timespec){ru1.ru_stime.tv_sec, ru1.ru_stime.tv_usec * 1000});
    printf("%-11s %10.0f requests/s  %7.2f us CPU/request  %6.3f voluntary switches/request",
           cache ? "blockcache" : "malloc", total / seconds(&t0, &t1), cpu * 1e6 / total,
           (double)(ru1.ru_nvcsw - ru0.ru_nvcsw) / total);
    unsigned long h = atomic_load(&hits), m = atomic_load(&misses);
    if (cache && h + m > 0) {
        printf("  %.1f %% hits", 100.0 * (double)h / (double)(h + m));
    }
    printf("\n");
}

int
main(int argc, char **argv)
{
    if (argc > 1) {
        requests = atol(argv[1]);
    }
    const char *t = getenv("ALLOC_THREADS");
    if (t != NULL && atoi(t) > 0 && atoi(t) <= 1024) {
        threads = atoi(t);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    (void)mallopt(M_ARENA_MAX, cores > 0 && cores < 64 ? (int)cores : 2);
    boxes = calloc((size_t)threads, sizeof *boxes);
    for (int i = 0; i < threads; i++) {
        pthread_mutex_init(&boxes[i].mu, NULL);
    }
    printf("alloc_contention: %d threads x %ld requests of %d blocks, M_ARENA_MAX %ld%s\n",
           threads, requests, BLOCKS, cores, blockcache_on() ? "" : " (block cache off)");
    run(0);
    run(1);
    run(0);
    run(1);
    return atomic_load(&lost) == 0 ? 0 : 1;
}

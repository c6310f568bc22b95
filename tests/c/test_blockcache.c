/* test_blockcache.c - the per-thread block cache (util/blockcache.h) and
 * the allocators built on it: sizes, reuse, the bounds per class and per
 * thread, blocks freed on another thread than their allocator's (64
 * threads handing blocks round, every block's bytes checked), the flush
 * at thread exit (glibc's in-use bytes come back), SQLite's xSize and
 * realloc and jansson values released across threads through the
 * engine's wrappers (store/alloc.c), and the Lua sandbox's memory
 * accounting: the same figures, to the byte, with the cache on and off
 * (this program run again with ALLOT_BLOCKCACHE=0).  In the sanitizer
 * build the cache is off and only what holds either way is checked. */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "alloc.h"
#include "blockcache.h"
#include "check.h"
#include "policy_host.h"

static bool on;

/* xorshift64 on a seed of each thread's own. */
static uint64_t
draw(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void
test_sizes(void)
{
    for (size_t n = 0; n <= BLOCKCACHE_BLOCK_BYTES_MAX + 100; n++) {
        unsigned char *p = blockcache_malloc(n);
        CHECK(p != NULL);
        CHECK(blockcache_size(p) >= n);
        memset(p, 0xA5, n);
        if (n <= BLOCKCACHE_BLOCK_BYTES_MAX) {
            CHECK(blockcache_class_bytes(n) >= n);
            CHECK(blockcache_class_bytes(n) < n + 16 + 24);
        }
        blockcache_free(p);
        /* The same size again: served (from the cache when on), usable. */
        p = blockcache_malloc(n);
        CHECK(blockcache_size(p) >= n);
        memset(p, 0x5A, n);
        free(p); /* a cached block is a plain malloc block */
    }
    blockcache_free(NULL);
    /* Any malloc block may go to blockcache_free. */
    blockcache_free(malloc(100));
    blockcache_free(calloc(3, 333));
    blockcache_free(strdup("a string from strdup"));
    blockcache_flush();
}

static void
test_reuse_and_bounds(void)
{
    if (!on) {
        printf("# block cache off: reuse and bounds not checked\n");
        return;
    }
    blockcache_flush();
    struct blockcache_stats a, b;
    blockcache_stats(&a);
    CHECK_INT(a.blocks_kept, 0);
    CHECK_INT(a.bytes_kept, 0);
    void *p = blockcache_malloc(100);
    blockcache_free(p);
    void *q = blockcache_malloc(97); /* the same class */
    CHECK(q == p);
    blockcache_stats(&b);
    CHECK_INT(b.hits, a.hits + 1);
    CHECK_INT(b.kept, a.kept + 1);
    blockcache_free(q);

    /* One class: at most BLOCKCACHE_CLASS_COUNT_MAX kept, the rest freed. */
    blockcache_flush();
    blockcache_stats(&a);
    enum { MANY = 1000 };
    static void *blocks[MANY * 64];
    for (int i = 0; i < MANY; i++) {
        blocks[i] = blockcache_malloc(40);
        CHECK(blocks[i] != NULL);
    }
    for (int i = 0; i < MANY; i++) {
        blockcache_free(blocks[i]);
    }
    blockcache_stats(&b);
    CHECK_INT(b.blocks_kept, BLOCKCACHE_CLASS_COUNT_MAX);
    CHECK_INT(b.class_count_max, BLOCKCACHE_CLASS_COUNT_MAX);
    CHECK_INT(b.released - a.released, MANY - BLOCKCACHE_CLASS_COUNT_MAX);
    CHECK_INT(b.bytes_kept, BLOCKCACHE_CLASS_COUNT_MAX * blockcache_class_bytes(40));
    /* They come back in turn, then malloc takes over. */
    for (unsigned i = 0; i < BLOCKCACHE_CLASS_COUNT_MAX + 10; i++) {
        blocks[i] = blockcache_malloc(33);
    }
    blockcache_stats(&a);
    CHECK_INT(a.hits - b.hits, BLOCKCACHE_CLASS_COUNT_MAX);
    CHECK_INT(a.misses - b.misses, 10);
    CHECK_INT(a.blocks_kept, 0);
    for (unsigned i = 0; i < BLOCKCACHE_CLASS_COUNT_MAX + 10; i++) {
        blockcache_free(blocks[i]);
    }

    /* Every class at once: the thread's byte bound holds. */
    blockcache_flush();
    int n = 0;
    for (size_t size = 1; size <= BLOCKCACHE_BLOCK_BYTES_MAX; size += 16) {
        for (int i = 0; i < 100; i++) {
            blocks[n++] = blockcache_malloc(size);
        }
    }
    for (int i = 0; i < n; i++) {
        blockcache_free(blocks[i]);
    }
    blockcache_stats(&b);
    CHECK(b.bytes_kept <= BLOCKCACHE_THREAD_BYTES_MAX);
    CHECK(b.bytes_kept + BLOCKCACHE_BLOCK_BYTES_MAX > BLOCKCACHE_THREAD_BYTES_MAX);
    CHECK(b.class_count_max <= BLOCKCACHE_CLASS_COUNT_MAX);

    /* Larger blocks are never kept. */
    blockcache_stats(&a);
    blockcache_flush();
    blockcache_free(blockcache_malloc(BLOCKCACHE_BLOCK_BYTES_MAX + 1));
    blockcache_free(malloc(64 * 1024));
    blockcache_stats(&b);
    CHECK_INT(b.blocks_kept, 0);
    CHECK_INT(b.kept, a.kept);

    /* The flush gives the blocks back to glibc. */
    for (int i = 0; i < 60; i++) {
        blocks[i] = blockcache_malloc(1000);
    }
    for (int i = 0; i < 60; i++) {
        blockcache_free(blocks[i]);
    }
    blockcache_stats(&a);
    CHECK(a.bytes_kept >= 60u * 1000u);
    size_t used_before = mallinfo2().uordblks;
    blockcache_flush();
    size_t used_after = mallinfo2().uordblks;
    /* (glibc keeps up to 7 blocks of a size in its own tcache, which
     * mallinfo2 counts as in use.) */
    CHECK(used_before - used_after >= a.bytes_kept / 2);
}

/* ---------- 64 threads handing blocks round ---------- */

enum { THREADS = 64, ROUNDS = 300, PER_ROUND = 120, HANDOFF_MAX = 1024 };

struct box {
    pthread_mutex_t mu;
    unsigned char *blocks[HANDOFF_MAX];
    size_t sizes[HANDOFF_MAX];
    int count;
};

static struct box boxes[THREADS];
static atomic_int bad_blocks;
static atomic_int bound_broken;
static atomic_int live_threads;
static size_t kept_at_exit[THREADS];

static unsigned char
mark(const unsigned char *p, size_t i)
{
    return (unsigned char)(((uintptr_t)p >> 4) + i * 7u);
}

static void
fill(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = mark(p, i);
    }
}

/* A block given out twice (or written after its free) shows here. */
static void
check_and_free(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != mark(p, i)) {
            atomic_fetch_add(&bad_blocks, 1);
            break;
        }
    }
    blockcache_free(p);
}

static void *
hand_round(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t seed = 0x1234567u + (uint64_t)me * 7919u;
    struct box *out = &boxes[(me + 1) % THREADS];
    struct box *in = &boxes[me];
    unsigned char *mine[PER_ROUND];
    size_t mine_n[PER_ROUND];
    for (int r = 0; r < ROUNDS; r++) {
        int k = 0;
        for (int i = 0; i < PER_ROUND; i++) {
            size_t n = 1 + (size_t)(draw(&seed) % 1100);
            unsigned char *p = blockcache_malloc(n);
            if (p == NULL) {
                atomic_fetch_add(&bad_blocks, 1);
                continue;
            }
            fill(p, n);
            if (i % 3 == 0) {
                pthread_mutex_lock(&out->mu);
                if (out->count < HANDOFF_MAX) {
                    out->blocks[out->count] = p;
                    out->sizes[out->count++] = n;
                    p = NULL;
                }
                pthread_mutex_unlock(&out->mu);
            }
            if (p != NULL) {
                mine[k] = p;
                mine_n[k++] = n;
            }
        }
        pthread_mutex_lock(&in->mu);
        while (in->count > 0) {
            in->count--;
            check_and_free(in->blocks[in->count], in->sizes[in->count]);
        }
        pthread_mutex_unlock(&in->mu);
        while (k > 0) {
            k--;
            check_and_free(mine[k], mine_n[k]);
        }
        struct blockcache_stats st;
        blockcache_stats(&st);
        if (st.bytes_kept > BLOCKCACHE_THREAD_BYTES_MAX ||
            st.class_count_max > BLOCKCACHE_CLASS_COUNT_MAX) {
            atomic_fetch_add(&bound_broken, 1);
        }
    }
    struct blockcache_stats st;
    blockcache_stats(&st);
    kept_at_exit[me] = st.bytes_kept;
    /* Everyone done before anyone exits: all boxes are empty by then. */
    atomic_fetch_sub(&live_threads, 1);
    while (atomic_load(&live_threads) > 0) {
        pthread_mutex_lock(&in->mu);
        while (in->count > 0) {
            in->count--;
            check_and_free(in->blocks[in->count], in->sizes[in->count]);
        }
        pthread_mutex_unlock(&in->mu);
        usleep(1000);
    }
    pthread_mutex_lock(&in->mu);
    while (in->count > 0) {
        in->count--;
        check_and_free(in->blocks[in->count], in->sizes[in->count]);
    }
    pthread_mutex_unlock(&in->mu);
    return NULL;
}

static void
test_threads(void)
{
    size_t used_before = mallinfo2().uordblks;
    atomic_store(&live_threads, THREADS);
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++) {
        pthread_mutex_init(&boxes[i].mu, NULL);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK_INT(pthread_create(&tid[i], NULL, hand_round, (void *)(intptr_t)i), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(tid[i], NULL);
    }
    CHECK_INT(atomic_load(&bad_blocks), 0);
    CHECK_INT(atomic_load(&bound_broken), 0);
    size_t kept = 0;
    for (int i = 0; i < THREADS; i++) {
        kept += kept_at_exit[i];
    }
    size_t used_after = mallinfo2().uordblks;
    printf("# 64 threads kept %zu bytes before they exited; in use %zu -> %zu\n", kept,
           used_before, used_after);
    if (on) {
        /* Each thread held blocks when it exited; their exit gave them
         * back (what glibc counts in use is as before, give or take). */
        CHECK(kept > 64u * 16u * 1024u);
        CHECK(used_after < used_before + kept / 8);
    }
}

/* ---------- the engine's allocators over the cache ---------- */

static void *
release_values(void *arg)
{
    json_t **values = arg;
    for (int i = 0; i < 500; i++) {
        json_decref(values[i]);
    }
    return NULL;
}

static void
test_engine_allocators(void)
{
    CHECK(eng_alloc_cached() == on);
    /* SQLite: xSize tells the truth, realloc keeps the bytes. */
    for (int n = 1; n < 3000; n += 37) {
        unsigned char *p = sqlite3_malloc(n);
        CHECK(p != NULL);
        CHECK(sqlite3_msize(p) >= (sqlite3_uint64)n);
        if (on) {
            CHECK(sqlite3_msize(p) == blockcache_size(p));
        }
        memset(p, 0x3C, (size_t)n);
        unsigned char *q = sqlite3_realloc(p, n * 3);
        CHECK(q != NULL);
        CHECK(sqlite3_msize(q) >= (sqlite3_uint64)n * 3);
        bool same = true;
        for (int i = 0; i < n; i++) {
            same = same && q[i] == 0x3C;
        }
        CHECK(same);
        sqlite3_free(q);
    }
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "CREATE TABLE t(a INTEGER, b TEXT);"
                           "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                           "WHERE i < 20000) INSERT INTO t SELECT i, printf('%0*d', i % 300, i)"
                           " FROM c;",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_prepare_v2(db, "SELECT count(*), sum(length(b)) FROM t", -1, &st, NULL),
              SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_INT(sqlite3_column_int64(st, 0), 20000);
    long long want = 0;
    for (int i = 1; i <= 20000; i++) {
        int digits = snprintf(NULL, 0, "%d", i);
        want += i % 300 > digits ? i % 300 : digits;
    }
    CHECK_INT(sqlite3_column_int64(st, 1), want);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* jansson: values built here, released on other threads. */
    for (int round = 0; round < 20; round++) {
        json_t *values[500];
        for (int i = 0; i < 500; i++) {
            values[i] = json_pack("{s:i, s:s, s:[i,s]}", "n", i, "s", "some text", "l", i,
                                  "more text in a list");
            CHECK(values[i] != NULL);
        }
        pthread_t t;
        CHECK_INT(pthread_create(&t, NULL, release_values, values), 0);
        pthread_join(t, NULL);
    }
    if (on) {
        struct blockcache_stats s;
        blockcache_stats(&s);
        CHECK(s.hits > 0);
    }
}

/* ---------- the Lua sandbox's accounting, cache on and off ---------- */

static const char *const lua_src[POLICY_KIND_COUNT] = {
    "return { price = function(ctx)\n"
    "  local t = {}\n"
    "  for i = 1, ctx.n do t[i] = { i, ('x'):rep(i % 60) .. i } end\n"
    "  local s = ''\n"
    "  for i = 1, ctx.n // 10 do s = s .. i end\n"
    "  return { n = #t, s = #s } end }",
    "return { eligible = function(ctx) return true end }",
    "return { order = function(ctx) return ctx.lots end }",
    "return { rollover = function(ctx) return { carry = 0 } end }",
    "return { refund = function(ctx) return { credits = 0 } end }",
    "return { validate = function(ctx) return { ok = true } end }",
};

/* Prints the accounting figures: memory after loading and after each
 * call, and the largest n that fits a 1 MiB state (bisection). */
static int
lua_figures(FILE *out)
{
    struct policy_source src[POLICY_KIND_COUNT];
    char names[POLICY_KIND_COUNT][64];
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        snprintf(names[k], sizeof names[k], "policies/default/%s.lua",
                 policy_kind_name((enum policy_kind)k));
        src[k] = (struct policy_source){names[k], lua_src[k], strlen(lua_src[k])};
    }
    struct policy_limits lim;
    policy_limits_default(&lim);
    lim.memory_bytes_max = 1024 * 1024;
    lim.instructions_max = 100000000;
    lim.wall_ms_max = 60000;
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    if (policy_set_load(&set, src, NULL, &lim, &err) != 0) {
        fprintf(out, "load failed: %s\n", err.msg);
        return 1;
    }
    fprintf(out, "loaded %zu\n", policy_set_memory_bytes(set));
    long lo = 1, hi = 200000;
    while (lo < hi) {
        long mid = (lo + hi + 1) / 2;
        json_t *ctx = json_pack("{s:I}", "n", (json_int_t)mid);
        json_t *res = NULL;
        int rc = policy_set_call(set, POLICY_PRICING, ctx, &res, &err);
        json_decref(ctx);
        json_decref(res);
        fprintf(out, "n %ld rc %d used %zu\n", mid, rc, policy_set_memory_bytes(set));
        if (rc == 0) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    fprintf(out, "largest %ld\n", lo);
    policy_set_release(set);
    return 0;
}

static void
test_lua_accounting(const char *self)
{
    char *here = NULL, *there = NULL;
    size_t here_len = 0, there_len = 0;
    FILE *mem = open_memstream(&here, &here_len);
    CHECK_INT(lua_figures(mem), 0);
    fclose(mem);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ALLOT_BLOCKCACHE=0 '%s' --lua-figures", self);
    FILE *child = popen(cmd, "r");
    CHECK(child != NULL);
    mem = open_memstream(&there, &there_len);
    char line[256];
    while (child != NULL && fgets(line, sizeof line, child) != NULL) {
        fputs(line, mem);
    }
    fclose(mem);
    CHECK_INT(child != NULL ? pclose(child) : -1, 0);
    CHECK(strstr(here, "largest ") != NULL);
    CHECK(strstr(here, "rc 0") != NULL && strstr(here, "rc -4") != NULL);
    if (strcmp(here, there) != 0) {
        printf("# cache %s:\n%s# cache off:\n%s", on ? "on" : "off", here, there);
    }
    CHECK(strcmp(here, there) == 0);
    free(here);
    free(there);
}

int
main(int argc, char **argv)
{
    /* Before SQLite initialises, as engine_open does. */
    eng_alloc_install();
    if (argc > 1 && strcmp(argv[1], "--lua-figures") == 0) {
        return lua_figures(stdout);
    }
    on = blockcache_on();
    printf("# block cache %s\n", on ? "on" : "off");
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(len > 0);
    self[len > 0 ? len : 0] = '\0';
    test_sizes();
    test_reuse_and_bounds();
    test_threads();
    test_engine_allocators();
    test_lua_accounting(self);
    return check_exit();
}

/* test_gate.c - compute slots: util/gate.c on its own, then the engine's
 * use of it (core/engine.c slot_take / slot_give_back) against a real
 * SQLite file with the group-commit writer running.
 *
 * The gate: never more threads inside than slots, and every slot a thread
 * frees while others wait goes to the one that came first, even when the
 * thread that freed it asks again at once (a plain semaphore lets it take
 * the slot back).  The engine: a quote waits while its only slot is held; a
 * report does not; bookings give the slot back before they wait for the
 * writer, so while the writer is held up every booking's plan is still made
 * (with the slot kept through that wait only the first would be). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "engine_calls.h"
#include "engine.h"
#include "gate.h"

#define THREADS 8
#define ROUNDS 2000
#define QUEUED 6

static void
nap_us(long us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Waits up to 10 s for *v to reach `want`; whether it did. */
static bool
await_u64(_Atomic uint64_t *v, uint64_t want)
{
    for (int i = 0; i < 10000; i++) {
        if (atomic_load(v) >= want) {
            return true;
        }
        nap_us(1000);
    }
    return false;
}

/* ---- the bound ---------------------------------------------------------- */

static struct gate bound_gate;
static _Atomic int inside, inside_max;

static void *
bound_run(void *arg)
{
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        gate_enter(&bound_gate);
        int now = atomic_fetch_add(&inside, 1) + 1;
        int seen = atomic_load(&inside_max);
        while (now > seen && !atomic_compare_exchange_weak(&inside_max, &seen, now)) {
        }
        if (r % 64 == 0) {
            nap_us(50); /* let the others pile up behind the slots */
        }
        atomic_fetch_sub(&inside, 1);
        gate_leave(&bound_gate);
    }
    return NULL;
}

static void
test_bound(int slots)
{
    CHECK_INT(gate_init(&bound_gate, slots), 0);
    atomic_store(&inside, 0);
    atomic_store(&inside_max, 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        CHECK_INT(pthread_create(&t[i], NULL, bound_run, NULL), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    printf("# %d slots: at most %d inside\n", slots, atomic_load(&inside_max));
    CHECK(atomic_load(&inside_max) <= slots);
    CHECK(atomic_load(&inside_max) >= 1);
    uint64_t entered, waited;
    gate_counts(&bound_gate, &entered, &waited);
    CHECK_INT(entered, THREADS * ROUNDS);
    CHECK(waited > 0); /* 8 threads on fewer slots: somebody waited */
    CHECK_INT(bound_gate.free, slots);
    gate_destroy(&bound_gate);
}

/* ---- arrival order ------------------------------------------------------ */

static struct gate order_gate;
static _Atomic int order_next;
static int order_seen[QUEUED];

static void *
order_run(void *arg)
{
    int me = (int)(intptr_t)arg;
    gate_enter(&order_gate);
    order_seen[atomic_fetch_add(&order_next, 1)] = me;
    gate_leave(&order_gate);
    return NULL;
}

static void
test_order(void)
{
    CHECK_INT(gate_init(&order_gate, 1), 0);
    atomic_store(&order_next, 0);
    CHECK(!gate_enter(&order_gate)); /* a free slot: no wait */
    pthread_t t[QUEUED];
    for (int i = 0; i < QUEUED; i++) {
        CHECK_INT(pthread_create(&t[i], NULL, order_run, (void *)(intptr_t)i), 0);
        /* Thread i is in line before thread i + 1 starts. */
        CHECK(await_u64(&order_gate.waited, (uint64_t)i + 1));
    }
    gate_leave(&order_gate);
    /* Asking again at once: the slot already belongs to thread 0, so this
     * thread comes after all six. */
    CHECK(gate_enter(&order_gate));
    int done = atomic_load(&order_next);
    CHECK_INT(done, QUEUED);
    gate_leave(&order_gate);
    for (int i = 0; i < QUEUED; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(order_seen[i], i);
    }
    CHECK_INT(order_gate.free, 1);
    CHECK(order_gate.head == NULL && order_gate.tail == NULL);
    gate_destroy(&order_gate);
}

/* ---- the engine --------------------------------------------------------- */

static struct engine eng;
static struct principal admin = {.role = ROLE_SUPER_ADMIN, .name = "test"};
static char *room, *user;

static json_t *
must(const char *op, json_t *args)
{
    return engine_must(&eng, &admin, "test_gate", op, args);
}

struct call {
    const char *op;
    json_t *args;
    int rc;
    struct eng_error err;
    _Atomic bool done;
};

static void *
call_run(void *arg)
{
    struct call *c = arg;
    json_t *out = NULL;
    bool created, replayed;
    c->rc = engine_exec(&eng, &admin, c->op, c->args, NULL, &out, &created, &replayed, &c->err);
    json_decref(out);
    atomic_store(&c->done, true);
    return NULL;
}

static json_t *
slot_args(int i, bool book)
{
    char start[32], end[32];
    snprintf(start, sizeof start, "2026-02-%02dT09:00:00Z", i + 1);
    snprintf(end, sizeof end, "2026-02-%02dT10:00:00Z", i + 1);
    json_t *a = json_pack("{s:s, s:s, s:s, s:s}", "resource_id", room, "user_id", user, "start",
                          start, "end", end);
    if (book) {
        json_object_set_new(a, "payment_method", json_string("credits"));
    }
    return a;
}

/* A quote waits for the only slot; a report does not take one. */
static void
test_engine_waits(void)
{
    uint64_t waits0, entries0;
    gate_counts(&eng.gate, &entries0, &waits0);
    gate_enter(&eng.gate); /* the only slot, held by the test */
    struct call q = {.op = "quotes.create", .args = slot_args(0, false)};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, call_run, &q), 0);
    CHECK(await_u64(&eng.gate.waited, waits0 + 1)); /* the quote, in line */
    nap_us(20000);
    CHECK(!atomic_load(&q.done));
    /* Reports run beside it. */
    json_t *out = NULL;
    bool created, replayed;
    struct eng_error err = {0};
    json_t *rargs = json_object();
    CHECK_INT(engine_exec(&eng, &admin, "reports.dashboard", rargs, NULL, &out, &created,
                          &replayed, &err),
              0);
    json_decref(rargs);
    json_decref(out);
    CHECK(!atomic_load(&q.done));
    gate_leave(&eng.gate);
    pthread_join(t, NULL);
    CHECK_INT(q.rc, 0);
    json_decref(q.args);
    struct engine_stats st;
    engine_stats(&eng, &st);
    CHECK_INT(st.compute_slots, 1);
    CHECK(st.slot_waits >= waits0 + 1);
}

/* Bookings wait for the writer without their slot. */
static void
test_engine_writer_wait(void)
{
    enum { N = 4 };
    struct engine_stats st;
    engine_stats(&eng, &st);
    uint64_t plans0 = st.plans, writes0 = st.writes;
    /* The writer cannot apply anything while the test holds write_mu. */
    pthread_mutex_lock(&eng.write_mu);
    struct call c[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        c[i] = (struct call){.op = "bookings.create", .args = slot_args(i + 1, true)};
        CHECK_INT(pthread_create(&t[i], NULL, call_run, &c[i]), 0);
    }
    bool all_planned = false;
    for (int i = 0; i < 10000 && !all_planned; i++) {
        engine_stats(&eng, &st);
        all_planned = st.plans >= plans0 + N;
        if (!all_planned) {
            nap_us(1000);
        }
    }
    printf("# plans made while the writer was held: %llu of %d\n",
           (unsigned long long)(st.plans - plans0), N);
    CHECK(all_planned);
    for (int i = 0; i < N; i++) {
        CHECK(!atomic_load(&c[i].done)); /* none acknowledged before its commit */
    }
    pthread_mutex_unlock(&eng.write_mu);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(c[i].rc, 0);
        json_decref(c[i].args);
    }
    engine_stats(&eng, &st);
    CHECK_INT(st.writes - writes0, N);
    CHECK_INT(eng.gate.free, 1);
}

static void
test_engine(const char *dir)
{
    struct engine_config cfg;
    engine_test_config(&cfg, dir, "gate.db");
    struct eng_error err = {0};
    cfg.compute_slots = ENGINE_COMPUTE_SLOTS_MAX + 1;
    CHECK(engine_open(&eng, &cfg, &err) != 0);
    CHECK(strstr(err.msg, "compute slots") != NULL);
    cfg.compute_slots = 1;
    memset(&err, 0, sizeof err);
    CHECK_INT(engine_open(&eng, &cfg, &err), 0);
    CHECK_INT(engine_start_writer(&eng, &err), 0);
    char *bld = id_of(must("buildings.create", json_pack("{s:s, s:s, s:s}", "name", "HQ",
                                                         "timezone", "UTC", "currency", "USD")));
    room = id_of(must("resources.create",
                      json_pack("{s:s, s:s, s:{s:{s:s, s:i, s:i}}}", "building_id", bld, "name",
                                "A", "pricing", "credits", "unit", "hour", "per_hour", 1,
                                "increment_minutes", 30)));
    char *ten;
    engine_test_tenant(&eng, &admin, "test_gate", bld, 100, &ten, &user);
    /* One booking first, so the lot exists and the others plan (a lot a
     * plan would create is left to the writer). */
    struct call first = {.op = "bookings.create", .args = slot_args(27, true)};
    call_run(&first);
    CHECK_INT(first.rc, 0);
    json_decref(first.args);
    test_engine_waits();
    test_engine_writer_wait();
    engine_close(&eng);
    free(bld);
    free(ten);
    free(room);
    free(user);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct gate g;
    CHECK_INT(gate_init(&g, 0), -1);
    test_bound(1);
    test_bound(3);
    test_order();
    char dir[] = "/tmp/allot-gate-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_engine(dir);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return check_exit();
}

/* test_checkpoint.c - checkpoints off the writer (core/engine.c ckpt_*,
 * store/db.c store_wal_hook / store_checkpoint) against a real SQLite file
 * with the group-commit writer running.
 *
 * The writer's connection no longer checkpoints inside its commits; the
 * checkpointer thread copies the WAL into the database file.  Run twice:
 * as is, and with the checkpointer late for every round (the writer must
 * then wait at the backstop).  With a small
 * threshold and readers quoting all the while, hundreds of bookings must
 * leave the WAL file within the backstop and one batch (without the
 * checkpointer it grows by every commit), every checkpoint must be counted, and the
 * database must verify, read back whole from a fresh engine, and pass
 * SQLite's integrity check. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "check.h"
#include "engine_calls.h"
#include "engine.h"

#define THRESHOLD 64
#define BOOKERS 4
#define BOOKINGS_EACH 150
#define QUOTERS 2

static struct engine eng;
static struct principal admin = {.role = ROLE_SUPER_ADMIN, .name = "test"};
static char *room[BOOKERS], *user;
static char wal_path[300];
static _Atomic bool stop_quoting;
static _Atomic long long wal_max;
static _Atomic int failures;
static char db_path[300];
static _Atomic long long slowest_ns; /* the slowest booking of the run */
static _Atomic bool holder_ready;     /* the bookers start once it has its snapshot */

static long long
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static json_t *
must(const char *op, json_t *args)
{
    return engine_must(&eng, &admin, "test_checkpoint", op, args);
}

static void
note_wal(void)
{
    struct stat sb;
    if (stat(wal_path, &sb) == 0) {
        long long seen = atomic_load(&wal_max);
        while ((long long)sb.st_size > seen &&
               !atomic_compare_exchange_weak(&wal_max, &seen, (long long)sb.st_size)) {
        }
    }
}

static int
exec(const char *op, json_t *args)
{
    json_t *out = NULL;
    bool created, replayed;
    struct eng_error err = {0};
    int rc = engine_exec(&eng, &admin, op, args, NULL, &out, &created, &replayed, &err);
    if (rc != 0) {
        fprintf(stderr, "test_checkpoint: %s: %s\n", op, err.msg);
    }
    json_decref(out);
    return rc;
}

static void *
quoter(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_quoting)) {
        json_t *a = json_pack("{s:s, s:s, s:s, s:s}", "resource_id", room[0], "user_id", user,
                              "start", "2026-03-02T09:00:00Z", "end", "2026-03-02T10:00:00Z");
        if (exec("quotes.create", a) != 0) {
            atomic_fetch_add(&failures, 1);
        }
        json_decref(a);
    }
    return NULL;
}

static void *
booker(void *arg)
{
    int me = (int)(intptr_t)arg;
    while (!atomic_load(&holder_ready)) {
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    for (int i = 0; i < BOOKINGS_EACH; i++) {
        /* Half-hour slots of one room per booker over February. */
        char start[32], end[32];
        int day = 1 + i / 20, slot = i % 20;
        snprintf(start, sizeof start, "2026-02-%02dT%02d:%02d:00Z", day, 8 + slot / 2,
                 slot % 2 ? 30 : 0);
        snprintf(end, sizeof end, "2026-02-%02dT%02d:%02d:00Z", day, 8 + (slot + 1) / 2,
                 (slot + 1) % 2 ? 30 : 0);
        json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", room[me], "user_id",
                              user, "start", start, "end", end, "payment_method", "credits");
        long long t0 = now_ns();
        if (exec("bookings.create", a) != 0) {
            atomic_fetch_add(&failures, 1);
        }
        long long took = now_ns() - t0, seen = atomic_load(&slowest_ns);
        while (took > seen && !atomic_compare_exchange_weak(&slowest_ns, &seen, took)) {
        }
        json_decref(a);
        note_wal();
    }
    return NULL;
}

/* A report's long read: a connection of its own holds one snapshot for
 * hold_ms while the bookers go on.  Between 300 ms in and 100 ms before
 * its end, the time the checkpoints held the writer must not grow: no
 * round may wait for this reader with the writer held. */
static _Atomic long long held_in_hold_ns = -1;

static long long
held_ns(void)
{
    struct engine_stats st;
    engine_stats(&eng, &st);
    return (long long)(st.checkpoint_held_seconds * 1e9 + 0.5);
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *
holder(void *arg)
{
    int hold_ms = (int)(intptr_t)arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN; SELECT count(*) FROM booking;", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "test_checkpoint: holder: %s\n", db ? sqlite3_errmsg(db) : "no memory");
        atomic_fetch_add(&failures, 1);
        sqlite3_close(db);
        atomic_store(&holder_ready, true);
        return NULL;
    }
    /* Its snapshot comes before every booking: a round can never find the
     * WAL copied up to its end while it reads.  (A reader whose snapshot
     * is the WAL's end, the writer idle, meets one second step that waits
     * CKPT_WAIT_US for it and gives up.) */
    atomic_store(&holder_ready, true);
    sleep_ms(300);
    long long before = held_ns();
    sleep_ms(hold_ms - 400);
    atomic_store(&held_in_hold_ns, held_ns() - before);
    sleep_ms(100);
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        atomic_fetch_add(&failures, 1);
    }
    sqlite3_close(db);
    return NULL;
}

static void
open_engine(const char *dir, bool writer, int late_ms)
{
    struct engine_config cfg;
    engine_test_config(&cfg, dir, "ckpt.db");
    cfg.checkpoint_frames = THRESHOLD;
    cfg.checkpoint_test_delay_ms = late_ms;
    struct eng_error err = {0};
    CHECK_INT(engine_open(&eng, &cfg, &err), 0);
    if (writer) {
        CHECK_INT(engine_start_writer(&eng, &err), 0);
    }
}

/* One run on a fresh database; late_ms > 0: the checkpointer starts each
 * round only once the WAL is at the backstop, and late_ms after that, so
 * the writer meets the backstop for sure. */
static void
run(int late_ms, int hold_ms)
{
    printf("# checkpointer late by %d ms, a reader holding one snapshot for %d ms\n", late_ms,
           hold_ms);
    atomic_store(&slowest_ns, 0);
    atomic_store(&held_in_hold_ns, -1);
    atomic_store(&holder_ready, hold_ms == 0);
    atomic_store(&stop_quoting, false);
    atomic_store(&wal_max, 0);
    atomic_store(&failures, 0);
    char dir[] = "/tmp/allot-ckpt-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(wal_path, sizeof wal_path, "%s/ckpt.db-wal", dir);
    snprintf(db_path, sizeof db_path, "%s/ckpt.db", dir);
    open_engine(dir, true, late_ms);
    char *bld = id_of(must("buildings.create", json_pack("{s:s, s:s, s:s}", "name", "HQ",
                                                         "timezone", "UTC", "currency", "USD")));
    for (int i = 0; i < BOOKERS; i++) {
        room[i] = id_of(must("resources.create",
                             json_pack("{s:s, s:s, s:{s:{s:s, s:i, s:i}}}", "building_id", bld,
                                       "name", "Room", "pricing", "credits", "unit", "hour",
                                       "per_hour", 1, "increment_minutes", 30)));
    }
    char *ten;
    engine_test_tenant(&eng, &admin, "test_checkpoint", bld, 100000, &ten, &user);

    pthread_t q[QUOTERS], b[BOOKERS];
    for (int i = 0; i < QUOTERS; i++) {
        CHECK_INT(pthread_create(&q[i], NULL, quoter, NULL), 0);
    }
    pthread_t h;
    if (hold_ms > 0) {
        CHECK_INT(pthread_create(&h, NULL, holder, (void *)(intptr_t)hold_ms), 0);
    }
    for (int i = 0; i < BOOKERS; i++) {
        CHECK_INT(pthread_create(&b[i], NULL, booker, (void *)(intptr_t)i), 0);
    }
    for (int i = 0; i < BOOKERS; i++) {
        pthread_join(b[i], NULL);
    }
    long long wal_after = -1;
    if (hold_ms > 0) {
        pthread_join(h, NULL);
        /* The reader gone, the checkpointer (trying again at least every 100 ms) must
         * cut the WAL, far past the backstop now, back to nothing (and
         * bookers still at work regrow it within the bound). */
        struct engine_stats now;
        for (int i = 0; i < 5000; i++) {
            engine_stats(&eng, &now);
            if (now.checkpoint_truncates > 0) {
                break;
            }
            sleep_ms(1);
        }
        struct stat sb;
        wal_after = stat(wal_path, &sb) == 0 ? (long long)sb.st_size : -1;
    }
    atomic_store(&stop_quoting, true);
    for (int i = 0; i < QUOTERS; i++) {
        pthread_join(q[i], NULL);
    }
    CHECK_INT(atomic_load(&failures), 0);

    struct engine_stats st;
    engine_stats(&eng, &st);
    /* A frame is a 4 KiB page and its 24-byte header; the WAL's own header
     * is 32 bytes.  The bound: the backstop (the writer starts no batch on
     * a WAL that long until a checkpoint round has tried to start it over;
     * the readers here are short, so the round does) and one batch's
     * frames: at most BOOKERS bookings, well under a threshold.  Without
     * the writer's wait the WAL went past it when the checkpointer thread
     * was late for its CPU (CI, ASan: 582 frames). */
    long long frame = 4096 + 24;
    long long bound = 32 + frame * THRESHOLD * (ENGINE_CHECKPOINT_BACKSTOP + 1);
    printf("# %llu writes in %llu batches; %llu checkpoints (%llu frames, writer held %.3f s "
           "for %llu of them, file synced %llu times beside it, %llu emptying, %llu stalls, %llu blocked by a reader, %llu left for one, %llu writes "
           "not stalled for one); WAL at most %lld bytes (%lld frames), bound %lld; slowest "
           "booking %.1f ms\n",
           (unsigned long long)st.writes, (unsigned long long)st.batches,
           (unsigned long long)st.checkpoints, (unsigned long long)st.checkpoint_frames,
           st.checkpoint_held_seconds, (unsigned long long)st.checkpoint_held_frames,
           (unsigned long long)st.checkpoint_synced_beside,
           (unsigned long long)st.checkpoint_truncates,
           (unsigned long long)st.checkpoint_stalls, (unsigned long long)st.checkpoint_blocked,
           (unsigned long long)st.checkpoint_skipped, (unsigned long long)st.checkpoint_unstalled,
           atomic_load(&wal_max),
           (atomic_load(&wal_max) - 32) / frame, bound, (double)atomic_load(&slowest_ns) / 1e6);
    CHECK(st.writes >= BOOKERS * BOOKINGS_EACH);
    CHECK(st.checkpoints >= (hold_ms > 0 ? 1u : 2u));
    CHECK(atomic_load(&wal_max) > 0);
    if (hold_ms > 0) {
        /* The long reader keeps any checkpoint from starting the WAL over
         * while it lasts, so the WAL passes the bound here.  The rounds
         * must leave the writer alone while it reads (before, each held it
         * up to ~370 ms waiting for it), */
        printf("# the writer held by checkpoints while the reader read: %.3f ms\n",
               (double)atomic_load(&held_in_hold_ns) / 1e6);
        CHECK(atomic_load(&held_in_hold_ns) == 0);
        CHECK(st.checkpoint_skipped > 0);
        /* and the writer, at the backstop, must go on once the rounds have
         * been left for the reader 100 ms, not wait for a restart. */
        CHECK(st.checkpoint_unstalled > 0);
        printf("# the WAL after the reader: %lld bytes\n", wal_after);
        CHECK(st.checkpoint_truncates > 0);
        CHECK(wal_after >= 0 && wal_after <= bound); /* bookers may still be at work */
    } else {
        CHECK(st.checkpoint_frames > 0);
        /* Each round that started the WAL over synced the file beside the
         * writer first, so its held step synced only the last batches'
         * pages (engine/README.md, "Checkpoints off the writer"). */
        CHECK(st.checkpoint_synced_beside >= st.checkpoints);
        /* Late, every round finds the WAL at the backstop: its second step
         * cuts the file to nothing. */
        if (late_ms > 0) {
            CHECK(st.checkpoint_truncates > 0);
        }
        CHECK(atomic_load(&wal_max) <= bound);
    }
    if (late_ms > 0) {
        CHECK(st.checkpoint_stalls > 0); /* the bound held because the writer waited */
    }

    json_t *args = json_object();
    CHECK_INT(exec("verify", args), 0);
    json_decref(args);
    engine_close(&eng);

    /* A fresh engine (no writer thread: SQLite's own checkpoints) reads
     * every booking back, and the file passes SQLite's integrity check. */
    open_engine(dir, false, 0);
    json_t *out = NULL;
    bool created, replayed;
    struct eng_error err = {0};
    args = json_pack("{s:s, s:i}", "user_id", user, "limit", 500);
    CHECK_INT(engine_exec(&eng, &admin, "bookings.list", args, NULL, &out, &created, &replayed,
                          &err),
              0);
    json_decref(args);
    json_t *items = json_object_get(out, "data");
    printf("# bookings listed after reopening: %zu (and more pages: %s)\n",
           json_array_size(items), json_is_null(json_object_get(out, "next_cursor")) ? "no" : "yes");
    CHECK(json_array_size(items) > 0);
    json_decref(out);
    engine_close(&eng);
    char cmd[400];
    snprintf(cmd, sizeof cmd,
             "test \"$(sqlite3 %s/ckpt.db \"PRAGMA integrity_check; SELECT count(*) FROM "
             "booking WHERE status = 'confirmed'\")\" = \"$(printf 'ok\\n%d')\"",
             dir, BOOKERS * BOOKINGS_EACH);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    free(bld);
    free(ten);
    for (int i = 0; i < BOOKERS; i++) {
        free(room[i]);
    }
    free(user);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    run(0, 0);
    /* A checkpointer that starts each round only at the backstop, and 50 ms
     * late then: the writer must wait there.  Without the wait the WAL
     * reached 926-1,050 frames here, with it 517-524. */
    run(50, 0);
    /* A report's snapshot held for 1.5 s while the bookers go on. */
    run(0, 1500);
    return check_exit();
}

/* cluster.c - the rows and the lock the nodes of one database share (see
 * cluster.h). */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define KEY_POLICY_GEN "cluster.policy_generation"
#define KEY_FAKE_CLOCK "cluster.fake_clock"

/* The advisory lock's key: "allot" + 1 (the migration lock of store_pg.c
 * uses another). */
#define BOUNDARY_LOCK_KEY 418397187956ll
/* How often a waiter asks again. */
#define LOCK_POLL_MS 5

bool
store_shared(const struct store *s)
{
    return s != NULL && s->pg != NULL;
}

/* A stored number back from its text; anything else is damage. */
static int
parse_value(const char *text, const char *key, int64_t *out, struct eng_error *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        fprintf(stderr, "allot: storage error: setting %s holds '%.40s'\n", key, text);
        return eng_error_code(err, ENG_ESTORE, "storage_error",
                              "internal storage error; nothing was written");
    }
    *out = (int64_t)v;
    return 0;
}

int
store_cluster_state(struct store *s, struct cluster_state *out, struct eng_error *err)
{
    STORE_SQL(q, "SELECT key, value FROM setting WHERE key IN ('" KEY_POLICY_GEN "', '"
                 KEY_FAKE_CLOCK "')");
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    int rc;
    while ((rc = sq_step(s, st, "cluster state", err)) == 1) {
        const char *key = sq_col_text(st, 0);
        bool clock = strcmp(key, KEY_FAKE_CLOCK) == 0;
        if (parse_value(sq_col_text(st, 1), key, clock ? &out->clock_now : &out->policy_gen,
                        err) != 0) {
            sq_reset(st);
            return err->status;
        }
        out->clock_set = out->clock_set || clock;
    }
    return rc;
}

int
store_cluster_policy_bump(struct store *s, struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO setting (key, value) VALUES ('" KEY_POLICY_GEN "', '1')"
                 " ON CONFLICT (key) DO UPDATE"
                 " SET value = CAST(CAST(setting.value AS BIGINT) + 1 AS TEXT)");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    return sq_exec(s, st, "policy generation", err);
}

int
store_cluster_policy_gen(struct store *s, int64_t *gen, struct eng_error *err)
{
    STORE_SQL(q, "SELECT value FROM setting WHERE key = '" KEY_POLICY_GEN "'");
    *gen = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    int rc = sq_step(s, st, "policy generation", err);
    if (rc <= 0) {
        return rc;
    }
    rc = parse_value(sq_col_text(st, 0), KEY_POLICY_GEN, gen, err);
    sq_reset(st);
    return rc;
}

int
store_cluster_clock_put(struct store *s, int64_t now, bool only_if_missing,
                        struct eng_error *err)
{
    STORE_SQL(q_put, "INSERT INTO setting (key, value) VALUES ('" KEY_FAKE_CLOCK "', ?)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    STORE_SQL(q_init, "INSERT INTO setting (key, value) VALUES ('" KEY_FAKE_CLOCK "', ?)"
                      " ON CONFLICT (key) DO NOTHING");
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, now);
    sqlite3_stmt *st = sq_prep(s, only_if_missing ? &q_init : &q_put, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, text);
    return sq_exec(s, st, "shared clock", err);
}

int
store_cluster_policies_each(struct store *s,
                            int (*cb)(void *ud, const struct cluster_policy_row *row), void *ud,
                            struct eng_error *err)
{
    STORE_SQL(q, "SELECT pa.building_id, pv.kind, pv.version, pv.sha256"
                 " FROM policy_active pa JOIN policy_version pv ON pv.id = pa.version_id"
                 " ORDER BY pa.building_id, pv.kind");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    int rc;
    while ((rc = sq_step(s, st, "active policies", err)) == 1) {
        struct cluster_policy_row row = {
            .building_id = sq_col_int(st, 0),
            .kind = sq_col_text(st, 1),
            .version = sq_col_int(st, 2),
            .sha256 = sq_col_text(st, 3),
        };
        int stop = cb(ud, &row);
        if (stop != 0) {
            sq_reset(st);
            return stop;
        }
    }
    return rc;
}

int
store_cluster_lock(struct store *s, int wait_ms, bool *got, struct eng_error *err)
{
    *got = true;
    if (s->pg == NULL) {
        return 0; /* SQLite: the one writer of the file is the lock */
    }
    /* Session-level, not transaction-level: taken before BEGIN, the wait
     * ends before the transaction's snapshot is taken.  Polled rather than
     * waited for, so the wait is ours to bound (lock_timeout is the
     * connection's, sized for row locks). */
    STORE_SQL(q, "SELECT pg_try_advisory_lock(?)");
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        sqlite3_stmt *st = sq_prep(s, &q, err);
        if (st == NULL) {
            return err->status;
        }
        sq_int(s, st, 1, BOUNDARY_LOCK_KEY);
        int rc = sq_step(s, st, "boundary lock", err);
        if (rc < 0) {
            return rc;
        }
        *got = rc == 1 && sq_col_int(st, 0) != 0;
        sq_reset(st);
        if (*got) {
            return 0;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long waited_ms = (long)(now.tv_sec - start.tv_sec) * 1000L +
                         (now.tv_nsec - start.tv_nsec) / 1000000L;
        if (waited_ms >= wait_ms) {
            return 0;
        }
        struct timespec pause = {0, LOCK_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
}

void
store_cluster_unlock(struct store *s)
{
    if (s->pg == NULL) {
        return;
    }
    STORE_SQL(q, "SELECT pg_advisory_unlock(?)");
    struct eng_error err = {0};
    sqlite3_stmt *st = sq_prep(s, &q, &err);
    if (st == NULL) {
        return; /* logged by the store */
    }
    sq_int(s, st, 1, BOUNDARY_LOCK_KEY);
    (void)sq_exec(s, st, "boundary unlock", &err);
}

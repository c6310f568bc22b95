/* legacy.c - TRANSITIONAL literal-keyed statements (see legacy.h). */
#include "legacy.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define LEGACY_MAX 2048

static pthread_mutex_t legacy_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const char *sql;
    struct store_sql *q;
} legacy[LEGACY_MAX];

static struct store_sql *
legacy_query(const char *sql)
{
    uintptr_t h = ((uintptr_t)sql >> 3) * (uintptr_t)11400714819323198485ull;
    struct store_sql *q = NULL;
    pthread_mutex_lock(&legacy_mu);
    for (int probe = 0; probe < LEGACY_MAX; probe++) {
        int i = (int)((h + (uintptr_t)probe) % LEGACY_MAX);
        if (legacy[i].sql == sql) {
            q = legacy[i].q;
            break;
        }
        if (legacy[i].sql == NULL) {
            q = calloc(1, sizeof *q);
            if (q != NULL) {
                q->text = sql;
                legacy[i].sql = sql;
                legacy[i].q = q;
            }
            break;
        }
    }
    pthread_mutex_unlock(&legacy_mu);
    return q;
}

sqlite3_stmt *
store_prep(struct store *store, const char *sql, struct eng_error *err)
{
    struct store_sql *q = legacy_query(sql);
    if (q == NULL) {
        eng_error_set(err, ENG_ENOMEM, "out of memory");
        return NULL;
    }
    int id = atomic_load(&q->id);
    if (id > 0 && id < store->by_id_len && store->by_id[id] != NULL) {
        sqlite3_stmt *st = store->by_id[id]->stmt;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    return sq_prep(store, q, err);
}

int
store_exec(struct store *store, const char *sql, struct eng_error *err)
{
    sqlite3_stmt *st = store_prep(store, sql, err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return store_fail(store, sql, err);
    }
    return 0;
}

int
store_fail(struct store *store, const char *what, struct eng_error *err)
{
    return sq_fail(store, what, err);
}

int
legacy_step_done(struct store *store, struct eng_error *err, sqlite3_stmt *stmt,
                 const char *what)
{
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return store_fail(store, what, err);
    }
    return 0;
}

sqlite3_stmt *
legacy_row(struct store *store, struct eng_error *err, const char *sql, int64_t id,
           const char *what, int *rc)
{
    sqlite3_stmt *st = store_prep(store, sql, err);
    *rc = 0;
    if (st == NULL) {
        *rc = ENG_ESTORE;
        return NULL;
    }
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        return st;
    }
    sqlite3_reset(st);
    *rc = step == SQLITE_DONE
              ? eng_error_code(err, ENG_ENOTFOUND, "not_found", "%s not found", what)
              : store_fail(store, what, err);
    return NULL;
}

/* store.h - one SQLite connection: pragmas, migrations, cached statements.
 *
 * A store is used by one thread at a time (the engine serialises the writer
 * behind a mutex and gives each reader thread its own store).  Statements are
 * cached by the address of their SQL text, so callers pass string literals. */
#ifndef ENG_STORE_H
#define ENG_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "error.h"

#define STORE_STMTS_MAX 512

struct store_slot {
    const char *sql;
    sqlite3_stmt *stmt;
};

struct store {
    sqlite3 *db;
    bool readonly;
    struct store_slot slots[STORE_STMTS_MAX];
};

/* Opens `path` (created when missing unless readonly), sets WAL,
 * synchronous=FULL, foreign_keys=ON, busy_timeout, and (writer only) runs
 * every pending migration in one transaction.  Returns 0 or ENG_ESTORE. */
ENG_MUST_CHECK int store_open(struct store *store, const char *path, bool readonly,
                              int busy_timeout_ms, struct eng_error *err);
/* Finalises cached statements and closes; accepts a zeroed store. */
void store_close(struct store *store);

/* A cached, reset statement for `sql` (a string literal).  NULL with
 * ENG_ESTORE in *err when it does not prepare (a programmer error). */
sqlite3_stmt *store_prep(struct store *store, const char *sql, struct eng_error *err);

/* Runs SQL text without results (BEGIN, COMMIT, SAVEPOINT ...). */
int store_exec(struct store *store, const char *sql, struct eng_error *err);

/* Maps the last SQLite failure to ENG_ESTORE; the detail goes to stderr (the
 * server log), never to the client. */
int store_fail(struct store *store, const char *what, struct eng_error *err);

/* Latest schema version this build knows. */
int store_schema_version(void);

#endif

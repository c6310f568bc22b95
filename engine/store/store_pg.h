/* store_pg.h - the PostgreSQL driver, for db.c only.
 *
 * A store opened on a postgresql:// URI holds a libpq connection instead of
 * a sqlite3 handle.  Its statements are the same STORE_SQL texts, written in
 * the common dialect (see engine/README.md, "Two drivers") and translated
 * once per connection when first prepared.  The handle the query modules
 * hold is still a `sqlite3_stmt *`: for PostgreSQL it is a pointer to a
 * struct pg_stmt with its low bit set (SQ_IS_PG), so the sq_* helpers decide
 * the driver with one test of that bit and the modules need no change.
 *
 * Built with ALLOT_WITH_PG (CMake option ALLOT_PG, on when libpq is found);
 * otherwise pg_open refuses the URI and nothing else here is reachable. */
#ifndef ENG_STORE_PG_H
#define ENG_STORE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define SQ_IS_PG(st) ((((uintptr_t)(const void *)(st)) & 1u) != 0)

bool pg_is_uri(const char *path);
/* Connects, migrates (writers) or checks the schema (readers). */
int pg_open(struct store *s, const char *uri, enum store_mode mode, int busy_timeout_ms,
            struct eng_error *err);
void pg_close(struct store *s);

/* A new statement for `q` (tagged), translated but not yet prepared. */
sqlite3_stmt *pg_stmt_new(struct store *s, const struct store_sql *q, struct eng_error *err);
void pg_stmt_free(sqlite3_stmt *st);
bool pg_stmt_busy(sqlite3_stmt *st);
void pg_stmt_reset(sqlite3_stmt *st);
void pg_stmt_clear(sqlite3_stmt *st);
int pg_param_count(sqlite3_stmt *st);
/* 0, or nonzero when the index is out of range or memory ran out. */
int pg_bind_int(sqlite3_stmt *st, int idx, int64_t v);
int pg_bind_text(sqlite3_stmt *st, int idx, const char *v);
int pg_step(struct store *s, sqlite3_stmt *st, const char *what, struct eng_error *err);

int64_t pg_col_int(sqlite3_stmt *st, int col);
bool pg_col_null(sqlite3_stmt *st, int col);
const char *pg_col_text(sqlite3_stmt *st, int col);
size_t pg_col_bytes(sqlite3_stmt *st, int col);

int64_t pg_last_id(struct store *s);
int pg_changes(struct store *s);
int pg_fail(struct store *s, const char *what, struct eng_error *err);

/* Runs a transaction-control text (BEGIN ..., COMMIT, SAVEPOINT job, ...). */
int pg_tx(struct store *s, enum store_tx what, struct eng_error *err);
bool pg_in_tx(struct store *s);
bool pg_retry_advised(struct store *s);
int pg_file_schema(struct store *s, int *version, struct eng_error *err);

/* The translation of one statement of the common dialect (exposed for the
 * unit test): malloc'd, NULL when out of memory or when the text uses a form
 * with no PostgreSQL equivalent (*why says which).  *nparams is the highest
 * parameter number; table (size 64) receives the INSERT target, or "". */
char *pg_translate(const char *sql, bool ddl, int *nparams, char *table, const char **why);

/* The migrations of db.c, in the common dialect. */
const char *const *store_migration(int version_index);
/* The step migration `version_index` needs besides SQL (NULL: none). */
int (*store_migration_fill(int version_index))(struct store *s, struct eng_error *err);

#endif

/* legacy.h - TRANSITIONAL: the old literal-keyed statement API, kept only
 * while the remaining modules move their SQL into engine/store/.  Nothing new
 * may use it; scripts/check_layers.lua fails while anything outside
 * engine/store/ calls sqlite3_. */
#ifndef ENG_STORE_LEGACY_H
#define ENG_STORE_LEGACY_H

#include <sqlite3.h>

#include "internal.h"

/* A reset statement for the literal `sql` (first copy; old semantics). */
sqlite3_stmt *store_prep(struct store *store, const char *sql, struct eng_error *err);
/* Runs SQL text without results. */
int store_exec(struct store *store, const char *sql, struct eng_error *err);
/* Maps the last SQLite failure to ENG_ESTORE. */
int store_fail(struct store *store, const char *what, struct eng_error *err);

/* Steps a statement whose rows are not needed; 0 or ENG_ESTORE. */
int legacy_step_done(struct store *store, struct eng_error *err, sqlite3_stmt *stmt,
                     const char *what);
/* Runs `sql` (one ? bound to id); the statement on its first row (reset by
 * the caller), or NULL with *rc = ENG_ENOTFOUND ("<what> not found") or
 * ENG_ESTORE. */
sqlite3_stmt *legacy_row(struct store *store, struct eng_error *err, const char *sql, int64_t id,
                         const char *what, int *rc);

#endif

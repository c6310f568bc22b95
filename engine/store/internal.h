/* internal.h - for the engine/store modules only: SQLite, the statement cache and
 * the checked step/bind/column helpers every query module uses.
 *
 * A query is a `STORE_SQL(name, "SELECT ...")` static: its cache key is an id
 * given at first use, so the same statement may be open twice at once (a
 * nested loop gets a second prepared copy instead of resetting the outer
 * one).  A statement is finished by sq_step returning 0 (done) or an error,
 * or by sq_reset when the caller stops early. */
#ifndef ENG_STORE_INTERNAL_H
#define ENG_STORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "error.h"
#include "store.h"

struct store_sql {
    const char *text;
    atomic_int id;  /* 0 until first prepared */
    const char *pg; /* PostgreSQL's own text where the dialects differ, or NULL */
    bool stream;    /* rows without bound (exports): PostgreSQL reads them through
                     * a cursor, a batch at a time, instead of whole */
};

/* `sql` is written in the common dialect both drivers run (engine/README.md,
 * "Two drivers"): PostgreSQL gets it translated when first prepared. */
#define STORE_SQL(name, sql) static struct store_sql name = {sql, 0, NULL, false}
/* The rare statement whose PostgreSQL text must differ. */
#define STORE_SQL_PG(name, sql, pg_sql) static struct store_sql name = {sql, 0, pg_sql, false}
/* A query whose rows have no bound (a streamed export): SQLite steps it as
 * any other; PostgreSQL, inside a transaction, walks it through a cursor
 * STORE_PG_FETCH rows at a time, so memory stays constant (store_pg.c). */
#define STORE_SQL_STREAM(name, sql) static struct store_sql name = {sql, 0, NULL, true}

/* Statements of one id: the first and any nested copies. */
struct store_stmt {
    sqlite3_stmt *stmt;
    struct store_stmt *next;
};

struct store_pg; /* the PostgreSQL driver's connection (store_pg.c) */

/* Lot balances a writing connection remembers (store/known.c). */
#define STORE_KNOWN_LOTS_MAX 16

struct store {
    sqlite3 *db;          /* NULL on PostgreSQL */
    struct store_pg *pg;  /* non-NULL on PostgreSQL */
    bool readonly;
    int bind_rc;                /* the first failed bind since the last prepare */
    bool tx_open;               /* a BEGIN of ours is not yet committed or rolled back */
    struct store_stmt **by_id;  /* indexed by store_sql.id */
    int by_id_len;
    /* store/known.c: what this (SQLite, writing) connection knows of the
     * database without a statement, and what tells whether it still
     * holds: the changes made on this connection (counted by its update
     * hook; no other code may set one on a writing connection), the
     * pager's data version (moved by every commit, ours or another
     * connection's), and the transaction the facts were learnt in. */
    struct {
        bool hooked, open;     /* open: an epoch of facts began (below) */
        unsigned version_at;   /* the data version the facts hold at */
        uint64_t tx, serial;   /* tx: the transaction they were learnt in, 0
                                  once committed; serial: our BEGINs */
        bool gen_known;        /* the portfolio generation (generation.c) */
        int64_t gen;
        uint64_t bumps, bumps_at; /* changes to portfolio_generation */
        int64_t taking;        /* the lot whose own debit is running */
        struct {
            int64_t id, balance; /* id 0: none */
        } lots[STORE_KNOWN_LOTS_MAX]; /* balances left by this connection's debits */
    } known;
    /* store_wal_hook: told the WAL's size after each commit. */
    void (*wal_note)(void *ud, int frames);
    void *wal_note_ud;
};

/* store/known.c, for store_tx: `kept` is what store_known_commit_begin
 * said before a COMMIT; `ok` whether the statement succeeded.  What was
 * known before our commit stays known after it; a rollback forgets it. */
bool store_known_commit_begin(struct store *s);
void store_known_tx_done(struct store *s, enum store_tx what, bool ok, bool kept);
/* For generation.c and lots.c: whether the facts of the open epoch still
 * hold; starting to note a fact (a new epoch when they do not; false:
 * nothing may be noted). */
bool store_known_holds(struct store *s);
bool store_known_note_begin(struct store *s);
/* A lot's balance as this connection's own last debit of it left it
 * (true), or noted (lots.c). */
bool store_known_lot(struct store *s, int64_t id, int64_t *balance);
void store_known_lot_note(struct store *s, int64_t id, int64_t balance);

/* Nested copies of one statement allowed at once. */
#define STORE_NEST_MAX 8

/* A reset statement for `q`, bindings cleared; NULL with ENG_ESTORE in *err.
 * On PostgreSQL the handle is a tagged pointer to the driver's own statement
 * (store_pg.h): use it only through these helpers. */
sqlite3_stmt *sq_prep(struct store *s, struct store_sql *q, struct eng_error *err);
/* Binds; a failure is remembered and reported by the next sq_step. */
void sq_int(struct store *s, sqlite3_stmt *st, int idx, int64_t v);
void sq_text(struct store *s, sqlite3_stmt *st, int idx, const char *v); /* NULL binds NULL */
/* sq_text without SQLite's copy of the text (a malloc, a copy and a free
 * per bind): the caller keeps `v` unchanged until the statement is done
 * with it (run to its end, or reset).  For the writer's per-booking
 * statements. */
void sq_text_static(struct store *s, sqlite3_stmt *st, int idx, const char *v);
void sq_null(struct store *s, sqlite3_stmt *st, int idx);
/* 1 with a row, 0 when done (the statement is reset), or ENG_ESTORE with
 * *err set (reset too).  `what` names the query in the server log. */
int sq_step(struct store *s, sqlite3_stmt *st, const char *what, struct eng_error *err);
/* Runs a statement that returns no rows we need; 0 or ENG_ESTORE. */
int sq_exec(struct store *s, sqlite3_stmt *st, const char *what, struct eng_error *err);
/* Stops a statement early (after a row that ended the loop). */
void sq_reset(sqlite3_stmt *st);
/* Maps the connection's last failure to ENG_ESTORE (or ENG_ENOMEM). */
int sq_fail(struct store *s, const char *what, struct eng_error *err);

int64_t sq_last_id(struct store *s);
int sq_changes(struct store *s);

/* Columns.  sq_col_text is never NULL ("" for SQL NULL, and also when
 * SQLite runs out of memory converting it: where that matters use
 * sq_col_copy, which reports it). */
int64_t sq_col_int(sqlite3_stmt *st, int col);
bool sq_col_null(sqlite3_stmt *st, int col);
const char *sq_col_text(sqlite3_stmt *st, int col);
/* The byte length of a text column. */
size_t sq_col_bytes(sqlite3_stmt *st, int col);
/* Copies a text column into buf; a value that does not fit is an error
 * (ENG_ESTORE naming `what`), never a truncation. */
int sq_col_copy(sqlite3_stmt *st, int col, char *buf, size_t size, const char *what,
                struct eng_error *err);

/* Runs `q` with one bound int64 and returns its first column as an int64
 * (dflt when there is no row or it is NULL); 0 or ENG_ESTORE. */
int sq_scalar(struct store *s, struct store_sql *q, int64_t arg, int64_t dflt, int64_t *out,
              struct eng_error *err);

/* Runs `q` with one bound int64 and reads column 0 of its row as an int64:
 * *found false (and *out 0) when there is no row; 0 or an error. */
int sq_lookup(struct store *s, struct store_sql *q, int64_t arg, const char *what, int64_t *out,
              bool *found, struct eng_error *err);

#endif

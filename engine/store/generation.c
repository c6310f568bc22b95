/* generation.c - the portfolio generation (see generation.h). */
#include "generation.h"

#include <string.h>

#include "internal.h"

/* The update hook of a writing SQLite connection: counts the changes to
 * portfolio_generation made on it, by its triggers or otherwise (SQLite
 * calls the hook for the rows a trigger program changes too). */
static void
gen_hook(void *ud, int op, const char *db, const char *table, sqlite3_int64 rowid)
{
    (void)op;
    (void)db;
    (void)rowid;
    struct store *s = ud;
    if (strcmp(table, "portfolio_generation") == 0) {
        s->gen.bumps++;
    }
}

/* The pager's data version of the main database: it moves with every
 * commit to the file, this connection's own or another connection's (the
 * latter seen when this one begins its next read transaction). */
static bool
data_version(struct store *s, unsigned *v)
{
    return sqlite3_file_control(s->db, NULL, SQLITE_FCNTL_DATA_VERSION, v) == SQLITE_OK;
}

/* Notes `gen`, just read, as known (writing SQLite connections only). */
static void
gen_note(struct store *s, int64_t gen)
{
    if (s->pg != NULL || s->readonly) {
        return;
    }
    if (!s->gen.hooked) {
        sqlite3_update_hook(s->db, gen_hook, s);
        s->gen.hooked = true;
    }
    s->gen.known = data_version(s, &s->gen.version_at);
    s->gen.value = gen;
    s->gen.bumps_at = s->gen.bumps;
    s->gen.tx = store_in_tx(s) ? s->gen.serial : 0;
}

int
store_generation_get(struct store *s, int64_t *gen, struct eng_error *err)
{
    STORE_SQL(q, "SELECT n FROM portfolio_generation");
    s->gen.known = false;
    if (sq_scalar(s, &q, 0, -1, gen, err) != 0) {
        return err->status;
    }
    if (*gen < 0) {
        return eng_error_code(err, ENG_ESTORE, "storage_error",
                              "the portfolio generation row is missing");
    }
    gen_note(s, *gen);
    return 0;
}

bool
store_generation_known(struct store *s, int64_t *gen)
{
    /* In a write transaction only: its snapshot is the newest (another
     * connection's commit moved the data version when it began) and
     * nobody else can commit until it ends. */
    unsigned v = 0;
    if (s->pg != NULL || !s->gen.known || s->gen.bumps != s->gen.bumps_at ||
        (s->gen.tx != 0 && s->gen.tx != s->gen.serial) ||
        sqlite3_txn_state(s->db, NULL) != SQLITE_TXN_WRITE || !data_version(s, &v) ||
        v != s->gen.version_at) {
        return false;
    }
    *gen = s->gen.value;
    return true;
}

int
store_generation_now(struct store *s, int64_t *gen, struct eng_error *err)
{
    return store_generation_known(s, gen) ? 0 : store_generation_get(s, gen, err);
}

bool
store_generation_commit_begin(struct store *s)
{
    int64_t gen = 0;
    return store_generation_known(s, &gen);
}

void
store_generation_tx_done(struct store *s, enum store_tx what, bool ok, bool kept)
{
    switch (what) {
    case STORE_BEGIN:
    case STORE_BEGIN_IMMEDIATE:
        s->gen.serial += ok ? 1 : 0;
        break;
    case STORE_COMMIT:
        /* Our commit moved the data version; nobody else could commit
         * meanwhile (the transaction held the write lock), so the state
         * is the one the value was known in. */
        s->gen.known = kept && ok && data_version(s, &s->gen.version_at);
        s->gen.tx = 0;
        break;
    case STORE_ROLLBACK:
    case STORE_ROLLBACK_TO:
        /* The value may have been read after changes now undone. */
        s->gen.known = false;
        break;
    case STORE_SAVEPOINT:
    case STORE_RELEASE:
        break;
    }
}

/* known.c - what a writing SQLite connection knows of the database without
 * a statement (the portfolio generation, the balances its own debits left),
 * and when that stops being true.
 *
 * Facts are noted in an epoch: within one write transaction, or carried
 * across this connection's own commits.  The epoch ends (everything noted
 * is forgotten) when:
 *  - another connection or process commits: the pager's data version
 *    moves, as this connection sees when it next begins a transaction;
 *  - a rollback (whole, or to a savepoint) undoes changes a fact may have
 *    been read after;
 *  - a transaction ends otherwise than by our COMMIT (SQLite rolling back
 *    on its own after an I/O error: the BEGIN count moved).
 * And a single fact is forgotten when this connection changes what it is
 * about: the connection's update hook (called for the rows trigger
 * programs change too) counts changes to portfolio_generation and drops a
 * lot's balance when any statement but that lot's own debit changes the
 * row.  Facts are only used inside a write transaction, whose snapshot is
 * the newest and which nobody else can change until it ends.  PostgreSQL
 * knows nothing this way (another node may write at any time). */
#include <string.h>

#include "internal.h"

static void
known_hook(void *ud, int op, const char *db, const char *table, sqlite3_int64 rowid)
{
    (void)op;
    (void)db;
    struct store *s = ud;
    if (strcmp(table, "portfolio_generation") == 0) {
        s->known.bumps++;
    } else if (strcmp(table, "lot") == 0 && rowid != s->known.taking) {
        size_t i = (size_t)((uint64_t)rowid % STORE_KNOWN_LOTS_MAX);
        if (s->known.lots[i].id == rowid) {
            s->known.lots[i].id = 0;
        }
    }
}

/* The pager's data version of the main database. */
static bool
data_version(struct store *s, unsigned *v)
{
    return sqlite3_file_control(s->db, NULL, SQLITE_FCNTL_DATA_VERSION, v) == SQLITE_OK;
}

bool
store_known_holds(struct store *s)
{
    unsigned v = 0;
    return s->pg == NULL && !s->readonly && s->known.hooked && s->known.open &&
           (s->known.tx == 0 || s->known.tx == s->known.serial) &&
           sqlite3_txn_state(s->db, NULL) == SQLITE_TXN_WRITE && data_version(s, &v) &&
           v == s->known.version_at;
}

bool
store_known_note_begin(struct store *s)
{
    if (s->pg != NULL || s->readonly) {
        return false;
    }
    if (!s->known.hooked) {
        sqlite3_update_hook(s->db, known_hook, s);
        s->known.hooked = true;
    }
    if (store_known_holds(s)) {
        return true;
    }
    /* A new epoch, at the state this connection sees now. */
    s->known.gen_known = false;
    memset(s->known.lots, 0, sizeof s->known.lots);
    s->known.tx = store_in_tx(s) ? s->known.serial : 0;
    s->known.open = data_version(s, &s->known.version_at);
    return s->known.open;
}

bool
store_known_lot(struct store *s, int64_t id, int64_t *balance)
{
    size_t i = (size_t)((uint64_t)id % STORE_KNOWN_LOTS_MAX);
    if (id <= 0 || s->known.lots[i].id != id || !store_known_holds(s)) {
        return false;
    }
    *balance = s->known.lots[i].balance;
    return true;
}

void
store_known_lot_note(struct store *s, int64_t id, int64_t balance)
{
    if (id > 0 && store_known_note_begin(s)) {
        size_t i = (size_t)((uint64_t)id % STORE_KNOWN_LOTS_MAX);
        s->known.lots[i].id = id;
        s->known.lots[i].balance = balance;
    }
}

bool
store_known_commit_begin(struct store *s)
{
    return store_known_holds(s);
}

void
store_known_tx_done(struct store *s, enum store_tx what, bool ok, bool kept)
{
    switch (what) {
    case STORE_BEGIN:
    case STORE_BEGIN_IMMEDIATE:
        s->known.serial += ok ? 1 : 0;
        break;
    case STORE_COMMIT:
        /* Our commit moved the data version; nobody else could commit
         * meanwhile (the transaction held the write lock), so the state is
         * the one the facts were noted in. */
        s->known.open = kept && ok && data_version(s, &s->known.version_at);
        s->known.tx = 0;
        break;
    case STORE_ROLLBACK:
    case STORE_ROLLBACK_TO:
        s->known.open = false;
        break;
    case STORE_SAVEPOINT:
    case STORE_RELEASE:
        break;
    }
}

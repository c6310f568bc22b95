/* lots.c - lots: inserting by key, reading, moving the cached balance. */
#include "lots.h"

#include <string.h>

#include "internal.h"
#include "timeutil.h"

/* The columns every lot read selects, with its line's scope. */
#define LOT_COLS                                                                             \
    "l.id, l.allocation_id, l.line_idx, l.period_n, l.user_id, l.kind, l.tenant_id, l.unit,"  \
    " l.valid_from, l.valid_until, l.granted, l.unlimited, l.balance, l.used, l.adjusted,"    \
    " l.closed, l.created_at, coalesce(al.scope, '')"
#define LOT_FROM                                                                             \
    " FROM lot l LEFT JOIN allocation_line al ON al.allocation_id = l.allocation_id AND"     \
    " al.idx = l.line_idx"

static int
lot_read(sqlite3_stmt *st, struct lot_row *out, struct eng_error *err)
{
    memset(out, 0, sizeof *out);
    out->id = sq_col_int(st, 0);
    out->allocation_id = sq_col_int(st, 1);
    out->line_idx = (int)sq_col_int(st, 2);
    out->period_n = sq_col_int(st, 3);
    out->user_id = sq_col_int(st, 4);
    out->tenant_id = sq_col_int(st, 6);
    out->valid_from = sq_col_int(st, 8);
    out->valid_until = sq_col_int(st, 9);
    out->granted = sq_col_int(st, 10);
    out->unlimited = sq_col_int(st, 11) != 0;
    out->balance = sq_col_int(st, 12);
    out->used = sq_col_int(st, 13);
    out->adjusted = sq_col_int(st, 14);
    out->closed = sq_col_int(st, 15) != 0;
    out->created_at = sq_col_int(st, 16);
    if (sq_col_copy(st, 5, out->kind, sizeof out->kind, "lot kind", err) != 0 ||
        sq_col_copy(st, 7, out->unit, sizeof out->unit, "lot unit", err) != 0 ||
        sq_col_copy(st, 17, out->scope, sizeof out->scope, "lot scope", err) != 0) {
        return err->status;
    }
    return 0;
}

/* Steps a prepared single-row lot query into *out. */
static int
lot_one(struct store *s, sqlite3_stmt *st, struct lot_row *out, bool *found,
        struct eng_error *err)
{
    *found = false;
    int rc = sq_step(s, st, "lot", err);
    if (rc <= 0) {
        return rc;
    }
    rc = lot_read(st, out, err);
    sq_reset(st);
    *found = rc == 0;
    return rc;
}

int
store_lot_get(struct store *s, int64_t id, struct lot_row *out, bool *found,
              struct eng_error *err)
{
    STORE_SQL(q, "SELECT " LOT_COLS LOT_FROM " WHERE l.id = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    return lot_one(s, st, out, found, err);
}

int
store_lot_find(struct store *s, int64_t allocation_id, int line_idx, int64_t period_n,
               int64_t user_id, const char *kind, struct lot_row *out, bool *found,
               struct eng_error *err)
{
    STORE_SQL(q, "SELECT " LOT_COLS LOT_FROM " WHERE l.allocation_id = ? AND l.line_idx = ?"
                 " AND l.period_n = ? AND l.user_id = ? AND l.kind = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, allocation_id);
    sq_int(s, st, 2, line_idx);
    sq_int(s, st, 3, period_n);
    sq_int(s, st, 4, user_id);
    sq_text(s, st, 5, kind);
    return lot_one(s, st, out, found, err);
}

int
store_lot_insert(struct store *s, const struct lot_row *lot, int64_t *id, bool *created,
                 struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO lot (allocation_id, line_idx, period_n, user_id, kind, tenant_id,"
                 " unit, valid_from, valid_until, granted, unlimited, balance, created_at)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12)"
                 " ON CONFLICT DO NOTHING");
    *created = false;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, lot->allocation_id);
    sq_int(s, st, 2, lot->line_idx);
    sq_int(s, st, 3, lot->period_n);
    sq_int(s, st, 4, lot->user_id);
    sq_text(s, st, 5, lot->kind);
    sq_int(s, st, 6, lot->tenant_id);
    sq_text(s, st, 7, lot->unit);
    sq_int(s, st, 8, lot->valid_from);
    sq_int(s, st, 9, lot->valid_until);
    sq_int(s, st, 10, lot->granted);
    sq_int(s, st, 11, lot->unlimited);
    sq_int(s, st, 12, lot->created_at);
    int rc = sq_exec(s, st, "lot insert", err);
    if (rc != 0) {
        return rc;
    }
    if (sq_changes(s) == 1) {
        *id = sq_last_id(s);
        *created = true;
        return 0;
    }
    struct lot_row old;
    bool found = false;
    rc = store_lot_find(s, lot->allocation_id, lot->line_idx, lot->period_n, lot->user_id,
                        lot->kind, &old, &found, err);
    if (rc == 0 && !found) {
        /* The insert met a conflict, yet no row holds the key. */
        return eng_error_code(err, ENG_ESTORE, "storage_error", "lot key conflict without a lot");
    }
    *id = old.id;
    return rc;
}

int
store_lot_move(struct store *s, int64_t id, const char *kind, int64_t amount,
               struct eng_error *err)
{
    STORE_SQL(q, "UPDATE lot SET balance = balance + ?1,"
                 " used = used - CASE WHEN ?3 IN ('debit', 'refund') THEN ?1 ELSE 0 END,"
                 " adjusted = adjusted + CASE WHEN ?3 = 'adjust' THEN ?1 ELSE 0 END"
                 " WHERE id = ?2");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, amount);
    sq_int(s, st, 2, id);
    sq_text(s, st, 3, kind);
    /* The CHECK (balance >= 0) refusing is a programmer error upstream, but
     * it must never commit: it is a store failure like any other. */
    int rc = sq_exec(s, st, "lot balance", err);
    if (rc == 0 && sq_changes(s) != 1) {
        return eng_error_code(err, ENG_ESTORE, "storage_error", "lot %lld is missing",
                              (long long)id);
    }
    return rc;
}

int
store_lot_take(struct store *s, int64_t id, int64_t amount, int64_t expect, bool *taken,
               int64_t *balance, struct eng_error *err)
{
    /* OR FAIL (SQLite): a statement that may fail after writing part of
     * what it writes (here through the lot's generation trigger) runs in a
     * statement journal, a copy of every page it changes kept to undo it
     * alone (~1,000 instructions a page, with its allocations); OR FAIL
     * needs none.  This one row cannot be half-written (its CHECK is
     * tested before the row is), and a failure is a storage error that
     * rolls back the whole job.
     *
     * The balance it leaves: when the lot is expected to hold a balance
     * (the one this connection's last debit of it left, store/known.c, or
     * else the caller's `expect`), the debit is first made on that
     * condition, and its success proves the balance after (expected -
     * amount) without reading it.  Else
     * (or when the lot holds another balance now) the debit on the
     * condition that the lot holds enough, and the balance read after it:
     * not UPDATE ... RETURNING, which SQLite buffers in a temporary b-tree
     * built for each run; nor a function of ours noting the new balance in
     * the UPDATE, which makes SQLite keep a statement journal (a function
     * may fail).  PostgreSQL returns the balance (one round trip). */
    STORE_SQL_PG(q,
                 "UPDATE OR FAIL lot SET balance = balance - ?1, used = used + ?1"
                 " WHERE id = ?2 AND closed = 0 AND (unlimited = 1 OR balance >= ?1)",
                 "UPDATE lot SET balance = balance - ?1, used = used + ?1"
                 " WHERE id = ?2 AND closed = 0 AND (unlimited = 1 OR balance >= ?1)"
                 " RETURNING balance");
    STORE_SQL(q_exact, "UPDATE OR FAIL lot SET balance = ?3 - ?1, used = used + ?1"
                       " WHERE id = ?2 AND closed = 0 AND balance = ?3");
    STORE_SQL(after, "SELECT balance FROM lot WHERE id = ?");
    *taken = false;
    *balance = 0;
    sqlite3_stmt *st = NULL;
    int64_t known = 0;
    if (s->pg == NULL && store_known_lot(s, id, &known)) {
        expect = known;
    }
    s->known.taking = id; /* its own change: not one that makes it unknown */
    if (s->pg == NULL && expect >= amount) {
        st = sq_prep(s, &q_exact, err);
        if (st == NULL) {
            s->known.taking = 0;
            return err->status;
        }
        sq_int(s, st, 1, amount);
        sq_int(s, st, 2, id);
        sq_int(s, st, 3, expect);
        int rc = sq_exec(s, st, "lot take", err);
        if (rc != 0 || sq_changes(s) == 1) {
            s->known.taking = 0;
            if (rc == 0) {
                *balance = expect - amount;
                *taken = true;
                store_known_lot_note(s, id, *balance);
            }
            return rc;
        }
    }
    st = sq_prep(s, &q, err);
    if (st == NULL) {
        s->known.taking = 0;
        return err->status;
    }
    sq_int(s, st, 1, amount);
    sq_int(s, st, 2, id);
    if (s->pg != NULL) {
        s->known.taking = 0;
        int rc = sq_step(s, st, "lot take", err);
        if (rc <= 0) {
            return rc; /* 0: the lot does not hold it (or is closed, or gone) */
        }
        *balance = sq_col_int(st, 0);
        *taken = true;
        sq_reset(st);
        return 0;
    }
    int rc = sq_exec(s, st, "lot take", err);
    s->known.taking = 0;
    if (rc != 0 || sq_changes(s) != 1) {
        return rc; /* 0: the lot does not hold it (or is closed, or gone) */
    }
    bool found = false;
    if (sq_lookup(s, &after, id, "lot balance", balance, &found, err) != 0) {
        return err->status;
    }
    if (!found) {
        return eng_error_code(err, ENG_ESTORE, "storage_error", "lot %lld is missing",
                              (long long)id);
    }
    *taken = true;
    store_known_lot_note(s, id, *balance);
    return 0;
}

int
store_lot_close(struct store *s, int64_t id, struct eng_error *err)
{
    STORE_SQL(q, "UPDATE lot SET closed = 1 WHERE id = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    return sq_exec(s, st, "lot close", err);
}

int
store_lots_end_before(struct store *s, int64_t allocation_id, int64_t until,
                      struct eng_error *err)
{
    STORE_SQL(q, "UPDATE lot SET valid_until = ? WHERE allocation_id = ? AND closed = 0"
                 " AND valid_until > ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, until);
    sq_int(s, st, 2, allocation_id);
    sq_int(s, st, 3, until);
    return sq_exec(s, st, "lot end", err);
}

int
store_lot_next_end(struct store *s, int64_t after, int64_t *t, struct eng_error *err)
{
    STORE_SQL(q, "SELECT min(valid_until) FROM lot WHERE closed = 0 AND valid_until > ?");
    return sq_scalar(s, &q, after, TIME_NEVER, t, err);
}

/* Steps a prepared lot query and calls cb per row. */
static int
lots_loop(struct store *s, sqlite3_stmt *st, const char *what,
          int (*cb)(void *ud, const struct lot_row *lot), void *ud, struct eng_error *err)
{
    int rc;
    while ((rc = sq_step(s, st, what, err)) == 1) {
        struct lot_row lot;
        int stop = lot_read(st, &lot, err);
        if (stop == 0) {
            stop = cb(ud, &lot);
        }
        if (stop != 0) {
            sq_reset(st);
            return stop;
        }
    }
    return rc;
}

int
store_lots_each(struct store *s, const struct lot_filter *f,
                int (*cb)(void *ud, const struct lot_row *lot), void *ud, struct eng_error *err)
{
    STORE_SQL(q, "SELECT " LOT_COLS LOT_FROM " WHERE (?1 IS NULL OR l.allocation_id = ?1) AND"
                 " (?2 IS NULL OR l.tenant_id = ?2) AND (?3 IS NULL OR l.user_id IN (0, ?3)) AND"
                 " (?4 IS NULL OR l.unit = ?4) AND l.valid_from >= ?5 AND"
                 " (?6 = 0 OR l.closed = 0) AND (?7 = 0 OR l.unlimited = 0)"
                 " ORDER BY l.valid_from, l.id");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    if (f->allocation_id != 0) {
        sq_int(s, st, 1, f->allocation_id);
    }
    if (f->tenant_id != 0) {
        sq_int(s, st, 2, f->tenant_id);
    }
    if (f->user_id >= 0) {
        sq_int(s, st, 3, f->user_id);
    }
    sq_text(s, st, 4, f->unit);
    sq_int(s, st, 5, f->from_min);
    sq_int(s, st, 6, f->open_only);
    sq_int(s, st, 7, f->limited_only);
    return lots_loop(s, st, "lots", cb, ud, err);
}

int
store_lots_closing_each(struct store *s, int64_t until,
                        int (*cb)(void *ud, const struct lot_row *lot), void *ud,
                        struct eng_error *err)
{
    STORE_SQL(q, "SELECT " LOT_COLS LOT_FROM " WHERE l.closed = 0 AND l.valid_until = ?"
                 " ORDER BY l.allocation_id, l.user_id, l.period_n, l.line_idx, l.kind DESC,"
                 " l.id");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, until);
    return lots_loop(s, st, "closing lots", cb, ud, err);
}

int
store_lot_edit_adjusted(struct store *s, int64_t id, int64_t *sum, struct eng_error *err)
{
    STORE_SQL(q, "SELECT coalesce(sum(amount), 0) FROM entry WHERE lot_id = ? AND kind = 'adjust'"
                 " AND (event_key LIKE 'alloc_edit:%' OR (event_key IS NULL AND"
                 " memo LIKE 'allocation edited (version %)'))");
    *sum = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    int rc = sq_step(s, st, "lot edit adjustments", err);
    if (rc <= 0) {
        return rc;
    }
    *sum = sq_col_int(st, 0);
    sq_reset(st);
    return 0;
}

int
store_lot_balance(struct store *s, int64_t id, int64_t *balance, bool *found,
                  struct eng_error *err)
{
    STORE_SQL(q, "SELECT balance FROM lot WHERE id = ?");
    *found = false;
    *balance = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    int rc = sq_step(s, st, "lot balance", err);
    if (rc <= 0) {
        return rc;
    }
    *balance = sq_col_int(st, 0);
    *found = true;
    sq_reset(st);
    return 0;
}

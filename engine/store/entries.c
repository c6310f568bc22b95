/* entries.c - appending and listing ledger entries. */
#include "entries.h"

#include <string.h>

#include "internal.h"
#include "usage.h"

static const char *
col_opt(sqlite3_stmt *st, int col)
{
    return sq_col_null(st, col) ? NULL : sq_col_text(st, col);
}

int
store_entry_insert(struct store *s, const struct entry_row *e, int64_t *id,
                   struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO entry (lot_id, kind, amount, effective_at, created_at, booking_id,"
                 " tenant_id, unit, event_key, policy_version, memo, actor)"
                 " SELECT id, ?2, ?3, ?4, ?5, ?6, tenant_id, unit, ?7, ?8, ?9, ?10"
                 " FROM lot WHERE id = ?1");
    /* The lot's tenant and unit known (a plan's debit): one row of VALUES.
     * Besides the lot's read, this spares SQLite a statement journal: an
     * INSERT ... SELECT may write several rows, so SQLite keeps a copy of
     * every page it changes, to undo it alone should a later row fail; a
     * one-row insert cannot fail half-way (its foreign key still refuses a
     * missing lot). */
    STORE_SQL(q_known, "INSERT INTO entry (lot_id, kind, amount, effective_at, created_at,"
                       " booking_id, tenant_id, unit, event_key, policy_version, memo, actor)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?11, ?12, ?7, ?8, ?9, ?10)");
    bool known = e->usage != NULL && e->usage->tenant_id != 0 && e->usage->unit != NULL;
    sqlite3_stmt *st = sq_prep(s, known ? &q_known : &q, err);
    if (st == NULL) {
        return err->status;
    }
    if (known) {
        sq_int(s, st, 11, e->usage->tenant_id);
        sq_text_static(s, st, 12, e->usage->unit);
    }
    sq_int(s, st, 1, e->lot_id);
    sq_text_static(s, st, 2, e->kind);
    sq_int(s, st, 3, e->amount);
    sq_int(s, st, 4, e->effective_at);
    sq_int(s, st, 5, e->created_at);
    if (e->booking_id != 0) {
        sq_int(s, st, 6, e->booking_id);
    } else {
        sq_null(s, st, 6);
    }
    sq_text_static(s, st, 7, e->event_key);
    sq_text_static(s, st, 8, e->policy_version);
    sq_text_static(s, st, 9, e->memo);
    sq_text_static(s, st, 10, e->actor);
    int rc = sq_exec(s, st, "entry insert", err);
    if (rc != 0) {
        return rc;
    }
    if (sq_changes(s) != 1) {
        return eng_error_code(err, ENG_ESTORE, "storage_error", "entry on missing lot %lld",
                              (long long)e->lot_id);
    }
    *id = sq_last_id(s);
    if (e->booking_id != 0 && (strcmp(e->kind, "debit") == 0 || strcmp(e->kind, "refund") == 0)) {
        /* The usage counters move with the entry, in its transaction. */
        if (e->usage != NULL) {
            return e->usage->shared ? store_usage_add(s, e->usage->user_id, e->usage->unit,
                                                      e->usage->start_at, e->usage->zones,
                                                      -e->amount, err)
                                    : 0;
        }
        return store_usage_entry(s, e->lot_id, e->booking_id, e->amount, err);
    }
    return 0;
}

int
store_entries_list(struct store *s, const struct entry_filter *f,
                   int (*cb)(void *ud, const struct entry_row *e), void *ud,
                   struct eng_error *err)
{
    STORE_SQL(q, "SELECT e.id, e.lot_id, l.allocation_id, e.tenant_id, e.kind, e.amount, e.unit,"
                 " e.effective_at, e.created_at, e.booking_id, e.event_key, e.policy_version,"
                 " e.memo, e.actor FROM entry e JOIN lot l ON l.id = e.lot_id WHERE e.id > ?1 AND"
                 " (?2 IS NULL OR e.tenant_id = ?2) AND (?3 IS NULL OR e.lot_id = ?3) AND"
                 " (?4 IS NULL OR e.booking_id = ?4) AND (?5 IS NULL OR e.kind = ?5) AND"
                 " e.effective_at >= ?6 AND e.effective_at < ?7 ORDER BY e.id LIMIT ?8");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, f->after);
    if (f->tenant_id != 0) {
        sq_int(s, st, 2, f->tenant_id);
    }
    if (f->lot_id != 0) {
        sq_int(s, st, 3, f->lot_id);
    }
    if (f->booking_id != 0) {
        sq_int(s, st, 4, f->booking_id);
    }
    sq_text(s, st, 5, f->kind);
    sq_int(s, st, 6, f->from);
    sq_int(s, st, 7, f->to);
    sq_int(s, st, 8, f->limit);
    int rc;
    while ((rc = sq_step(s, st, "entries", err)) == 1) {
        struct entry_row e = {
            .id = sq_col_int(st, 0),
            .lot_id = sq_col_int(st, 1),
            .allocation_id = sq_col_int(st, 2),
            .tenant_id = sq_col_int(st, 3),
            .kind = sq_col_text(st, 4),
            .amount = sq_col_int(st, 5),
            .unit = sq_col_text(st, 6),
            .effective_at = sq_col_int(st, 7),
            .created_at = sq_col_int(st, 8),
            .booking_id = sq_col_null(st, 9) ? 0 : sq_col_int(st, 9),
            .event_key = col_opt(st, 10),
            .policy_version = col_opt(st, 11),
            .memo = col_opt(st, 12),
            .actor = col_opt(st, 13),
        };
        int stop = cb(ud, &e);
        if (stop != 0) {
            sq_reset(st);
            return stop;
        }
    }
    return rc;
}

int
store_entry_lot(struct store *s, int64_t id, int64_t *lot_id, bool *found,
                struct eng_error *err)
{
    STORE_SQL(q, "SELECT lot_id FROM entry WHERE id = ?");
    return sq_lookup(s, &q, id, "entry lot", lot_id, found, err);
}

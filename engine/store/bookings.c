/* bookings.c - the booking table and the ledger joins only bookings use. */
#include "bookings.h"

#include <string.h>

#include "internal.h"

/* Every booking query selects these columns, in this order. */
#define BOOKING_COLS                                                                          \
    "id, resource_id, building_id, tenant_id, user_id, start_at, end_at, status,"            \
    " payment_method, coalesce(unit, ''), credits, money, money_before_discount, currency,"  \
    " discount_pm, credits_refunded, money_refunded, policy_versions, created_at,"           \
    " cancelled_at, coalesce(cancelled_by_admin, 0), cancel_reason"

void
store_booking_clear(struct booking_row *b)
{
    json_decref(b->policy_versions);
    b->policy_versions = NULL;
}

/* Fills `out` from a statement on a row of BOOKING_COLS; on failure
 * nothing stays owned by out. */
static int
read_row(sqlite3_stmt *st, struct booking_row *out, struct eng_error *err)
{
    memset(out, 0, sizeof *out);
    out->id = sq_col_int(st, 0);
    out->resource_id = sq_col_int(st, 1);
    out->building_id = sq_col_int(st, 2);
    out->tenant_id = sq_col_int(st, 3);
    out->user_id = sq_col_int(st, 4);
    out->start_at = sq_col_int(st, 5);
    out->end_at = sq_col_int(st, 6);
    out->has_credits = !sq_col_null(st, 10);
    out->credits = sq_col_int(st, 10);
    out->has_money = !sq_col_null(st, 11);
    out->money = sq_col_int(st, 11);
    out->money_before_discount = sq_col_int(st, 12);
    out->discount_pm = sq_col_int(st, 14);
    out->credits_refunded = sq_col_int(st, 15);
    out->money_refunded = sq_col_int(st, 16);
    out->created_at = sq_col_int(st, 18);
    out->cancelled = !sq_col_null(st, 19);
    out->cancelled_at = sq_col_int(st, 19);
    out->cancelled_by_admin = sq_col_int(st, 20) != 0;
    out->has_reason = !sq_col_null(st, 21);
    int rc = sq_col_copy(st, 7, out->status, sizeof out->status, "booking status", err);
    if (rc == 0) {
        rc = sq_col_copy(st, 8, out->payment_method, sizeof out->payment_method,
                         "booking payment method", err);
    }
    if (rc == 0) {
        rc = sq_col_copy(st, 9, out->unit, sizeof out->unit, "booking unit", err);
    }
    if (rc == 0) {
        rc = sq_col_copy(st, 13, out->currency, sizeof out->currency, "booking currency", err);
    }
    if (rc == 0 && out->has_reason) {
        rc = sq_col_copy(st, 21, out->cancel_reason, sizeof out->cancel_reason,
                         "booking cancel reason", err);
    }
    if (rc == 0) {
        out->policy_versions = json_loads(sq_col_text(st, 17), 0, NULL);
        if (out->policy_versions == NULL) {
            rc = eng_error_code(err, ENG_ESTORE, "storage_error",
                                "booking %lld: unreadable policy versions",
                                (long long)out->id);
        }
    }
    return rc;
}

int
store_booking_get(struct store *s, int64_t id, struct booking_row *out, bool *found,
                  struct eng_error *err)
{
    STORE_SQL(q, "SELECT " BOOKING_COLS " FROM booking WHERE id = ?");
    memset(out, 0, sizeof *out);
    *found = false;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    int rc = sq_step(s, st, "booking", err);
    if (rc <= 0) {
        return rc;
    }
    rc = read_row(st, out, err);
    sq_reset(st);
    *found = rc == 0;
    return rc;
}

/* Steps a bound statement of BOOKING_COLS rows, calling cb for each. */
static int
rows_each(struct store *s, sqlite3_stmt *st, const char *what,
          int (*cb)(void *ud, const struct booking_row *row), void *ud, struct eng_error *err)
{
    int rc;
    while ((rc = sq_step(s, st, what, err)) == 1) {
        struct booking_row row;
        rc = read_row(st, &row, err);
        if (rc == 0) {
            rc = cb(ud, &row);
        }
        store_booking_clear(&row);
        if (rc != 0) {
            sq_reset(st);
            return rc;
        }
    }
    return rc;
}

int
store_bookings_list(struct store *s, const struct booking_filter *f, int64_t after, int limit,
                    int (*cb)(void *ud, const struct booking_row *row), void *ud,
                    struct eng_error *err)
{
    STORE_SQL(q, "SELECT " BOOKING_COLS " FROM booking WHERE id > ?1"
                 " AND (?2 IS NULL OR tenant_id = ?2) AND (?3 IS NULL OR user_id = ?3)"
                 " AND (?4 IS NULL OR resource_id = ?4) AND (?5 IS NULL OR building_id = ?5)"
                 " AND start_at < ?7 AND end_at > ?6 AND (?8 IS NULL OR status = ?8)"
                 " ORDER BY id LIMIT ?9");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    const int64_t ids[] = {f->tenant_id, f->user_id, f->resource_id, f->building_id};
    sq_int(s, st, 1, after);
    for (int i = 0; i < 4; i++) {
        if (ids[i] != 0) {
            sq_int(s, st, i + 2, ids[i]);
        }
    }
    sq_int(s, st, 6, f->from);
    sq_int(s, st, 7, f->to);
    sq_text(s, st, 8, f->status);
    sq_int(s, st, 9, limit);
    return rows_each(s, st, "bookings list", cb, ud, err);
}

int
store_bookings_by_start(struct store *s, int64_t building_id, int64_t from, int64_t to,
                        int limit, int (*cb)(void *ud, const struct booking_row *row), void *ud,
                        struct eng_error *err)
{
    STORE_SQL(q, "SELECT " BOOKING_COLS " FROM booking WHERE building_id = ? AND"
                 " start_at >= ? AND start_at < ? ORDER BY start_at, id LIMIT ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, building_id);
    sq_int(s, st, 2, from);
    sq_int(s, st, 3, to);
    sq_int(s, st, 4, limit);
    return rows_each(s, st, "bookings by start", cb, ud, err);
}

int
store_booking_overlaps(struct store *s, int64_t resource_id, int64_t start, int64_t end,
                       int limit, int (*cb)(void *ud, const struct booking_overlap *o),
                       void *ud, int64_t *count, struct eng_error *err)
{
    /* The same index as the slot check, walked from the first booking
     * ending after the start: confirmed bookings of a resource never
     * overlap (the writer's slot check, PostgreSQL's exclusion constraint,
     * `allot verify`), so in end order they are also in start order, and
     * the first one starting at or after the end closes the list.  Later
     * bookings of the resource are not read, however many there are. */
    STORE_SQL(q, "SELECT id, start_at, end_at FROM booking INDEXED BY booking_slot"
                 " WHERE resource_id = ?1 AND status = 'confirmed' AND end_at > ?3"
                 " ORDER BY end_at, id");
    *count = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, resource_id);
    sq_int(s, st, 2, end);
    sq_int(s, st, 3, start);
    int rc;
    while ((rc = sq_step(s, st, "booking overlaps", err)) == 1) {
        if (sq_col_int(st, 1) >= end) {
            sq_reset(st);
            return 0;
        }
        if (*count < limit) {
            struct booking_overlap o = {sq_col_int(st, 0), sq_col_int(st, 1),
                                        sq_col_int(st, 2)};
            int crc = cb(ud, &o);
            if (crc != 0) {
                sq_reset(st);
                return crc;
            }
        }
        (*count)++;
    }
    return rc;
}

int
store_booking_recheck(struct store *s, int64_t resource_id, int64_t start, int64_t end,
                      int64_t user_id, const char *unit, const char *zone, int month,
                      struct booking_recheck *out, struct eng_error *err)
{
    STORE_SQL(q, "SELECT (SELECT n FROM portfolio_generation),"
                 " (SELECT used FROM usage_month WHERE user_id = ?4 AND unit = ?5 AND zone = ?6"
                 " AND month = ?7),"
                 " COALESCE((SELECT CASE WHEN start_at < ?2 THEN 1 ELSE 0 END"
                 " FROM booking INDEXED BY booking_slot WHERE resource_id = ?1"
                 " AND status = 'confirmed' AND end_at > ?3 ORDER BY end_at LIMIT 1), 0),"
                 " (SELECT count(*) FROM usage_zone)");
    memset(out, 0, sizeof *out);
    out->taken = true; /* until the check has run */
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, resource_id);
    sq_int(s, st, 2, end);
    sq_int(s, st, 3, start);
    sq_int(s, st, 4, user_id);
    sq_text_static(s, st, 5, unit);
    sq_text_static(s, st, 6, zone);
    sq_int(s, st, 7, month);
    int rc = sq_step(s, st, "booking recheck", err);
    if (rc < 0) {
        return rc;
    }
    if (rc == 0 || sq_col_null(st, 0)) {
        if (rc == 1) {
            sq_reset(st);
        }
        return eng_error_code(err, ENG_ESTORE, "storage_error",
                              "the portfolio generation row is missing");
    }
    out->generation = sq_col_int(st, 0);
    out->usage_found = !sq_col_null(st, 1);
    out->usage = out->usage_found ? sq_col_int(st, 1) : 0;
    out->taken = sq_col_int(st, 2) != 0;
    out->zones = (int)sq_col_int(st, 3);
    sq_reset(st);
    return 0;
}

int
store_booking_slot_taken(struct store *s, int64_t resource_id, int64_t start, int64_t end,
                         bool *taken, struct eng_error *err)
{
    /* By end time, one index entry: confirmed bookings of a resource never
     * overlap, so the first one ending after this start is the only one
     * that can overlap [start, end): it does when it starts before the
     * end.  Earlier history and later bookings are not read (a slot check
     * used to scan every booking ending after the start, so a quote for
     * next week read all of the resource's bookings further ahead). */
    STORE_SQL(q, "SELECT CASE WHEN start_at < ?2 THEN 1 ELSE 0 END FROM booking"
                 " INDEXED BY booking_slot WHERE resource_id = ?1 AND status = 'confirmed'"
                 " AND end_at > ?3 ORDER BY end_at LIMIT 1");
    *taken = true; /* until the check has run to its end */
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, resource_id);
    sq_int(s, st, 2, end);
    sq_int(s, st, 3, start);
    int rc = sq_step(s, st, "booking slot", err);
    if (rc < 0) {
        return rc;
    }
    *taken = rc == 1 && sq_col_int(st, 0) != 0;
    if (rc == 1) {
        sq_reset(st);
    }
    return 0;
}

int
store_booking_insert(struct store *s, const struct booking_new *b, int64_t *id,
                     struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO booking (resource_id, building_id, tenant_id, user_id, start_at,"
                 " end_at, status, payment_method, unit, credits, money, money_before_discount,"
                 " currency, discount_pm, policy_versions, created_at, created_by)"
                 " VALUES (?,?,?,?,?,?,'confirmed',?,?,?,?,?,?,?,?,?,?)");
    *id = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, b->resource_id);
    sq_int(s, st, 2, b->building_id);
    sq_int(s, st, 3, b->tenant_id);
    sq_int(s, st, 4, b->user_id);
    sq_int(s, st, 5, b->start_at);
    sq_int(s, st, 6, b->end_at);
    sq_text_static(s, st, 7, b->payment_method);
    sq_text_static(s, st, 8, b->unit);
    if (b->has_credits) {
        sq_int(s, st, 9, b->credits);
    }
    if (b->has_money) {
        sq_int(s, st, 10, b->money);
        sq_int(s, st, 11, b->money_before_discount);
    }
    sq_text_static(s, st, 12, b->currency);
    sq_int(s, st, 13, b->discount_pm);
    sq_text_static(s, st, 14, b->policy_versions);
    sq_int(s, st, 15, b->created_at);
    sq_text_static(s, st, 16, b->created_by);
    int rc = sq_exec(s, st, "booking insert", err);
    if (rc == 0) {
        *id = sq_last_id(s);
    }
    return rc;
}

int
store_booking_cancel(struct store *s, const struct booking_cancel *c, struct eng_error *err)
{
    STORE_SQL(q, "UPDATE booking SET status = 'cancelled', credits_refunded = ?,"
                 " money_refunded = ?, cancelled_at = ?, cancelled_by = ?, cancel_reason = ?,"
                 " cancelled_by_admin = ? WHERE id = ? AND status = 'confirmed'");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, c->credits_refunded);
    sq_int(s, st, 2, c->money_refunded);
    sq_int(s, st, 3, c->cancelled_at);
    sq_text(s, st, 4, c->cancelled_by);
    sq_text(s, st, 5, c->reason);
    sq_int(s, st, 6, c->by_admin ? 1 : 0);
    sq_int(s, st, 7, c->id);
    int rc = sq_exec(s, st, "booking cancel", err);
    if (rc == 0 && sq_changes(s) != 1) {
        rc = eng_error_code(err, ENG_ECONFLICT, "already_cancelled",
                            "the booking is already cancelled");
    }
    return rc;
}

int
store_booking_debits_each(struct store *s, int64_t booking_id, int64_t now, bool newest_first,
                          int (*cb)(void *ud, const struct booking_debit *d), void *ud,
                          struct eng_error *err)
{
    STORE_SQL(q_old, "SELECT e.id, e.lot_id, -e.amount, (l.closed = 1 OR l.valid_until <= ?1)"
                     " AND l.unlimited = 0, l.valid_until"
                     " FROM entry e JOIN lot l ON l.id = e.lot_id"
                     " WHERE e.booking_id = ?2 AND e.kind = 'debit' ORDER BY e.id");
    STORE_SQL(q_new, "SELECT e.id, e.lot_id, -e.amount, (l.closed = 1 OR l.valid_until <= ?1)"
                     " AND l.unlimited = 0, l.valid_until"
                     " FROM entry e JOIN lot l ON l.id = e.lot_id"
                     " WHERE e.booking_id = ?2 AND e.kind = 'debit' ORDER BY e.id DESC");
    sqlite3_stmt *st = sq_prep(s, newest_first ? &q_new : &q_old, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, now);
    sq_int(s, st, 2, booking_id);
    int rc;
    while ((rc = sq_step(s, st, "booking debits", err)) == 1) {
        struct booking_debit d = {
            .entry_id = sq_col_int(st, 0),
            .lot_id = sq_col_int(st, 1),
            .amount = sq_col_int(st, 2),
            .lot_expired = sq_col_int(st, 3) != 0,
            .lot_until = sq_col_int(st, 4),
        };
        int stop = cb(ud, &d);
        if (stop != 0) {
            sq_reset(st);
            return stop;
        }
    }
    return rc;
}

int
store_booking_user_usage(struct store *s, int64_t user_id, int64_t from, int64_t to,
                         const char *unit, int64_t *out, struct eng_error *err)
{
    STORE_SQL(q, "SELECT coalesce(-sum(e.amount), 0) FROM booking b"
                 " JOIN entry e ON e.booking_id = b.id JOIN lot l ON l.id = e.lot_id"
                 " WHERE b.user_id = ?1 AND b.start_at >= ?2 AND b.start_at < ?3 AND"
                 " e.kind IN ('debit', 'refund') AND l.user_id = 0 AND l.unit = ?4");
    *out = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, user_id);
    sq_int(s, st, 2, from);
    sq_int(s, st, 3, to);
    sq_text(s, st, 4, unit);
    int rc = sq_step(s, st, "user usage", err);
    if (rc < 0) {
        return rc;
    }
    if (rc == 1) {
        *out = sq_col_int(st, 0);
        sq_reset(st);
    }
    return 0;
}

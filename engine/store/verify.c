/* verify.c - the ledger's invariants (PRODUCT.md §9) as queries.  Each check
 * is one query listing offending rows as text; nothing here writes. */
#include "verify.h"

#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "usage.h"

struct check {
    const char *what;
    const char *sql; /* rows: one text column describing the problem */
};

#define IMMUTABLE_CHECK "entries are immutable"
/* Its PostgreSQL text reads the catalogue directly, so that a read-only
 * verify needs nothing a writer creates (the driver's shims, store_pg.c). */
static const char immutable_pg[] =
    "SELECT 'the trigger ' || n || ' is missing' FROM (SELECT 'entry_no_update' AS n UNION"
    " ALL SELECT 'entry_no_delete') WHERE n NOT IN (SELECT tgname::text FROM pg_trigger"
    " WHERE tgrelid = to_regclass('entry') AND NOT tgisinternal)";

static const struct check checks[] = {
    {"lot balance equals the sum of its entries",
     "SELECT 'lot_' || l.id || ': balance ' || l.balance || ' but entries sum to ' ||"
     " coalesce(e.s, 0) FROM lot l LEFT JOIN (SELECT lot_id, sum(amount) AS s FROM entry"
     " GROUP BY lot_id) e ON e.lot_id = l.id WHERE l.balance != coalesce(e.s, 0)"},
    {"a lot's usage and adjustment totals match its entries",
     "SELECT 'lot_' || l.id || ': used ' || l.used || '/' || coalesce(e.u, 0) ||"
     " ', adjusted ' || l.adjusted || '/' || coalesce(e.a, 0) FROM lot l LEFT JOIN"
     " (SELECT lot_id, -sum(CASE WHEN kind IN ('debit', 'refund') THEN amount ELSE 0 END) AS u,"
     " sum(CASE WHEN kind = 'adjust' THEN amount ELSE 0 END) AS a FROM entry GROUP BY lot_id) e"
     " ON e.lot_id = l.id WHERE l.used != coalesce(e.u, 0) OR l.adjusted != coalesce(e.a, 0)"},
    {"no limited lot below zero",
     "SELECT 'lot_' || id || ': negative balance ' || balance FROM lot"
     " WHERE unlimited = 0 AND balance < 0"},
    {"unlimited lots only record usage",
     "SELECT 'lot_' || id || ': unlimited lot with a positive balance' FROM lot"
     " WHERE unlimited = 1 AND balance > 0"},
    {"a closed lot holds nothing",
     "SELECT 'lot_' || id || ': closed with balance ' || balance FROM lot"
     " WHERE closed = 1 AND unlimited = 0 AND balance != 0"},
    {"every period lot has exactly one grant of its amount",
     "SELECT 'lot_' || l.id || ': grants ' || count(e.id) || ' summing ' ||"
     " coalesce(sum(e.amount), 0) || ', expected ' || l.granted FROM lot l LEFT JOIN entry e"
     " ON e.lot_id = l.id AND e.kind = 'grant' WHERE l.kind = 'period' GROUP BY l.id"
     " HAVING count(e.id) != 1 OR sum(e.amount) != (CASE WHEN l.unlimited = 1 THEN 0 ELSE"
     " l.granted END)"},
    {"grants only on period lots",
     "SELECT 'ent_' || e.id || ': a grant on lot_' || l.id || ', a ' || l.kind || ' lot'"
     " FROM entry e JOIN lot l ON l.id = e.lot_id WHERE e.kind = 'grant' AND"
     " l.kind != 'period'"},
    {"a rollover lot receives exactly what the previous period gave up",
     "SELECT 'lot_' || r.id || ': rollover_in ' || coalesce((SELECT sum(amount) FROM entry"
     " WHERE lot_id = r.id AND kind = 'rollover_in'), 0) || ' but rollover_out ' ||"
     " coalesce((SELECT -sum(e.amount) FROM entry e JOIN lot p ON p.id = e.lot_id WHERE"
     " e.kind = 'rollover_out' AND p.allocation_id = r.allocation_id AND p.line_idx ="
     " r.line_idx AND p.user_id = r.user_id AND p.period_n = r.period_n - 1), 0) FROM lot r"
     " WHERE r.kind = 'rollover' AND coalesce((SELECT sum(amount) FROM entry WHERE"
     " lot_id = r.id AND kind = 'rollover_in'), 0) != coalesce((SELECT -sum(e.amount) FROM"
     " entry e JOIN lot p ON p.id = e.lot_id WHERE e.kind = 'rollover_out' AND"
     " p.allocation_id = r.allocation_id AND p.line_idx = r.line_idx AND p.user_id ="
     " r.user_id AND p.period_n = r.period_n - 1), 0)"},
    /* The cap is on the carried total of an owner's lots of the
     * allocation (PRODUCT.md §3), every line together. */
    {"a rollover never exceeds its cap",
     "SELECT 'alc_' || r.allocation_id || ' period ' || r.period_n || ' owner ' || r.user_id ||"
     " ': carried ' || sum(r.granted) || ' above the cap ' || max(a.rollover_cap) FROM lot r"
     " JOIN allocation a ON a.id = r.allocation_id WHERE r.kind = 'rollover' AND"
     " a.rollover_cap IS NOT NULL GROUP BY r.allocation_id, r.period_n, r.user_id"
     " HAVING sum(r.granted) > max(a.rollover_cap)"},
    {"a credit booking's debits equal its price",
     "SELECT 'bkg_' || b.id || ': price ' || b.credits || ' but debits ' ||"
     " coalesce(d.s, 0) FROM booking b LEFT JOIN (SELECT booking_id, -sum(amount) AS s"
     " FROM entry WHERE kind = 'debit' GROUP BY booking_id) d ON d.booking_id = b.id"
     " WHERE b.payment_method = 'credits' AND coalesce(d.s, 0) != b.credits"},
    {"refunds never exceed what was paid, lot by lot",
     "SELECT 'bkg_' || r.booking_id || ': refunded ' || r.s || ' into lot_' || r.lot_id ||"
     " ' which it paid ' || coalesce(d.s, 0) FROM (SELECT booking_id, lot_id, sum(amount) AS s"
     " FROM entry WHERE kind = 'refund' GROUP BY booking_id, lot_id) r LEFT JOIN"
     " (SELECT booking_id, lot_id, -sum(amount) AS s FROM entry WHERE kind = 'debit'"
     " GROUP BY booking_id, lot_id) d ON d.booking_id = r.booking_id AND d.lot_id = r.lot_id"
     " WHERE r.s > coalesce(d.s, 0)"},
    {"a booking's recorded refund matches its refund entries",
     "SELECT 'bkg_' || b.id || ': credits_refunded ' || b.credits_refunded || ' but entries '"
     " || coalesce(r.s, 0) FROM booking b LEFT JOIN (SELECT booking_id, sum(amount) AS s"
     " FROM entry WHERE kind = 'refund' GROUP BY booking_id) r ON r.booking_id = b.id"
     " WHERE b.credits_refunded != coalesce(r.s, 0) OR"
     " (b.status = 'confirmed' AND b.credits_refunded != 0)"},
    /* One pass per resource in start order: a booking overlaps an earlier
     * one exactly when it starts before the latest end seen so far (a
     * self-join would be quadratic in the bookings of a resource). */
    {"no resource is double-booked",
     "SELECT 'bkg_' || id || ' on res_' || resource_id || ' starts at ' || start_at ||"
     " ' before an earlier confirmed booking ends at ' || prev_end FROM (SELECT id,"
     " resource_id, start_at, max(end_at) OVER (PARTITION BY resource_id ORDER BY start_at,"
     " id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end FROM booking"
     " WHERE status = 'confirmed') WHERE start_at < prev_end"},
    {"every entry belongs to its lot's tenant and unit",
     "SELECT 'ent_' || e.id || ': tenant/unit differ from lot_' || l.id FROM entry e"
     " JOIN lot l ON l.id = e.lot_id WHERE e.tenant_id != l.tenant_id OR e.unit != l.unit"},
    {"debits and refunds carry their booking",
     "SELECT 'ent_' || id || ': ' || kind || ' without a booking' FROM entry"
     " WHERE kind IN ('debit', 'refund') AND booking_id IS NULL"},
    {IMMUTABLE_CHECK,
     "SELECT 'the trigger ' || n || ' is missing' FROM (SELECT 'entry_no_update' AS n UNION"
     " ALL SELECT 'entry_no_delete') WHERE n NOT IN (SELECT name FROM sqlite_master"
     " WHERE type = 'trigger')"},
};

#define SQL_CHECKS ((int)(sizeof checks / sizeof checks[0]))
#define USAGE_CHECK "usage counters equal the sum of their entries"

/* The checks as cached statements (either driver), filled once. */
static struct store_sql check_sql[sizeof checks / sizeof checks[0]];
static pthread_once_t check_sql_once = PTHREAD_ONCE_INIT;

static void
check_sql_fill(void)
{
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        check_sql[i].text = checks[i].sql;
        if (strcmp(checks[i].what, IMMUTABLE_CHECK) == 0) {
            check_sql[i].pg = immutable_pg;
        }
    }
}

int
store_verify_count(void)
{
    return SQL_CHECKS + 1; /* the SQL checks, then the usage counters */
}

struct usage_ud {
    int (*cb)(void *ud, int check, const char *what, const char *problem);
    void *ud;
};

static int
usage_problem(void *ud, const char *problem)
{
    struct usage_ud *u = ud;
    return u->cb == NULL ? 0 : u->cb(u->ud, SQL_CHECKS, USAGE_CHECK, problem);
}

int
store_verify(struct store *s, int (*cb)(void *ud, int check, const char *what,
                                        const char *problem),
             void *ud, int64_t counts[], struct eng_error *err)
{
    pthread_once(&check_sql_once, check_sql_fill);
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        sqlite3_stmt *st = sq_prep(s, &check_sql[i], err);
        if (st == NULL) {
            return err->status;
        }
        int64_t found = 0;
        int rc;
        while ((rc = sq_step(s, st, checks[i].what, err)) == 1) {
            found++;
            int stop = cb == NULL ? 0 : cb(ud, (int)i, checks[i].what, sq_col_text(st, 0));
            if (stop != 0) {
                sq_reset(st);
                return stop;
            }
        }
        if (rc < 0) {
            return rc;
        }
        if (counts != NULL) {
            counts[i] = found;
        }
    }
    struct usage_ud u = {cb, ud};
    int64_t found = 0;
    int rc = store_usage_verify(s, usage_problem, &u, &found, err);
    if (rc == 0 && counts != NULL) {
        counts[SQL_CHECKS] = found;
    }
    return rc;
}

const char *
store_verify_name(int check)
{
    if (check == SQL_CHECKS) {
        return USAGE_CHECK;
    }
    return check >= 0 && check < SQL_CHECKS ? checks[check].what : "";
}

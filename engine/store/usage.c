/* usage.c - the usage_month counters (see usage.h). */
#include "usage.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bookings.h"
#include "internal.h"
#include "timeutil.h"

/* The month bounds [from, to) of a zone last met by this thread, and the
 * month key they stand for: the month of an instant is the one whose
 * bounds hold it (below), so a second instant of the same month needs no
 * zone computation.  Zone rules do not change while the process runs. */
struct month_seen {
    char zone[TIME_ZONE_NAME_MAX + 1];
    int64_t from, to;
    int key;
};
#define MONTHS_SEEN 4
static _Thread_local struct month_seen months_seen[MONTHS_SEEN];
static _Thread_local unsigned months_seen_next;

static int month_bounds(const char *zone, int key, int64_t *from, int64_t *to,
                        struct eng_error *err);
static int month_key_compute(const char *zone, int64_t t, int *key, struct eng_error *err);

int
store_usage_month_key(const char *zone, int64_t t, int *key, struct eng_error *err)
{
    size_t zlen = strlen(zone);
    for (int i = 0; i < MONTHS_SEEN; i++) {
        const struct month_seen *m = &months_seen[i];
        if (m->to > m->from && t >= m->from && t < m->to && strcmp(m->zone, zone) == 0) {
            *key = m->key;
            return 0;
        }
    }
    int64_t from, to;
    if (month_key_compute(zone, t, key, err) != 0 ||
        month_bounds(zone, *key, &from, &to, err) != 0) {
        return err->status;
    }
    if (zlen < sizeof months_seen[0].zone && t >= from && t < to) {
        struct month_seen *m = &months_seen[months_seen_next++ % MONTHS_SEEN];
        memcpy(m->zone, zone, zlen + 1);
        m->from = from;
        m->to = to;
        m->key = *key;
    }
    return 0;
}

static int
month_key_compute(const char *zone, int64_t t, int *key, struct eng_error *err)
{
    struct civil_time lt;
    if (tz_local_time(zone, t, &lt, err) != 0) {
        return err->status;
    }
    struct civil_date first = {lt.year, lt.month, 1};
    /* The local date and the [midnight, midnight) bounds agree except where
     * clocks move over midnight: near a month's ends, the bounds decide. */
    if (lt.day == 1) {
        int64_t from;
        if (tz_local_midnight(zone, first, &from, err) != 0) {
            return err->status;
        }
        if (t < from) {
            first = date_add_months(first, -1);
        }
    } else if (lt.day >= 28) {
        int64_t to;
        struct civil_date next = date_add_months(first, 1);
        if (tz_local_midnight(zone, next, &to, err) != 0) {
            return err->status;
        }
        if (t >= to) {
            first = next;
        }
    }
    *key = first.year * 100 + first.month;
    return 0;
}

/* The month's bounds [from, to) in `zone`. */
static int
month_bounds(const char *zone, int key, int64_t *from, int64_t *to, struct eng_error *err)
{
    struct civil_date first = {key / 100, key % 100, 1};
    if (tz_local_midnight(zone, first, from, err) != 0 ||
        tz_local_midnight(zone, date_add_months(first, 1), to, err) != 0) {
        return err->status;
    }
    return 0;
}

static int
zone_listed(struct store *s, const char *zone, bool *listed, struct eng_error *err)
{
    STORE_SQL(q, "SELECT 1 FROM usage_zone WHERE zone = ?");
    *listed = false;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, zone);
    int rc = sq_step(s, st, "usage zone", err);
    if (rc < 0) {
        return rc;
    }
    if (rc == 1) {
        *listed = true;
        sq_reset(st);
    }
    return 0;
}

int
store_usage_get(struct store *s, int64_t user_id, const char *unit, const char *zone, int key,
                int64_t *used, struct eng_error *err)
{
    STORE_SQL(q, "SELECT used FROM usage_month WHERE user_id = ? AND unit = ? AND zone = ?"
                 " AND month = ?");
    *used = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, user_id);
    sq_text(s, st, 2, unit);
    sq_text(s, st, 3, zone);
    sq_int(s, st, 4, key);
    int rc = sq_step(s, st, "usage counter", err);
    if (rc < 0) {
        return rc;
    }
    if (rc == 1) {
        *used = sq_col_int(st, 0);
        sq_reset(st);
        return 0;
    }
    bool listed = false;
    if (zone_listed(s, zone, &listed, err) != 0) {
        return err->status;
    }
    if (listed) {
        return 0; /* nothing spent that month */
    }
    int64_t from, to;
    if (month_bounds(zone, key, &from, &to, err) != 0) {
        return err->status;
    }
    return store_booking_user_usage(s, user_id, from, to, unit, used, err);
}

/* Runs one of the counter statements, whose parameters are ?1 user,
 * ?2 unit, ?3 zone, ?4 month and ?5 delta. */
static int
counter_exec(struct store *s, struct store_sql *q, int64_t user_id, const char *unit,
             const char *zone, int key, int64_t delta, const char *what, struct eng_error *err)
{
    sqlite3_stmt *st = sq_prep(s, q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, user_id);
    sq_text(s, st, 2, unit);
    sq_text(s, st, 3, zone);
    sq_int(s, st, 4, key);
    sq_int(s, st, 5, delta);
    return sq_exec(s, st, what, err);
}

/* Adds `delta` to one counter.  On SQLite (one writer) an existing row
 * is updated in place, which costs one search instead of the upsert's
 * two; PostgreSQL always upserts (another node may insert the row
 * meanwhile). */
static int
counter_add(struct store *s, int64_t user_id, const char *unit, const char *zone, int key,
            int64_t delta, struct eng_error *err)
{
    /* SQLite only; OR FAIL as in month_add. */
    STORE_SQL(move, "UPDATE OR FAIL usage_month SET used = used + ?5"
                    " WHERE user_id = ?1 AND unit = ?2 AND zone = ?3 AND month = ?4");
    STORE_SQL(q, "INSERT INTO usage_month (user_id, unit, zone, month, used)"
                 " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, unit, zone, month)"
                 " DO UPDATE SET used = usage_month.used + excluded.used");
    if (s->pg == NULL) {
        if (counter_exec(s, &move, user_id, unit, zone, key, delta, "usage counter move",
                         err) != 0) {
            return err->status;
        }
        if (sq_changes(s) == 1) {
            return 0;
        }
    }
    return counter_exec(s, &q, user_id, unit, zone, key, delta, "usage counter add", err);
}

/* How far from UTC's a zone's month may begin: since 1970 every zone's
 * offset lies within -12 h .. +14 h, and a local midnight that a clock
 * change skips moves the month's start by that gap (an hour, two at most)
 * later still. */
#define MONTH_EDGE_S (16 * 3600)

bool
store_usage_month_everywhere(int64_t t, int *key)
{
    if (t < MONTH_EDGE_S) {
        return false; /* before 1970, local mean times reached further */
    }
    struct civil_date d = date_from_days(t / 86400);
    struct civil_date first = {d.year, d.month, 1};
    int64_t from = date_to_days(first) * 86400;
    int64_t to = date_to_days(date_add_months(first, 1)) * 86400;
    if (t < from + MONTH_EDGE_S || t >= to - MONTH_EDGE_S) {
        return false;
    }
    *key = d.year * 100 + d.month;
    return true;
}

/* Runs one of the all-zones statements: ?1 user, ?2 unit, ?3 month, ?4
 * delta. */
static int
month_exec(struct store *s, struct store_sql *q, int64_t user_id, const char *unit, int key,
           int64_t delta, const char *what, struct eng_error *err)
{
    sqlite3_stmt *st = sq_prep(s, q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, user_id);
    sq_text_static(s, st, 2, unit);
    sq_int(s, st, 3, key);
    sq_int(s, st, 4, delta);
    return sq_exec(s, st, what, err);
}

/* Adds `delta` to the user's month `key` in every listed zone, the month
 * being the same in all of them.  On SQLite, when the caller knows how
 * many zones are listed (`zones`, read in this transaction), one UPDATE
 * of the range (user, unit, month) moves the existing counters (one
 * search: the key puts the month before the zone); only when some zone
 * has none yet are the missing ones inserted.  Else one upsert over the
 * listed zones, which searches twice per zone (PostgreSQL always: another
 * node may insert a row meanwhile). */
static int
month_add(struct store *s, int64_t user_id, const char *unit, int key, int zones,
          int64_t delta, struct eng_error *err)
{
    /* SQLite only.  OR FAIL: no statement journal (store_lot_take); a
     * failure is a storage error and the job is rolled back whole. */
    STORE_SQL(q_move, "UPDATE OR FAIL usage_month SET used = used + ?4"
                      " WHERE user_id = ?1 AND unit = ?2 AND month = ?3");
    STORE_SQL(q_fill, "INSERT INTO usage_month (user_id, unit, zone, month, used)"
                      " SELECT ?1, ?2, zone, ?3, ?4 FROM usage_zone WHERE true"
                      " ON CONFLICT (user_id, unit, zone, month) DO NOTHING");
    STORE_SQL(q_all, "INSERT INTO usage_month (user_id, unit, zone, month, used)"
                     " SELECT ?1, ?2, zone, ?3, ?4 FROM usage_zone WHERE true"
                     " ON CONFLICT (user_id, unit, zone, month)"
                     " DO UPDATE SET used = usage_month.used + excluded.used");
    if (s->pg != NULL || zones <= 0) {
        return month_exec(s, &q_all, user_id, unit, key, delta, "usage counters add", err);
    }
    if (month_exec(s, &q_move, user_id, unit, key, delta, "usage counters move", err) != 0) {
        return err->status;
    }
    if (sq_changes(s) == zones) {
        return 0;
    }
    /* Every existing counter of the month was moved: the zones without
     * one get a row holding delta. */
    return month_exec(s, &q_fill, user_id, unit, key, delta, "usage counters fill", err);
}

/* Adds `delta` to the user's counters in every listed zone (or in `only`
 * when not NULL).  When the month is the same in every zone (but within
 * 16 hours of a UTC month's ends), month_add moves them all at once; else
 * each zone's month is computed and its counter moved on its own. */
static int
counters_add(struct store *s, int64_t user_id, const char *unit, int64_t start,
             const char *only, int zones, int64_t delta, struct eng_error *err)
{
    STORE_SQL(q, "SELECT zone FROM usage_zone ORDER BY zone");
    int key = 0;
    if (only == NULL && store_usage_month_everywhere(start, &key)) {
        return month_add(s, user_id, unit, key, zones, delta, err);
    }
    if (only != NULL) {
        if (store_usage_month_key(only, start, &key, err) != 0) {
            return err->status;
        }
        return counter_add(s, user_id, unit, only, key, delta, err);
    }
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    int rc;
    while ((rc = sq_step(s, st, "usage zones", err)) == 1) {
        char zone[TIME_ZONE_NAME_MAX + 1];
        if (sq_col_copy(st, 0, zone, sizeof zone, "usage zone", err) != 0 ||
            store_usage_month_key(zone, start, &key, err) != 0 ||
            counter_add(s, user_id, unit, zone, key, delta, err) != 0) {
            sq_reset(st);
            return err->status;
        }
    }
    return rc;
}

int
store_usage_add(struct store *s, int64_t user_id, const char *unit, int64_t start, int zones,
                int64_t delta, struct eng_error *err)
{
    return delta != 0 ? counters_add(s, user_id, unit, start, NULL, zones, delta, err) : 0;
}

int
store_usage_entry(struct store *s, int64_t lot_id, int64_t booking_id, int64_t amount,
                  struct eng_error *err)
{
    STORE_SQL(q, "SELECT b.user_id, b.start_at, l.unit FROM lot l, booking b"
                 " WHERE l.id = ?1 AND b.id = ?2 AND l.user_id = 0");
    if (amount == 0) {
        return 0;
    }
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, lot_id);
    sq_int(s, st, 2, booking_id);
    int rc = sq_step(s, st, "usage entry", err);
    if (rc <= 0) {
        return rc; /* a per-user lot: not counted */
    }
    int64_t user_id = sq_col_int(st, 0), start = sq_col_int(st, 1);
    char unit[8];
    rc = sq_col_copy(st, 2, unit, sizeof unit, "lot unit", err);
    sq_reset(st);
    if (rc != 0) {
        return rc;
    }
    return counters_add(s, user_id, unit, start, NULL, 0, -amount, err);
}

/* Each booking's net shared-lot usage per unit, in (user, unit, start)
 * order: what the counters are made of. */
#define USAGE_SOURCE_SQL                                                                      \
    "SELECT b.user_id, e.unit, b.start_at, -sum(e.amount) FROM entry e"                       \
    " JOIN lot l ON l.id = e.lot_id JOIN booking b ON b.id = e.booking_id"                    \
    " WHERE e.kind IN ('debit', 'refund') AND l.user_id = 0"                                  \
    " GROUP BY b.id, e.unit ORDER BY b.user_id, e.unit, b.start_at, b.id"

static int
zone_build(struct store *s, const char *zone, struct eng_error *err)
{
    STORE_SQL(q_clear, "DELETE FROM usage_month WHERE zone = ?");
    STORE_SQL(q_src, USAGE_SOURCE_SQL);
    sqlite3_stmt *st = sq_prep(s, &q_clear, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, zone);
    if (sq_exec(s, st, "usage clear", err) != 0) {
        return err->status;
    }
    st = sq_prep(s, &q_src, err);
    if (st == NULL) {
        return err->status;
    }
    int rc;
    while ((rc = sq_step(s, st, "usage source", err)) == 1) {
        char unit[8];
        if (sq_col_copy(st, 1, unit, sizeof unit, "entry unit", err) != 0 ||
            counters_add(s, sq_col_int(st, 0), unit, sq_col_int(st, 2), zone, 0,
                         sq_col_int(st, 3), err) != 0) {
            sq_reset(st);
            return err->status;
        }
    }
    return rc;
}

int
store_usage_zone_add(struct store *s, const char *zone, struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO usage_zone (zone) VALUES (?) ON CONFLICT DO NOTHING");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, zone);
    if (sq_exec(s, st, "usage zone add", err) != 0) {
        return err->status;
    }
    if (sq_changes(s) == 0) {
        return 0; /* listed already: its counters are up to date */
    }
    return zone_build(s, zone, err);
}

int
store_usage_rebuild(struct store *s, struct eng_error *err)
{
    STORE_SQL(q_list, "INSERT INTO usage_zone (zone) SELECT DISTINCT timezone FROM building"
                      " WHERE true ON CONFLICT DO NOTHING");
    STORE_SQL(q_zones, "SELECT zone FROM usage_zone ORDER BY zone");
    sqlite3_stmt *st = sq_prep(s, &q_list, err);
    if (st == NULL || sq_exec(s, st, "usage zones list", err) != 0) {
        return err->status;
    }
    st = sq_prep(s, &q_zones, err);
    if (st == NULL) {
        return err->status;
    }
    int rc;
    while ((rc = sq_step(s, st, "usage zones", err)) == 1) {
        char zone[TIME_ZONE_NAME_MAX + 1];
        if (sq_col_copy(st, 0, zone, sizeof zone, "usage zone", err) != 0 ||
            zone_build(s, zone, err) != 0) {
            sq_reset(st);
            return err->status;
        }
    }
    return rc;
}

/* ---------- verify ---------- */

struct usage_check {
    struct store *s;
    int (*cb)(void *ud, const char *problem);
    void *ud;
    int64_t *problems;
    const char *zone;
    int64_t nonzero; /* recomputed months with usage */
};

static int
usage_report(struct usage_check *c, const char *fmt, ...) ENG_PRINTF(2, 3);

static int
usage_report(struct usage_check *c, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    (*c->problems)++;
    return c->cb(c->ud, line);
}

/* Compares one recomputed month with its counter. */
static int
usage_compare(struct usage_check *c, int64_t user_id, const char *unit, int key, int64_t sum,
              struct eng_error *err)
{
    STORE_SQL(q, "SELECT used FROM usage_month WHERE user_id = ? AND unit = ? AND zone = ?"
                 " AND month = ?");
    if (sum != 0) {
        c->nonzero++;
    }
    sqlite3_stmt *st = sq_prep(c->s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(c->s, st, 1, user_id);
    sq_text(c->s, st, 2, unit);
    sq_text(c->s, st, 3, c->zone);
    sq_int(c->s, st, 4, key);
    int rc = sq_step(c->s, st, "usage counter", err);
    if (rc < 0) {
        return rc;
    }
    int64_t used = rc == 1 ? sq_col_int(st, 0) : 0;
    sq_reset(st);
    if (used == sum) {
        return 0;
    }
    return usage_report(c, "usr_%" PRId64 " %s %04d-%02d in %s: counter %" PRId64
                           " but entries sum to %" PRId64,
                        user_id, unit, key / 100, key % 100, c->zone, used, sum);
}

/* Streams the source once for c->zone, one month at a time. */
static int
usage_check_zone(struct usage_check *c, struct eng_error *err)
{
    STORE_SQL(q_src, USAGE_SOURCE_SQL);
    STORE_SQL(q_count, "SELECT count(*) FROM usage_month WHERE zone = ? AND used != 0");
    sqlite3_stmt *st = sq_prep(c->s, &q_src, err);
    if (st == NULL) {
        return err->status;
    }
    int64_t user_id = 0, sum = 0;
    char unit[8] = "";
    int key = 0, rc;
    bool open = false;
    while ((rc = sq_step(c->s, st, "usage source", err)) == 1) {
        int64_t u = sq_col_int(st, 0);
        char un[8];
        int k = 0;
        if (sq_col_copy(st, 1, un, sizeof un, "entry unit", err) != 0 ||
            store_usage_month_key(c->zone, sq_col_int(st, 2), &k, err) != 0) {
            sq_reset(st);
            return err->status;
        }
        if (open && (u != user_id || strcmp(un, unit) != 0 || k != key)) {
            if ((rc = usage_compare(c, user_id, unit, key, sum, err)) != 0) {
                sq_reset(st);
                return rc;
            }
            open = false;
        }
        if (!open) {
            user_id = u;
            memcpy(unit, un, sizeof unit);
            key = k;
            sum = 0;
            open = true;
        }
        sum += sq_col_int(st, 3);
    }
    if (rc < 0) {
        return rc;
    }
    if (open && (rc = usage_compare(c, user_id, unit, key, sum, err)) != 0) {
        return rc;
    }
    st = sq_prep(c->s, &q_count, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(c->s, st, 1, c->zone);
    rc = sq_step(c->s, st, "usage count", err);
    if (rc < 0) {
        return rc;
    }
    int64_t counters = rc == 1 ? sq_col_int(st, 0) : 0;
    sq_reset(st);
    if (counters != c->nonzero) {
        return usage_report(c, "%s: %" PRId64 " counters hold usage but %" PRId64
                               " months have some",
                            c->zone, counters, c->nonzero);
    }
    return 0;
}

int
store_usage_verify(struct store *s, int (*cb)(void *ud, const char *problem), void *ud,
                   int64_t *problems, struct eng_error *err)
{
    STORE_SQL(q_zones, "SELECT zone FROM usage_zone ORDER BY zone");
    struct usage_check c = {.s = s, .cb = cb, .ud = ud, .problems = problems};
    *problems = 0;
    /* A building's zone without counters is no error: its months are
     * summed from the entries (store_usage_get). */
    sqlite3_stmt *st = sq_prep(s, &q_zones, err);
    if (st == NULL) {
        return err->status;
    }
    int rc;
    while ((rc = sq_step(s, st, "usage zones", err)) == 1) {
        char zone[TIME_ZONE_NAME_MAX + 1];
        if (sq_col_copy(st, 0, zone, sizeof zone, "usage zone", err) != 0) {
            sq_reset(st);
            return err->status;
        }
        c.zone = zone;
        c.nonzero = 0;
        if ((rc = usage_check_zone(&c, err)) != 0) {
            sq_reset(st);
            return rc;
        }
    }
    return rc;
}

/* test_store.c - the storage layer on its own: opening modes, migrations,
 * the statement cache (nested use of one statement), checked steps and how
 * failures are named, the reader pool (its waiters served in arrival
 * order, each handed the connection released), and the portfolio getters. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "entries.h"
#include "generation.h"
#include "lots.h"
#include "internal.h"
#include "portfolio.h"
#include "store_pg.h"
#include "usage.h"
#include "verify.h"

static char dir[64];

static void
path_of(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void
test_open_modes(void)
{
    char db[128];
    path_of("modes.db", db, sizeof db);
    struct store *s = NULL;
    struct eng_error err = {0};
    /* A missing file is refused unless asked to create it. */
    CHECK_INT(store_open(&s, db, STORE_WRITER, 100, 0, &err), ENG_ENOTFOUND);
    CHECK(s == NULL);
    CHECK(strstr(err.msg, "--create") != NULL);
    CHECK_INT(store_open(&s, db, STORE_READONLY, 100, 0, &err), ENG_ENOTFOUND);
    CHECK(access(db, F_OK) != 0);
    CHECK_INT(store_open(&s, db, STORE_CREATE, 100, 0, &err), 0);
    int version = -1;
    CHECK_INT(store_file_schema(s, &version, &err), 0);
    CHECK_INT(version, store_schema_version());
    CHECK(!store_readonly(s));
    store_close(s);
    /* Read-only: reads work, writes are refused as storage errors. */
    CHECK_INT(store_open(&s, db, STORE_READONLY, 100, 0, &err), 0);
    CHECK(store_readonly(s));
    STORE_SQL(q_insert, "INSERT INTO setting (key, value) VALUES ('a', 'b')");
    sqlite3_stmt *st = sq_prep(s, &q_insert, &err);
    CHECK(st != NULL);
    CHECK_INT(sq_exec(s, st, "setting insert", &err), ENG_ESTORE);
    CHECK_STR(err.code, "storage_unavailable");
    CHECK(strstr(err.msg, "INSERT") == NULL); /* no SQL reaches the client */
    store_close(s);
    /* A file that is not an Allot database is not read as one. */
    char other[128];
    path_of("other.db", other, sizeof other);
    sqlite3 *h = NULL;
    sqlite3_open(other, &h);
    sqlite3_exec(h, "CREATE TABLE t (x)", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK_INT(store_open(&s, other, STORE_READONLY, 100, 0, &err), ENG_ESTORE);
    CHECK(s == NULL);
}

static struct store *
fresh(const char *name)
{
    char db[128];
    path_of(name, db, sizeof db);
    struct store *s = NULL;
    struct eng_error err = {0};
    if (store_open(&s, db, STORE_CREATE, 100, 0, &err) != 0) {
        printf("# open %s: %s\n", db, err.msg);
        exit(2);
    }
    return s;
}

static void
test_nested_statement(void)
{
    struct store *s = fresh("nested.db");
    struct eng_error err = {0};
    STORE_SQL(q_put, "INSERT INTO setting (key, value) VALUES (?, ?)");
    const char *keys[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *st = sq_prep(s, &q_put, &err);
        sq_text(s, st, 1, keys[i]);
        sq_text(s, st, 2, "v");
        CHECK_INT(sq_exec(s, st, "put", &err), 0);
    }
    /* The same statement inside its own loop: the inner copy must not
     * reset the outer one (3 x 3 pairs). */
    STORE_SQL(q_all, "SELECT key FROM setting ORDER BY key");
    sqlite3_stmt *outer = sq_prep(s, &q_all, &err);
    int pairs = 0, rc;
    while ((rc = sq_step(s, outer, "outer", &err)) == 1) {
        sqlite3_stmt *inner = sq_prep(s, &q_all, &err);
        CHECK(inner != NULL && inner != outer);
        int irc;
        while ((irc = sq_step(s, inner, "inner", &err)) == 1) {
            pairs++;
        }
        CHECK_INT(irc, 0);
    }
    CHECK_INT(rc, 0);
    CHECK_INT(pairs, 9);
    /* A statement left open in a loop is refused past the nesting limit,
     * not leaked. */
    sqlite3_stmt *held[STORE_NEST_MAX + 1];
    int opened = 0;
    for (int i = 0; i <= STORE_NEST_MAX; i++) {
        held[i] = sq_prep(s, &q_all, &err);
        if (held[i] == NULL) {
            break;
        }
        CHECK_INT(sq_step(s, held[i], "held", &err), 1);
        opened++;
    }
    CHECK_INT(opened, STORE_NEST_MAX);
    CHECK_INT(err.status, ENG_ESTORE);
    for (int i = 0; i < opened; i++) {
        sq_reset(held[i]);
    }
    CHECK(sq_prep(s, &q_all, &err) != NULL);
    store_close(s);
}

static void
test_errors_named(void)
{
    struct store *a = fresh("busy.db");
    char db[128];
    path_of("busy.db", db, sizeof db);
    struct store *b = NULL;
    struct eng_error err = {0};
    CHECK_INT(store_open(&b, db, STORE_WRITER, 0, 0, &err), 0);
    /* a holds the write lock; b cannot take it: "busy", 503. */
    CHECK_INT(store_tx(a, STORE_BEGIN_IMMEDIATE, &err), 0);
    CHECK(store_in_tx(a));
    CHECK_INT(store_tx(b, STORE_BEGIN_IMMEDIATE, &err), ENG_ESTORE);
    CHECK_STR(err.code, "busy");
    CHECK_INT(eng_error_http_status(&err), 503);
    CHECK(!store_in_tx(b));
    CHECK_INT(store_tx(a, STORE_ROLLBACK, &err), 0);
    CHECK(!store_in_tx(a));
    /* ROLLBACK without a transaction is a no-op, not an error. */
    CHECK_INT(store_tx(a, STORE_ROLLBACK, &err), 0);
    /* A constraint failure is a storage error, never a silent success. */
    STORE_SQL(q_dup, "INSERT INTO setting (key, value) VALUES ('k', 'v')");
    sqlite3_stmt *st = sq_prep(a, &q_dup, &err);
    CHECK_INT(sq_exec(a, st, "first", &err), 0);
    st = sq_prep(a, &q_dup, &err);
    CHECK_INT(sq_exec(a, st, "second", &err), ENG_ESTORE);
    CHECK_STR(err.code, "storage_error");
    /* A bind past the parameters is reported by the step. */
    STORE_SQL(q_one, "SELECT value FROM setting WHERE key = ?");
    st = sq_prep(a, &q_one, &err);
    sq_text(a, st, 1, "k");
    sq_text(a, st, 2, "extra");
    CHECK_INT(sq_step(a, st, "bad bind", &err), ENG_ESTORE);
    /* Copying a column: too long is an error, not a cut. */
    st = sq_prep(a, &q_one, &err);
    sq_text(a, st, 1, "k");
    CHECK_INT(sq_step(a, st, "one", &err), 1);
    char small[1], fits[8];
    CHECK_INT(sq_col_copy(st, 0, small, sizeof small, "value", &err), ENG_ESTORE);
    CHECK_INT(sq_col_copy(st, 0, fits, sizeof fits, "value", &err), 0);
    CHECK_STR(fits, "v");
    sq_reset(st);
    int64_t n = -1;
    STORE_SQL(q_count, "SELECT count(*) FROM setting WHERE key != ?");
    CHECK_INT(sq_scalar(a, &q_count, 0, -1, &n, &err), 0);
    CHECK_INT(n, 1);
    store_close(b);
    store_close(a);
}

struct collect {
    int64_t ids[8];
    int n;
};

static int
collect_id(void *ud, int64_t id)
{
    struct collect *c = ud;
    c->ids[c->n++] = id;
    return c->n == 8 ? 1 : 0;
}

static void
test_portfolio_and_pool(void)
{
    struct store *s = fresh("portfolio.db");
    struct eng_error err = {0};
    STORE_SQL(q_b, "INSERT INTO building (id, name, timezone, currency, pay_credits, pay_invoice,"
                   " pay_card, created_at) VALUES (?, ?, 'Europe/Paris', 'EUR', 1, 0, 1, 5)");
    STORE_SQL(q_t, "INSERT INTO tenant (id, name, cross_building, created_at) VALUES (7, 'Acme',"
                   " 1, 6)");
    STORE_SQL(q_tb, "INSERT INTO tenant_building (tenant_id, building_id) VALUES (7, ?)");
    for (int64_t id = 1; id <= 2; id++) {
        sqlite3_stmt *st = sq_prep(s, &q_b, &err);
        sq_int(s, st, 1, id);
        sq_text(s, st, 2, id == 1 ? "HQ \xc3\xa9t\xc3\xa9" : "Annex");
        CHECK_INT(sq_exec(s, st, "building", &err), 0);
    }
    CHECK_INT(sq_exec(s, sq_prep(s, &q_t, &err), "tenant", &err), 0);
    for (int64_t id = 2; id >= 1; id--) {
        sqlite3_stmt *st = sq_prep(s, &q_tb, &err);
        sq_int(s, st, 1, id);
        CHECK_INT(sq_exec(s, st, "lease", &err), 0);
    }
    struct building_row b;
    bool found = false;
    CHECK_INT(store_building_get(s, 1, &b, &found, &err), 0);
    CHECK(found);
    CHECK_STR(b.name, "HQ \xc3\xa9t\xc3\xa9");
    CHECK_STR(b.timezone, "Europe/Paris");
    CHECK(b.pay_credits && !b.pay_invoice && b.pay_card);
    CHECK_INT(store_building_get(s, 99, &b, &found, &err), 0);
    CHECK(!found);
    struct tenant_row t;
    CHECK_INT(store_tenant_get(s, 7, &t, &found, &err), 0);
    CHECK(found && t.cross_building);
    struct collect c = {0};
    CHECK_INT(store_tenant_buildings_each(s, 7, collect_id, &c, &err), 0);
    CHECK_INT(c.n, 2);
    CHECK_INT(c.ids[0], 1); /* in id order */
    bool leases = false;
    CHECK_INT(store_tenant_leases(s, 7, 2, &leases, &err), 0);
    CHECK(leases);
    CHECK_INT(store_tenant_leases(s, 7, 3, &leases, &err), 0);
    CHECK(!leases);
    CHECK_INT(store_exists(s, STORE_TENANT, 7, &found, &err), 0);
    CHECK(found);
    CHECK_INT(store_exists(s, STORE_USER, 7, &found, &err), 0);
    CHECK(!found);
    /* verify on a clean file: every invariant counted, none broken. */
    int64_t counts[64] = {0};
    CHECK(store_verify_count() > 5 && store_verify_count() <= 64);
    CHECK_INT(store_tx(s, STORE_BEGIN, &err), 0);
    CHECK_INT(store_verify(s, NULL, NULL, counts, &err), 0);
    CHECK_INT(store_tx(s, STORE_ROLLBACK, &err), 0);
    int64_t total = 0;
    for (int i = 0; i < store_verify_count(); i++) {
        total += counts[i];
    }
    CHECK_INT(total, 0);
    store_close(s);
    /* The pool hands out its connections and takes them back. */
    char db[128];
    path_of("portfolio.db", db, sizeof db);
    struct store_pool *pool = NULL;
    CHECK_INT(store_pool_open(&pool, db, 2, 100, 0, &err), 0);
    struct store *r1 = store_pool_acquire(pool, &err);
    struct store *r2 = store_pool_acquire(pool, &err);
    CHECK(r1 != NULL && r2 != NULL && r1 != r2);
    CHECK(store_readonly(r1));
    store_pool_release(pool, r1);
    struct store *r3 = store_pool_acquire(pool, &err);
    CHECK(r3 == r1);
    store_pool_release(pool, r2);
    store_pool_release(pool, r3);
    store_pool_close(pool);
}

/* Zones at the edges of the offsets (+14, -12, +13 with DST, +5:45, a
 * zone that moved its clocks at midnight) and two ordinary ones. */
static const char *const edge_zones[] = {"Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Apia",
                                         "Asia/Kathmandu", "America/Sao_Paulo",
                                         "America/Havana", "Europe/Paris", "UTC"};
#define EDGE_ZONES (int)(sizeof edge_zones / sizeof edge_zones[0])

/* store_usage_month_everywhere (the writer's one-statement path for the
 * usage counters) never names a month some zone disagrees with: every 5
 * hours from 1970 to 2040, in zones at the edges of the offsets. */
static void
test_usage_month_everywhere(void)
{
    struct eng_error err = {0};
    long claimed = 0, wrong = 0, failed = 0, edges = 0;
    /* Zone by zone: the month cache of store_usage_month_key then hits. */
    for (int z = 0; z < EDGE_ZONES; z++) {
        for (int64_t t = 0; t < 2208988800; t += 5 * 3600) {
            int key = 0;
            if (!store_usage_month_everywhere(t, &key)) {
                edges += z == 0;
                continue;
            }
            claimed += z == 0;
            int zkey = 0;
            if (store_usage_month_key(edge_zones[z], t, &zkey, &err) != 0) {
                failed++;
            } else if (zkey != key) {
                wrong++;
                if (wrong < 5) {
                    printf("# %s at %lld: %d, not %d\n", edge_zones[z], (long long)t, zkey, key);
                }
            }
        }
    }
    CHECK_INT(failed, 0);
    CHECK_INT(wrong, 0);
    /* Both paths are taken: ~32 hours of a month's ~730 are its edges. */
    CHECK(claimed > 15 * edges && edges > 0);
}

/* The counters store_usage_add moves, through both paths (one statement
 * for every zone, or zone by zone at a month's edges), are the ones each
 * zone's month key names. */
static void
test_usage_add_paths(void)
{
    struct store *s = fresh("usage.db");
    struct eng_error err = {0};
    STORE_SQL(q_zone, "INSERT INTO usage_zone (zone) VALUES (?)");
    for (int z = 0; z < EDGE_ZONES; z++) {
        sqlite3_stmt *st = sq_prep(s, &q_zone, &err);
        CHECK(st != NULL);
        sq_text(s, st, 1, edge_zones[z]);
        CHECK_INT(sq_exec(s, st, "zone", &err), 0);
    }
    /* 2027-01-14 12:00Z (the middle: no counter yet, zones known; then an
     * upsert, zones not known), 2027-01-31 20:00Z (February already east
     * of +04, January west), 2027-02-01 06:00Z (February from UTC
     * eastwards, January in the west), 2027-02-14 12:00Z (only the eastern
     * zones have a February counter: the others are filled), 2027-01-20
     * (every zone has its counter: one UPDATE). */
    const int64_t at[] = {1799928000, 1799928000, 1801425600,
                          1801461600, 1802606400, 1800403200};
    const int64_t amount[] = {1000, 250, 4000, 20000, 300000, 5000000};
    const int zones[] = {EDGE_ZONES, 0, EDGE_ZONES, EDGE_ZONES, EDGE_ZONES, EDGE_ZONES};
    int64_t want[EDGE_ZONES][2] = {{0}};
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        CHECK_INT(store_usage_add(s, 7, "hour", at[i], zones[i], amount[i], &err), 0);
        for (int z = 0; z < EDGE_ZONES; z++) {
            int key = 0;
            CHECK_INT(store_usage_month_key(edge_zones[z], at[i], &key, &err), 0);
            want[z][key == 202702] += amount[i];
        }
    }
    CHECK_INT(store_tx(s, STORE_COMMIT, &err), 0);
    long wrong = 0;
    for (int z = 0; z < EDGE_ZONES; z++) {
        for (int m = 0; m < 2; m++) {
            int64_t used = -1;
            CHECK_INT(store_usage_get(s, 7, "hour", edge_zones[z], m ? 202702 : 202701, &used,
                                      &err), 0);
            wrong += used != want[z][m];
        }
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(want[0][1], 324000); /* Kiritimati: both edge instants in February */
    CHECK_INT(want[1][0], 5025250); /* Etc/GMT+12: the edges in January */
    STORE_SQL(q_rows, "SELECT count(*) FROM usage_month");
    int64_t rows = 0;
    CHECK_INT(sq_scalar(s, &q_rows, 0, 0, &rows, &err), 0);
    CHECK_INT(rows, 2 * EDGE_ZONES); /* one per zone and month, no more */
    store_close(s);
}

/* A database as version `upto` of the schema left it: the migrations run
 * one by one on a bare connection, fill steps included. */
static void
make_old(const char *db, int upto)
{
    struct store *s = calloc(1, sizeof *s);
    struct eng_error err = {0};
    CHECK(s != NULL);
    CHECK_INT(sqlite3_open(db, &s->db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(s->db, "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; BEGIN",
                           NULL, NULL, NULL),
              SQLITE_OK);
    for (int v = 0; v < upto; v++) {
        for (const char *const *step = store_migration(v); *step != NULL; step++) {
            CHECK_INT(sqlite3_exec(s->db, *step, NULL, NULL, NULL), SQLITE_OK);
        }
        int (*fill)(struct store *, struct eng_error *) = store_migration_fill(v);
        if (fill != NULL) {
            CHECK_INT(fill(s, &err), 0);
        }
    }
    char bump[64];
    snprintf(bump, sizeof bump, "PRAGMA user_version = %d; COMMIT", upto);
    CHECK_INT(sqlite3_exec(s->db, bump, NULL, NULL, NULL), SQLITE_OK);
    store_close(s);
}

/* Migration 6 on a database from before it: the two indexes no query
 * reads are dropped, the usage counters keyed month before zone, and
 * entry.event_key's UNIQUE made a partial index (the table rebuilt, its
 * rows, indexes, triggers and rule kept). */
static void
test_migration_6(void)
{
    char db[128];
    path_of("old6.db", db, sizeof db);
    make_old(db, 5);
    /* A few rows of version 5, by hand: a lot with three entries (two
     * keyed), two usage counters. */
    sqlite3 *h = NULL;
    CHECK_INT(sqlite3_open(db, &h), SQLITE_OK);
    CHECK_INT(sqlite3_exec(h,
                           "PRAGMA foreign_keys = ON;"
                           "INSERT INTO setting (key, value) VALUES ('kept', 'yes');"
                           "INSERT INTO tenant VALUES (1, 'T', 0, 0);"
                           "INSERT INTO allocation (id, tenant_id, description, unit,"
                           " cross_building, targeting, pool, recurrence, zone, start_date,"
                           " start_at, rollover, created_at, created_by) VALUES (1, 1, '',"
                           " 'hour', 0, '{}', 'shared', 'monthly', 'UTC', '2027-01-01', 0, 0,"
                           " 0, 'x');"
                           "INSERT INTO lot (id, allocation_id, line_idx, period_n, user_id, kind,"
                           " tenant_id, unit, valid_from, valid_until, granted, unlimited,"
                           " balance, created_at) VALUES (1, 1, 0, 0, 0, 'period', 1, 'hour',"
                           " 0, 100, 5000, 0, 4000, 0);"
                           "INSERT INTO entry (id, lot_id, kind, amount, effective_at,"
                           " created_at, tenant_id, unit, event_key) VALUES"
                           " (7, 1, 'grant', 5000, 0, 0, 1, 'hour', 'grant:1'),"
                           " (8, 1, 'adjust', -500, 0, 0, 1, 'hour', NULL),"
                           " (9, 1, 'adjust', -500, 0, 0, 1, 'hour', 'adj:9');"
                           "INSERT INTO usage_month VALUES (3, 'hour', 'UTC', 202701, 1500),"
                           " (3, 'hour', 'Europe/Paris', 202701, 1500);",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(h);
    struct eng_error err = {0};
    struct store *s = NULL;
    CHECK_INT(store_open(&s, db, STORE_WRITER, 100, 0, &err), 0);
    int version = 0;
    CHECK_INT(store_file_schema(s, &version, &err), 0);
    CHECK_INT(version, 6);
    STORE_SQL(q_gone, "SELECT count(*) FROM sqlite_schema WHERE name IN ('booking_user',"
                      " 'entry_tenant_time', 'sqlite_autoindex_entry_1', 'entry_new')");
    STORE_SQL(q_kept, "SELECT count(*) FROM sqlite_schema WHERE name IN ('booking_slot',"
                      " 'booking_tenant', 'booking_created', 'booking_building', 'entry_lot',"
                      " 'entry_booking', 'lot_unlimited', 'entry_event_key', 'entry_no_update',"
                      " 'entry_no_delete') OR (SELECT value FROM setting WHERE"
                      " key = 'kept') IS NULL");
    int64_t n = -1;
    CHECK_INT(sq_scalar(s, &q_gone, 0, -1, &n, &err), 0);
    CHECK_INT(n, 0);
    CHECK_INT(sq_scalar(s, &q_kept, 0, -1, &n, &err), 0);
    CHECK_INT(n, 10);
    /* The entries, ids and all; the rules as before. */
    STORE_SQL(q_entries, "SELECT sum(id * amount) || '/' || group_concat(coalesce(event_key,"
                         " '-'), ',') FROM (SELECT * FROM entry ORDER BY id)");
    sqlite3_stmt *st = sq_prep(s, &q_entries, &err);
    CHECK(st != NULL && sq_step(s, st, "entries", &err) == 1);
    CHECK_STR(sq_col_text(st, 0), "26500/grant:1,-,adj:9");
    sq_reset(st);
    const char *const refused[] = {
        "INSERT INTO entry (lot_id, kind, amount, effective_at, created_at, tenant_id, unit,"
        " event_key) VALUES (1, 'adjust', 1, 0, 0, 1, 'hour', 'adj:9')", /* a key twice */
        "INSERT INTO entry (lot_id, kind, amount, effective_at, created_at, tenant_id, unit)"
        " VALUES (1, 'bonus', 1, 0, 0, 1, 'hour')",                     /* the kind rule */
        "INSERT INTO entry (lot_id, kind, amount, effective_at, created_at, tenant_id, unit)"
        " VALUES (2, 'adjust', 1, 0, 0, 1, 'hour')",                    /* no such lot */
        "UPDATE entry SET amount = 0 WHERE id = 8",
        "DELETE FROM entry WHERE id = 8",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        CHECK(sqlite3_exec(s->db, refused[i], NULL, NULL, NULL) != SQLITE_OK);
    }
    /* Any number of entries without a key, as before. */
    CHECK_INT(sqlite3_exec(s->db, "INSERT INTO entry (lot_id, kind, amount, effective_at,"
                                  " created_at, tenant_id, unit) VALUES (1, 'adjust', 1, 0, 0,"
                                  " 1, 'hour'), (1, 'adjust', -1, 0, 0, 1, 'hour')",
                           NULL, NULL, NULL),
              SQLITE_OK);
    STORE_SQL(q_check, "PRAGMA integrity_check");
    st = sq_prep(s, &q_check, &err);
    CHECK(st != NULL && sq_step(s, st, "integrity", &err) == 1);
    CHECK_STR(sq_col_text(st, 0), "ok");
    sq_reset(st);
    /* The counters, kept, now keyed month before zone. */
    STORE_SQL(q_usage, "SELECT sum(used) FROM usage_month WHERE user_id = 3 AND month = 202701");
    STORE_SQL(q_key, "SELECT count(*) FROM sqlite_schema WHERE name = 'usage_month' AND"
                     " sql LIKE '%PRIMARY KEY (user_id, unit, month, zone)%'");
    CHECK_INT(sq_scalar(s, &q_usage, 0, -1, &n, &err), 0);
    CHECK_INT(n, 3000);
    CHECK_INT(sq_scalar(s, &q_key, 0, -1, &n, &err), 0);
    CHECK_INT(n, 1);
    int64_t used = 0;
    CHECK_INT(store_usage_get(s, 3, "hour", "Europe/Paris", 202701, &used, &err), 0);
    CHECK_INT(used, 1500);
    store_close(s);
}

/* The generation as the writer knows it (store_generation_known) against
 * the row itself, read on a connection of its own, at every step. */
static void
gen_agrees(struct store *s, struct store *other, bool want_known, const char *what)
{
    struct eng_error err = {0};
    int64_t known = -1, now = -1, row = -2;
    bool is_known = store_generation_known(s, &known);
    if (is_known != want_known) {
        printf("# %s: known %d, expected %d\n", what, is_known, want_known);
    }
    CHECK(is_known == want_known);
    CHECK_INT(store_generation_now(s, &now, &err), 0);
    CHECK_INT(store_generation_get(other, &row, &err), 0);
    if (is_known) {
        CHECK_INT(known, now);
    }
    /* other reads the last commit; s sees its own transaction's changes,
     * which the callers below commit or roll back before comparing. */
    if (!store_in_tx(s) || strcmp(what, "in tx") != 0) {
        return;
    }
    CHECK_INT(now, row);
}

/* store_generation_known: the writer's generation between its own commits
 * without a statement, and every way it may stop being true: a change of
 * this connection (a trigger's included), a rollback (whole or to a
 * savepoint) of changes made after it was read, a commit by another
 * connection (another process), a failed commit. */
static void
test_generation_known(void)
{
    struct store *s = fresh("gen.db");
    char db[128];
    path_of("gen.db", db, sizeof db);
    struct store *other = NULL, *reader = NULL;
    struct eng_error err = {0};
    CHECK_INT(store_open(&other, db, STORE_WRITER, 100, 0, &err), 0);
    CHECK_INT(store_open(&reader, db, STORE_READONLY, 100, 0, &err), 0);
    int64_t g0 = -1, g = -1;
    CHECK_INT(store_generation_get(reader, &g0, &err), 0);
    /* Outside a transaction nothing is known (another process may commit
     * at any time), nor before a first read. */
    CHECK(!store_generation_known(s, &g));
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    CHECK(!store_generation_known(s, &g));
    CHECK_INT(store_generation_now(s, &g, &err), 0);
    CHECK_INT(g, g0);
    CHECK(store_generation_known(s, &g) && g == g0);
    /* A change through a trigger: read again. */
    CHECK_INT(sqlite3_exec(s->db, "INSERT INTO building (id, name, timezone, currency,"
                                  " pay_credits, pay_invoice, pay_card, created_at) VALUES"
                                  " (1, 'B', 'UTC', 'EUR', 1, 0, 0, 0)",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK(!store_generation_known(s, &g));
    CHECK_INT(store_generation_now(s, &g, &err), 0);
    CHECK_INT(g, g0 + 1);
    CHECK(store_generation_known(s, &g) && g == g0 + 1);
    /* Through our commit, into the next transaction, and out of it. */
    CHECK_INT(store_tx(s, STORE_COMMIT, &err), 0);
    CHECK(!store_generation_known(s, &g)); /* no transaction */
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    CHECK(store_generation_known(s, &g) && g == g0 + 1);
    gen_agrees(s, reader, true, "in tx");
    /* A change read, then rolled back: forgotten. */
    CHECK_INT(sqlite3_exec(s->db, "INSERT INTO tenant VALUES (1, 'T', 0, 0)", NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(store_generation_now(s, &g, &err), 0);
    CHECK_INT(g, g0 + 2);
    CHECK_INT(store_tx(s, STORE_ROLLBACK, &err), 0);
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    gen_agrees(s, reader, false, "in tx");
    CHECK(store_generation_known(s, &g) && g == g0 + 1);
    /* The same, rolled back to a savepoint. */
    CHECK_INT(store_tx(s, STORE_SAVEPOINT, &err), 0);
    CHECK_INT(sqlite3_exec(s->db, "INSERT INTO tenant VALUES (1, 'T', 0, 0)", NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(store_generation_now(s, &g, &err), 0);
    CHECK_INT(g, g0 + 2);
    CHECK_INT(store_tx(s, STORE_ROLLBACK_TO, &err), 0);
    CHECK_INT(store_tx(s, STORE_RELEASE, &err), 0);
    gen_agrees(s, reader, false, "in tx");
    CHECK_INT(store_tx(s, STORE_COMMIT, &err), 0);
    /* Another connection commits a change: the next transaction reads. */
    CHECK_INT(sqlite3_exec(other->db, "INSERT INTO tenant VALUES (2, 'U', 0, 0)", NULL, NULL,
                           NULL),
              SQLITE_OK);
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    gen_agrees(s, reader, false, "in tx");
    CHECK(store_generation_known(s, &g) && g == g0 + 2);
    /* A lot becoming empty moves the generation by its trigger, inside
     * store_lot_take's statement. */
    CHECK_INT(sqlite3_exec(s->db,
                           "INSERT INTO allocation (id, tenant_id, description, unit,"
                           " cross_building, targeting, pool, recurrence, zone, start_date,"
                           " start_at, rollover, created_at, created_by) VALUES (1, 2, '',"
                           " 'hour', 0, '{}', 'shared', 'monthly', 'UTC', '2027-01-01', 0, 0,"
                           " 0, 'x');"
                           "INSERT INTO lot (id, allocation_id, line_idx, period_n, user_id, kind,"
                           " tenant_id, unit, valid_from, valid_until, granted, unlimited,"
                           " balance, created_at) VALUES (1, 1, 0, 0, 0, 'period', 2, 'hour',"
                           " 0, 100, 5000, 0, 5000, 0);",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(store_generation_now(s, &g, &err), 0);
    int64_t before = g, balance = -1;
    bool taken = false;
    CHECK_INT(store_lot_take(s, 1, 3000, -1, &taken, &balance, &err), 0);
    CHECK(taken && balance == 2000);
    CHECK(store_generation_known(s, &g) && g == before); /* still holding some */
    /* A balance expected that the lot no longer holds: the debit on the
     * condition of enough, and the balance read (not derived from the
     * expectation). */
    CHECK_INT(store_lot_take(s, 1, 500, 4000, &taken, &balance, &err), 0);
    CHECK(taken && balance == 1500);
    CHECK_INT(store_lot_take(s, 1, 2500, 1500, &taken, &balance, &err), 0);
    CHECK(!taken);
    CHECK_INT(store_lot_take(s, 1, 1000, 2500, &taken, &balance, &err), 0);
    CHECK(taken && balance == 500);
    CHECK(store_generation_known(s, &g) && g == before);
    /* The balance expected, held: proven by the debit. */
    CHECK_INT(store_lot_take(s, 1, 500, 500, &taken, &balance, &err), 0);
    CHECK(taken && balance == 0);
    CHECK(!store_generation_known(s, &g));
    CHECK_INT(store_generation_now(s, &g, &err), 0);
    CHECK_INT(g, before + 1);
    CHECK_INT(store_tx(s, STORE_COMMIT, &err), 0);
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    gen_agrees(s, reader, true, "in tx");
    CHECK_INT(store_tx(s, STORE_ROLLBACK, &err), 0);
    STORE_SQL(q_lot, "SELECT balance * 1000000 + used FROM lot WHERE id = 1");
    int64_t lot = -1;
    CHECK_INT(sq_scalar(reader, &q_lot, 0, -1, &lot, &err), 0);
    CHECK_INT(lot, 5000); /* balance 0, used 5000 */
    /* The balance a debit left, remembered by the writer between its own
     * commits, whatever the caller expects; forgotten when this connection
     * moves the lot otherwise, when another connection commits, and on a
     * rollback.  Every balance the debits give is the row's. */
    STORE_SQL(q_lot2, "SELECT balance FROM lot WHERE id = 2");
    CHECK_INT(sqlite3_exec(s->db,
                           "INSERT INTO lot (id, allocation_id, line_idx, period_n, user_id, kind,"
                           " tenant_id, unit, valid_from, valid_until, granted, unlimited,"
                           " balance, created_at) VALUES (2, 1, 1, 0, 0, 'period', 2, 'hour',"
                           " 0, 100, 10000, 0, 10000, 0);",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    CHECK_INT(store_lot_take(s, 2, 1000, 10000, &taken, &balance, &err), 0);
    CHECK(taken && balance == 9000);
    CHECK_INT(store_lot_take(s, 2, 1000, 10000, &taken, &balance, &err), 0); /* stale */
    CHECK(taken && balance == 8000);
    CHECK_INT(store_tx(s, STORE_COMMIT, &err), 0);
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    int64_t kb = -1;
    CHECK(store_known_lot(s, 2, &kb) && kb == 8000);
    CHECK_INT(store_lot_take(s, 2, 1000, 10000, &taken, &balance, &err), 0);
    CHECK(taken && balance == 7000);
    CHECK_INT(store_lot_move(s, 2, "adjust", -500, &err), 0); /* another statement */
    CHECK(!store_known_lot(s, 2, &kb));
    CHECK_INT(store_lot_take(s, 2, 1000, 7000, &taken, &balance, &err), 0);
    CHECK(taken && balance == 5500);
    CHECK_INT(store_tx(s, STORE_COMMIT, &err), 0);
    CHECK_INT(sqlite3_exec(other->db, "UPDATE lot SET balance = balance - 100 WHERE id = 2",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    CHECK(!store_known_lot(s, 2, &kb)); /* another connection committed */
    CHECK_INT(store_lot_take(s, 2, 1000, 5500, &taken, &balance, &err), 0);
    CHECK(taken && balance == 4400);
    CHECK(store_known_lot(s, 2, &kb) && kb == 4400);
    CHECK_INT(store_tx(s, STORE_ROLLBACK, &err), 0);
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    CHECK(!store_known_lot(s, 2, &kb)); /* rolled back */
    CHECK_INT(store_lot_take(s, 2, 1000, 4400, &taken, &balance, &err), 0);
    CHECK(taken && balance == 4400);
    CHECK_INT(store_tx(s, STORE_COMMIT, &err), 0);
    CHECK_INT(sq_scalar(reader, &q_lot2, 0, -1, &lot, &err), 0);
    CHECK_INT(lot, 4400);
    /* A plan's debit entry, the lot's tenant and unit given: written as
     * given; on a lot that does not exist, refused, nothing written. */
    struct entry_usage usage = {.user_id = 3, .start_at = 50, .unit = "hour", .shared = false,
                                .tenant_id = 2};
    struct entry_row e = {.lot_id = 1, .kind = "debit", .amount = -500, .effective_at = 50,
                          .created_at = 60, .booking_id = 0, .usage = &usage};
    int64_t id = 0, n = -1;
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    CHECK_INT(store_entry_insert(s, &e, &id, &err), 0);
    CHECK(id > 0);
    e.lot_id = 99;
    struct eng_error refused = {0};
    CHECK_INT(store_entry_insert(s, &e, &id, &refused), ENG_ESTORE);
    CHECK_INT(store_tx(s, STORE_COMMIT, &err), 0);
    STORE_SQL(q_entries, "SELECT count(*) FROM entry WHERE lot_id = 1 AND tenant_id = 2 AND"
                         " unit = 'hour' AND amount = -500");
    STORE_SQL(q_all, "SELECT count(*) FROM entry");
    CHECK_INT(sq_scalar(reader, &q_entries, 0, -1, &n, &err), 0);
    CHECK_INT(n, 1);
    CHECK_INT(sq_scalar(reader, &q_all, 0, -1, &n, &err), 0);
    CHECK_INT(n, 1);
    store_close(reader);
    store_close(other);
    store_close(s);
}

/* A waiter of the pool: acquires (blocking), says what it got, and gives it
 * back when told. */
struct pool_waiter_arg {
    struct store_pool *pool;
    _Atomic(struct store *) got;
    atomic_bool give_back;
};

static void *
pool_waiter_main(void *p)
{
    struct pool_waiter_arg *a = p;
    struct eng_error err = {0};
    struct store *s = store_pool_acquire(a->pool, &err);
    atomic_store(&a->got, s);
    while (!atomic_load(&a->give_back)) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    store_pool_release(a->pool, s);
    return NULL;
}

/* Waits up to 5 s for cond(arg); false on timeout. */
static bool
eventually(bool (*cond)(void *), void *arg)
{
    for (int i = 0; i < 5000; i++) {
        if (cond(arg)) {
            return true;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return false;
}

static struct store_pool *waits_pool;
static uint64_t waits_expected;

static bool
pool_waits_reached(void *unused)
{
    (void)unused;
    uint64_t acquires, waits;
    store_pool_counts(waits_pool, &acquires, &waits);
    return waits >= waits_expected;
}

static bool
waiter_served(void *p)
{
    return atomic_load(&((struct pool_waiter_arg *)p)->got) != NULL;
}

/* Issue 12: a released connection goes to the oldest waiter, the very
 * connection released, and a later caller cannot take it first. */
static void
test_pool_waiters(void)
{
    char db[128];
    path_of("portfolio.db", db, sizeof db);
    struct eng_error err = {0};
    struct store_pool *pool = NULL;
    CHECK_INT(store_pool_open(&pool, db, 2, 100, 0, &err), 0);
    /* The second connection is opened when first needed. */
    struct store *r1 = store_pool_acquire(pool, &err);
    struct store *r2 = store_pool_try_acquire(pool);
    CHECK(r1 != NULL && r2 != NULL && r1 != r2);
    CHECK(store_pool_try_acquire(pool) == NULL);
    uint64_t acquires = 0, waits = 0;
    store_pool_counts(pool, &acquires, &waits);
    CHECK(acquires == 3 && waits == 1);
    struct pool_waiter_arg w[3];
    pthread_t t[3];
    waits_pool = pool;
    for (int i = 0; i < 3; i++) {
        w[i].pool = pool;
        atomic_store(&w[i].got, NULL);
        atomic_store(&w[i].give_back, false);
        CHECK_INT(pthread_create(&t[i], NULL, pool_waiter_main, &w[i]), 0);
        waits_expected = 2 + (uint64_t)i; /* queued in this order */
        CHECK(eventually(pool_waits_reached, NULL));
    }
    store_pool_release(pool, r2);
    CHECK(eventually(waiter_served, &w[0]));
    CHECK(atomic_load(&w[0].got) == r2);
    /* Handed over, not freed: a newcomer finds none. */
    CHECK(store_pool_try_acquire(pool) == NULL);
    CHECK(atomic_load(&w[1].got) == NULL && atomic_load(&w[2].got) == NULL);
    store_pool_release(pool, r1);
    CHECK(eventually(waiter_served, &w[1]));
    CHECK(atomic_load(&w[1].got) == r1);
    CHECK(atomic_load(&w[2].got) == NULL);
    atomic_store(&w[0].give_back, true); /* r2 goes to the last waiter */
    CHECK(eventually(waiter_served, &w[2]));
    CHECK(atomic_load(&w[2].got) == r2);
    atomic_store(&w[1].give_back, true);
    atomic_store(&w[2].give_back, true);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
    }
    /* Both back: acquirable again without waiting. */
    struct store *a = store_pool_try_acquire(pool), *b = store_pool_try_acquire(pool);
    CHECK(a != NULL && b != NULL && a != b);
    store_pool_release(pool, a);
    store_pool_release(pool, b);
    store_pool_close(pool);
}

int
main(void)
{
    snprintf(dir, sizeof dir, "/tmp/allot-store-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_open_modes();
    test_nested_statement();
    test_errors_named();
    test_portfolio_and_pool();
    test_usage_month_everywhere();
    test_usage_add_paths();
    test_migration_6();
    test_generation_known();
    test_pool_waiters();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", dir);
    }
    return check_exit();
}

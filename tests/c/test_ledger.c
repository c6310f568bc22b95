/* test_ledger.c - the ledger layer driven directly: a store on a temporary
 * file, rows written through the store modules, a policy cache on the
 * repo's policies (ALLOT_POLICIES), and no HTTP or engine in between.
 *
 * Covers: lot_ensure creates a lot once (UNIQUE key); entry_post moves the
 * cached balance; ledger_advance processes expiry and rollover in time
 * order, exactly once, handing the rollover policy period_start as the
 * period's first instant in Unix seconds; candidates of a tenant with more
 * allocations and lots than the old caps (256 / 128) all pay; a storage
 * failure in the middle of an advance is ENG_ESTORE and, rolled back,
 * leaves nothing half-written.
 *
 * Buildings, tenants and users have no store writer in this layer yet, so
 * they are seeded with plain SQL on a second connection (test fixture
 * only); everything the ledger owns goes through the store modules. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "allocations.h"
#include "check.h"
#include "entries.h"
#include "ledger.h"
#include "lots.h"
#include "sets.h"
#include "store.h"

#define JAN_1 1767225600 /* 2026-01-01T00:00:00Z */
#define JAN_15 (JAN_1 + 14 * 86400)
#define FEB_1 1769904000 /* 2026-02-01T00:00:00Z */
#define MAR_1 1772323200 /* 2026-03-01T00:00:00Z */
#define MAR_10 (MAR_1 + 9 * 86400)
#define APR_1 1775001600 /* 2026-04-01T00:00:00Z */

#define BIG_ALLOCATIONS 300 /* more than the old 256 ids and 128 lots */

static char db_path[64];
static struct store *st;
static struct policy_cache pc;
static struct eng_error err;
static struct ledger_ctx lx;

/* Plain SQL on a second connection, for fixtures outside the ledger. */
static int
fixture_sql(const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        char *msg = NULL;
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            fprintf(stderr, "fixture: %s\n", msg ? msg : "?");
        }
        sqlite3_free(msg);
    }
    sqlite3_close(db);
    return rc;
}

static void
at(int64_t now)
{
    lx.store = st;
    lx.now = now;
    lx.actor = "test";
    lx.policies = &pc;
    lx.err = &err;
    memset(&err, 0, sizeof err);
}

static int
begin(void)
{
    return store_tx(st, STORE_BEGIN_IMMEDIATE, &err);
}

static int
commit(void)
{
    return store_tx(st, STORE_COMMIT, &err);
}

/* A coin allocation of one 'all' line for `tenant` in building 1. */
static int64_t
add_allocation(int64_t tenant, const char *recurrence, bool rollover, int64_t cap,
               int64_t amount, int lines)
{
    struct allocation_row a = {0};
    a.tenant_id = tenant;
    snprintf(a.description, sizeof a.description, "test allocation");
    snprintf(a.unit, sizeof a.unit, "coin");
    snprintf(a.pool, sizeof a.pool, "shared");
    snprintf(a.recurrence, sizeof a.recurrence, "%s", recurrence);
    snprintf(a.zone, sizeof a.zone, "UTC");
    snprintf(a.start_date, sizeof a.start_date, "2026-01-01");
    a.start_at = JAN_1;
    a.end_at = TIME_NEVER;
    a.rollover = rollover;
    a.rollover_cap = cap;
    a.next_open_at = JAN_1;
    a.created_at = JAN_1;
    a.created_by = "test";
    a.targeting = json_pack("{s:s}", "type", "all");
    int64_t id = 0;
    int rc = store_allocation_insert(st, &a, &id, &err);
    json_decref(a.targeting);
    if (rc == 0) {
        rc = store_allocation_building_insert(st, id, 1, 0, &err);
    }
    for (int i = 0; rc == 0 && i < lines; i++) {
        struct allocation_line_row l = {.idx = i, .amount = amount};
        snprintf(l.scope, sizeof l.scope, "all");
        rc = store_allocation_line_insert(st, id, &l, &err);
    }
    return rc == 0 ? id : 0;
}

static int
count_entry(void *ud, const struct entry_row *e)
{
    (void)e;
    ++*(int *)ud;
    return 0;
}

static int
entries_count(void)
{
    struct entry_filter f = {.from = INT64_MIN, .to = INT64_MAX, .limit = 1000000};
    int n = 0;
    if (store_entries_list(st, &f, count_entry, &n, &err) != 0) {
        return -1;
    }
    return n;
}

/* The lot of a key (0 when there is none). */
static struct lot_row
lot_of(int64_t alloc, int line, int64_t n, const char *kind)
{
    struct lot_row l = {0};
    bool found = false;
    if (store_lot_find(st, alloc, line, n, 0, kind, &l, &found, &err) != 0 || !found) {
        memset(&l, 0, sizeof l);
    }
    return l;
}

static void
test_setup(void)
{
    snprintf(db_path, sizeof db_path, "/tmp/test_ledger_%ld.db", (long)getpid());
    unlink(db_path);
    CHECK_INT(store_open(&st, db_path, STORE_CREATE, 2000, 0, &err), 0);
    const char *dir = getenv("ALLOT_POLICIES");
    struct policy_limits limits;
    policy_limits_default(&limits);
    CHECK_INT(policy_cache_open(&pc, dir != NULL ? dir : "policies", &limits, &err), 0);
    CHECK_INT(fixture_sql("INSERT INTO building (id, name, timezone, currency, pay_credits,"
                          " pay_invoice, pay_card, created_at) VALUES (1, 'B', 'UTC', 'EUR',"
                          " 1, 1, 1, 0);"
                          "INSERT INTO tenant (id, name, cross_building, created_at) VALUES"
                          " (1, 'T1', 0, 0), (2, 'T2', 0, 0), (3, 'T3', 0, 0);"
                          "INSERT INTO tenant_building VALUES (1, 1), (2, 1), (3, 1);"
                          "INSERT INTO user (id, tenant_id, name, email, roles, created_at)"
                          " VALUES (1, 1, 'U1', 'u1@x', '[\"member\"]', 0),"
                          " (2, 2, 'U2', 'u2@x', '[\"member\"]', 0),"
                          " (3, 3, 'U3', 'u3@x', '[\"member\"]', 0);"),
              SQLITE_OK);
}

/* A rollover policy for building 1 that proves what it is given: it
 * carries (days from 2026-01-01 to period_start) + 1 milli, and refuses
 * anything that is not a midnight instant at or after that date. */
static void
install_rollover_probe(void)
{
    static const char src[] =
        "local M = {}\n"
        "function M.rollover(ctx)\n"
        "  local s = ctx.period_start\n"
        "  if math.type(s) ~= 'integer' or s < 1767225600 or s % 86400 ~= 0 or\n"
        "     s >= ctx.period_end then\n"
        "    error('period_start is not an instant: ' .. tostring(s))\n"
        "  end\n"
        "  return { carry = math.min(ctx.unused, (s - 1767225600) // 86400 + 1) }\n"
        "end\n"
        "M.examples = {\n"
        "  { ctx = { unused = 7000, period_start = 1769904000, period_end = 1772323200 },\n"
        "    expect = { carry = 32 } },\n"
        "}\n"
        "return M\n";
    struct policy_candidate cand = {POLICY_ROLLOVER, src, sizeof src - 1};
    struct policy_set *set = NULL;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    CHECK_INT(policy_cache_build(&pc, st, 1, &cand, &set, versions, &err), 0);
    if (set != NULL) {
        policy_cache_install(&pc, 1, set, versions);
        policy_set_release(set);
    }
}

static void
test_lots_entries_and_periods(void)
{
    at(JAN_15);
    CHECK_INT(begin(), 0);
    int64_t id = add_allocation(1, "monthly", true, -1, 10000, 1);
    CHECK(id > 0);
    /* Opening period 0 (due since Jan 1) creates its lot and grant. */
    CHECK_INT(ledger_advance(&lx), 0);
    struct lot_row p0 = lot_of(id, 0, 0, "period");
    CHECK(p0.id > 0);
    CHECK_INT(p0.balance, 10000);
    CHECK_INT(p0.valid_from, JAN_1);
    CHECK_INT(p0.valid_until, FEB_1);
    int entries = entries_count();
    CHECK_INT(entries, 1);

    /* lot_ensure finds the same lot: created once (UNIQUE key). */
    struct alloc a;
    CHECK_INT(alloc_load(&lx, id, &a), 0);
    int64_t lot_id = 0;
    bool created = true;
    CHECK_INT(lot_ensure(&lx, &a, 0, 0, 0, &lot_id, &created), 0);
    CHECK(!created);
    CHECK_INT(lot_id, p0.id);
    /* Period 1 ahead of time: created now, once. */
    CHECK_INT(lot_ensure(&lx, &a, 0, 1, 0, &lot_id, &created), 0);
    CHECK(created);
    int64_t p1_id = lot_id;
    CHECK_INT(lot_ensure(&lx, &a, 0, 1, 0, &lot_id, &created), 0);
    CHECK(!created);
    CHECK_INT(lot_id, p1_id);
    CHECK_INT(entries_count(), entries + 1);
    alloc_free(&a);

    /* entry_post moves the cached balance and the used aggregate. */
    CHECK_INT(entry_post(&lx, p0.id, "debit", -3000, JAN_15, 0, NULL, NULL, NULL), 0);
    p0 = lot_of(id, 0, 0, "period");
    CHECK_INT(p0.balance, 7000);
    CHECK_INT(p0.used, 3000);
    CHECK_INT(commit(), 0);
    /* A debit past zero is refused by the schema: a store error, and the
     * caller's rollback leaves neither the entry nor a balance change. */
    entries = entries_count();
    CHECK_INT(begin(), 0);
    CHECK_INT(entry_post(&lx, p0.id, "debit", -8000, JAN_15, 0, NULL, NULL, NULL), ENG_ESTORE);
    CHECK_INT(store_tx(st, STORE_ROLLBACK, &err), 0);
    CHECK_INT(entries_count(), entries);
    CHECK_INT(lot_of(id, 0, 0, "period").balance, 7000);

    /* Two period ends in one advance, in order.  The probe carries
     * 1 milli at the end of January (period_start = Jan 1) and 32 at the
     * end of February (period_start = Feb 1): the policy receives the
     * period's first instant in Unix seconds, not its index. */
    install_rollover_probe();
    at(MAR_10);
    CHECK_INT(begin(), 0);
    CHECK_INT(ledger_advance(&lx), 0);
    CHECK_INT(commit(), 0);
    p0 = lot_of(id, 0, 0, "period");
    CHECK(p0.closed);
    CHECK_INT(p0.balance, 0);
    struct lot_row r1 = lot_of(id, 0, 1, "rollover");
    CHECK_INT(r1.granted, 1);
    CHECK_INT(r1.valid_from, FEB_1);
    CHECK(r1.closed);
    struct lot_row p1 = lot_of(id, 0, 1, "period");
    CHECK_INT(p1.id, p1_id);
    CHECK(p1.closed);
    struct lot_row r2 = lot_of(id, 0, 2, "rollover");
    CHECK_INT(r2.granted, 32);
    CHECK_INT(r2.balance, 32);
    CHECK_INT(r2.valid_from, MAR_1);
    CHECK_INT(r2.valid_until, APR_1);
    struct lot_row p2 = lot_of(id, 0, 2, "period");
    CHECK_INT(p2.balance, 10000);
    CHECK(!p2.closed);
    /* Closings of Feb 1 (rollover_in of period 1 and the expiry of period
     * 0) come before period 2 opens; and in order: the period-2 lot was
     * created after the period-2 rollover lot. */
    CHECK(r1.id < r2.id);
    CHECK(r2.id < p2.id);
    /* 2 grants + 1 debit, then at Feb 1 rollover_in, rollover_out and
     * expire of period 0, at Mar 1 rollover_in, two rollover_out (the
     * carried lot first, then the period lot) and the period lot's expiry,
     * and period 2's grant. */
    int after = entries_count();
    CHECK_INT(after, 11);

    /* Exactly once: a second advance at the same instant does nothing. */
    CHECK_INT(begin(), 0);
    CHECK_INT(ledger_advance(&lx), 0);
    CHECK_INT(commit(), 0);
    CHECK_INT(entries_count(), after);
    int64_t due = 0;
    CHECK_INT(ledger_next_due(&lx, &due), 0);
    CHECK_INT(due, APR_1);
}

static void
test_many_allocations(void)
{
    at(JAN_15);
    CHECK_INT(begin(), 0);
    bool ok = true;
    for (int i = 0; i < BIG_ALLOCATIONS; i++) {
        ok &= add_allocation(2, "none", false, -1, 1000, 1) > 0;
    }
    CHECK(ok);
    CHECK_INT(ledger_advance(&lx), 0); /* opens one lot each */
    CHECK_INT(commit(), 0);

    int rc = 0;
    int64_t tid = 0;
    json_t *user = ctx_user(&lx, 2, &tid, &rc);
    json_t *tenant = ctx_tenant(&lx, 2, &rc);
    CHECK(user != NULL && tenant != NULL);
    CHECK_INT(tid, 2);
    json_t *resource = json_pack("{s:s, s:s, s:s, s:[]}", "id", "res_1", "building_id", "bld_1",
                                 "kind", "room", "tags");
    struct policy_set *pol = NULL;
    CHECK_INT(policy_cache_get(&pc, st, 1, &pol, NULL, &err), 0);

    /* A booking (resource case, the caller's set) sees every lot. */
    struct cand_list list = {0};
    CHECK_INT(ledger_candidates(&lx, pol, 2, 2, user, tenant, resource, "coin", JAN_15, false,
                                false, &list),
              0);
    CHECK_INT(list.count, BIG_ALLOCATIONS);
    int64_t avail = 0;
    for (int i = 0; i < list.count; i++) {
        avail += list.items[i].balance;
    }
    CHECK_INT(avail, BIG_ALLOCATIONS * 1000);

    /* Pay 290 coins across them: more than 256 allocations' worth. */
    CHECK_INT(begin(), 0);
    int64_t left = 290000;
    for (int i = 0; left > 0 && i < list.count; i++) {
        int64_t take = list.items[i].balance < left ? list.items[i].balance : left;
        CHECK_INT(entry_post(&lx, list.items[i].lot_id, "debit", -take, JAN_15, 0, NULL, NULL,
                             NULL),
                  0);
        left -= take;
    }
    CHECK_INT(left, 0);
    CHECK_INT(commit(), 0);

    /* The wallet case (no resource, no set from the caller): each
     * allocation's own building decides; every lot is listed. */
    CHECK_INT(ledger_candidates(&lx, NULL, 2, 2, user, tenant, NULL, "coin", JAN_15, false,
                                true, &list),
              0);
    CHECK_INT(list.count, BIG_ALLOCATIONS);
    avail = 0;
    for (int i = 0; i < list.count; i++) {
        avail += list.items[i].balance;
    }
    CHECK_INT(avail, (BIG_ALLOCATIONS - 290) * 1000);
    cand_list_free(&list);
    policy_set_release(pol);
    json_decref(resource);
    json_decref(user);
    json_decref(tenant);

    struct alloc a = {0};
    a.first_building = 7;
    CHECK_INT(ledger_eligibility_building(&a, 0), 7);
    CHECK_INT(ledger_eligibility_building(&a, 9), 9);
}

/* A 500-byte description (the API's limit, multi-byte text) is read back
 * whole; a stored allocation with more lines than ALLOC_LINES_MAX is
 * refused with limit_exceeded, never read without its last lines. */
static void
test_description_and_lines(void)
{
    at(JAN_15);
    int64_t id = 0;
    struct alloc a;
    char desc[STORE_ALLOC_DESCRIPTION_MAX + 1] = "";
    for (int i = 0; i < STORE_ALLOC_DESCRIPTION_MAX / 2; i++) {
        memcpy(desc + 2 * i, "\xc3\xa9", 2); /* U+00E9 */
    }
    desc[STORE_ALLOC_DESCRIPTION_MAX] = '\0';
    CHECK_INT(begin(), 0);
    struct allocation_row row = {0};
    row.tenant_id = 3;
    memcpy(row.description, desc, sizeof desc);
    snprintf(row.unit, sizeof row.unit, "coin");
    snprintf(row.pool, sizeof row.pool, "shared");
    snprintf(row.recurrence, sizeof row.recurrence, "none");
    snprintf(row.zone, sizeof row.zone, "UTC");
    snprintf(row.start_date, sizeof row.start_date, "2027-01-01");
    row.start_at = JAN_1 + 365 * 86400;
    row.end_at = TIME_NEVER;
    row.rollover_cap = -1;
    row.next_open_at = TIME_NEVER;
    row.created_by = "test";
    row.targeting = json_pack("{s:s}", "type", "all");
    CHECK_INT(store_allocation_insert(st, &row, &id, &err), 0);
    json_decref(row.targeting);
    CHECK_INT(store_allocation_building_insert(st, id, 1, 0, &err), 0);
    bool ok = true;
    for (int i = 0; i <= ALLOC_LINES_MAX; i++) {
        struct allocation_line_row l = {.idx = i, .amount = 1000};
        snprintf(l.scope, sizeof l.scope, "all");
        ok &= store_allocation_line_insert(st, id, &l, &err) == 0;
        if (i == ALLOC_LINES_MAX - 1) {
            CHECK_INT(alloc_load(&lx, id, &a), 0);
            CHECK_INT(strlen(a.description), STORE_ALLOC_DESCRIPTION_MAX);
            CHECK(strcmp(a.description, desc) == 0);
            CHECK_INT(a.line_count, ALLOC_LINES_MAX);
            alloc_free(&a);
        }
    }
    CHECK(ok);
    CHECK_INT(alloc_load(&lx, id, &a), ENG_ELIMIT);
    CHECK_STR(eng_error_code_of(&err), "limit_exceeded");
    CHECK_INT(store_tx(st, STORE_ROLLBACK, &err), 0);
}

static void
test_store_error_mid_advance(void)
{
    at(JAN_15);
    CHECK_INT(begin(), 0);
    int64_t id = add_allocation(3, "monthly", false, -1, 5000, 2);
    CHECK(id > 0);
    CHECK_INT(ledger_advance(&lx), 0);
    CHECK_INT(commit(), 0);
    struct lot_row l0 = lot_of(id, 0, 0, "period"), l1 = lot_of(id, 1, 0, "period");
    CHECK(l0.id > 0 && l1.id > 0);
    /* The second lot's expiry fails, after the first one's was written. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "CREATE TRIGGER boom BEFORE INSERT ON entry WHEN NEW.kind = 'expire' AND"
             " NEW.lot_id = %lld BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
             (long long)l1.id);
    CHECK_INT(fixture_sql(sql), SQLITE_OK);
    int before = entries_count();

    at(FEB_1 + 3600);
    CHECK_INT(begin(), 0);
    CHECK_INT(ledger_advance(&lx), ENG_ESTORE);
    CHECK_INT(err.status, ENG_ESTORE);
    CHECK_INT(store_tx(st, STORE_ROLLBACK, &err), 0);

    at(FEB_1 + 3600);
    CHECK_INT(entries_count(), before);
    struct lot_row a0 = lot_of(id, 0, 0, "period"), a1 = lot_of(id, 1, 0, "period");
    CHECK(!a0.closed && !a1.closed);
    CHECK_INT(a0.balance, 5000);
    CHECK_INT(a1.balance, 5000);
    CHECK_INT(lot_of(id, 0, 1, "period").id, 0);

    /* Once the fault is gone the same advance goes through. */
    CHECK_INT(fixture_sql("DROP TRIGGER boom;"), SQLITE_OK);
    CHECK_INT(begin(), 0);
    CHECK_INT(ledger_advance(&lx), 0);
    CHECK_INT(commit(), 0);
    CHECK(lot_of(id, 1, 0, "period").closed);
    CHECK_INT(lot_of(id, 1, 1, "period").balance, 5000);
}

int
main(void)
{
    test_setup();
    if (st != NULL) {
        test_lots_entries_and_periods();
        test_many_allocations();
        test_description_and_lines();
        test_store_error_mid_advance();
    }
    policy_cache_close(&pc);
    store_close(st);
    unlink(db_path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db_path);
    unlink(wal);
    return check_exit();
}

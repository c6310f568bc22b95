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
#include "internal.h"
#include "portfolio.h"
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
    test_pool_waiters();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", dir);
    }
    return check_exit();
}

/* db.c - connections, versioned migrations, the statement cache, checked
 * steps, transactions and the reader pool. */
#include "internal.h"
#include "walbuf.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "store_pg.h"
#include "usage.h"


/* Each migration runs once, in order, inside one transaction with the
 * user_version bump.  Ledger tables are STRICT; entries are immutable by
 * trigger; a lot's balance is a cache of its entries kept in the same
 * transaction (checked by `allot verify`). */
/* Migration 1: the portfolio, the ledger, bookings, keys, idempotency.
 * One string per table (with its indexes and triggers), run in order. */
static const char *const migration_1[] = {
    
    "CREATE TABLE building ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL, timezone TEXT NOT NULL,"
    "  currency TEXT NOT NULL, pay_credits INTEGER NOT NULL, pay_invoice INTEGER NOT NULL,"
    "  pay_card INTEGER NOT NULL, created_at INTEGER NOT NULL) STRICT;",
    "CREATE TABLE resource ("
    "  id INTEGER PRIMARY KEY, building_id INTEGER NOT NULL REFERENCES building(id),"
    "  name TEXT NOT NULL, kind TEXT NOT NULL, tags TEXT NOT NULL, pricing TEXT NOT NULL,"
    "  credit_only INTEGER NOT NULL, created_at INTEGER NOT NULL) STRICT;"
    "CREATE INDEX resource_building ON resource(building_id);",
    "CREATE TABLE tenant ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL, cross_building INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL) STRICT;",
    "CREATE TABLE tenant_building ("
    "  tenant_id INTEGER NOT NULL REFERENCES tenant(id),"
    "  building_id INTEGER NOT NULL REFERENCES building(id),"
    "  PRIMARY KEY (tenant_id, building_id)) STRICT, WITHOUT ROWID;",
    "CREATE TABLE user ("
    "  id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL REFERENCES tenant(id),"
    "  name TEXT NOT NULL, email TEXT NOT NULL, roles TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL) STRICT;"
    "CREATE INDEX user_tenant ON user(tenant_id);",
    "CREATE TABLE allocation ("
    "  id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL REFERENCES tenant(id),"
    "  description TEXT NOT NULL, unit TEXT NOT NULL CHECK (unit IN ('coin','hour')),"
    "  cross_building INTEGER NOT NULL, targeting TEXT NOT NULL,"
    "  pool TEXT NOT NULL CHECK (pool IN ('shared','per_user')),"
    "  recurrence TEXT NOT NULL, zone TEXT NOT NULL, start_date TEXT NOT NULL,"
    "  end_date TEXT, start_at INTEGER NOT NULL, end_at INTEGER,"
    "  rollover INTEGER NOT NULL, rollover_cap INTEGER,"
    "  next_open_n INTEGER NOT NULL DEFAULT 0, next_open_at INTEGER,"
    "  created_at INTEGER NOT NULL, created_by TEXT NOT NULL) STRICT;"
    "CREATE INDEX allocation_tenant ON allocation(tenant_id);"
    "CREATE INDEX allocation_open ON allocation(next_open_at) WHERE next_open_at IS NOT NULL;",
    "CREATE TABLE allocation_building ("
    "  allocation_id INTEGER NOT NULL REFERENCES allocation(id),"
    "  building_id INTEGER NOT NULL REFERENCES building(id), pos INTEGER NOT NULL,"
    "  PRIMARY KEY (allocation_id, building_id)) STRICT, WITHOUT ROWID;"
    "CREATE INDEX allocation_building_by_building ON allocation_building(building_id,"
    "  allocation_id);",
    "CREATE TABLE allocation_line ("
    "  allocation_id INTEGER NOT NULL REFERENCES allocation(id), idx INTEGER NOT NULL,"
    "  scope TEXT NOT NULL CHECK (scope IN ('all','resources','tags')),"
    "  resource_ids TEXT NOT NULL, tags TEXT NOT NULL,"
    "  amount INTEGER CHECK (amount IS NULL OR amount > 0),"
    "  PRIMARY KEY (allocation_id, idx)) STRICT, WITHOUT ROWID;"
    /* A lot: one line's credits for one period (and one user when per_user).
     * user_id 0 = the shared pool.  kind 'rollover' holds carried credit.
     * balance = SUM(entry.amount); negative only for unlimited lots, where it
     * is minus the net usage.  used (net debits) and adjusted (adjustments)
     * are report aggregates of the same entries, kept in the same
     * transaction and checked by verify.  closed = its end was processed. */,
    "CREATE TABLE lot ("
    "  id INTEGER PRIMARY KEY, allocation_id INTEGER NOT NULL REFERENCES allocation(id),"
    "  line_idx INTEGER NOT NULL, period_n INTEGER NOT NULL, user_id INTEGER NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('period','rollover')),"
    "  tenant_id INTEGER NOT NULL, unit TEXT NOT NULL,"
    "  valid_from INTEGER NOT NULL, valid_until INTEGER NOT NULL,"
    "  granted INTEGER NOT NULL, unlimited INTEGER NOT NULL,"
    "  balance INTEGER NOT NULL CHECK (unlimited = 1 OR balance >= 0),"
    "  used INTEGER NOT NULL DEFAULT 0, adjusted INTEGER NOT NULL DEFAULT 0,"
    "  closed INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"
    "  UNIQUE (allocation_id, line_idx, period_n, user_id, kind)) STRICT;"
    "CREATE INDEX lot_open_end ON lot(valid_until) WHERE closed = 0;"
    "CREATE INDEX lot_tenant ON lot(tenant_id, unit, valid_from);"
    "CREATE INDEX lot_unit ON lot(unit, valid_from);",
    "CREATE TABLE booking ("
    "  id INTEGER PRIMARY KEY, resource_id INTEGER NOT NULL REFERENCES resource(id),"
    "  building_id INTEGER NOT NULL, tenant_id INTEGER NOT NULL, user_id INTEGER NOT NULL,"
    "  start_at INTEGER NOT NULL, end_at INTEGER NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('confirmed','cancelled')),"
    "  payment_method TEXT NOT NULL CHECK (payment_method IN ('credits','invoice','card')),"
    "  unit TEXT, credits INTEGER, money INTEGER, money_before_discount INTEGER,"
    "  currency TEXT NOT NULL, discount_pm INTEGER NOT NULL,"
    "  credits_refunded INTEGER NOT NULL DEFAULT 0, money_refunded INTEGER NOT NULL DEFAULT 0,"
    "  policy_versions TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL,"
    "  cancelled_at INTEGER, cancelled_by TEXT, cancelled_by_admin INTEGER,"
    "  cancel_reason TEXT) STRICT;"
    "CREATE INDEX booking_slot ON booking(resource_id, end_at) WHERE status = 'confirmed';"
    "CREATE INDEX booking_tenant ON booking(tenant_id, created_at);"
    "CREATE INDEX booking_user ON booking(user_id, start_at);"
    "CREATE INDEX booking_created ON booking(created_at);"
    "CREATE INDEX booking_building ON booking(building_id, created_at);",
    "CREATE TABLE entry ("
    "  id INTEGER PRIMARY KEY, lot_id INTEGER NOT NULL REFERENCES lot(id),"
    "  kind TEXT NOT NULL CHECK (kind IN ('grant','debit','refund','expire','rollover_out',"
    "    'rollover_in','adjust','void')),"
    "  amount INTEGER NOT NULL, effective_at INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    "  booking_id INTEGER REFERENCES booking(id), tenant_id INTEGER NOT NULL,"
    "  unit TEXT NOT NULL, event_key TEXT UNIQUE, policy_version TEXT, memo TEXT,"
    "  actor TEXT) STRICT;"
    "CREATE INDEX entry_lot ON entry(lot_id);"
    "CREATE INDEX entry_booking ON entry(booking_id) WHERE booking_id IS NOT NULL;"
    "CREATE INDEX entry_tenant_time ON entry(tenant_id, unit, effective_at);"
    "CREATE TRIGGER entry_no_update BEFORE UPDATE ON entry"
    "  BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;"
    "CREATE TRIGGER entry_no_delete BEFORE DELETE ON entry"
    "  BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;"
    "CREATE TRIGGER lot_no_delete BEFORE DELETE ON lot"
    "  BEGIN SELECT RAISE(ABORT, 'lots are never deleted'); END;",
    "CREATE TABLE api_key ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,"
    "  tenant_id INTEGER REFERENCES tenant(id), user_id INTEGER REFERENCES user(id),"
    "  building_ids TEXT, key_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER) STRICT;",
    "CREATE TABLE idempotency ("
    "  principal TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,"
    "  status INTEGER NOT NULL, response TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (principal, key)) STRICT, WITHOUT ROWID;",
    "CREATE TABLE policy_version ("
    "  id INTEGER PRIMARY KEY, building_id INTEGER NOT NULL, kind TEXT NOT NULL,"
    "  version INTEGER NOT NULL, source TEXT NOT NULL, sha256 TEXT NOT NULL,"
    "  author TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  UNIQUE (building_id, kind, version)) STRICT;",
    "CREATE TABLE policy_active ("
    "  building_id INTEGER NOT NULL, kind TEXT NOT NULL,"
    "  version_id INTEGER REFERENCES policy_version(id), loaded_at INTEGER NOT NULL,"
    "  PRIMARY KEY (building_id, kind)) STRICT, WITHOUT ROWID;",
    "CREATE TABLE setting (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;",
    NULL,
};

/* Migration 2: archived resources (kept for history, closed to new
 * bookings) and the versions of an allocation (each PATCH, with what it
 * changed and from when). */
static const char *const migration_2[] = {
    "ALTER TABLE resource ADD COLUMN archived_at INTEGER;",
    "CREATE TABLE allocation_version ("
    "  allocation_id INTEGER NOT NULL REFERENCES allocation(id), version INTEGER NOT NULL,"
    "  effective_at INTEGER NOT NULL, changes TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL, PRIMARY KEY (allocation_id, version)) STRICT, WITHOUT ROWID;",
    NULL,
};

/* Three triggers moving the portfolio generation on any change to table t. */
#define GEN_TRIGGERS(t)                                                                       \
    "CREATE TRIGGER gen_" t "_insert AFTER INSERT ON " t                                      \
    "  BEGIN UPDATE portfolio_generation SET n = n + 1; END;"                                 \
    "CREATE TRIGGER gen_" t "_update AFTER UPDATE ON " t                                      \
    "  BEGIN UPDATE portfolio_generation SET n = n + 1; END;"                                 \
    "CREATE TRIGGER gen_" t "_delete AFTER DELETE ON " t                                      \
    "  BEGIN UPDATE portfolio_generation SET n = n + 1; END;"

/* Migration 3: the running usage counters of store/usage.c (what policies
 * see as ctx.user_usage_month), built from the entries by
 * store_usage_rebuild once the tables exist; and the portfolio generation
 * of store/generation.c. */
static const char *const migration_3[] = {
    "CREATE TABLE usage_zone (zone TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;",
    "CREATE TABLE usage_month ("
    "  user_id INTEGER NOT NULL, unit TEXT NOT NULL, zone TEXT NOT NULL,"
    "  month INTEGER NOT NULL, used INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, unit, zone, month)) STRICT, WITHOUT ROWID;",
    /* store/generation.h: one row, moved by every change a booking's
     * computation reads (lot balances excepted: plans re-check those). */
    "CREATE TABLE portfolio_generation (n INTEGER NOT NULL) STRICT;"
    "INSERT INTO portfolio_generation VALUES (1);",
    GEN_TRIGGERS("building"),
    GEN_TRIGGERS("resource"),
    GEN_TRIGGERS("tenant"),
    GEN_TRIGGERS("tenant_building"),
    GEN_TRIGGERS("user"),
    GEN_TRIGGERS("allocation"),
    GEN_TRIGGERS("allocation_building"),
    GEN_TRIGGERS("allocation_line"),
    GEN_TRIGGERS("policy_active"),
    "CREATE TRIGGER gen_lot_insert AFTER INSERT ON lot"
    "  BEGIN UPDATE portfolio_generation SET n = n + 1; END;"
    "CREATE TRIGGER gen_lot_update AFTER UPDATE OF closed, valid_from, valid_until, unlimited"
    "  ON lot BEGIN UPDATE portfolio_generation SET n = n + 1; END;"
    /* A lot becoming empty or no longer empty changes which lots may pay. */
    "CREATE TRIGGER gen_lot_emptiness AFTER UPDATE OF balance ON lot"
    "  WHEN (old.balance > 0) != (new.balance > 0)"
    "  BEGIN UPDATE portfolio_generation SET n = n + 1; END;",
    NULL,
};

/* Migration 4: nothing but its fill step, checks_as_comparisons. */
static const char *const migration_4[] = {NULL};

static int checks_as_comparisons(struct store *s, struct eng_error *err);

/* Migration 5: indexes for the reports (issue 12; store/reports.c).
 * entry_lot also holds the columns the Data Hub and the credit report read
 * from entries (entries are immutable: it only grows, one key per entry as
 * before); lot_unlimited holds only unlimited lots.  Both steps may run
 * again on a file whose version was set back by hand (a test's "older
 * database"). */
static const char *const migration_5[] = {
    "DROP INDEX IF EXISTS entry_lot;"
    "CREATE INDEX entry_lot ON entry(lot_id, effective_at, kind, amount, booking_id);",
    "CREATE INDEX IF NOT EXISTS lot_unlimited ON lot(unit, valid_from) WHERE unlimited = 1;",
    NULL,
};

/* Migration 6 (issue 12, the writer's share of a booking; engine/README.md
 * "Per-request costs").  Two indexes that no query reads go: each was one
 * more b-tree insert per booking or entry and one more page written to the
 * WAL at every commit.  booking_user served only the usage sum of a zone
 * without counters (store_usage_get's fallback for a database edited by
 * hand, which now reads the bookings in full); entry_tenant_time served
 * none (the reports read entries through the covering entry_lot).
 * EXPLAIN QUERY PLAN of every statement the test suite prepares (151)
 * names neither.  And usage_month's key puts the month before the zone, so
 * that a user's counters of one month in every zone are one range, moved
 * by one UPDATE (store/usage.c); same columns, same rows. */
static const char *const migration_6[] = {
    "DROP INDEX IF EXISTS booking_user;",
    "DROP INDEX IF EXISTS entry_tenant_time;",
    "CREATE TABLE usage_month_new ("
    "  user_id INTEGER NOT NULL, unit TEXT NOT NULL, zone TEXT NOT NULL,"
    "  month INTEGER NOT NULL, used INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, unit, month, zone)) STRICT, WITHOUT ROWID;"
    "INSERT INTO usage_month_new (user_id, unit, zone, month, used)"
    "  SELECT user_id, unit, zone, month, used FROM usage_month;"
    "DROP TABLE usage_month;"
    "ALTER TABLE usage_month_new RENAME TO usage_month;",
    NULL,
};

static int event_key_partial(struct store *s, struct eng_error *err);

static const char *const *const migrations[] = {migration_1, migration_2, migration_3,
                                                migration_4, migration_5, migration_6};

/* What a migration needs besides SQL, run after its statements (NULL: none). */
static int (*const migration_fill[])(struct store *s, struct eng_error *err) = {
    NULL, NULL, store_usage_rebuild, checks_as_comparisons, NULL, event_key_partial};
_Static_assert(sizeof migration_fill / sizeof migration_fill[0] ==
                   sizeof migrations / sizeof migrations[0],
               "one fill step (or NULL) per migration");

#define MIGRATIONS_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

int
store_schema_version(void)
{
    return MIGRATIONS_COUNT;
}

const char *const *
store_migration(int version_index)
{
    return migrations[version_index];
}

int (*store_migration_fill(int version_index))(struct store *s, struct eng_error *err)
{
    return migration_fill[version_index];
}

/* ---------- errors ---------- */

int
sq_fail(struct store *s, const char *what, struct eng_error *err)
{
    if (s != NULL && s->pg != NULL) {
        return pg_fail(s, what, err);
    }
    const char *detail = s != NULL && s->db != NULL ? sqlite3_errmsg(s->db) : "no database";
    int code = s != NULL && s->db != NULL ? sqlite3_errcode(s->db) : SQLITE_ERROR;
    fprintf(stderr, "allot: storage error in %s: %s\n", what, detail);
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return eng_error_code(err, ENG_ESTORE, "busy", "the database is busy; try again");
    case SQLITE_FULL:
        return eng_error_code(err, ENG_ESTORE, "storage_full",
                              "the database is full; nothing was written");
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
        return eng_error_code(err, ENG_ESTORE, "storage_unavailable",
                              "the database could not be read or written; nothing was written");
    case SQLITE_NOMEM:
        eng_alloc_note_failure();
        return eng_error_code(err, ENG_ENOMEM, "overloaded", "out of memory; try again");
    default:
        return eng_error_code(err, ENG_ESTORE, "storage_error",
                              "internal storage error; nothing was written");
    }
}

/* ---------- the statement cache ---------- */

static atomic_int next_sql_id = 1;

static int
sql_id(struct store_sql *q)
{
    int id = atomic_load(&q->id);
    if (id == 0) {
        int fresh = atomic_fetch_add(&next_sql_id, 1);
        int expected = 0;
        if (atomic_compare_exchange_strong(&q->id, &expected, fresh)) {
            id = fresh;
        } else {
            id = expected; /* another thread named it first */
        }
    }
    return id;
}

static struct store_stmt **
slot_of(struct store *s, int id, struct eng_error *err)
{
    if (id >= s->by_id_len) {
        int len = s->by_id_len ? s->by_id_len : 64;
        while (len <= id) {
            len *= 2;
        }
        struct store_stmt **grown = realloc(s->by_id, (size_t)len * sizeof *grown);
        if (grown == NULL) {
            eng_error_set(err, ENG_ENOMEM, "out of memory");
            return NULL;
        }
        memset(grown + s->by_id_len, 0, (size_t)(len - s->by_id_len) * sizeof *grown);
        s->by_id = grown;
        s->by_id_len = len;
    }
    return &s->by_id[id];
}

static sqlite3_stmt *
prepare_into(struct store *s, struct store_stmt **link, const struct store_sql *q,
             struct eng_error *err)
{
    const char *sql = q->text;
    struct store_stmt *node = calloc(1, sizeof *node);
    if (node == NULL) {
        eng_error_set(err, ENG_ENOMEM, "out of memory");
        return NULL;
    }
    if (s->pg != NULL) {
        node->stmt = pg_stmt_new(s, q, err);
        if (node->stmt == NULL) {
            free(node);
            return NULL;
        }
        *link = node;
        return node->stmt;
    }
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &node->stmt, NULL) !=
        SQLITE_OK) {
        sq_fail(s, sql, err);
        sqlite3_finalize(node->stmt);
        free(node);
        return NULL;
    }
    *link = node;
    return node->stmt;
}

sqlite3_stmt *
sq_prep(struct store *s, struct store_sql *q, struct eng_error *err)
{
    struct store_stmt **link = slot_of(s, sql_id(q), err);
    if (link == NULL) {
        return NULL;
    }
    s->bind_rc = SQLITE_OK;
    int depth = 0;
    for (; *link != NULL; link = &(*link)->next, depth++) {
        sqlite3_stmt *st = (*link)->stmt;
        if (SQ_IS_PG(st)) {
            if (!pg_stmt_busy(st)) {
                pg_stmt_clear(st);
                return st;
            }
            continue;
        }
        if (!sqlite3_stmt_busy(st)) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return st;
        }
    }
    if (depth >= STORE_NEST_MAX) {
        /* A statement left open (not stepped to its end nor reset) in a
         * loop: a programmer error, refused rather than leaked. */
        fprintf(stderr, "allot: statement nested more than %d deep: %s\n", STORE_NEST_MAX,
                q->text);
        eng_error_code(err, ENG_ESTORE, "storage_error", "internal storage error");
        return NULL;
    }
    return prepare_into(s, link, q, err);
}

/* A PostgreSQL bind failure, as the SQLite code it stands for. */
static int
pg_bind_rc(int rc)
{
    return rc == 0 ? SQLITE_OK : rc == -2 ? SQLITE_NOMEM : SQLITE_RANGE;
}

void
sq_int(struct store *s, sqlite3_stmt *st, int idx, int64_t v)
{
    int rc = SQ_IS_PG(st) ? pg_bind_rc(pg_bind_int(st, idx, v)) : sqlite3_bind_int64(st, idx, v);
    if (rc != SQLITE_OK && s->bind_rc == SQLITE_OK) {
        s->bind_rc = rc;
    }
}

void
sq_text(struct store *s, sqlite3_stmt *st, int idx, const char *v)
{
    int rc = SQ_IS_PG(st)  ? pg_bind_rc(pg_bind_text(st, idx, v))
             : v != NULL ? sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT)
                         : sqlite3_bind_null(st, idx);
    if (rc != SQLITE_OK && s->bind_rc == SQLITE_OK) {
        s->bind_rc = rc;
    }
}

void
sq_text_static(struct store *s, sqlite3_stmt *st, int idx, const char *v)
{
    int rc = SQ_IS_PG(st)  ? pg_bind_rc(pg_bind_text(st, idx, v))
             : v != NULL ? sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC)
                         : sqlite3_bind_null(st, idx);
    if (rc != SQLITE_OK && s->bind_rc == SQLITE_OK) {
        s->bind_rc = rc;
    }
}

void
sq_null(struct store *s, sqlite3_stmt *st, int idx)
{
    int rc = SQ_IS_PG(st) ? pg_bind_rc(pg_bind_text(st, idx, NULL)) : sqlite3_bind_null(st, idx);
    if (rc != SQLITE_OK && s->bind_rc == SQLITE_OK) {
        s->bind_rc = rc;
    }
}

int
sq_step(struct store *s, sqlite3_stmt *st, const char *what, struct eng_error *err)
{
    if (s->bind_rc != SQLITE_OK) {
        int rc = s->bind_rc;
        s->bind_rc = SQLITE_OK;
        sq_reset(st);
        fprintf(stderr, "allot: storage error in %s: bind failed (%s)\n", what,
                sqlite3_errstr(rc));
        if (rc == SQLITE_NOMEM) {
            eng_alloc_note_failure();
            return eng_error_code(err, ENG_ENOMEM, "overloaded", "out of memory; try again");
        }
        return eng_error_code(err, ENG_ESTORE, "storage_error", "internal storage error");
    }
    if (SQ_IS_PG(st)) {
        if (s->tx_open && !pg_in_tx(s)) {
            pg_stmt_reset(st);
            fprintf(stderr, "allot: storage error in %s: the transaction was lost\n", what);
            return eng_error_code(err, ENG_ESTORE, "storage_unavailable",
                                  "the database failed during this write; nothing was written");
        }
        return pg_step(s, st, what, err);
    }
    if (s->tx_open && sqlite3_get_autocommit(s->db)) {
        /* SQLite rolled our transaction back on its own (out of memory, an
         * I/O error): running on would commit each statement by itself. */
        sqlite3_reset(st);
        fprintf(stderr, "allot: storage error in %s: the transaction was rolled back\n", what);
        return eng_error_code(err, ENG_ESTORE, "storage_unavailable",
                              "the database failed during this write; nothing was written");
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    int status = sq_fail(s, what, err);
    sqlite3_reset(st);
    return status;
}

int
sq_exec(struct store *s, sqlite3_stmt *st, const char *what, struct eng_error *err)
{
    int rc = sq_step(s, st, what, err);
    if (rc > 0) {
        sq_reset(st);
        return 0;
    }
    return rc;
}

void
sq_reset(sqlite3_stmt *st)
{
    if (st != NULL) {
        if (SQ_IS_PG(st)) {
            pg_stmt_reset(st);
        } else {
            sqlite3_reset(st);
        }
    }
}

int64_t
sq_last_id(struct store *s)
{
    return s->pg != NULL ? pg_last_id(s) : sqlite3_last_insert_rowid(s->db);
}

int
sq_changes(struct store *s)
{
    return s->pg != NULL ? pg_changes(s) : sqlite3_changes(s->db);
}

int64_t
sq_col_int(sqlite3_stmt *st, int col)
{
    return SQ_IS_PG(st) ? pg_col_int(st, col) : sqlite3_column_int64(st, col);
}

bool
sq_col_null(sqlite3_stmt *st, int col)
{
    return SQ_IS_PG(st) ? pg_col_null(st, col) : sqlite3_column_type(st, col) == SQLITE_NULL;
}

const char *
sq_col_text(sqlite3_stmt *st, int col)
{
    if (SQ_IS_PG(st)) {
        return pg_col_text(st, col);
    }
    const unsigned char *t = sqlite3_column_text(st, col);
    return t != NULL ? (const char *)t : "";
}

size_t
sq_col_bytes(sqlite3_stmt *st, int col)
{
    return SQ_IS_PG(st) ? pg_col_bytes(st, col) : (size_t)sqlite3_column_bytes(st, col);
}

int
sq_col_copy(sqlite3_stmt *st, int col, char *buf, size_t size, const char *what,
            struct eng_error *err)
{
    const unsigned char *raw = SQ_IS_PG(st) ? (const unsigned char *)pg_col_text(st, col)
                                            : sqlite3_column_text(st, col);
    if (raw == NULL && sqlite3_column_type(st, col) != SQLITE_NULL) {
        eng_alloc_note_failure();
        return eng_error_code(err, ENG_ENOMEM, "overloaded", "out of memory; try again");
    }
    const char *t = raw != NULL ? (const char *)raw : "";
    size_t n = sq_col_bytes(st, col);
    if (n >= size) {
        fprintf(stderr, "allot: stored %s is %zu bytes, more than %zu\n", what, n, size - 1);
        return eng_error_code(err, ENG_ESTORE, "storage_error",
                              "a stored %s is longer than this build accepts", what);
    }
    memcpy(buf, t, n);
    buf[n] = '\0';
    return 0;
}

int
sq_scalar(struct store *s, struct store_sql *q, int64_t arg, int64_t dflt, int64_t *out,
          struct eng_error *err)
{
    sqlite3_stmt *st = sq_prep(s, q, err);
    if (st == NULL) {
        return err->status;
    }
    if ((SQ_IS_PG(st) ? pg_param_count(st) : sqlite3_bind_parameter_count(st)) > 0) {
        sq_int(s, st, 1, arg);
    }
    int rc = sq_step(s, st, q->text, err);
    if (rc < 0) {
        return rc;
    }
    *out = rc == 1 && !sq_col_null(st, 0) ? sq_col_int(st, 0) : dflt;
    sq_reset(st);
    return 0;
}

int
sq_lookup(struct store *s, struct store_sql *q, int64_t arg, const char *what, int64_t *out,
          bool *found, struct eng_error *err)
{
    *out = 0;
    *found = false;
    sqlite3_stmt *st = sq_prep(s, q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, arg);
    int rc = sq_step(s, st, what, err);
    if (rc <= 0) {
        return rc;
    }
    *out = sq_col_int(st, 0);
    *found = true;
    sq_reset(st);
    return 0;
}

/* ---------- transactions ---------- */

int
store_tx(struct store *s, enum store_tx what, struct eng_error *err)
{
    STORE_SQL(q_begin, "BEGIN");
    STORE_SQL(q_begin_imm, "BEGIN IMMEDIATE");
    STORE_SQL(q_commit, "COMMIT");
    STORE_SQL(q_rollback, "ROLLBACK");
    STORE_SQL(q_savepoint, "SAVEPOINT job");
    STORE_SQL(q_release, "RELEASE job");
    STORE_SQL(q_rollback_to, "ROLLBACK TO job");
    struct eng_error scratch = {0};
    if (err == NULL) {
        err = &scratch; /* callers that only clean up pass none */
    }
    struct store_sql *q = NULL;
    switch (what) {
    case STORE_BEGIN: q = &q_begin; break;
    case STORE_BEGIN_IMMEDIATE: q = &q_begin_imm; break;
    case STORE_COMMIT: q = &q_commit; break;
    case STORE_ROLLBACK: q = &q_rollback; break;
    case STORE_SAVEPOINT: q = &q_savepoint; break;
    case STORE_RELEASE: q = &q_release; break;
    case STORE_ROLLBACK_TO: q = &q_rollback_to; break;
    }
    bool opening = what == STORE_BEGIN || what == STORE_BEGIN_IMMEDIATE;
    bool closing = what == STORE_COMMIT || what == STORE_ROLLBACK;
    if (closing || opening) {
        s->tx_open = false; /* the guard in sq_step is for statements inside */
    }
    if (s->pg != NULL) {
        if (what == STORE_ROLLBACK && !pg_in_tx(s)) {
            return 0;
        }
        int rc = pg_tx(s, what, err);
        if (opening && rc == 0) {
            s->tx_open = true;
        }
        if (what == STORE_COMMIT && rc != 0 && pg_in_tx(s)) {
            s->tx_open = true;
        }
        return rc;
    }
    /* What this connection knows without reading (store/known.c) lives
     * through our own commit and no rollback. */
    bool gen_kept = what == STORE_COMMIT && store_known_commit_begin(s);
    if (what == STORE_ROLLBACK && sqlite3_get_autocommit(s->db)) {
        store_known_tx_done(s, what, true, false);
        return 0; /* SQLite already rolled back (e.g. after an I/O error) */
    }
    sqlite3_stmt *st = sq_prep(s, q, err);
    if (st == NULL) {
        store_known_tx_done(s, what, false, false);
        return err->status;
    }
    int rc = sq_exec(s, st, q->text, err);
    store_known_tx_done(s, what, rc == 0, gen_kept);
    if (opening && rc == 0) {
        s->tx_open = true;
    }
    if (what == STORE_COMMIT && rc != 0 && !sqlite3_get_autocommit(s->db)) {
        s->tx_open = true; /* still open: the caller rolls back */
    }
    return rc;
}

bool
store_retry_advised(struct store *s)
{
    return s->pg != NULL && pg_retry_advised(s);
}

int64_t
store_changes_total(struct store *s)
{
    return s->pg != NULL ? -1 : (int64_t)sqlite3_total_changes64(s->db);
}

bool
store_in_tx(struct store *s)
{
    return s->pg != NULL ? pg_in_tx(s) : !sqlite3_get_autocommit(s->db);
}

/* ---------- opening ---------- */

static int
exec_text(struct store *s, const char *sql, const char *what, struct eng_error *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        return sq_fail(s, what, err);
    }
    return 0;
}

int
store_file_schema(struct store *s, int *version, struct eng_error *err)
{
    STORE_SQL(q, "PRAGMA user_version");
    if (s->pg != NULL) {
        return pg_file_schema(s, version, err);
    }
    int64_t v = 0;
    if (sq_scalar(s, &q, 0, 0, &v, err) != 0) {
        return err->status;
    }
    *version = (int)v;
    return 0;
}

/* Migration 4 (SQLite; PostgreSQL needs nothing): the CHECKs of
 * booking.payment_method and entry.kind become chains of comparisons
 * instead of IN lists.  Same rule, same rows accepted; but SQLite checks a
 * constant IN list of three or more values through a temporary b-tree it
 * builds afresh at every INSERT (~17,000 instructions each, two per credit
 * booking: issue 12).  The table text is changed in place, the way SQLite
 * documents for changing a constraint the stored rows already satisfy
 * (lang_altertable.html, "other kinds of table schema changes"):
 * writable_schema, then a schema version bump so that every connection
 * re-reads the schema, and a reset of this connection's own. */
static int
checks_as_comparisons(struct store *s, struct eng_error *err)
{
    STORE_SQL(version_q, "PRAGMA schema_version");
    static const char *const edits =
        "PRAGMA writable_schema = ON;"
        "UPDATE sqlite_schema SET sql = replace(sql,"
        " 'CHECK (payment_method IN (''credits'',''invoice'',''card''))',"
        " 'CHECK (payment_method = ''credits'' OR payment_method = ''invoice'' OR"
        " payment_method = ''card'')')"
        " WHERE type = 'table' AND name = 'booking';"
        "UPDATE sqlite_schema SET sql = replace(sql,"
        " 'CHECK (kind IN (''grant'',''debit'',''refund'',''expire'',''rollover_out'',"
        "    ''rollover_in'',''adjust'',''void''))',"
        " 'CHECK (kind = ''grant'' OR kind = ''debit'' OR kind = ''refund'' OR"
        " kind = ''expire'' OR kind = ''rollover_out'' OR kind = ''rollover_in'' OR"
        " kind = ''adjust'' OR kind = ''void'')')"
        " WHERE type = 'table' AND name = 'entry';";
    if (s->pg != NULL) {
        return 0;
    }
    int64_t version = 0;
    if (sq_scalar(s, &version_q, 0, 0, &version, err) != 0 ||
        exec_text(s, edits, "migration 4", err) != 0) {
        return err->status;
    }
    char bump[96];
    snprintf(bump, sizeof bump, "PRAGMA schema_version = %lld; PRAGMA writable_schema = RESET;",
             (long long)version + 1);
    return exec_text(s, bump, "migration 4", err);
}

/* Migration 6's fill (SQLite; PostgreSQL drops the constraint and makes
 * the same index in store_pg.c's pg_extra): entry.event_key's UNIQUE
 * becomes a partial unique index, `WHERE event_key IS NOT NULL`.  Only
 * grants, period ends and the like carry a key; a booking's debit has
 * none, yet the constraint's index took a NULL entry for it: one more
 * b-tree insert and one more page written to the WAL per booking.  Same
 * rule (NULLs never conflicted).  SQLite changes a constraint only by
 * rebuilding the table (lang_altertable.html, the twelve steps): the
 * entries are copied whole, ids kept, into the table as migrations 1, 4
 * and 5 left it but for the UNIQUE, and its indexes and triggers are made
 * again.  Nothing refers to entry, and dropping it fires no trigger. */
static int
event_key_partial(struct store *s, struct eng_error *err)
{
    static const char *const rebuild =
        "CREATE TABLE entry_new ("
        "  id INTEGER PRIMARY KEY, lot_id INTEGER NOT NULL REFERENCES lot(id),"
        "  kind TEXT NOT NULL CHECK (kind = 'grant' OR kind = 'debit' OR kind = 'refund' OR"
        " kind = 'expire' OR kind = 'rollover_out' OR kind = 'rollover_in' OR"
        " kind = 'adjust' OR kind = 'void'),"
        "  amount INTEGER NOT NULL, effective_at INTEGER NOT NULL, created_at INTEGER NOT NULL,"
        "  booking_id INTEGER REFERENCES booking(id), tenant_id INTEGER NOT NULL,"
        "  unit TEXT NOT NULL, event_key TEXT, policy_version TEXT, memo TEXT,"
        "  actor TEXT) STRICT;"
        "INSERT INTO entry_new (id, lot_id, kind, amount, effective_at, created_at, booking_id,"
        "  tenant_id, unit, event_key, policy_version, memo, actor)"
        "  SELECT id, lot_id, kind, amount, effective_at, created_at, booking_id, tenant_id,"
        "  unit, event_key, policy_version, memo, actor FROM entry ORDER BY id;"
        "DROP TABLE entry;"
        "ALTER TABLE entry_new RENAME TO entry;"
        "CREATE INDEX entry_lot ON entry(lot_id, effective_at, kind, amount, booking_id);"
        "CREATE INDEX entry_booking ON entry(booking_id) WHERE booking_id IS NOT NULL;"
        "CREATE UNIQUE INDEX entry_event_key ON entry(event_key) WHERE event_key IS NOT NULL;"
        "CREATE TRIGGER entry_no_update BEFORE UPDATE ON entry"
        "  BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;"
        "CREATE TRIGGER entry_no_delete BEFORE DELETE ON entry"
        "  BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;";
    if (s->pg != NULL) {
        return 0;
    }
    return exec_text(s, rebuild, "migration 6", err);
}

static int
store_migrate(struct store *s, struct eng_error *err)
{
    int version = 0;
    if (store_tx(s, STORE_BEGIN_IMMEDIATE, err) != 0) {
        return err->status;
    }
    if (store_file_schema(s, &version, err) != 0) {
        goto fail;
    }
    if (version > MIGRATIONS_COUNT) {
        (void)store_tx(s, STORE_ROLLBACK, NULL);
        return eng_error_code(err, ENG_ESTORE, "storage_error",
                              "database schema %d is newer than this build (%d)", version,
                              MIGRATIONS_COUNT);
    }
    for (int v = version; v < MIGRATIONS_COUNT; v++) {
        char bump[64];
        for (const char *const *step = migrations[v]; *step != NULL; step++) {
            if (exec_text(s, *step, "migration", err) != 0) {
                goto fail;
            }
        }
        if (migration_fill[v] != NULL && migration_fill[v](s, err) != 0) {
            goto fail;
        }
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
        if (exec_text(s, bump, "migration", err) != 0) {
            goto fail;
        }
    }
    return store_tx(s, STORE_COMMIT, err);
fail:
    (void)store_tx(s, STORE_ROLLBACK, NULL);
    return err->status;
}

int
store_open(struct store **out, const char *path, enum store_mode mode, int busy_timeout_ms,
           int cache_kib, struct eng_error *err)
{
    *out = NULL;
    if (pg_is_uri(path)) {
        struct store *s = calloc(1, sizeof *s);
        if (s == NULL) {
            return eng_error_set(err, ENG_ENOMEM, "out of memory");
        }
        s->readonly = mode == STORE_READONLY;
        if (pg_open(s, path, mode, busy_timeout_ms, err) != 0) {
            store_close(s);
            return err->status;
        }
        *out = s;
        return 0;
    }
    struct stat sb;
    if (mode != STORE_CREATE && stat(path, &sb) != 0) {
        return eng_error_code(err, ENG_ENOTFOUND, "not_found",
                              "no database at '%s' (pass --create to make a new one)", path);
    }
    struct store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    s->readonly = mode == STORE_READONLY;
    int flags = SQLITE_OPEN_NOMUTEX |
                (s->readonly ? SQLITE_OPEN_READONLY
                             : SQLITE_OPEN_READWRITE |
                                   (mode == STORE_CREATE ? SQLITE_OPEN_CREATE : 0));
    /* A connection that writes gathers its WAL writes (walbuf.c). */
    if (sqlite3_open_v2(path, &s->db, flags, s->readonly ? NULL : walbuf_vfs_name()) !=
        SQLITE_OK) {
        int rc = eng_error_code(err, ENG_ESTORE, "storage_unavailable",
                                "cannot open database '%s': %s", path,
                                s->db ? sqlite3_errmsg(s->db) : "out of memory");
        store_close(s);
        return rc;
    }
    sqlite3_busy_timeout(s->db, busy_timeout_ms);
    sqlite3_extended_result_codes(s->db, 0);
    char pragmas[160];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = %d;",
             cache_kib > 0 ? -cache_kib : -2000);
    /* Durable commits: an acknowledged booking survives power loss. */
    if ((!s->readonly && exec_text(s, "PRAGMA journal_mode = WAL", "journal mode", err) != 0) ||
        exec_text(s, pragmas, "pragmas", err) != 0 ||
        (!s->readonly && store_migrate(s, err) != 0)) {
        store_close(s);
        return err->status;
    }
    if (s->readonly) {
        /* A read-only connection must still find a schema it understands. */
        int version = 0;
        if (store_file_schema(s, &version, err) != 0) {
            store_close(s);
            return err->status;
        }
        if (version == 0 || version > MIGRATIONS_COUNT) {
            store_close(s);
            return eng_error_code(err, ENG_ESTORE, "storage_error",
                                  "'%s' is not an Allot database this build can read "
                                  "(schema %d, this build %d)",
                                  path, version, MIGRATIONS_COUNT);
        }
    }
    *out = s;
    return 0;
}

void
store_close(struct store *s)
{
    if (s == NULL) {
        return;
    }
    for (int i = 0; i < s->by_id_len; i++) {
        for (struct store_stmt *n = s->by_id[i], *next; n != NULL; n = next) {
            next = n->next;
            if (SQ_IS_PG(n->stmt)) {
                pg_stmt_free(n->stmt);
            } else {
                sqlite3_finalize(n->stmt);
            }
            free(n);
        }
    }
    free(s->by_id);
    pg_close(s);
    if (s->db != NULL) {
        sqlite3_close_v2(s->db);
    }
    free(s);
}

bool
store_readonly(const struct store *s)
{
    return s->readonly;
}

/* ---------- the reader pool ---------- */

/* Connections are handed out last-freed first (the warmest), and to
 * waiters first come, first served: a released connection goes straight to
 * the oldest waiter, which its own semaphore wakes, so it neither fights
 * for the lock again nor finds the connection taken by a thread that came
 * later (with one condition variable, a woken waiter did both, and slept
 * again: issue 12, scripts/README.md "HTTP"). */
struct pool_waiter {
    sem_t sem;
    struct store *got;
    struct pool_waiter *next;
};

struct store_pool {
    pthread_mutex_t mu;
    int size, opened, free_count; /* opened: connections made, or being made */
    struct store **all, **free_list;
    struct pool_waiter *wait_head, *wait_tail;
    uint64_t acquires, waits; /* under mu */
    char *path;
    int busy_timeout_ms, cache_kib;
};

int
store_pool_open(struct store_pool **out, const char *path, int size, int busy_timeout_ms,
                int cache_kib, struct eng_error *err)
{
    *out = NULL;
    struct store_pool *p = calloc(1, sizeof *p);
    if (p == NULL || size < 1) {
        free(p);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    p->all = calloc((size_t)size, sizeof *p->all);
    p->free_list = calloc((size_t)size, sizeof *p->free_list);
    p->path = strdup(path);
    p->size = size;
    p->busy_timeout_ms = busy_timeout_ms;
    p->cache_kib = cache_kib;
    pthread_mutex_init(&p->mu, NULL);
    if (p->all == NULL || p->free_list == NULL || p->path == NULL) {
        store_pool_close(p);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    /* One connection now, so that a database that cannot be read fails
     * the open; the others when concurrent requests first need them. */
    if (store_open(&p->all[0], path, STORE_READONLY, busy_timeout_ms, cache_kib, err) != 0) {
        store_pool_close(p);
        return err->status;
    }
    p->opened = 1;
    p->free_list[p->free_count++] = p->all[0];
    *out = p;
    return 0;
}

void
store_pool_close(struct store_pool *p)
{
    if (p == NULL) {
        return;
    }
    for (int i = 0; p->all != NULL && i < p->size; i++) {
        store_close(p->all[i]);
    }
    free(p->all);
    free(p->free_list);
    free(p->path);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Called with p->mu held and a connection to spare (opened < size):
 * makes one, outside the lock.  Returns it, or NULL (lock held again)
 * when it cannot be opened now, which the caller treats as "none free". */
static struct store *
pool_grow(struct store_pool *p)
{
    p->opened++;
    pthread_mutex_unlock(&p->mu);
    struct eng_error ignored = {0};
    struct store *s = NULL;
    int rc = store_open(&s, p->path, STORE_READONLY, p->busy_timeout_ms, p->cache_kib, &ignored);
    pthread_mutex_lock(&p->mu);
    if (rc != 0) {
        /* Out of descriptors or memory: serve with the connections there
         * are (the first one was opened with the pool). */
        p->opened--;
        return NULL;
    }
    for (int i = 0; i < p->size; i++) {
        if (p->all[i] == NULL) {
            p->all[i] = s;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return s;
}

struct store *
store_pool_acquire(struct store_pool *p, struct eng_error *err)
{
    pthread_mutex_lock(&p->mu);
    p->acquires++;
    if (p->free_count > 0) {
        struct store *s = p->free_list[--p->free_count];
        pthread_mutex_unlock(&p->mu);
        return s;
    }
    if (p->opened < p->size) {
        struct store *s = pool_grow(p);
        if (s != NULL) {
            return s;
        }
        if (p->free_count > 0) {
            s = p->free_list[--p->free_count];
            pthread_mutex_unlock(&p->mu);
            return s;
        }
    }
    p->waits++;
    struct pool_waiter w = {.got = NULL, .next = NULL};
    if (sem_init(&w.sem, 0, 0) != 0) {
        pthread_mutex_unlock(&p->mu);
        eng_error_code(err, ENG_ENOMEM, "overloaded", "out of memory; try again");
        return NULL;
    }
    if (p->wait_tail != NULL) {
        p->wait_tail->next = &w;
    } else {
        p->wait_head = &w;
    }
    p->wait_tail = &w;
    pthread_mutex_unlock(&p->mu);
    while (sem_wait(&w.sem) != 0) {
        /* EINTR: not handed a connection yet */
    }
    sem_destroy(&w.sem);
    return w.got;
}

struct store *
store_pool_try_acquire(struct store_pool *p)
{
    struct store *s = NULL;
    pthread_mutex_lock(&p->mu);
    p->acquires++;
    if (p->free_count > 0) {
        s = p->free_list[--p->free_count];
    } else if (p->opened < p->size && (s = pool_grow(p)) != NULL) {
        return s;
    } else if (p->free_count > 0) {
        s = p->free_list[--p->free_count]; /* freed while pool_grow failed */
    } else {
        p->waits++;
    }
    pthread_mutex_unlock(&p->mu);
    return s;
}

void
store_pool_release(struct store_pool *p, struct store *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    struct pool_waiter *w = p->wait_head;
    if (w == NULL) {
        p->free_list[p->free_count++] = s;
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->wait_head = w->next;
    if (p->wait_head == NULL) {
        p->wait_tail = NULL;
    }
    w->got = s;
    pthread_mutex_unlock(&p->mu);
    sem_post(&w->sem); /* w lives on the waiter's stack: not touched after */
}

void
store_pool_counts(struct store_pool *p, uint64_t *acquires, uint64_t *waits)
{
    pthread_mutex_lock(&p->mu);
    *acquires = p->acquires;
    *waits = p->waits;
    pthread_mutex_unlock(&p->mu);
}


void
store_wal_writes(uint64_t *asked, uint64_t *made)
{
    walbuf_counts(asked, made);
}

/* SQLite's WAL hook, after a commit of this connection. */
static int
wal_hook_note(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    struct store *s = arg;
    s->wal_note(s->wal_note_ud, frames);
    return SQLITE_OK;
}

int
store_wal_hook(struct store *s, void (*note)(void *ud, int frames), void *ud)
{
    if (s->db == NULL) {
        return 0;
    }
    s->wal_note = note;
    s->wal_note_ud = ud;
    if (note == NULL) {
        /* SQLite's own checkpoints again, at its default threshold. */
        return sqlite3_wal_autocheckpoint(s->db, 1000) == SQLITE_OK ? 0 : ENG_ESTORE;
    }
    /* Replaces the hook sqlite3_wal_autocheckpoint installs: from now on no
     * commit of this connection checkpoints. */
    sqlite3_wal_hook(s->db, wal_hook_note, s);
    return 0;
}

/* The checkpoint's busy handler: SQLite's own sleeps 1 ms and more at a
 * time, far longer than the readers it waits for.  Steps of 50 µs, until
 * the wait's end by the clock. */
#define CHECKPOINT_WAIT_STEP_NS 50000
struct checkpoint_wait {
    int64_t since, max_ns;
};
static int
checkpoint_busy(void *arg, int count)
{
    struct checkpoint_wait *w = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t t = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    if (count == 0) {
        w->since = t;
    } else if (t - w->since >= w->max_ns) {
        return 0;
    }
    struct timespec ts = {0, CHECKPOINT_WAIT_STEP_NS};
    nanosleep(&ts, NULL);
    return 1;
}

int
store_checkpoint(struct store *s, enum store_checkpoint_mode mode, int wait_us, int *frames,
                 int *copied, bool *whole, struct eng_error *err)
{
    *frames = 0;
    *copied = 0;
    if (whole != NULL) {
        *whole = false;
    }
    if (s->db == NULL) {
        return 0;
    }
    struct checkpoint_wait wait = {0, (int64_t)(wait_us > 0 ? wait_us : 0) * 1000};
    sqlite3_busy_handler(s->db, checkpoint_busy, &wait);
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL,
                                       mode == STORE_CHECKPOINT_TRUNCATE  ? SQLITE_CHECKPOINT_TRUNCATE
                                       : mode == STORE_CHECKPOINT_RESTART ? SQLITE_CHECKPOINT_RESTART
                                                                          : SQLITE_CHECKPOINT_PASSIVE,
                                       &log, &done);
    sqlite3_busy_handler(s->db, NULL, NULL); /* `wait` goes out of scope */
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        return eng_error_code(err, ENG_ESTORE, "storage_error", "checkpoint: %s",
                              sqlite3_errmsg(s->db));
    }
    *frames = log > 0 ? log : 0;
    *copied = done > 0 ? done : 0;
    if (whole != NULL) {
        *whole = rc == SQLITE_OK && mode != STORE_CHECKPOINT_PASSIVE;
    }
    return 0;
}

int
store_sync_file(struct store *s, struct eng_error *err)
{
    sqlite3_file *file = NULL;
    if (s->db == NULL) {
        return 0;
    }
    if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
        file == NULL || file->pMethods == NULL) {
        return eng_error_code(err, ENG_ESTORE, "storage_error", "sync: no database file");
    }
    int rc = file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK) {
        return eng_error_code(err, ENG_ESTORE, "storage_error", "sync: %s", sqlite3_errstr(rc));
    }
    return 0;
}

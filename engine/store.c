/* store.c - SQLite connection set-up, versioned migrations, statement cache. */
#include "store.h"

#include <stdio.h>
#include <string.h>

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

static const char *const *const migrations[] = {migration_1};

#define MIGRATIONS_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

int
store_schema_version(void)
{
    return MIGRATIONS_COUNT;
}

int
store_fail(struct store *store, const char *what, struct eng_error *err)
{
    const char *detail = store->db != NULL ? sqlite3_errmsg(store->db) : "no database";
    fprintf(stderr, "allot: storage error in %s: %s\n", what, detail);
    int code = store->db != NULL ? sqlite3_errcode(store->db) : SQLITE_ERROR;
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
        return eng_error_code(err, ENG_ESTORE, "busy", "the database is busy; try again");
    }
    if (code == SQLITE_FULL || code == SQLITE_IOERR) {
        return eng_error_code(err, ENG_ESTORE, "storage_unavailable",
                              "the database could not be written");
    }
    return eng_error_set(err, ENG_ESTORE, "internal storage error");
}

int
store_exec(struct store *store, const char *sql, struct eng_error *err)
{
    /* BEGIN, COMMIT, SAVEPOINT ... run on every operation: keep them
     * prepared like every other statement (callers pass literals). */
    sqlite3_stmt *st = store_prep(store, sql, err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return store_fail(store, sql, err);
    }
    return 0;
}

static int
store_pragma_int(struct store *store, const char *sql, int *out)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        return -1;
    }
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
store_migrate(struct store *store, struct eng_error *err)
{
    int version = 0;
    if (store_exec(store, "BEGIN IMMEDIATE", err) != 0) {
        return err->status;
    }
    if (store_pragma_int(store, "PRAGMA user_version", &version) != 0) {
        goto fail;
    }
    if (version > MIGRATIONS_COUNT) {
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
        return eng_error_set(err, ENG_ESTORE,
                             "database schema %d is newer than this build (%d)", version,
                             MIGRATIONS_COUNT);
    }
    for (int v = version; v < MIGRATIONS_COUNT; v++) {
        char bump[64];
        for (const char *const *step = migrations[v]; *step != NULL; step++) {
            if (sqlite3_exec(store->db, *step, NULL, NULL, NULL) != SQLITE_OK) {
                goto fail;
            }
        }
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(store->db, bump, NULL, NULL, NULL) != SQLITE_OK) {
            goto fail;
        }
    }
    return store_exec(store, "COMMIT", err);
fail:
    store_fail(store, "migration", err);
    sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    return err->status;
}

int
store_open(struct store *store, const char *path, bool readonly, int busy_timeout_ms,
           struct eng_error *err)
{
    memset(store, 0, sizeof *store);
    store->readonly = readonly;
    int flags = SQLITE_OPEN_NOMUTEX |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path, &store->db, flags, NULL) != SQLITE_OK) {
        int rc = eng_error_set(err, ENG_ESTORE, "cannot open database '%s': %s", path,
                               store->db ? sqlite3_errmsg(store->db) : "out of memory");
        store_close(store);
        return rc;
    }
    sqlite3_busy_timeout(store->db, busy_timeout_ms);
    sqlite3_extended_result_codes(store->db, 0);
    /* Durable commits: an acknowledged booking survives power loss. */
    static const char *const pragmas =
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;"
        "PRAGMA cache_size = -65536;";
    if (!readonly && store_exec(store, "PRAGMA journal_mode = WAL", err) != 0) {
        store_close(store);
        return err->status;
    }
    if (sqlite3_exec(store->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        store_fail(store, "pragmas", err);
        store_close(store);
        return err->status;
    }
    if (!readonly && store_migrate(store, err) != 0) {
        store_close(store);
        return err->status;
    }
    return 0;
}

void
store_close(struct store *store)
{
    if (store == NULL) {
        return;
    }
    for (int i = 0; i < STORE_STMTS_MAX; i++) {
        if (store->slots[i].stmt != NULL) {
            sqlite3_finalize(store->slots[i].stmt);
        }
    }
    if (store->db != NULL) {
        sqlite3_close_v2(store->db);
    }
    memset(store, 0, sizeof *store);
}

sqlite3_stmt *
store_prep(struct store *store, const char *sql, struct eng_error *err)
{
    /* Open addressing on the literal's address: the same call site always
     * finds the same slot. */
    uintptr_t h = ((uintptr_t)sql >> 3) * (uintptr_t)11400714819323198485ull;
    for (int probe = 0; probe < STORE_STMTS_MAX; probe++) {
        struct store_slot *slot = &store->slots[(h + (uintptr_t)probe) % STORE_STMTS_MAX];
        if (slot->sql == sql) {
            sqlite3_reset(slot->stmt);
            sqlite3_clear_bindings(slot->stmt);
            return slot->stmt;
        }
        if (slot->sql == NULL) {
            if (sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot->stmt,
                                   NULL) != SQLITE_OK) {
                store_fail(store, sql, err);
                slot->stmt = NULL;
                return NULL;
            }
            slot->sql = sql;
            return slot->stmt;
        }
    }
    eng_error_set(err, ENG_ESTORE, "statement cache is full");
    return NULL;
}

/* portfolio.c - reading buildings, resources, tenants and users. */
#include "portfolio.h"

#include <stdlib.h>
#include <string.h>

#include "portfolio_rows.h"

/* A JSON column as an owned value (JSON null when unreadable); NULL only
 * when out of memory. */
static json_t *
col_json(sqlite3_stmt *st, int col)
{
    json_t *v = json_loads(sq_col_text(st, col), JSON_DECODE_ANY, NULL);
    return v != NULL ? v : json_null();
}

int
rows_building(sqlite3_stmt *st, struct building_row *out, struct eng_error *err)
{
    memset(out, 0, sizeof *out);
    out->id = sq_col_int(st, 0);
    out->pay_credits = sq_col_int(st, 4) != 0;
    out->pay_invoice = sq_col_int(st, 5) != 0;
    out->pay_card = sq_col_int(st, 6) != 0;
    out->created_at = sq_col_int(st, 7);
    int rc = sq_col_copy(st, 1, out->name, sizeof out->name, "building name", err);
    if (rc == 0) {
        rc = sq_col_copy(st, 2, out->timezone, sizeof out->timezone, "time zone", err);
    }
    if (rc == 0) {
        rc = sq_col_copy(st, 3, out->currency, sizeof out->currency, "currency", err);
    }
    return rc;
}

int
rows_resource(sqlite3_stmt *st, struct resource_row *out, struct eng_error *err)
{
    memset(out, 0, sizeof *out);
    out->id = sq_col_int(st, 0);
    out->building_id = sq_col_int(st, 1);
    out->credit_only = sq_col_int(st, 6) != 0;
    out->created_at = sq_col_int(st, 7);
    out->archived = !sq_col_null(st, 8);
    out->archived_at = out->archived ? sq_col_int(st, 8) : 0;
    int rc = sq_col_copy(st, 2, out->name, sizeof out->name, "resource name", err);
    if (rc == 0) {
        rc = sq_col_copy(st, 3, out->kind, sizeof out->kind, "resource kind", err);
    }
    if (rc == 0) {
        out->tags = col_json(st, 4);
        out->pricing = col_json(st, 5);
        if (out->tags == NULL || out->pricing == NULL) {
            rc = eng_error_set(err, ENG_ENOMEM, "out of memory");
        }
    }
    return rc;
}

int
rows_tenant(sqlite3_stmt *st, struct tenant_row *out, struct eng_error *err)
{
    memset(out, 0, sizeof *out);
    out->id = sq_col_int(st, 0);
    out->cross_building = sq_col_int(st, 2) != 0;
    out->created_at = sq_col_int(st, 3);
    return sq_col_copy(st, 1, out->name, sizeof out->name, "tenant name", err);
}

int
rows_user(sqlite3_stmt *st, struct user_row *out, struct eng_error *err)
{
    memset(out, 0, sizeof *out);
    out->id = sq_col_int(st, 0);
    out->tenant_id = sq_col_int(st, 1);
    out->created_at = sq_col_int(st, 5);
    int rc = sq_col_copy(st, 2, out->name, sizeof out->name, "user name", err);
    if (rc == 0) {
        rc = sq_col_copy(st, 3, out->email, sizeof out->email, "user email", err);
    }
    if (rc == 0) {
        out->roles = col_json(st, 4);
        if (out->roles == NULL) {
            rc = eng_error_set(err, ENG_ENOMEM, "out of memory");
        }
    }
    return rc;
}

char *
rows_json_text(const json_t *v, struct eng_error *err)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (text == NULL) {
        eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    return text;
}

/* Runs q with id bound and leaves it on its row: 1, 0 (none) or an error. */
static int
row_by_id(struct store *s, struct store_sql *q, int64_t id, const char *what,
          sqlite3_stmt **out, struct eng_error *err)
{
    sqlite3_stmt *st = sq_prep(s, q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    *out = st;
    return sq_step(s, st, what, err);
}

int
store_building_get(struct store *s, int64_t id, struct building_row *out, bool *found,
                   struct eng_error *err)
{
    STORE_SQL(q, "SELECT " BUILDING_COLS " FROM building WHERE id = ?");
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    int rc = row_by_id(s, &q, id, "building", &st, err);
    *found = rc == 1;
    if (rc <= 0) {
        return rc;
    }
    rc = rows_building(st, out, err);
    sq_reset(st);
    *found = rc == 0;
    return rc;
}

int
store_resource_get(struct store *s, int64_t id, struct resource_row *out, bool *found,
                   struct eng_error *err)
{
    STORE_SQL(q, "SELECT " RESOURCE_COLS " FROM resource WHERE id = ?");
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    int rc = row_by_id(s, &q, id, "resource", &st, err);
    *found = rc == 1;
    if (rc <= 0) {
        return rc;
    }
    rc = rows_resource(st, out, err);
    sq_reset(st);
    if (rc != 0) {
        store_resource_clear(out);
    }
    *found = rc == 0;
    return rc;
}

void
store_resource_clear(struct resource_row *r)
{
    json_decref(r->tags);
    json_decref(r->pricing);
    r->tags = r->pricing = NULL;
}

int
store_tenant_get(struct store *s, int64_t id, struct tenant_row *out, bool *found,
                 struct eng_error *err)
{
    STORE_SQL(q, "SELECT " TENANT_COLS " FROM tenant WHERE id = ?");
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    int rc = row_by_id(s, &q, id, "tenant", &st, err);
    *found = rc == 1;
    if (rc <= 0) {
        return rc;
    }
    rc = rows_tenant(st, out, err);
    sq_reset(st);
    *found = rc == 0;
    return rc;
}

int
store_user_get(struct store *s, int64_t id, struct user_row *out, bool *found,
               struct eng_error *err)
{
    STORE_SQL(q, "SELECT " USER_COLS " FROM user WHERE id = ?");
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    int rc = row_by_id(s, &q, id, "user", &st, err);
    *found = rc == 1;
    if (rc <= 0) {
        return rc;
    }
    rc = rows_user(st, out, err);
    sq_reset(st);
    if (rc != 0) {
        store_user_clear(out);
    }
    *found = rc == 0;
    return rc;
}

void
store_user_clear(struct user_row *u)
{
    json_decref(u->roles);
    u->roles = NULL;
}

int
store_exists(struct store *s, enum store_kind kind, int64_t id, bool *found,
             struct eng_error *err)
{
    STORE_SQL(q_building, "SELECT 1 FROM building WHERE id = ?");
    STORE_SQL(q_resource, "SELECT 1 FROM resource WHERE id = ?");
    STORE_SQL(q_tenant, "SELECT 1 FROM tenant WHERE id = ?");
    STORE_SQL(q_user, "SELECT 1 FROM user WHERE id = ?");
    struct store_sql *q = kind == STORE_BUILDING   ? &q_building
                          : kind == STORE_RESOURCE ? &q_resource
                          : kind == STORE_TENANT   ? &q_tenant
                                                   : &q_user;
    int64_t v = 0;
    int rc = sq_scalar(s, q, id, 0, &v, err);
    *found = rc == 0 && v == 1;
    return rc;
}

/* Runs q with one bound id and calls cb with column 0 of each row. */
static int
ids_each(struct store *s, struct store_sql *q, int64_t arg, const char *what,
         int (*cb)(void *ud, int64_t id), void *ud, struct eng_error *err)
{
    sqlite3_stmt *st = sq_prep(s, q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, arg);
    int rc;
    while ((rc = sq_step(s, st, what, err)) == 1) {
        int stop = cb(ud, sq_col_int(st, 0));
        if (stop != 0) {
            sq_reset(st);
            return stop;
        }
    }
    return rc;
}

int
store_tenant_buildings_each(struct store *s, int64_t tenant_id,
                            int (*cb)(void *ud, int64_t building_id), void *ud,
                            struct eng_error *err)
{
    STORE_SQL(q, "SELECT building_id FROM tenant_building WHERE tenant_id = ?"
                 " ORDER BY building_id");
    return ids_each(s, &q, tenant_id, "tenant buildings", cb, ud, err);
}

int
store_tenant_leases(struct store *s, int64_t tenant_id, int64_t building_id, bool *leases,
                    struct eng_error *err)
{
    STORE_SQL(q, "SELECT 1 FROM tenant_building WHERE tenant_id = ? AND building_id = ?");
    *leases = false;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, tenant_id);
    sq_int(s, st, 2, building_id);
    int rc = sq_step(s, st, "tenant lease", err);
    if (rc < 0) {
        return rc;
    }
    *leases = rc == 1;
    sq_reset(st);
    return 0;
}

int
store_tenant_users_each(struct store *s, int64_t tenant_id, int (*cb)(void *ud, int64_t user_id),
                        void *ud, struct eng_error *err)
{
    STORE_SQL(q, "SELECT id FROM user WHERE tenant_id = ? ORDER BY id");
    return ids_each(s, &q, tenant_id, "tenant users", cb, ud, err);
}

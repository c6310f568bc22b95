/* ops_portfolio.c - buildings, resources, tenants and users.
 *
 * Creation and PATCH share one validator per object: a PATCH merges the
 * given fields into the stored object and validates the result as if it
 * were created, so the two can never disagree about what is valid. */
#include <ctype.h>
#include <string.h>

#include "ops.h"
#include "timeutil.h"

#define NAME_MAX_BYTES 200

/* ---------- row readers ---------- */

static json_t *
building_row(struct op *op, sqlite3_stmt *st)
{
    (void)op;
    /* id, name, timezone, currency, pay_credits, pay_invoice, pay_card */
    return json_pack("{s:o, s:s, s:s, s:s, s:{s:b, s:b, s:b}}",
                     "id", id_json("bld", sqlite3_column_int64(st, 0)),
                     "name", (const char *)sqlite3_column_text(st, 1),
                     "timezone", (const char *)sqlite3_column_text(st, 2),
                     "currency", (const char *)sqlite3_column_text(st, 3),
                     "payment", "credits", sqlite3_column_int(st, 4),
                     "invoice", sqlite3_column_int(st, 5), "card", sqlite3_column_int(st, 6));
}

#define BUILDING_COLS "id, name, timezone, currency, pay_credits, pay_invoice, pay_card"

static json_t *
resource_row(struct op *op, sqlite3_stmt *st)
{
    (void)op;
    /* id, building_id, name, kind, tags, pricing, credit_only */
    return json_pack("{s:o, s:o, s:s, s:s, s:o, s:o, s:b}",
                     "id", id_json("res", sqlite3_column_int64(st, 0)),
                     "building_id", id_json("bld", sqlite3_column_int64(st, 1)),
                     "name", (const char *)sqlite3_column_text(st, 2),
                     "kind", (const char *)sqlite3_column_text(st, 3),
                     "tags", json_from_text((const char *)sqlite3_column_text(st, 4)),
                     "pricing", json_from_text((const char *)sqlite3_column_text(st, 5)),
                     "credit_only", sqlite3_column_int(st, 6));
}

#define RESOURCE_COLS "id, building_id, name, kind, tags, pricing, credit_only"

static json_t *
user_row(struct op *op, sqlite3_stmt *st)
{
    (void)op;
    return json_pack("{s:o, s:o, s:s, s:s, s:o}",
                     "id", id_json("usr", sqlite3_column_int64(st, 0)),
                     "tenant_id", id_json("ten", sqlite3_column_int64(st, 1)),
                     "name", (const char *)sqlite3_column_text(st, 2),
                     "email", (const char *)sqlite3_column_text(st, 3),
                     "roles", json_from_text((const char *)sqlite3_column_text(st, 4)));
}

#define USER_COLS "id, tenant_id, name, email, roles"

/* Reads one row by id into JSON with `reader`; ENG_ENOTFOUND when absent. */
static int
load_one(struct op *op, const char *sql, int64_t id, row_fn reader,
         const char *what, json_t **out)
{
    sqlite3_stmt *st = store_prep(op->store, sql, op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = reader(op, st);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        return store_fail(op->store, what, op->err);
    }
    return op_not_found(op, what);
}

static json_t *
tenant_json(struct op *op, int64_t id, int *rc)
{
    sqlite3_stmt *st = sql_row(op, "SELECT name, cross_building FROM tenant WHERE id = ?", id,
                               "tenant", rc);
    if (st == NULL) {
        return NULL;
    }
    json_t *t = json_pack("{s:o, s:s, s:b}", "id", id_json("ten", id), "name",
                          (const char *)sqlite3_column_text(st, 0), "cross_building",
                          sqlite3_column_int(st, 1));
    sqlite3_reset(st);
    json_t *bids = json_array();
    st = store_prep(op->store,
                    "SELECT building_id FROM tenant_building WHERE tenant_id = ? "
                    "ORDER BY building_id",
                    op->err);
    if (st == NULL) {
        json_decref(t);
        json_decref(bids);
        *rc = ENG_ESTORE;
        return NULL;
    }
    sqlite3_bind_int64(st, 1, id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_array_append_new(bids, id_json("bld", sqlite3_column_int64(st, 0)));
    }
    sqlite3_reset(st);
    json_object_set_new(t, "building_ids", bids);
    return t;
}

/* May the principal see this building?  Admins by their building scope;
 * tenant roles when their tenant leases space there. */
static bool
sees_building(struct op *op, int64_t building_id)
{
    if (op_is_admin(op)) {
        return op_sees_building(op, building_id);
    }
    return op_tenant_leases(op, op->who->tenant_id, building_id);
}

/* Lists rows of `sql` (binds: 1 = after-id, 2 = limit + 1, 3 = filter id or
 * NULL); rows the principal may not see are skipped by `visible`. */
static int
list_rows(struct op *op, json_t *args, const char *sql, int64_t filter, row_fn reader,
          bool (*visible)(struct op *, sqlite3_stmt *), json_t **out)
{
    struct page page;
    if (args_page(op, args, &page) != 0) {
        return ENG_EINVAL;
    }
    sqlite3_stmt *st = store_prep(op->store, sql, op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, page.after);
    sqlite3_bind_int64(st, 2, page.limit + 1);
    if (filter != 0) {
        sqlite3_bind_int64(st, 3, filter);
    }
    return page_of_rows(op, st, &page, reader, visible, out);
}

static const char *const LIST_KEYS[] = {"limit", "cursor", NULL};

/* ---------- buildings ---------- */

static int
building_check(struct op *op, json_t *b)
{
    static const char *const keys[] = {"id", "name", "timezone", "currency", "payment", NULL};
    static const char *const pay_keys[] = {"credits", "invoice", "card", NULL};
    const char *s;
    if (args_only(op, b, keys) != 0 || args_string(op, b, "name", true, NAME_MAX_BYTES, &s) ||
        args_string(op, b, "timezone", true, TIME_ZONE_NAME_MAX, &s)) {
        return ENG_EINVAL;
    }
    if (!tz_valid(s)) {
        return op_invalid(op, "timezone", "'%.64s' is not an IANA time zone", s);
    }
    if (args_string(op, b, "currency", true, 3, &s) != 0) {
        return ENG_EINVAL;
    }
    if (strlen(s) != 3 || !isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1]) ||
        !isupper((unsigned char)s[2])) {
        return op_invalid(op, "currency", "'currency' must be an ISO 4217 code such as USD");
    }
    json_t *pay = json_object_get(b, "payment");
    bool flag;
    if (pay != NULL && (args_only(op, pay, pay_keys) != 0 ||
                        args_bool(op, pay, "credits", true, &flag) != 0 ||
                        args_bool(op, pay, "invoice", false, &flag) != 0 ||
                        args_bool(op, pay, "card", true, &flag) != 0)) {
        return ENG_EINVAL;
    }
    return 0;
}

static int
building_write(struct op *op, int64_t id, json_t *b)
{
    json_t *pay = json_object_get(b, "payment");
    bool credits = true, invoice = false, card = true;
    if (pay != NULL) {
        if (args_bool(op, pay, "credits", true, &credits) ||
            args_bool(op, pay, "invoice", false, &invoice) ||
            args_bool(op, pay, "card", true, &card)) {
            return ENG_EINVAL;
        }
    }
    sqlite3_stmt *st = store_prep(op->store,
                                  "INSERT INTO building (id, name, timezone, currency, pay_credits,"
                                  " pay_invoice, pay_card, created_at) VALUES (?,?,?,?,?,?,?,?)"
                                  " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
                                  " timezone = excluded.timezone, currency = excluded.currency,"
                                  " pay_credits = excluded.pay_credits,"
                                  " pay_invoice = excluded.pay_invoice,"
                                  " pay_card = excluded.pay_card",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    if (id != 0) {
        sqlite3_bind_int64(st, 1, id);
    }
    sqlite3_bind_text(st, 2, json_string_value(json_object_get(b, "name")), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, json_string_value(json_object_get(b, "timezone")), -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 4, json_string_value(json_object_get(b, "currency")), -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, 5, credits);
    sqlite3_bind_int(st, 6, invoice);
    sqlite3_bind_int(st, 7, card);
    sqlite3_bind_int64(st, 8, op->now);
    return sql_step_done(op, st, "building write");
}

static int
op_building_get_id(struct op *op, int64_t id, json_t **out)
{
    if (!sees_building(op, id)) {
        return op_not_found(op, "building");
    }
    return load_one(op, "SELECT " BUILDING_COLS " FROM building WHERE id = ?", id, building_row,
                    "building", out);
}

static int
op_building_create(struct op *op, json_t *args, json_t **out)
{
    if (op_require_super(op) != 0 || building_check(op, args) != 0) {
        return op->err->status;
    }
    if (json_object_get(args, "id") != NULL) {
        return op_invalid(op, "id", "'id' is assigned by the server");
    }
    if (building_write(op, 0, args) != 0) {
        return op->err->status;
    }
    op->created = true;
    return op_building_get_id(op, sqlite3_last_insert_rowid(op->store->db), out);
}

static int
op_building_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "bld", true, &id)) {
        return op->err->status;
    }
    return op_building_get_id(op, id, out);
}

static bool
building_visible(struct op *op, sqlite3_stmt *st)
{
    return sees_building(op, sqlite3_column_int64(st, 0));
}

static int
op_building_list(struct op *op, json_t *args, json_t **out)
{
    if (args_only(op, args, LIST_KEYS) != 0) {
        return ENG_EINVAL;
    }
    return list_rows(op, args,
                     "SELECT " BUILDING_COLS " FROM building WHERE id > ?1 ORDER BY id LIMIT ?2",
                     0, building_row, building_visible, out);
}

/* Merges `patch` into the stored object `cur` (both objects): a PATCH may
 * name only fields the object has; "id" and its parents stay fixed. */
static int
merge_patch(struct op *op, json_t *cur, json_t *patch, const char *const fixed[])
{
    if (!json_is_object(patch)) {
        return op_invalid(op, "", "the request body must be a JSON object");
    }
    const char *key;
    json_t *value;
    json_object_foreach(patch, key, value) {
        if (strcmp(key, "id") == 0) {
            continue;
        }
        for (int i = 0; fixed[i] != NULL; i++) {
            if (strcmp(fixed[i], key) == 0) {
                return op_invalid(op, key, "'%s' cannot be changed", key);
            }
        }
        json_object_set(cur, key, value);
    }
    return 0;
}

static int
op_building_patch(struct op *op, json_t *args, json_t **out)
{
    int64_t id;
    json_t *cur = NULL;
    static const char *const fixed[] = {NULL};
    if (op_require_super(op) || args_id(op, args, "id", "bld", true, &id) ||
        op_building_get_id(op, id, &cur)) {
        return op->err->status;
    }
    /* Payment settings merge key by key; the patch itself is left as given. */
    json_t *old_pay = json_deep_copy(json_object_get(cur, "payment"));
    int rc = merge_patch(op, cur, args, fixed);
    json_t *pay = json_object_get(args, "payment");
    if (rc == 0 && json_is_object(pay) && json_is_object(old_pay)) {
        json_object_update(old_pay, pay);
        json_object_set(cur, "payment", old_pay);
    }
    json_decref(old_pay);
    if (rc == 0) {
        rc = building_check(op, cur);
    }
    if (rc == 0) {
        rc = building_write(op, id, cur);
    }
    json_decref(cur);
    return rc != 0 ? rc : op_building_get_id(op, id, out);
}

/* ---------- resources ---------- */

static int
json_depth(const json_t *v)
{
    int deepest = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            int d = json_depth(x);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            int d = json_depth(x);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    return 0;
}

static int
resource_check(struct op *op, json_t *r)
{
    static const char *const keys[] = {"id", "building_id", "name", "kind", "tags",
                                       "pricing", "credit_only", NULL};
    const char *s;
    int64_t bid;
    bool b;
    json_t *tags = NULL;
    if (args_only(op, r, keys) || args_id(op, r, "building_id", "bld", true, &bid) ||
        args_string(op, r, "name", true, NAME_MAX_BYTES, &s) ||
        args_string(op, r, "kind", false, 60, &s) ||
        args_string_array(op, r, "tags", 50, &tags) || args_bool(op, r, "credit_only", false, &b)) {
        return op->err->status;
    }
    json_decref(tags);
    if (!sees_building(op, bid)) {
        return op_invalid(op, "building_id", "unknown building");
    }
    int rc;
    if (sql_scalar_int(op, "SELECT count(*) FROM building WHERE id = ?", bid, 0, &rc) == 0) {
        return rc != 0 ? rc : op_invalid(op, "building_id", "unknown building");
    }
    json_t *pricing = json_object_get(r, "pricing");
    if (pricing != NULL && !json_is_null(pricing)) {
        char *text = json_to_text(pricing);
        size_t len = text ? strlen(text) : 0;
        free(text);
        if (!json_is_object(pricing) || json_depth(pricing) > 5 || len > 16384) {
            return op_invalid(op, "pricing", "'pricing' must be an object (at most 16 KiB, "
                                             "5 levels deep)");
        }
    }
    return 0;
}

static int
resource_write(struct op *op, int64_t id, json_t *r)
{
    sqlite3_stmt *st = store_prep(op->store,
                                  "INSERT INTO resource (id, building_id, name, kind, tags, pricing,"
                                  " credit_only, created_at) VALUES (?,?,?,?,?,?,?,?)"
                                  " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
                                  " kind = excluded.kind, tags = excluded.tags,"
                                  " pricing = excluded.pricing,"
                                  " credit_only = excluded.credit_only",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    int64_t bid = 0;
    (void)id_parse("bld", json_string_value(json_object_get(r, "building_id")), &bid);
    json_t *tags = json_object_get(r, "tags");
    json_t *pricing = json_object_get(r, "pricing");
    char *tags_text = json_to_text(tags && json_is_array(tags) ? tags : json_array());
    char *pricing_text = json_to_text(pricing && json_is_object(pricing) ? pricing
                                                                           : json_object());
    const char *kind = json_string_value(json_object_get(r, "kind"));
    if (id != 0) {
        sqlite3_bind_int64(st, 1, id);
    }
    sqlite3_bind_int64(st, 2, bid);
    sqlite3_bind_text(st, 3, json_string_value(json_object_get(r, "name")), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, kind ? kind : "room", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, tags_text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, pricing_text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 7, json_is_true(json_object_get(r, "credit_only")));
    sqlite3_bind_int64(st, 8, op->now);
    free(tags_text);
    free(pricing_text);
    return sql_step_done(op, st, "resource write");
}

static int
op_resource_get_id(struct op *op, int64_t id, json_t **out)
{
    json_t *r = NULL;
    if (load_one(op, "SELECT " RESOURCE_COLS " FROM resource WHERE id = ?", id, resource_row,
                 "resource", &r) != 0) {
        return op->err->status;
    }
    int64_t bid = 0;
    (void)id_parse("bld", json_string_value(json_object_get(r, "building_id")), &bid);
    if (!sees_building(op, bid)) {
        json_decref(r);
        return op_not_found(op, "resource");
    }
    *out = r;
    return 0;
}

static int
op_resource_create(struct op *op, json_t *args, json_t **out)
{
    if (op_require_assigner(op) || resource_check(op, args)) {
        return op->err->status;
    }
    if (json_object_get(args, "id") != NULL) {
        return op_invalid(op, "id", "'id' is assigned by the server");
    }
    if (resource_write(op, 0, args) != 0) {
        return op->err->status;
    }
    op->created = true;
    return op_resource_get_id(op, sqlite3_last_insert_rowid(op->store->db), out);
}

static int
op_resource_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "res", true, &id)) {
        return op->err->status;
    }
    return op_resource_get_id(op, id, out);
}

static bool
resource_visible(struct op *op, sqlite3_stmt *st)
{
    return sees_building(op, sqlite3_column_int64(st, 1));
}

static int
op_resource_list(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"limit", "cursor", "building_id", NULL};
    int64_t bid;
    if (args_only(op, args, keys) || args_id(op, args, "building_id", "bld", false, &bid)) {
        return op->err->status;
    }
    return list_rows(op, args,
                     "SELECT " RESOURCE_COLS " FROM resource WHERE id > ?1 AND"
                     " (?3 IS NULL OR building_id = ?3) ORDER BY id LIMIT ?2",
                     bid, resource_row, resource_visible, out);
}

static int
op_resource_patch(struct op *op, json_t *args, json_t **out)
{
    static const char *const fixed[] = {"building_id", NULL};
    int64_t id;
    json_t *cur = NULL;
    if (op_require_assigner(op) || args_id(op, args, "id", "res", true, &id) ||
        op_resource_get_id(op, id, &cur)) {
        return op->err->status;
    }
    int rc = merge_patch(op, cur, args, fixed);
    if (rc == 0) {
        rc = resource_check(op, cur);
    }
    if (rc == 0) {
        rc = resource_write(op, id, cur);
    }
    json_decref(cur);
    return rc != 0 ? rc : op_resource_get_id(op, id, out);
}

/* ---------- tenants ---------- */

/* Validates a tenant object; fills bids (borrowed from t) with its buildings. */
static int
tenant_check(struct op *op, json_t *t)
{
    static const char *const keys[] = {"id", "name", "building_ids", "cross_building", NULL};
    const char *s;
    bool b;
    json_t *bids = NULL;
    if (args_only(op, t, keys) || args_string(op, t, "name", true, NAME_MAX_BYTES, &s) ||
        args_bool(op, t, "cross_building", false, &b) ||
        args_string_array(op, t, "building_ids", 200, &bids)) {
        return op->err->status;
    }
    size_t i;
    json_t *item;
    int rc = 0;
    json_array_foreach(bids, i, item) {
        int64_t bid;
        int src;
        if (id_parse("bld", json_string_value(item), &bid) != 0 || !op_sees_building(op, bid) ||
            sql_scalar_int(op, "SELECT count(*) FROM building WHERE id = ?", bid, 0, &src) == 0) {
            rc = op_invalid(op, "building_ids", "unknown building '%.40s'",
                            json_string_value(item));
            break;
        }
    }
    json_decref(bids);
    return rc;
}

static int
tenant_write(struct op *op, int64_t id, json_t *t)
{
    sqlite3_stmt *st = store_prep(op->store,
                                  "INSERT INTO tenant (id, name, cross_building, created_at)"
                                  " VALUES (?,?,?,?) ON CONFLICT (id) DO UPDATE SET"
                                  " name = excluded.name, cross_building = excluded.cross_building",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    if (id != 0) {
        sqlite3_bind_int64(st, 1, id);
    }
    sqlite3_bind_text(st, 2, json_string_value(json_object_get(t, "name")), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, json_is_true(json_object_get(t, "cross_building")));
    sqlite3_bind_int64(st, 4, op->now);
    if (sql_step_done(op, st, "tenant write") != 0) {
        return ENG_ESTORE;
    }
    if (id == 0) {
        id = sqlite3_last_insert_rowid(op->store->db);
    }
    json_t *bids = json_object_get(t, "building_ids");
    if (bids == NULL) {
        return 0;
    }
    st = store_prep(op->store, "DELETE FROM tenant_building WHERE tenant_id = ?", op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sql_step_done(op, st, "tenant buildings") != 0) {
        return ENG_ESTORE;
    }
    size_t i;
    json_t *item;
    json_array_foreach(bids, i, item) {
        int64_t bid = 0;
        (void)id_parse("bld", json_string_value(item), &bid);
        st = store_prep(op->store,
                        "INSERT OR IGNORE INTO tenant_building (tenant_id, building_id)"
                        " VALUES (?, ?)",
                        op->err);
        if (st == NULL) {
            return ENG_ESTORE;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, bid);
        if (sql_step_done(op, st, "tenant buildings") != 0) {
            return ENG_ESTORE;
        }
    }
    return 0;
}

static int
op_tenant_get_id(struct op *op, int64_t id, json_t **out)
{
    if (!op_sees_tenant(op, id)) {
        return op_not_found(op, "tenant");
    }
    int rc;
    json_t *t = tenant_json(op, id, &rc);
    if (t == NULL) {
        return rc;
    }
    *out = t;
    return 0;
}

static int
op_tenant_create(struct op *op, json_t *args, json_t **out)
{
    if (op_require_assigner(op) || tenant_check(op, args)) {
        return op->err->status;
    }
    if (json_object_get(args, "id") != NULL) {
        return op_invalid(op, "id", "'id' is assigned by the server");
    }
    if (tenant_write(op, 0, args) != 0) {
        return op->err->status;
    }
    op->created = true;
    return op_tenant_get_id(op, sqlite3_last_insert_rowid(op->store->db), out);
}

static int
op_tenant_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "ten", true, &id)) {
        return op->err->status;
    }
    return op_tenant_get_id(op, id, out);
}

static int
op_tenant_list(struct op *op, json_t *args, json_t **out)
{
    struct page page;
    if (args_only(op, args, LIST_KEYS) || args_page(op, args, &page)) {
        return op->err->status;
    }
    sqlite3_stmt *st = store_prep(op->store,
                                  "SELECT id FROM tenant WHERE id > ? ORDER BY id LIMIT ?",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_int64(st, 1, page.after);
    sqlite3_bind_int64(st, 2, page.limit + 1);
    return page_of_ids(op, st, &page, op_tenant_get_id, out);
}

static int
op_tenant_patch(struct op *op, json_t *args, json_t **out)
{
    static const char *const fixed[] = {NULL};
    int64_t id;
    json_t *cur = NULL;
    if (op_require_assigner(op) || args_id(op, args, "id", "ten", true, &id) ||
        op_tenant_get_id(op, id, &cur)) {
        return op->err->status;
    }
    int rc = merge_patch(op, cur, args, fixed);
    if (rc == 0) {
        rc = tenant_check(op, cur);
    }
    if (rc == 0) {
        rc = tenant_write(op, id, cur);
    }
    json_decref(cur);
    return rc != 0 ? rc : op_tenant_get_id(op, id, out);
}

/* ---------- users ---------- */

static int
user_check(struct op *op, json_t *u)
{
    static const char *const keys[] = {"id", "tenant_id", "name", "email", "roles", NULL};
    const char *s;
    int64_t tid;
    json_t *roles = NULL;
    if (args_only(op, u, keys) || args_id(op, u, "tenant_id", "ten", true, &tid) ||
        args_string(op, u, "name", true, NAME_MAX_BYTES, &s) ||
        args_string(op, u, "email", false, NAME_MAX_BYTES, &s) ||
        args_string_array(op, u, "roles", 50, &roles)) {
        return op->err->status;
    }
    json_decref(roles);
    if (s != NULL && strchr(s, '@') == NULL) {
        return op_invalid(op, "email", "'email' is not an e-mail address");
    }
    int rc;
    if (!op_sees_tenant(op, tid) ||
        sql_scalar_int(op, "SELECT count(*) FROM tenant WHERE id = ?", tid, 0, &rc) == 0) {
        return op_invalid(op, "tenant_id", "unknown tenant");
    }
    return 0;
}

static int
user_write(struct op *op, int64_t id, json_t *u)
{
    sqlite3_stmt *st = store_prep(op->store,
                                  "INSERT INTO user (id, tenant_id, name, email, roles, created_at)"
                                  " VALUES (?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET"
                                  " name = excluded.name, email = excluded.email,"
                                  " roles = excluded.roles",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    int64_t tid = 0;
    (void)id_parse("ten", json_string_value(json_object_get(u, "tenant_id")), &tid);
    json_t *roles = json_object_get(u, "roles");
    char *roles_text = json_to_text(roles && json_is_array(roles) ? roles : json_array());
    const char *email = json_string_value(json_object_get(u, "email"));
    if (id != 0) {
        sqlite3_bind_int64(st, 1, id);
    }
    sqlite3_bind_int64(st, 2, tid);
    sqlite3_bind_text(st, 3, json_string_value(json_object_get(u, "name")), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, email ? email : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, roles_text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, op->now);
    free(roles_text);
    return sql_step_done(op, st, "user write");
}

static int
op_user_get_id(struct op *op, int64_t id, json_t **out)
{
    json_t *u = NULL;
    if (load_one(op, "SELECT " USER_COLS " FROM user WHERE id = ?", id, user_row, "user", &u)) {
        return op->err->status;
    }
    int64_t tid = 0;
    (void)id_parse("ten", json_string_value(json_object_get(u, "tenant_id")), &tid);
    if (!op_sees_user(op, tid, id)) {
        json_decref(u);
        return op_not_found(op, "user");
    }
    *out = u;
    return 0;
}

static int
op_user_create(struct op *op, json_t *args, json_t **out)
{
    if (op_require_assigner(op) || user_check(op, args)) {
        return op->err->status;
    }
    if (json_object_get(args, "id") != NULL) {
        return op_invalid(op, "id", "'id' is assigned by the server");
    }
    if (user_write(op, 0, args) != 0) {
        return op->err->status;
    }
    op->created = true;
    return op_user_get_id(op, sqlite3_last_insert_rowid(op->store->db), out);
}

static int
op_user_get(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (args_only(op, args, keys) || args_id(op, args, "id", "usr", true, &id)) {
        return op->err->status;
    }
    return op_user_get_id(op, id, out);
}

static bool
user_visible(struct op *op, sqlite3_stmt *st)
{
    return op_sees_user(op, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 0));
}

static int
op_user_list(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"limit", "cursor", "tenant_id", NULL};
    int64_t tid;
    if (args_only(op, args, keys) || args_id(op, args, "tenant_id", "ten", false, &tid)) {
        return op->err->status;
    }
    return list_rows(op, args,
                     "SELECT " USER_COLS " FROM user WHERE id > ?1 AND"
                     " (?3 IS NULL OR tenant_id = ?3) ORDER BY id LIMIT ?2",
                     tid, user_row, user_visible, out);
}

static int
op_user_patch(struct op *op, json_t *args, json_t **out)
{
    static const char *const fixed[] = {"tenant_id", NULL};
    int64_t id;
    json_t *cur = NULL;
    if (op_require_assigner(op) || args_id(op, args, "id", "usr", true, &id) ||
        op_user_get_id(op, id, &cur)) {
        return op->err->status;
    }
    int rc = merge_patch(op, cur, args, fixed);
    if (rc == 0) {
        rc = user_check(op, cur);
    }
    if (rc == 0) {
        rc = user_write(op, id, cur);
    }
    json_decref(cur);
    return rc != 0 ? rc : op_user_get_id(op, id, out);
}

const struct op_def ops_portfolio[] = {
    {"buildings.create", op_building_create, true},
    {"buildings.get", op_building_get, false},
    {"buildings.list", op_building_list, false},
    {"buildings.patch", op_building_patch, true},
    {"resources.create", op_resource_create, true},
    {"resources.get", op_resource_get, false},
    {"resources.list", op_resource_list, false},
    {"resources.patch", op_resource_patch, true},
    {"tenants.create", op_tenant_create, true},
    {"tenants.get", op_tenant_get, false},
    {"tenants.list", op_tenant_list, false},
    {"tenants.patch", op_tenant_patch, true},
    {"users.create", op_user_create, true},
    {"users.get", op_user_get, false},
    {"users.list", op_user_list, false},
    {"users.patch", op_user_patch, true},
    {NULL, NULL, false},
};

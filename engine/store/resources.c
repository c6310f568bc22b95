/* resources.c - the resource table: lists and writes. */
#include "resources.h"

#include <stdlib.h>

#include "portfolio_rows.h"

int
store_resource_each(struct store *s, int64_t building_id, int64_t after, int64_t limit,
                    int (*cb)(void *ud, const struct resource_row *row), void *ud,
                    struct eng_error *err)
{
    STORE_SQL(q, "SELECT " RESOURCE_COLS " FROM resource WHERE id > ?1 AND"
                 " (?3 = 0 OR building_id = ?3) ORDER BY id LIMIT ?2");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, after);
    sq_int(s, st, 2, limit);
    sq_int(s, st, 3, building_id);
    int rc;
    while ((rc = sq_step(s, st, "resource list", err)) == 1) {
        struct resource_row row;
        rc = rows_resource(st, &row, err);
        if (rc == 0) {
            rc = cb(ud, &row);
        }
        store_resource_clear(&row);
        if (rc != 0) {
            sq_reset(st);
            return rc;
        }
    }
    return rc;
}

/* Binds name, kind, tags, pricing, credit_only at 1..5. */
static int
bind_resource(struct store *s, sqlite3_stmt *st, const struct resource_row *r,
              struct eng_error *err)
{
    json_t *empty_tags = json_array(), *empty_pricing = json_object();
    char *tags = rows_json_text(r->tags != NULL ? r->tags : empty_tags, err);
    char *pricing = tags != NULL
                        ? rows_json_text(r->pricing != NULL ? r->pricing : empty_pricing, err)
                        : NULL;
    json_decref(empty_tags);
    json_decref(empty_pricing);
    if (pricing == NULL) {
        free(tags);
        return err->status;
    }
    sq_text(s, st, 1, r->name);
    sq_text(s, st, 2, r->kind);
    sq_text(s, st, 3, tags); /* copied by the bind */
    sq_text(s, st, 4, pricing);
    sq_int(s, st, 5, r->credit_only);
    free(tags);
    free(pricing);
    return 0;
}

int
store_resource_insert(struct store *s, const struct resource_row *r, int64_t *id,
                      struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO resource (name, kind, tags, pricing, credit_only, building_id,"
                 " created_at) VALUES (?,?,?,?,?,?,?)");
    *id = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    if (bind_resource(s, st, r, err) != 0) {
        sq_reset(st);
        return err->status;
    }
    sq_int(s, st, 6, r->building_id);
    sq_int(s, st, 7, r->created_at);
    int rc = sq_exec(s, st, "resource insert", err);
    *id = rc == 0 ? sq_last_id(s) : 0;
    return rc;
}

int
store_resource_update(struct store *s, const struct resource_row *r, struct eng_error *err)
{
    STORE_SQL(q, "UPDATE resource SET name = ?, kind = ?, tags = ?, pricing = ?,"
                 " credit_only = ? WHERE id = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    if (bind_resource(s, st, r, err) != 0) {
        sq_reset(st);
        return err->status;
    }
    sq_int(s, st, 6, r->id);
    return sq_exec(s, st, "resource update", err);
}

int
store_resource_set_archived(struct store *s, int64_t id, int64_t at, struct eng_error *err)
{
    STORE_SQL(q, "UPDATE resource SET archived_at = ?2 WHERE id = ?1");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    if (at != 0) {
        sq_int(s, st, 2, at);
    } else {
        sq_null(s, st, 2);
    }
    return sq_exec(s, st, "resource archive", err);
}

/* allocations.c - allocations, their buildings and lines. */
#include "allocations.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A JSON column as an owned value (JSON null when unreadable). */
static json_t *
col_json(sqlite3_stmt *st, int col)
{
    json_t *v = json_loads(sq_col_text(st, col), JSON_DECODE_ANY, NULL);
    return v != NULL ? v : json_null();
}

/* Binds an optional instant: TIME_NEVER is NULL. */
static void
bind_time(struct store *s, sqlite3_stmt *st, int idx, int64_t t)
{
    if (t == TIME_NEVER) {
        sq_null(s, st, idx);
    } else {
        sq_int(s, st, idx, t);
    }
}

static int64_t
col_time(sqlite3_stmt *st, int col)
{
    return sq_col_null(st, col) ? TIME_NEVER : sq_col_int(st, col);
}

/* Copies the text columns of an allocation row; 0 or ENG_ESTORE. */
static int
allocation_texts(sqlite3_stmt *st, struct allocation_row *out, struct eng_error *err)
{
    if (sq_col_copy(st, 1, out->description, sizeof out->description, "allocation description",
                    err) != 0 ||
        sq_col_copy(st, 2, out->unit, sizeof out->unit, "allocation unit", err) != 0 ||
        sq_col_copy(st, 3, out->pool, sizeof out->pool, "allocation pool", err) != 0 ||
        sq_col_copy(st, 4, out->recurrence, sizeof out->recurrence, "allocation recurrence",
                    err) != 0 ||
        sq_col_copy(st, 5, out->zone, sizeof out->zone, "allocation zone", err) != 0 ||
        sq_col_copy(st, 6, out->start_date, sizeof out->start_date, "allocation start", err) !=
            0 ||
        sq_col_copy(st, 7, out->end_date, sizeof out->end_date, "allocation end", err) != 0) {
        return err->status;
    }
    return 0;
}

int
store_allocation_get(struct store *s, int64_t id, struct allocation_row *out, bool *found,
                     struct eng_error *err)
{
    STORE_SQL(q, "SELECT tenant_id, description, unit, pool, recurrence, zone, start_date,"
                 " end_date, cross_building, rollover, rollover_cap, start_at, end_at,"
                 " next_open_n, next_open_at, targeting, created_at FROM allocation WHERE id = ?");
    memset(out, 0, sizeof *out);
    *found = false;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    int rc = sq_step(s, st, "allocation", err);
    if (rc <= 0) {
        return rc;
    }
    out->id = id;
    out->tenant_id = sq_col_int(st, 0);
    out->has_end = !sq_col_null(st, 7);
    out->cross_building = sq_col_int(st, 8) != 0;
    out->rollover = sq_col_int(st, 9) != 0;
    out->rollover_cap = sq_col_null(st, 10) ? -1 : sq_col_int(st, 10);
    out->start_at = sq_col_int(st, 11);
    out->end_at = col_time(st, 12);
    out->next_open_n = sq_col_int(st, 13);
    out->next_open_at = col_time(st, 14);
    out->created_at = sq_col_int(st, 16);
    rc = allocation_texts(st, out, err);
    if (rc == 0) {
        out->targeting = col_json(st, 15);
        *found = true;
    }
    sq_reset(st);
    return rc;
}

void
store_allocation_clear(struct allocation_row *a)
{
    json_decref(a->targeting);
    a->targeting = NULL;
}

int
store_allocation_lines_each(struct store *s, int64_t allocation_id,
                            int (*cb)(void *ud, const struct allocation_line_row *l), void *ud,
                            struct eng_error *err)
{
    STORE_SQL(q, "SELECT idx, scope, resource_ids, tags, amount FROM allocation_line"
                 " WHERE allocation_id = ? ORDER BY idx");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, allocation_id);
    int rc;
    while ((rc = sq_step(s, st, "allocation lines", err)) == 1) {
        struct allocation_line_row l = {0};
        l.idx = (int)sq_col_int(st, 0);
        l.unlimited = sq_col_null(st, 4);
        l.amount = l.unlimited ? 0 : sq_col_int(st, 4);
        if (sq_col_copy(st, 1, l.scope, sizeof l.scope, "line scope", err) != 0) {
            sq_reset(st);
            return err->status;
        }
        l.resource_ids = col_json(st, 2);
        l.tags = col_json(st, 3);
        int stop = cb(ud, &l);
        json_decref(l.resource_ids);
        json_decref(l.tags);
        if (stop != 0) {
            sq_reset(st);
            return stop;
        }
    }
    return rc;
}

/* Runs q with one bound id and calls cb with column 0 of each row. */
static int
ids_each(struct store *s, sqlite3_stmt *st, const char *what, int (*cb)(void *ud, int64_t id),
         void *ud, struct eng_error *err)
{
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
store_allocation_buildings_each(struct store *s, int64_t allocation_id,
                                int (*cb)(void *ud, int64_t building_id), void *ud,
                                struct eng_error *err)
{
    STORE_SQL(q, "SELECT building_id FROM allocation_building WHERE allocation_id = ?"
                 " ORDER BY pos");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, allocation_id);
    return ids_each(s, st, "allocation buildings", cb, ud, err);
}

int
store_allocation_insert(struct store *s, const struct allocation_row *a, int64_t *id,
                        struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO allocation (tenant_id, description, unit, cross_building,"
                 " targeting, pool, recurrence, zone, start_date, end_date, start_at, end_at,"
                 " rollover, rollover_cap, next_open_n, next_open_at, created_at, created_by)"
                 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    char *targeting = json_dumps(a->targeting, JSON_COMPACT | JSON_ENCODE_ANY);
    if (targeting == NULL) {
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        free(targeting);
        return err->status;
    }
    sq_int(s, st, 1, a->tenant_id);
    sq_text(s, st, 2, a->description);
    sq_text(s, st, 3, a->unit);
    sq_int(s, st, 4, a->cross_building);
    sq_text(s, st, 5, targeting);
    sq_text(s, st, 6, a->pool);
    sq_text(s, st, 7, a->recurrence);
    sq_text(s, st, 8, a->zone);
    sq_text(s, st, 9, a->start_date);
    sq_text(s, st, 10, a->has_end ? a->end_date : NULL);
    sq_int(s, st, 11, a->start_at);
    bind_time(s, st, 12, a->end_at);
    sq_int(s, st, 13, a->rollover);
    if (a->rollover_cap >= 0) {
        sq_int(s, st, 14, a->rollover_cap);
    } else {
        sq_null(s, st, 14);
    }
    sq_int(s, st, 15, a->next_open_n);
    bind_time(s, st, 16, a->next_open_at);
    sq_int(s, st, 17, a->created_at);
    sq_text(s, st, 18, a->created_by != NULL ? a->created_by : "");
    int rc = sq_exec(s, st, "allocation insert", err);
    free(targeting);
    if (rc == 0) {
        *id = sq_last_id(s);
    }
    return rc;
}

int
store_allocation_building_insert(struct store *s, int64_t allocation_id, int64_t building_id,
                                 int64_t pos, struct eng_error *err)
{
    STORE_SQL(q, "INSERT OR IGNORE INTO allocation_building (allocation_id, building_id, pos)"
                 " VALUES (?, ?, ?)");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, allocation_id);
    sq_int(s, st, 2, building_id);
    sq_int(s, st, 3, pos);
    return sq_exec(s, st, "allocation building", err);
}

int
store_allocation_line_insert(struct store *s, int64_t allocation_id,
                             const struct allocation_line_row *l, struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO allocation_line (allocation_id, idx, scope, resource_ids, tags,"
                 " amount) VALUES (?,?,?,?,?,?)");
    json_t *empty = json_array();
    char *rids = json_dumps(l->resource_ids ? l->resource_ids : empty, JSON_COMPACT);
    char *tags = json_dumps(l->tags ? l->tags : empty, JSON_COMPACT);
    json_decref(empty);
    int rc = 0;
    sqlite3_stmt *st = NULL;
    if (rids == NULL || tags == NULL) {
        rc = eng_error_set(err, ENG_ENOMEM, "out of memory");
    } else if ((st = sq_prep(s, &q, err)) == NULL) {
        rc = err->status;
    }
    if (rc == 0) {
        sq_int(s, st, 1, allocation_id);
        sq_int(s, st, 2, l->idx);
        sq_text(s, st, 3, l->scope);
        sq_text(s, st, 4, rids);
        sq_text(s, st, 5, tags);
        if (l->unlimited) {
            sq_null(s, st, 6);
        } else {
            sq_int(s, st, 6, l->amount);
        }
        rc = sq_exec(s, st, "allocation line", err);
    }
    free(rids);
    free(tags);
    return rc;
}

int
store_allocations_in_force_each(struct store *s, int64_t tenant_id, const char *unit, int64_t t,
                                int (*cb)(void *ud, int64_t id), void *ud,
                                struct eng_error *err)
{
    STORE_SQL(q, "SELECT id FROM allocation WHERE tenant_id = ?1 AND unit = ?2 AND"
                 " start_at <= ?3 AND (end_at IS NULL OR end_at > ?3) ORDER BY id");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, tenant_id);
    sq_text(s, st, 2, unit);
    sq_int(s, st, 3, t);
    return ids_each(s, st, "allocations in force", cb, ud, err);
}

int
store_allocations_of_tenant_each(struct store *s, int64_t tenant_id,
                                 int (*cb)(void *ud, const struct allocation_span *a), void *ud,
                                 struct eng_error *err)
{
    STORE_SQL(q, "SELECT id, unit, start_at, end_at FROM allocation WHERE tenant_id = ?1"
                 " ORDER BY id");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, tenant_id);
    int rc;
    while ((rc = sq_step(s, st, "allocations of a tenant", err)) == 1) {
        struct allocation_span a = {.id = sq_col_int(st, 0),
                                    .start_at = sq_col_int(st, 2),
                                    .end_at = col_time(st, 3)};
        rc = sq_col_copy(st, 1, a.unit, sizeof a.unit, "allocation unit", err);
        if (rc == 0) {
            rc = cb(ud, &a);
        }
        if (rc != 0) {
            sq_reset(st);
            return rc;
        }
    }
    return rc;
}

int
store_allocations_list(struct store *s, const struct allocation_filter *f,
                       int (*cb)(void *ud, int64_t id), void *ud, struct eng_error *err)
{
    STORE_SQL(q, "SELECT id FROM allocation a WHERE id > ?1 AND (?2 IS NULL OR tenant_id = ?2)"
                 " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM allocation_building ab WHERE"
                 " ab.allocation_id = a.id AND ab.building_id = ?3)) AND (?4 IS NULL OR"
                 " (?4 = 'ended' AND end_at <= ?5) OR (?4 = 'scheduled' AND start_at > ?5) OR"
                 " (?4 = 'active' AND start_at <= ?5 AND (end_at IS NULL OR end_at > ?5)))"
                 " ORDER BY id LIMIT ?6");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, f->after);
    if (f->tenant_id != 0) {
        sq_int(s, st, 2, f->tenant_id);
    }
    if (f->building_id != 0) {
        sq_int(s, st, 3, f->building_id);
    }
    sq_text(s, st, 4, f->status);
    sq_int(s, st, 5, f->now);
    sq_int(s, st, 6, f->limit);
    return ids_each(s, st, "allocation list", cb, ud, err);
}

int
store_allocation_opening_at(struct store *s, int64_t T, int64_t *id, int64_t *n, bool *found,
                            struct eng_error *err)
{
    STORE_SQL(q, "SELECT id, next_open_n FROM allocation WHERE next_open_at = ?"
                 " ORDER BY id LIMIT 1");
    *found = false;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, T);
    int rc = sq_step(s, st, "allocation opening", err);
    if (rc <= 0) {
        return rc;
    }
    *id = sq_col_int(st, 0);
    *n = sq_col_int(st, 1);
    *found = true;
    sq_reset(st);
    return 0;
}

int
store_allocation_next_opening(struct store *s, int64_t *t, struct eng_error *err)
{
    STORE_SQL(q, "SELECT min(next_open_at) FROM allocation");
    return sq_scalar(s, &q, 0, TIME_NEVER, t, err);
}

int
store_allocation_set_cursor(struct store *s, int64_t id, int64_t n, int64_t at,
                            struct eng_error *err)
{
    STORE_SQL(q, "UPDATE allocation SET next_open_n = ?, next_open_at = ? WHERE id = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, n);
    bind_time(s, st, 2, at);
    sq_int(s, st, 3, id);
    return sq_exec(s, st, "allocation cursor", err);
}

int
store_allocation_set_end(struct store *s, int64_t id, const char *end_date, int64_t end_at,
                         struct eng_error *err)
{
    STORE_SQL(q, "UPDATE allocation SET end_date = ?, end_at = ? WHERE id = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, end_date);
    bind_time(s, st, 2, end_at);
    sq_int(s, st, 3, id);
    return sq_exec(s, st, "allocation end", err);
}

int
store_allocation_tenant(struct store *s, int64_t id, int64_t *tenant_id, bool *found,
                        struct eng_error *err)
{
    STORE_SQL(q, "SELECT tenant_id FROM allocation WHERE id = ?");
    return sq_lookup(s, &q, id, "allocation tenant", tenant_id, found, err);
}

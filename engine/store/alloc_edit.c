/* alloc_edit.c - allocation edits and their versions. */
#include "alloc_edit.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

int
store_allocation_edit(struct store *s, int64_t id, const char *description, bool rollover,
                      int64_t rollover_cap, struct eng_error *err)
{
    STORE_SQL(q, "UPDATE allocation SET description = ?2, rollover = ?3, rollover_cap = ?4"
                 " WHERE id = ?1");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    sq_text(s, st, 2, description);
    sq_int(s, st, 3, rollover);
    if (rollover_cap >= 0) {
        sq_int(s, st, 4, rollover_cap);
    } else {
        sq_null(s, st, 4);
    }
    return sq_exec(s, st, "allocation edit", err);
}

int
store_allocation_line_amount(struct store *s, int64_t id, int idx, bool unlimited,
                             int64_t amount, struct eng_error *err)
{
    STORE_SQL(q, "UPDATE allocation_line SET amount = ?3 WHERE allocation_id = ?1 AND idx = ?2");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    sq_int(s, st, 2, idx);
    if (unlimited) {
        sq_null(s, st, 3);
    } else {
        sq_int(s, st, 3, amount);
    }
    return sq_exec(s, st, "allocation line amount", err);
}

int
store_allocation_version_insert(struct store *s, int64_t id, int64_t effective_at,
                                const json_t *changes, int64_t created_at,
                                const char *created_by, int64_t *version,
                                struct eng_error *err)
{
    STORE_SQL(next, "SELECT COALESCE(MAX(version), 0) + 1 FROM allocation_version"
                    " WHERE allocation_id = ?");
    STORE_SQL(q, "INSERT INTO allocation_version (allocation_id, version, effective_at,"
                 " changes, created_at, created_by) VALUES (?,?,?,?,?,?)");
    *version = 0;
    sqlite3_stmt *st = sq_prep(s, &next, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    int rc = sq_step(s, st, "allocation version", err);
    if (rc < 0) {
        return rc;
    }
    int64_t v = rc == 1 ? sq_col_int(st, 0) : 1;
    if (rc == 1) {
        sq_reset(st);
    }
    char *text = json_dumps(changes, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) {
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    st = sq_prep(s, &q, err);
    if (st == NULL) {
        free(text);
        return err->status;
    }
    sq_int(s, st, 1, id);
    sq_int(s, st, 2, v);
    sq_int(s, st, 3, effective_at);
    sq_text(s, st, 4, text);
    sq_int(s, st, 5, created_at);
    sq_text(s, st, 6, created_by != NULL ? created_by : "");
    free(text);
    rc = sq_exec(s, st, "allocation version insert", err);
    *version = rc == 0 ? v : 0;
    return rc;
}

int
store_allocation_versions_each(struct store *s, int64_t id,
                               int (*cb)(void *ud, const struct allocation_version_row *v),
                               void *ud, struct eng_error *err)
{
    STORE_SQL(q, "SELECT version, effective_at, created_at, created_by, changes"
                 " FROM allocation_version WHERE allocation_id = ? ORDER BY version");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, id);
    int rc;
    while ((rc = sq_step(s, st, "allocation versions", err)) == 1) {
        struct allocation_version_row v = {
            .version = sq_col_int(st, 0),
            .effective_at = sq_col_int(st, 1),
            .created_at = sq_col_int(st, 2),
        };
        rc = sq_col_copy(st, 3, v.created_by, sizeof v.created_by, "version author", err);
        if (rc == 0) {
            v.changes = json_loads(sq_col_text(st, 4), 0, NULL);
            rc = v.changes != NULL ? cb(ud, &v)
                                   : eng_error_set(err, ENG_ESTORE,
                                                   "allocation %lld: a version's changes are "
                                                   "not JSON",
                                                   (long long)id);
            json_decref(v.changes);
        }
        if (rc != 0) {
            sq_reset(st);
            return rc;
        }
    }
    return rc;
}

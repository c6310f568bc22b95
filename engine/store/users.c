/* users.c - the user table: lists and writes. */
#include "users.h"

#include <stdlib.h>

#include "portfolio_rows.h"

int
store_user_each(struct store *s, int64_t tenant_id, int64_t after, int64_t limit,
                int (*cb)(void *ud, const struct user_row *row), void *ud,
                struct eng_error *err)
{
    STORE_SQL(q, "SELECT " USER_COLS " FROM user WHERE id > ?1 AND"
                 " (?3 = 0 OR tenant_id = ?3) ORDER BY id LIMIT ?2");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, after);
    sq_int(s, st, 2, limit);
    sq_int(s, st, 3, tenant_id);
    int rc;
    while ((rc = sq_step(s, st, "user list", err)) == 1) {
        struct user_row row;
        rc = rows_user(st, &row, err);
        if (rc == 0) {
            rc = cb(ud, &row);
        }
        store_user_clear(&row);
        if (rc != 0) {
            sq_reset(st);
            return rc;
        }
    }
    return rc;
}

/* Binds name, email, roles at 1..3. */
static int
bind_user(struct store *s, sqlite3_stmt *st, const struct user_row *u, struct eng_error *err)
{
    json_t *empty = json_array();
    char *roles = rows_json_text(u->roles != NULL ? u->roles : empty, err);
    json_decref(empty);
    if (roles == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, u->name);
    sq_text(s, st, 2, u->email);
    sq_text(s, st, 3, roles); /* copied by the bind */
    free(roles);
    return 0;
}

int
store_user_insert(struct store *s, const struct user_row *u, int64_t *id, struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO user (name, email, roles, tenant_id, created_at)"
                 " VALUES (?,?,?,?,?)");
    *id = 0;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    if (bind_user(s, st, u, err) != 0) {
        sq_reset(st);
        return err->status;
    }
    sq_int(s, st, 4, u->tenant_id);
    sq_int(s, st, 5, u->created_at);
    int rc = sq_exec(s, st, "user insert", err);
    *id = rc == 0 ? sq_last_id(s) : 0;
    return rc;
}

int
store_user_update(struct store *s, const struct user_row *u, struct eng_error *err)
{
    STORE_SQL(q, "UPDATE user SET name = ?, email = ?, roles = ? WHERE id = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    if (bind_user(s, st, u, err) != 0) {
        sq_reset(st);
        return err->status;
    }
    sq_int(s, st, 4, u->id);
    return sq_exec(s, st, "user update", err);
}

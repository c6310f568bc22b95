/* idempotency.c - the idempotency table. */
#include "idempotency.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

int
store_idem_get(struct store *s, const char *principal, const char *key,
               const char *request_hash, bool *found, bool *hash_matches, bool *created,
               char **response, struct eng_error *err)
{
    STORE_SQL(q, "SELECT request_hash, status, response FROM idempotency"
                 " WHERE principal = ? AND key = ?");
    *found = false;
    *response = NULL;
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, principal);
    sq_text(s, st, 2, key);
    int rc = sq_step(s, st, "idempotency lookup", err);
    if (rc <= 0) {
        return rc;
    }
    *found = true;
    *hash_matches = strcmp(sq_col_text(st, 0), request_hash) == 0;
    *created = sq_col_int(st, 1) == 201;
    if (*hash_matches) {
        *response = strdup(sq_col_text(st, 2));
        if (*response == NULL) {
            sq_reset(st);
            return eng_error_set(err, ENG_ENOMEM, "out of memory");
        }
    }
    sq_reset(st);
    return 0;
}

int
store_idem_put(struct store *s, const char *principal, const char *key,
               const char *request_hash, bool created, const char *response, int64_t now,
               struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO idempotency (principal, key, request_hash, status, response,"
                 " created_at) VALUES (?,?,?,?,?,?)");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, principal);
    sq_text(s, st, 2, key);
    sq_text(s, st, 3, request_hash);
    sq_int(s, st, 4, created ? 201 : 200);
    sq_text(s, st, 5, response);
    sq_int(s, st, 6, now);
    return sq_exec(s, st, "idempotency insert", err);
}

/* idempotency.c - the idempotency table. */
#include "idempotency.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A status a row may hold: a result, or a refusal's engine status (the
 * statuses run from ENG_EINVAL = -1 down to ENG_EREJECTED = -10). */
static bool
idem_status_valid(int64_t status)
{
    return status == IDEM_DONE || status == IDEM_CREATED ||
           (status < 0 && status >= ENG_EREJECTED);
}

int
store_idem_get(struct store *s, const char *principal, const char *key,
               const char *request_hash, bool *found, struct idem_row *row,
               struct eng_error *err)
{
    STORE_SQL(q, "SELECT request_hash, status, response FROM idempotency"
                 " WHERE principal = ? AND key = ?");
    *found = false;
    memset(row, 0, sizeof *row);
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
    int64_t status = sq_col_int(st, 1);
    if (!idem_status_valid(status)) {
        sq_reset(st);
        return eng_error_code(err, ENG_ESTORE, "storage_error",
                              "an idempotency record holds an unknown status");
    }
    /* Copied, not borrowed: a hash SQLite failed to convert must be an
     * error, never a "different request". */
    char stored_hash[72];
    if (sq_col_copy(st, 0, stored_hash, sizeof stored_hash, "idempotency hash", err) != 0) {
        sq_reset(st);
        return err->status;
    }
    *found = true;
    row->hash_matches = strcmp(stored_hash, request_hash) == 0;
    row->status = (int)status;
    if (row->hash_matches) {
        row->response = strdup(sq_col_text(st, 2));
        if (row->response == NULL) {
            sq_reset(st);
            return eng_error_set(err, ENG_ENOMEM, "out of memory");
        }
    }
    sq_reset(st);
    return 0;
}

int
store_idem_put(struct store *s, const char *principal, const char *key,
               const char *request_hash, int status, const char *response, int64_t now,
               struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO idempotency (principal, key, request_hash, status, response,"
                 " created_at) VALUES (?,?,?,?,?,?)");
    if (!idem_status_valid(status)) {
        return eng_error_set(err, ENG_EINVAL, "idempotency status %d is not storable", status);
    }
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_text(s, st, 1, principal);
    sq_text(s, st, 2, key);
    sq_text(s, st, 3, request_hash);
    sq_int(s, st, 4, status);
    sq_text(s, st, 5, response);
    sq_int(s, st, 6, now);
    return sq_exec(s, st, "idempotency insert", err);
}

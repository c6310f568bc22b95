/* idempotency.h - stored first answers, per principal and key.
 *
 * One row per (principal, key): the hash of the request it answered and
 * that first answer.  The answer is either a result (status IDEM_DONE or
 * IDEM_CREATED, response = the result's JSON text) or a business refusal
 * (status = the negative enum eng_status of the refusal, response = the
 * error's JSON text {"code", "message", "field"}).  The status is the
 * engine's, not HTTP's: the faces decide how each answer is rendered. */
#ifndef ENG_STORE_IDEMPOTENCY_H
#define ENG_STORE_IDEMPOTENCY_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* Status values of a stored result.  (They read like HTTP codes because
 * databases written before refusals were stored hold them.) */
#define IDEM_DONE 200    /* the operation succeeded */
#define IDEM_CREATED 201 /* it succeeded and created an object */

/* A stored first answer. */
struct idem_row {
    bool hash_matches; /* the stored request is this request */
    int status;        /* IDEM_DONE, IDEM_CREATED or a negative enum eng_status */
    char *response;    /* its JSON text, only when hash_matches (caller frees) */
};

/* The stored answer of (principal, key): *found false when there is none;
 * else *row describes it (row->response is a new string the caller frees,
 * NULL unless the hashes match).  A row whose status is none of the values
 * above is ENG_ESTORE: a damaged record never reads as an answer. */
ENG_MUST_CHECK int store_idem_get(struct store *s, const char *principal, const char *key,
                                  const char *request_hash, bool *found, struct idem_row *row,
                                  struct eng_error *err);
/* Stores the first answer of (principal, key): status is IDEM_DONE,
 * IDEM_CREATED or the negative enum eng_status of a refusal (anything else
 * is ENG_EINVAL, a programmer error); response is its JSON text. */
ENG_MUST_CHECK int store_idem_put(struct store *s, const char *principal, const char *key,
                                  const char *request_hash, int status, const char *response,
                                  int64_t now, struct eng_error *err);

#endif

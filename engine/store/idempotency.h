/* idempotency.h - stored first responses, per principal and key. */
#ifndef ENG_STORE_IDEMPOTENCY_H
#define ENG_STORE_IDEMPOTENCY_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* The stored response of (principal, key): *found false when there is none;
 * else *hash_matches, *created and *response (a new string the caller
 * frees) describe it. */
ENG_MUST_CHECK int store_idem_get(struct store *s, const char *principal, const char *key,
                                  const char *request_hash, bool *found, bool *hash_matches,
                                  bool *created, char **response, struct eng_error *err);
/* Stores the first response of (principal, key). */
ENG_MUST_CHECK int store_idem_put(struct store *s, const char *principal, const char *key,
                                  const char *request_hash, bool created, const char *response,
                                  int64_t now, struct eng_error *err);

#endif

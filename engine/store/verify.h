/* verify.h - the ledger's invariants, checked by queries that never write. */
#ifndef ENG_STORE_VERIFY_H
#define ENG_STORE_VERIFY_H

#include <stdint.h>

#include "error.h"
#include "store.h"

/* How many invariants there are, and the name of one. */
int store_verify_count(void);
const char *store_verify_name(int check);

/* Runs every check on `s` (the caller's snapshot): cb gets each problem (a
 * non-zero return stops and is returned); counts[i] (may be NULL; else
 * store_verify_count() entries) gets the number of problems of check i. */
ENG_MUST_CHECK int store_verify(struct store *s,
                                int (*cb)(void *ud, int check, const char *what,
                                          const char *problem),
                                void *ud, int64_t counts[], struct eng_error *err);

#endif

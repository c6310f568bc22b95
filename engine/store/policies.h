/* policies.h - stored policy versions and which one each building serves. */
#ifndef ENG_STORE_POLICIES_H
#define ENG_STORE_POLICIES_H

#include <stdint.h>

#include "error.h"
#include "store.h"

/* One active version of a building (borrowed strings: valid during the
 * callback only). */
struct policy_active_row {
    const char *kind;
    int64_t version;
    const char *source;
    size_t source_len;
    const char *sha256;
};

/* Calls cb for each kind the building has an active uploaded version of.  A
 * non-zero return from cb stops and is returned. */
ENG_MUST_CHECK int store_policy_active_each(struct store *s, int64_t building_id,
                                            int (*cb)(void *ud,
                                                      const struct policy_active_row *row),
                                            void *ud, struct eng_error *err);

#endif

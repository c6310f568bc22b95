/* policies.h - stored policy versions and which one each building serves. */
#ifndef ENG_STORE_POLICIES_H
#define ENG_STORE_POLICIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

#define POLICY_SHA256_HEX_LEN 64
#define POLICY_AUTHOR_BYTES_MAX 100

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

/* The active uploaded version of one kind of a building, without its
 * source. */
struct policy_active_info {
    int64_t version_id;
    int64_t version;
    char sha256[POLICY_SHA256_HEX_LEN + 1];
    char author[POLICY_AUTHOR_BYTES_MAX + 1];
    int64_t loaded_at;
};

/* Fills *out with the building's active version of `kind`; *found is false
 * (and *out zeroed) when the kind serves no uploaded version.  0 or
 * ENG_ESTORE. */
ENG_MUST_CHECK int store_policy_active_get(struct store *s, int64_t building_id,
                                           const char *kind, struct policy_active_info *out,
                                           bool *found, struct eng_error *err);

/* The number the next uploaded version of `kind` gets in the building (1 for
 * the first).  0 or ENG_ESTORE. */
ENG_MUST_CHECK int store_policy_next_version(struct store *s, int64_t building_id,
                                             const char *kind, int64_t *version,
                                             struct eng_error *err);

/* Stores a version (source, its SHA-256 in hex, the author), created at
 * `now`; *id is its row id.  Borrowed strings.  0 or ENG_ESTORE. */
ENG_MUST_CHECK int store_policy_version_insert(struct store *s, int64_t building_id,
                                               const char *kind, int64_t version,
                                               const char *source, const char *sha256,
                                               const char *author, int64_t now, int64_t *id,
                                               struct eng_error *err);

/* The row id and SHA-256 of version `version` of `kind` in the building;
 * *found false when there is no such version.  0 or ENG_ESTORE. */
ENG_MUST_CHECK int store_policy_version_find(struct store *s, int64_t building_id,
                                             const char *kind, int64_t version, int64_t *id,
                                             char sha256[POLICY_SHA256_HEX_LEN + 1],
                                             bool *found, struct eng_error *err);

/* Makes version row `version_id` the active one of `kind` in the building,
 * loaded at `now`.  0 or ENG_ESTORE. */
ENG_MUST_CHECK int store_policy_activate(struct store *s, int64_t building_id, const char *kind,
                                         int64_t version_id, int64_t now,
                                         struct eng_error *err);

/* Drops the building's active version of `kind` (it falls back to its file
 * or the default).  0 or ENG_ESTORE. */
ENG_MUST_CHECK int store_policy_deactivate(struct store *s, int64_t building_id,
                                           const char *kind, struct eng_error *err);

/* One stored version, newest first in the history (borrowed strings: valid
 * during the callback only). */
struct policy_version_row {
    int64_t version;
    const char *sha256;
    const char *author;
    int64_t created_at;
    const char *source;
    bool active;
};

/* Calls cb for every stored version of `kind` in the building, newest
 * first.  A non-zero return from cb stops and is returned. */
ENG_MUST_CHECK int store_policy_history_each(struct store *s, int64_t building_id,
                                             const char *kind,
                                             int (*cb)(void *ud,
                                                       const struct policy_version_row *row),
                                             void *ud, struct eng_error *err);

/* Calls cb with the id of every building, in id order (what a reload
 * rebuilds).  A non-zero return from cb stops and is returned. */
ENG_MUST_CHECK int store_policy_buildings_each(struct store *s,
                                               int (*cb)(void *ud, int64_t building_id),
                                               void *ud, struct eng_error *err);

#endif

/* alloc_edit.h - changing an allocation after it was made (PATCH
 * /v1/allocations/{id}): its description, rollover and line amounts, and
 * the versions that record each change (table allocation_version). */
#ifndef ENG_STORE_ALLOC_EDIT_H
#define ENG_STORE_ALLOC_EDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "store.h"

/* Rewrites the description and the rollover rule (cap -1: no cap). */
ENG_MUST_CHECK int store_allocation_edit(struct store *s, int64_t id, const char *description,
                                         bool rollover, int64_t rollover_cap,
                                         struct eng_error *err);
/* Sets the amount of line idx (milli; unlimited stores no amount). */
ENG_MUST_CHECK int store_allocation_line_amount(struct store *s, int64_t id, int idx,
                                                bool unlimited, int64_t amount,
                                                struct eng_error *err);

#define STORE_VERSION_ACTOR_MAX 200

struct allocation_version_row {
    int64_t version;        /* 1, 2, ... in order of change */
    int64_t effective_at;   /* from when the change applies */
    int64_t created_at;
    char created_by[STORE_VERSION_ACTOR_MAX + 1];
    json_t *changes;        /* owned while read: the fields changed, as given */
};

/* Records a change as the allocation's next version; *version is its
 * number.  `changes` is stored as compact JSON. */
ENG_MUST_CHECK int store_allocation_version_insert(struct store *s, int64_t id,
                                                   int64_t effective_at, const json_t *changes,
                                                   int64_t created_at, const char *created_by,
                                                   int64_t *version, struct eng_error *err);
/* The allocation's versions, oldest first: cb per row (borrowed for the
 * call; non-zero stops and is returned). */
ENG_MUST_CHECK int store_allocation_versions_each(
    struct store *s, int64_t id, int (*cb)(void *ud, const struct allocation_version_row *v),
    void *ud, struct eng_error *err);

#endif

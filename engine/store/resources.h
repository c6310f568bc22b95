/* resources.h - listing and writing resources (rows: portfolio.h). */
#ifndef ENG_STORE_RESOURCES_H
#define ENG_STORE_RESOURCES_H

#include <stdint.h>

#include "error.h"
#include "portfolio.h"
#include "store.h"

/* Resources with id > after (of one building unless building_id is 0) in
 * id order, at most `limit` (negative: all); cb borrows each row, its JSON
 * included (non-zero stops and is returned). */
ENG_MUST_CHECK int store_resource_each(struct store *s, int64_t building_id, int64_t after,
                                       int64_t limit,
                                       int (*cb)(void *ud, const struct resource_row *row),
                                       void *ud, struct eng_error *err);
/* Inserts r (its id ignored; NULL tags store [], NULL pricing {}); *id is
 * the new id. */
ENG_MUST_CHECK int store_resource_insert(struct store *s, const struct resource_row *r,
                                         int64_t *id, struct eng_error *err);
/* Rewrites name, kind, tags, pricing and credit_only of resource r->id. */
ENG_MUST_CHECK int store_resource_update(struct store *s, const struct resource_row *r,
                                         struct eng_error *err);

/* Archives resource `id` at `at`, or restores it when at is 0. */
ENG_MUST_CHECK int store_resource_set_archived(struct store *s, int64_t id, int64_t at,
                                               struct eng_error *err);

#endif

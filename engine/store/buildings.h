/* buildings.h - listing and writing buildings (rows: portfolio.h). */
#ifndef ENG_STORE_BUILDINGS_H
#define ENG_STORE_BUILDINGS_H

#include <stdint.h>

#include "error.h"
#include "portfolio.h"
#include "store.h"

/* Buildings with id > after in id order, at most `limit` (negative: all);
 * cb borrows each row (non-zero stops and is returned). */
ENG_MUST_CHECK int store_building_each(struct store *s, int64_t after, int64_t limit,
                                       int (*cb)(void *ud, const struct building_row *row),
                                       void *ud, struct eng_error *err);
/* Inserts b (its id ignored; created_at as given); *id is the new id. */
ENG_MUST_CHECK int store_building_insert(struct store *s, const struct building_row *b,
                                         int64_t *id, struct eng_error *err);
/* Rewrites the name, zone, currency and payment flags of building b->id. */
ENG_MUST_CHECK int store_building_update(struct store *s, const struct building_row *b,
                                         struct eng_error *err);
/* The one time zone of the buildings (a tenant's, tenant_id != 0; else
 * all), into zone (TIME_ZONE_NAME_MAX bytes): *count is how many zones
 * they have, 0, 1 or 2 (two or more: zone is left empty). */
ENG_MUST_CHECK int store_buildings_zone(struct store *s, int64_t tenant_id, char *zone,
                                        int *count, struct eng_error *err);

#endif

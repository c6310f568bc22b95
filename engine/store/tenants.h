/* tenants.h - listing and writing tenants and their leases (rows:
 * portfolio.h; reading a tenant's leases is there too). */
#ifndef ENG_STORE_TENANTS_H
#define ENG_STORE_TENANTS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "portfolio.h"
#include "store.h"

/* Tenants with id > after in id order, at most `limit` (negative: all); cb
 * borrows each row (non-zero stops and is returned). */
ENG_MUST_CHECK int store_tenant_each(struct store *s, int64_t after, int64_t limit,
                                     int (*cb)(void *ud, const struct tenant_row *row),
                                     void *ud, struct eng_error *err);
/* Inserts t (its id ignored); *id is the new id. */
ENG_MUST_CHECK int store_tenant_insert(struct store *s, const struct tenant_row *t, int64_t *id,
                                       struct eng_error *err);
/* Rewrites the name and cross_building of tenant t->id. */
ENG_MUST_CHECK int store_tenant_update(struct store *s, const struct tenant_row *t,
                                       struct eng_error *err);
/* Replaces the tenant's leases by exactly the n buildings given (duplicates
 * are one lease). */
ENG_MUST_CHECK int store_tenant_buildings_set(struct store *s, int64_t tenant_id,
                                              const int64_t *building_ids, size_t n,
                                              struct eng_error *err);

#endif

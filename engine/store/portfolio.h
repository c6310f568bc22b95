/* portfolio.h - the rows of buildings, resources, tenants and users as the
 * layers above read them.  (Their lists, inserts and updates live beside
 * them in buildings.c, resources.c, tenants.c and users.c.)
 *
 * Getters fill a caller's struct and set *found; text fields are as long as
 * the API accepts (validated at the edge), and a stored value longer than
 * that is an error, never a truncation.  JSON fields are owned json_t
 * values: release them with the matching _clear. */
#ifndef ENG_STORE_PORTFOLIO_H
#define ENG_STORE_PORTFOLIO_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "store.h"
#include "timeutil.h"

#define STORE_NAME_MAX 200 /* names and emails, bytes */

struct building_row {
    int64_t id;
    char name[STORE_NAME_MAX + 1];
    char timezone[TIME_ZONE_NAME_MAX + 1];
    char currency[8];
    bool pay_credits, pay_invoice, pay_card;
    int64_t created_at;
};

struct resource_row {
    int64_t id, building_id;
    char name[STORE_NAME_MAX + 1];
    char kind[64];
    json_t *tags;    /* owned */
    json_t *pricing; /* owned */
    bool credit_only;
    int64_t created_at;
    bool archived;       /* closed to new bookings, kept for history */
    int64_t archived_at; /* when archived (0 when not) */
};

struct tenant_row {
    int64_t id;
    char name[STORE_NAME_MAX + 1];
    bool cross_building;
    int64_t created_at;
};

struct user_row {
    int64_t id, tenant_id;
    char name[STORE_NAME_MAX + 1];
    char email[STORE_NAME_MAX + 1];
    json_t *roles; /* owned */
    int64_t created_at;
};

enum store_kind { STORE_BUILDING, STORE_RESOURCE, STORE_TENANT, STORE_USER };

ENG_MUST_CHECK int store_building_get(struct store *s, int64_t id, struct building_row *out,
                                      bool *found, struct eng_error *err);
ENG_MUST_CHECK int store_resource_get(struct store *s, int64_t id, struct resource_row *out,
                                      bool *found, struct eng_error *err);
void store_resource_clear(struct resource_row *r);
ENG_MUST_CHECK int store_tenant_get(struct store *s, int64_t id, struct tenant_row *out,
                                    bool *found, struct eng_error *err);
ENG_MUST_CHECK int store_user_get(struct store *s, int64_t id, struct user_row *out,
                                  bool *found, struct eng_error *err);
void store_user_clear(struct user_row *u);

/* Whether a row of that kind and id exists. */
ENG_MUST_CHECK int store_exists(struct store *s, enum store_kind kind, int64_t id, bool *found,
                                struct eng_error *err);

/* The buildings a tenant leases, in id order: cb per building (non-zero
 * stops and is returned). */
ENG_MUST_CHECK int store_tenant_buildings_each(struct store *s, int64_t tenant_id,
                                               int (*cb)(void *ud, int64_t building_id),
                                               void *ud, struct eng_error *err);
/* Whether the tenant leases space in the building. */
ENG_MUST_CHECK int store_tenant_leases(struct store *s, int64_t tenant_id, int64_t building_id,
                                       bool *leases, struct eng_error *err);
/* A tenant's users in id order (cb as above). */
ENG_MUST_CHECK int store_tenant_users_each(struct store *s, int64_t tenant_id,
                                           int (*cb)(void *ud, int64_t user_id), void *ud,
                                           struct eng_error *err);

#endif

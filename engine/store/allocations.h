/* allocations.h - the rows of allocations, their buildings and their lines
 * (tables allocation, allocation_building, allocation_line).
 *
 * Text fields are sized for what the API accepts (validated at the edge); a
 * stored value longer than that is an error, never a truncation.  JSON
 * fields are owned json_t values: release a row with its _clear. */
#ifndef ENG_STORE_ALLOCATIONS_H
#define ENG_STORE_ALLOCATIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "store.h"
#include "timeutil.h"

#define STORE_ALLOC_DESCRIPTION_MAX 500 /* bytes, as the API accepts */

struct allocation_row {
    int64_t id, tenant_id;
    char description[STORE_ALLOC_DESCRIPTION_MAX + 1];
    char unit[8];           /* hour | coin */
    char pool[12];          /* shared | per_user */
    char recurrence[16];    /* none | weekly | monthly | quarterly | yearly */
    char zone[TIME_ZONE_NAME_MAX + 1];
    char start_date[16];    /* YYYY-MM-DD */
    char end_date[16];      /* "" without an end */
    bool has_end;
    bool cross_building, rollover;
    int64_t rollover_cap;   /* -1: no cap */
    int64_t start_at, end_at; /* end_at TIME_NEVER without an end */
    int64_t next_open_n;
    int64_t next_open_at;   /* TIME_NEVER: no period left to open */
    json_t *targeting;      /* owned */
    int64_t created_at;
    const char *created_by; /* insert only: borrowed */
};

struct allocation_line_row {
    int idx;
    char scope[12];       /* all | resources | tags */
    json_t *resource_ids; /* owned when read; borrowed when inserted */
    json_t *tags;         /* owned when read; borrowed when inserted */
    bool unlimited;
    int64_t amount;       /* milli; 0 when unlimited */
};

/* The allocation `id`; *found false (and 0) when there is none.  Release
 * with store_allocation_clear.  0 or ENG_ESTORE / ENG_ENOMEM. */
ENG_MUST_CHECK int store_allocation_get(struct store *s, int64_t id, struct allocation_row *out,
                                        bool *found, struct eng_error *err);
void store_allocation_clear(struct allocation_row *a);

/* The tenant of allocation `id` (*found false when there is none). */
ENG_MUST_CHECK int store_allocation_tenant(struct store *s, int64_t id, int64_t *tenant_id,
                                           bool *found, struct eng_error *err);
/* An allocation's lines in idx order: cb per line (the row and its JSON are
 * borrowed for the call; non-zero stops and is returned). */
ENG_MUST_CHECK int store_allocation_lines_each(struct store *s, int64_t allocation_id,
                                               int (*cb)(void *ud,
                                                         const struct allocation_line_row *l),
                                               void *ud, struct eng_error *err);
/* An allocation's buildings in their given order (cb as above). */
ENG_MUST_CHECK int store_allocation_buildings_each(struct store *s, int64_t allocation_id,
                                                   int (*cb)(void *ud, int64_t building_id),
                                                   void *ud, struct eng_error *err);

/* Inserts the allocation (id, next_open_* as given; next_open_at TIME_NEVER
 * stores NULL) and sets *id. */
ENG_MUST_CHECK int store_allocation_insert(struct store *s, const struct allocation_row *a,
                                           int64_t *id, struct eng_error *err);
/* Adds a building at position pos (a repeated building is ignored). */
ENG_MUST_CHECK int store_allocation_building_insert(struct store *s, int64_t allocation_id,
                                                    int64_t building_id, int64_t pos,
                                                    struct eng_error *err);
ENG_MUST_CHECK int store_allocation_line_insert(struct store *s, int64_t allocation_id,
                                                const struct allocation_line_row *l,
                                                struct eng_error *err);

/* Ids of a tenant's allocations in `unit` in force at instant t, in id
 * order: cb per id (non-zero stops and is returned). */
ENG_MUST_CHECK int store_allocations_in_force_each(struct store *s, int64_t tenant_id,
                                                   const char *unit, int64_t t,
                                                   int (*cb)(void *ud, int64_t id), void *ud,
                                                   struct eng_error *err);

/* Every allocation of a tenant, in id order, with what decides whether it
 * is in force (store_allocations_in_force_each's test, made by the caller):
 * cb per allocation (the row is borrowed for the call; non-zero stops and
 * is returned). */
struct allocation_span {
    int64_t id;
    char unit[8];
    int64_t start_at, end_at; /* end_at TIME_NEVER without an end */
};
ENG_MUST_CHECK int store_allocations_of_tenant_each(struct store *s, int64_t tenant_id,
                                                    int (*cb)(void *ud,
                                                              const struct allocation_span *a),
                                                    void *ud, struct eng_error *err);

/* A page of allocation ids: id > after, optional tenant (0: any), building
 * (0: any) and status ("active" | "scheduled" | "ended" at `now`; NULL:
 * any), in id order, at most `limit` rows (cb as above). */
struct allocation_filter {
    int64_t after, tenant_id, building_id, now;
    const char *status;
    int limit;
};
ENG_MUST_CHECK int store_allocations_list(struct store *s, const struct allocation_filter *f,
                                          int (*cb)(void *ud, int64_t id), void *ud,
                                          struct eng_error *err);

/* The first allocation (lowest id) whose next period opens at T: *found,
 * its id and the period index to open. */
ENG_MUST_CHECK int store_allocation_opening_at(struct store *s, int64_t T, int64_t *id,
                                               int64_t *n, bool *found, struct eng_error *err);
/* The earliest pending opening (TIME_NEVER: none). */
ENG_MUST_CHECK int store_allocation_next_opening(struct store *s, int64_t *t,
                                                 struct eng_error *err);
/* Moves the opening cursor: period n opens at `at` (TIME_NEVER: never). */
ENG_MUST_CHECK int store_allocation_set_cursor(struct store *s, int64_t id, int64_t n, int64_t at,
                                               struct eng_error *err);
/* Sets the end date (YYYY-MM-DD) and end instant. */
ENG_MUST_CHECK int store_allocation_set_end(struct store *s, int64_t id, const char *end_date,
                                            int64_t end_at, struct eng_error *err);

#endif

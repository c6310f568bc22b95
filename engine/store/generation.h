/* generation.h - the portfolio generation: a number every change to what a
 * booking's computation reads (buildings, resources, tenants and leases,
 * users, allocations and their lines and buildings, active policies, lots
 * opened or closed) moves, by SQLite triggers (migration 2), whatever code
 * path makes the change.  Lot balances, bookings and entries do not move
 * it: a plan re-checks those itself.
 *
 * A booking computed on a read snapshot is still valid in the writer when
 * the generation it read is unchanged (core/engine.c, ops_booking.c). */
#ifndef ENG_STORE_GENERATION_H
#define ENG_STORE_GENERATION_H

#include <stdint.h>

#include "error.h"
#include "store.h"

ENG_MUST_CHECK int store_generation_get(struct store *s, int64_t *gen, struct eng_error *err);

#endif

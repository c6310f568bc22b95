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

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* Reads the generation. */
ENG_MUST_CHECK int store_generation_get(struct store *s, int64_t *gen, struct eng_error *err);

/* The generation without a statement, when the connection knows it (true,
 * *gen set): on SQLite, inside a write transaction, after this connection
 * read it (in this transaction, or before it with only its own commits
 * since), with no change to it on this connection since (its triggers
 * included: an update hook counts them), nothing rolled back since, and no
 * commit by another connection or process since (the pager's data
 * version).  Always false on PostgreSQL, where another node may move it at
 * any time. */
bool store_generation_known(struct store *s, int64_t *gen);
/* store_generation_known's value, else store_generation_get's. */
ENG_MUST_CHECK int store_generation_now(struct store *s, int64_t *gen, struct eng_error *err);

#endif

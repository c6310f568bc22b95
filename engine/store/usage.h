/* usage.h - running usage counters: what policies see as
 * ctx.user_usage_month, kept as rows instead of summed from history.
 *
 * usage_month(user_id, unit, zone, month) holds the credits (milli, net of
 * refunds) the user spent from shared lots (lot.user_id = 0) of that unit
 * on meetings whose start falls in that calendar month of that zone: the
 * sum of -amount over the user's bookings' debit and refund entries.  It is
 * kept for every zone listed in usage_zone (every building's zone: a zone is
 * listed, and its counters built from history, when a building gets it and
 * by the migration that made the table).  Each debit or refund entry moves
 * the counters in the same transaction (store_entry_insert calls
 * store_usage_entry), `allot verify` recomputes them from the entries, and
 * store_usage_zone_build rebuilds a zone's rows. */
#ifndef ENG_STORE_USAGE_H
#define ENG_STORE_USAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* The month key (year * 100 + month) of instant t in `zone`: the calendar
 * month [local midnight of its 1st, local midnight of the next 1st) that
 * holds t, the same bounds the usage sum always used. */
ENG_MUST_CHECK int store_usage_month_key(const char *zone, int64_t t, int *key,
                                         struct eng_error *err);

/* Whether instant t lies in the same calendar month in every zone (true
 * unless t is within 16 hours of its UTC month's ends, or before 1970),
 * and that month's key: what store_usage_month_key answers for t in any
 * zone then.  Arithmetic only, no zone rules read. */
bool store_usage_month_everywhere(int64_t t, int *key);

/* The user's usage of `unit` in month `key` of `zone`.  A zone without
 * counters (not listed; only a database edited by hand) is summed from the
 * entries instead, with the same result. */
ENG_MUST_CHECK int store_usage_get(struct store *s, int64_t user_id, const char *unit,
                                   const char *zone, int key, int64_t *used,
                                   struct eng_error *err);

/* Moves the counters for an entry of `amount` on lot `lot_id` for booking
 * `booking_id` (debit or refund): nothing for a per-user lot. */
ENG_MUST_CHECK int store_usage_entry(struct store *s, int64_t lot_id, int64_t booking_id,
                                     int64_t amount, struct eng_error *err);

/* Adds `delta` to the user's counters of `unit` for the month of `start`
 * in every listed zone: what store_usage_entry does once it knows the
 * booking (the caller of store_entry_insert may pass what it knows).
 * `zones`: how many zones are listed, read in the same transaction (0:
 * not known). */
ENG_MUST_CHECK int store_usage_add(struct store *s, int64_t user_id, const char *unit,
                                   int64_t start, int zones, int64_t delta,
                                   struct eng_error *err);

/* Lists `zone` (when it is not yet) and builds its counters from the
 * entries; a listed zone is left as it is. */
ENG_MUST_CHECK int store_usage_zone_add(struct store *s, const char *zone,
                                        struct eng_error *err);
/* Rebuilds every listed zone's counters from the entries (and lists every
 * building's zone): what the migration runs, and a repair. */
ENG_MUST_CHECK int store_usage_rebuild(struct store *s, struct eng_error *err);

/* Recomputes every counter from the entries and calls cb with a line per
 * difference (a non-zero return stops and is returned); *problems counts
 * them. */
ENG_MUST_CHECK int store_usage_verify(struct store *s,
                                      int (*cb)(void *ud, const char *problem), void *ud,
                                      int64_t *problems, struct eng_error *err);

#endif

/* bookings.h - the booking table, and the ledger rows only bookings read
 * (a booking's debits with their lots, a user's monthly usage).
 *
 * Getters fill a caller's struct and set *found; iterations call back once
 * per row (non-zero from the callback stops and is returned as is).  Text
 * columns are as long as the API accepts (validated at the edge); a stored
 * value longer than that is an error, never a truncation.  Every storage
 * failure is ENG_ESTORE and never reads as "no row", "0" or "slot free". */
#ifndef ENG_STORE_BOOKINGS_H
#define ENG_STORE_BOOKINGS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "store.h"

#define BOOKING_REASON_MAX 500 /* cancel_reason, bytes */

struct booking_row {
    int64_t id, resource_id, building_id, tenant_id, user_id;
    int64_t start_at, end_at;
    char status[16];         /* confirmed | cancelled */
    char payment_method[16]; /* credits | invoice | card */
    char unit[8];            /* "" when not paid by credits */
    bool has_credits;
    int64_t credits; /* milli */
    bool has_money;
    int64_t money, money_before_discount;
    char currency[8];
    int64_t discount_pm;
    int64_t credits_refunded, money_refunded;
    json_t *policy_versions; /* owned; release with store_booking_clear */
    int64_t created_at;
    bool cancelled, cancelled_by_admin, has_reason;
    int64_t cancelled_at;
    char cancel_reason[BOOKING_REASON_MAX + 1];
};

void store_booking_clear(struct booking_row *b);

/* The booking `id`: *found false when there is none (out is then cleared). */
ENG_MUST_CHECK int store_booking_get(struct store *s, int64_t id, struct booking_row *out,
                                     bool *found, struct eng_error *err);

/* Filters of the bookings list; 0 / NULL means "any". */
struct booking_filter {
    int64_t tenant_id, user_id, resource_id, building_id;
    int64_t from, to;   /* overlapping [from, to) */
    const char *status; /* confirmed | cancelled */
};

/* Bookings with id > after matching f, in id order, at most `limit` rows
 * (the pager asks for its page size + 1).  The row handed to cb is valid
 * during the call only. */
ENG_MUST_CHECK int store_bookings_list(struct store *s, const struct booking_filter *f,
                                       int64_t after, int limit,
                                       int (*cb)(void *ud, const struct booking_row *row),
                                       void *ud, struct eng_error *err);

/* A building's bookings starting in [from, to), by start then id, at most
 * `limit` rows (the simulation asks for its cap + 1 to tell a hit cap). */
ENG_MUST_CHECK int store_bookings_by_start(struct store *s, int64_t building_id, int64_t from,
                                           int64_t to, int limit,
                                           int (*cb)(void *ud, const struct booking_row *row),
                                           void *ud, struct eng_error *err);

/* Whether a confirmed booking of the resource overlaps [start, end).  Any
 * storage failure is an error: *taken is true unless the check completed. */
ENG_MUST_CHECK int store_booking_slot_taken(struct store *s, int64_t resource_id, int64_t start,
                                            int64_t end, bool *taken, struct eng_error *err);

/* What a booking computed ahead (a plan) re-checks in the writer, read in
 * one statement: the portfolio generation (store/generation.h), the user's
 * usage counter for (unit, zone, month) (usage_found false when it has no
 * row: then store_usage_get tells what that means), and whether the slot
 * [start, end) of the resource is taken (as store_booking_slot_taken). */
struct booking_recheck {
    int64_t generation;
    bool usage_found;
    int64_t usage;
    bool taken;
    int zones; /* zones with usage counters (store/usage.h) */
};
ENG_MUST_CHECK int store_booking_recheck(struct store *s, int64_t resource_id, int64_t start,
                                         int64_t end, int64_t user_id, const char *unit,
                                         const char *zone, int month,
                                         struct booking_recheck *out, struct eng_error *err);

/* One confirmed booking overlapping a slot (what a quote tells about it). */
struct booking_overlap {
    int64_t id, start_at, end_at;
};
/* The confirmed bookings of the resource overlapping [start, end), by start,
 * at most `limit` of them; *count is how many there are in all (counted
 * to the end, so a list cut at `limit` still says how many it left out). */
ENG_MUST_CHECK int store_booking_overlaps(struct store *s, int64_t resource_id, int64_t start,
                                          int64_t end, int limit,
                                          int (*cb)(void *ud, const struct booking_overlap *o),
                                          void *ud, int64_t *count, struct eng_error *err);

/* A new confirmed booking. */
struct booking_new {
    int64_t resource_id, building_id, tenant_id, user_id;
    int64_t start_at, end_at;
    const char *payment_method;
    const char *unit; /* NULL unless paid by credits */
    bool has_credits;
    int64_t credits;
    bool has_money;
    int64_t money, money_before_discount;
    const char *currency;
    int64_t discount_pm;
    const char *policy_versions; /* JSON text */
    int64_t created_at;
    const char *created_by;
};

ENG_MUST_CHECK int store_booking_insert(struct store *s, const struct booking_new *b,
                                        int64_t *id, struct eng_error *err);

/* Marks a confirmed booking cancelled with what was refunded; a booking
 * that is not (or no longer) confirmed is ENG_ECONFLICT already_cancelled. */
struct booking_cancel {
    int64_t id;
    int64_t credits_refunded, money_refunded;
    int64_t cancelled_at;
    const char *cancelled_by;
    const char *reason; /* NULL: none */
    bool by_admin;
};

ENG_MUST_CHECK int store_booking_cancel(struct store *s, const struct booking_cancel *c,
                                        struct eng_error *err);

/* One debit entry of a booking, with its lot. */
struct booking_debit {
    int64_t entry_id, lot_id;
    int64_t amount;    /* what was taken, milli (> 0) */
    bool lot_expired;  /* the lot is closed or past its end at `now`, and limited */
    int64_t lot_until; /* the lot's valid_until */
};

/* A booking's debits, oldest first (or newest first), each with its lot's
 * state at `now`. */
ENG_MUST_CHECK int store_booking_debits_each(struct store *s, int64_t booking_id, int64_t now,
                                             bool newest_first,
                                             int (*cb)(void *ud, const struct booking_debit *d),
                                             void *ud, struct eng_error *err);

/* Credits (milli, net of refunds) the user spent from shared lots of `unit`
 * on bookings starting in [from, to). */
ENG_MUST_CHECK int store_booking_user_usage(struct store *s, int64_t user_id, int64_t from,
                                            int64_t to, const char *unit, int64_t *out,
                                            struct eng_error *err);

#endif

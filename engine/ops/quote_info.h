/* quote_info.h - what a quote tells beside the prices: why credits cannot
 * pay (credits_unavailable_reason) and whether the slot is free (slot).
 * Both are read-only and run only for quotes (ops_booking.c). */
#ifndef ENG_QUOTE_INFO_H
#define ENG_QUOTE_INFO_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "ops.h"

/* What the quote found about paying by credits. */
struct quote_credit_facts {
    struct policy_set *pol; /* the resource building's set */
    int64_t user_id, tenant_id;
    json_t *user, *tenant, *resource, *building; /* policy contexts (borrowed) */
    bool priced_in_credits; /* the pricing policy gave a credit price */
    bool building_accepts;  /* the building takes credits */
    const char *unit;       /* hour | coin, when priced in credits */
    int64_t start;          /* the booking's start */
    int64_t credits;        /* the price (milli) */
    int candidates;         /* lots with something left that may pay */
    int64_t available;      /* their balance (milli) */
    bool unlimited;
};

/* *out: NULL when credits can pay, else {"code", "message", "details"}.
 * Codes: credits_not_accepted, not_priced_in_credits, insufficient_balance,
 * not_eligible, no_lot_at_time, no_credits.  0 or an error (op->err). */
int quote_credits_reason(struct op *op, const struct quote_credit_facts *f, json_t **out);

/* QUOTE_CONFLICTS_MAX bookings at most are listed; conflict_count tells
 * how many there are. */
#define QUOTE_CONFLICTS_MAX 10

/* *out: {"available", "in_past", "conflicts": [{"start", "end",
 * "booking_id"?}], "conflict_count"}; a booking's id only when the
 * principal reaches it.  0 or an error (op->err). */
int quote_slot(struct op *op, int64_t resource_id, int64_t start, int64_t end, json_t **out);
/* The same, appended to t as the text json_out renders of quote_slot's
 * tree (the conflicts listed only when the slot is taken).  0 or an error
 * (op->err; a failed t is ENG_ENOMEM). */
int quote_slot_text(struct op *op, int64_t resource_id, int64_t start, int64_t end,
                    struct json_buf *t);

#endif

/* price_check.h - the checks every pricing result meets.
 *
 * A pricing policy's result is untrusted (STYLE 2.8): before an amount is
 * used it must be an integer in range, and credits must name a unit lots
 * can have.  The same rules refuse an upload whose policy would break them
 * (ops_policies.c runs the candidate on representative bookings) so a bad
 * version never reaches the booking path, where every quote would answer
 * 503.  ops_booking.c's price() applies the same bounds to live results. */
#ifndef ENG_POLICY_PRICE_CHECK_H
#define ENG_POLICY_PRICE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

/* Money amounts a price may hold, in minor units (2^50). */
#define POLICY_PRICE_MONEY_MAX (INT64_C(1) << 50)

/* A pricing result, read. */
struct policy_price {
    bool has_money, has_credits;
    int64_t money, money_before; /* minor units; money_before = money when not given */
    int64_t credits;             /* milli */
    char unit[8];                /* "hour" or "coin" when has_credits, else "" */
};

/* Reads `res` (borrowed), the JSON result of price(ctx).  A refusal
 * ({error = "..."}) sets *refusal to its message (borrowed from res, or a
 * constant when it is not a string) and returns 0 with *out cleared.
 * Otherwise *refusal is NULL and the result must be an object (an empty
 * Lua table, which crosses as [], is no price at all) whose money and
 * money_before_discount are integers in [0, POLICY_PRICE_MONEY_MAX], credits
 * an integer in [0, AMOUNT_MILLI_MAX], and unit "hour" or "coin" whenever
 * credits is given; anything else is ENG_EPOLICY policy_error naming the
 * field and what is required.  Absent and null fields are not given. */
ENG_MUST_CHECK int policy_price_read(const json_t *res, struct policy_price *out,
                                     const char **refusal, struct eng_error *err);

#endif

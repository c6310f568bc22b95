/* amount.h - exact credit amounts as int64 thousandths ("milli").
 *
 * 1.5 credits is 1500.  Input is at most 3 fractional digits and at most
 * AMOUNT_MILLI_MAX in magnitude (10^12 credits); nothing in the ledger is ever
 * floating point.  JSON numbers reach us as int64 or as doubles (jansson);
 * a double is accepted only when it is exactly the nearest double of a
 * decimal with at most 3 fractional digits, which is decidable because every
 * such decimal below 10^12 is distinct as a double. */
#ifndef ENG_AMOUNT_H
#define ENG_AMOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

#define AMOUNT_MILLI_MAX ((int64_t)1000000000000000) /* 10^12 credits */

/* Parses a decimal string "12", "1.5", "-0.25" (at most 3 decimals).
 * Returns 0 or ENG_EINVAL. */
int amount_parse(const char *s, int64_t *out_milli, struct eng_error *err);

/* Converts a JSON number (integer or real) to milli, exactly.  Returns 0 or
 * ENG_EINVAL (not a number, NaN, more than 3 decimals, out of range). */
int amount_from_json(const json_t *v, int64_t *out_milli, struct eng_error *err);

/* Formats milli as the shortest decimal: 1500 -> "1.5", 2000 -> "2",
 * -250 -> "-0.25".  buf must hold at least 24 bytes. */
void amount_format(int64_t milli, char *buf, size_t buf_len);

/* A JSON number for milli: an integer when whole, else a real with at most
 * 3 decimals.  Dump with JSON_REAL_PRECISION(15): every amount up to 10^12
 * with 3 decimals has at most 15 significant digits, so it prints exactly. */
json_t *amount_to_json(int64_t milli);

/* a * b / c rounded down or up, for non-negative values, without overflow
 * for the ranges used here (128-bit intermediate). */
int64_t amount_muldiv_floor(int64_t a, int64_t b, int64_t c);
int64_t amount_muldiv_ceil(int64_t a, int64_t b, int64_t c);

#endif

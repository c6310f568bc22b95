/* amount.c - exact decimal <-> int64 thousandths. */
#include "amount.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* 128-bit intermediates keep a*b exact for amounts up to 10^15 milli. */
__extension__ typedef __int128 amount_wide;

int
amount_parse(const char *s, int64_t *out_milli, struct eng_error *err)
{
    const char *p = s;
    bool negative = false;
    if (*p == '-') {
        negative = true;
        p++;
    }
    if (*p < '0' || *p > '9') {
        return eng_error_set(err, ENG_EINVAL, "'%s' is not a decimal amount", s);
    }
    int64_t whole = 0;
    int whole_digits = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        /* 13 digits already exceed the 10^12 bound, so stop before overflow. */
        if (++whole_digits > 13) {
            return eng_error_set(err, ENG_EINVAL, "amount '%s' is too large", s);
        }
        whole = whole * 10 + (*p - '0');
    }
    int64_t frac = 0;
    int frac_digits = 0;
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (++frac_digits > 3) {
                return eng_error_set(err, ENG_EINVAL,
                                     "amount '%s' has more than 3 decimal places", s);
            }
            frac = frac * 10 + (*p - '0');
        }
        if (frac_digits == 0) {
            return eng_error_set(err, ENG_EINVAL, "'%s' is not a decimal amount", s);
        }
    }
    if (*p != '\0') {
        return eng_error_set(err, ENG_EINVAL, "'%s' is not a decimal amount", s);
    }
    for (int i = frac_digits; i < 3; i++) {
        frac *= 10;
    }
    int64_t milli = whole * 1000 + frac;
    if (milli > AMOUNT_MILLI_MAX) {
        return eng_error_set(err, ENG_EINVAL, "amount '%s' is above 10^12", s);
    }
    *out_milli = negative ? -milli : milli;
    return 0;
}

int
amount_from_json(const json_t *v, int64_t *out_milli, struct eng_error *err)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i > AMOUNT_MILLI_MAX / 1000 || i < -AMOUNT_MILLI_MAX / 1000) {
            return eng_error_set(err, ENG_EINVAL, "amount %lld is above 10^12", (long long)i);
        }
        *out_milli = (int64_t)i * 1000;
        return 0;
    }
    if (!json_is_real(v)) {
        return eng_error_set(err, ENG_EINVAL, "amount must be a number");
    }
    double d = json_real_value(v);
    if (!isfinite(d) || fabs(d) > 1e12) {
        return eng_error_set(err, ENG_EINVAL, "amount is out of range (at most 10^12)");
    }
    /* Round to thousandths, then require that the decimal we rounded to is
     * the very double we were given: true only for <= 3 decimals. */
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f", d);
    if (strtod(buf, NULL) != d) {
        return eng_error_set(err, ENG_EINVAL, "amount has more than 3 decimal places");
    }
    return amount_parse(buf, out_milli, err);
}

void
amount_format(int64_t milli, char *buf, size_t buf_len)
{
    uint64_t mag = milli < 0 ? (uint64_t)0 - (uint64_t)milli : (uint64_t)milli;
    uint64_t whole = mag / 1000, frac = mag % 1000;
    const char *sign = milli < 0 ? "-" : "";
    if (frac == 0) {
        snprintf(buf, buf_len, "%s%llu", sign, (unsigned long long)whole);
    } else if (frac % 100 == 0) {
        snprintf(buf, buf_len, "%s%llu.%llu", sign, (unsigned long long)whole,
                 (unsigned long long)(frac / 100));
    } else if (frac % 10 == 0) {
        snprintf(buf, buf_len, "%s%llu.%02llu", sign, (unsigned long long)whole,
                 (unsigned long long)(frac / 10));
    } else {
        snprintf(buf, buf_len, "%s%llu.%03llu", sign, (unsigned long long)whole,
                 (unsigned long long)frac);
    }
}

json_t *
amount_to_json(int64_t milli)
{
    if (milli % 1000 == 0) {
        return json_integer(milli / 1000);
    }
    /* The double nearest to the decimal; jansson prints it with 17
     * significant digits, which strtod reads back to the same double.
     * Below 2^53 milli is exact as a double, and the division is rounded
     * correctly as strtod is: the same double without the text. */
    if (milli > -(INT64_C(1) << 53) && milli < (INT64_C(1) << 53)) {
        return json_real((double)milli / 1000.0);
    }
    char buf[32];
    amount_format(milli, buf, sizeof buf);
    return json_real(strtod(buf, NULL));
}

int64_t
amount_muldiv_floor(int64_t a, int64_t b, int64_t c)
{
    amount_wide p = (amount_wide)a * b;
    return (int64_t)(p / c);
}

int64_t
amount_muldiv_ceil(int64_t a, int64_t b, int64_t c)
{
    amount_wide p = (amount_wide)a * b;
    return (int64_t)((p + c - 1) / c);
}

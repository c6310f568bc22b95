/* json_out.c - compact JSON rendering (see json_out.h). */
#include "json_out.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct out {
    char *buf;
    size_t size, len;
};

static void
put(struct out *o, const char *s, size_t n)
{
    if (o->len < o->size) {
        size_t room = o->size - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void
put_char(struct out *o, char c)
{
    if (o->len < o->size) {
        o->buf[o->len] = c;
    }
    o->len++;
}

/* A quoted string: '"', '\\' and the control characters escaped, the
 * common five by letter and the others as \u00XX (upper-case hex); every
 * other byte, '/' and non-ASCII included, as it is. */
static void
put_string(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    put_char(o, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        put(o, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        put(o, esc, len);
    }
    put(o, s + run, n - run);
    put_char(o, '"');
}

/* A real with 15 significant digits ("%.15g"), as JSON: the decimal point
 * is '.', a value printed without '.' or exponent gets ".0" (so that it
 * reads back as a real), and the exponent loses its '+' and leading
 * zeros ("1e+20" -> "1e20", "1e-05" -> "1e-5").  false for NaN and the
 * infinities, which JSON cannot hold. */
/* A signed integer in decimal, digit by digit (what "%lld" prints). */
static void
put_int(struct out *o, int64_t v)
{
    char text[24];
    size_t at = sizeof text;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        text[--at] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        text[--at] = '-';
    }
    put(o, text + at, sizeof text - at);
}

/* The real v when it is the double nearest to a decimal of three places
 * or fewer, m / 1000 with 0 < |m| < 10^15 (every amount of util/amount.h):
 * then "%.15g" prints that decimal exactly (its 15-digit rounding lands on
 * it, the double being far closer to it than half a digit), without an
 * exponent (|v| >= 0.001), trailing zeros dropped.  Written digit by digit
 * with the same bytes as put_real's general path; false for any other
 * value. */
static bool
put_real_milli(struct out *o, double v)
{
    if (!(v > -1e12 && v < 1e12)) {
        return false;
    }
    double scaled = v * 1000.0;
    int64_t m = (int64_t)(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
    if (m == 0 || (double)m / 1000.0 != v) {
        return false;
    }
    uint64_t u = m < 0 ? (uint64_t)(-m) : (uint64_t)m;
    if (m < 0) {
        put_char(o, '-');
    }
    put_int(o, (int64_t)(u / 1000));
    unsigned frac = (unsigned)(u % 1000);
    char digits[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                      (char)('0' + frac % 10)};
    size_t n = frac == 0 ? 2 : frac % 100 == 0 ? 2 : frac % 10 == 0 ? 3 : 4;
    put(o, digits, n); /* ".0" for a whole value: digits[1] is '0' */
    return true;
}

static bool
put_real(struct out *o, double v)
{
    if (isnan(v) || isinf(v)) {
        return false;
    }
    if (put_real_milli(o, v)) {
        return true;
    }
    char text[48];
    int n = snprintf(text, sizeof text - 3, "%.15g", v);
    if (n < 0 || (size_t)n >= sizeof text - 3) {
        return false;
    }
    const char *point = localeconv()->decimal_point;
    if (point != NULL && point[0] != '.' && point[0] != '\0') {
        char *p = strchr(text, point[0]);
        if (p != NULL) {
            *p = '.';
        }
    }
    char *e = strchr(text, 'e');
    if (strchr(text, '.') == NULL && e == NULL) {
        memcpy(text + n, ".0", 3);
        n += 2;
    }
    if (e != NULL) {
        char *sign = e + 1;
        char *first = *sign == '+' || *sign == '-' ? sign + 1 : sign;
        while (*first == '0' && first[1] != '\0') {
            first++;
        }
        char *to = *sign == '-' ? sign + 1 : sign; /* a '+' goes, a '-' stays */
        memmove(to, first, strlen(first) + 1);
        n = (int)strlen(text);
    }
    put(o, text, (size_t)n);
    return true;
}

static bool
render(struct out *o, const json_t *v, int depth)
{
    if (depth > JSON_OUT_DEPTH_MAX) {
        return false;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        put_char(o, '{');
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it != NULL;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first) {
                put_char(o, ',');
            }
            first = false;
            put_string(o, json_object_iter_key(it), json_object_iter_key_len(it));
            put_char(o, ':');
            if (!render(o, json_object_iter_value(it), depth + 1)) {
                return false;
            }
        }
        put_char(o, '}');
        return true;
    }
    case JSON_ARRAY: {
        put_char(o, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i > 0) {
                put_char(o, ',');
            }
            if (!render(o, json_array_get(v, i), depth + 1)) {
                return false;
            }
        }
        put_char(o, ']');
        return true;
    }
    case JSON_STRING:
        put_string(o, json_string_value(v), json_string_length(v));
        return true;
    case JSON_INTEGER:
        put_int(o, (int64_t)json_integer_value(v));
        return true;
    case JSON_REAL:
        return put_real(o, json_real_value(v));
    case JSON_TRUE:
        put(o, "true", 4);
        return true;
    case JSON_FALSE:
        put(o, "false", 5);
        return true;
    case JSON_NULL:
        put(o, "null", 4);
        return true;
    }
    return false;
}

size_t
json_out(const json_t *v, char *buf, size_t size)
{
    struct out o = {buf, size, 0};
    if (v == NULL || !render(&o, v, 0)) {
        return 0;
    }
    return o.len;
}

/* json_out.c - compact JSON rendering (see json_out.h). */
#include "json_out.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amount.h"
#include "timeutil.h"
#include "values.h"

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
    if (!(v > -JSON_OUT_MILLI_EXACT && v < JSON_OUT_MILLI_EXACT)) {
        return false;
    }
    double scaled = v * 1000.0;
    int64_t m = (int64_t)(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
    /* Past ~4.5 * 10^12 the product may be a unit off the thousandths v
     * was made from: the neighbours are tried too. */
    if ((double)m / 1000.0 != v) {
        m = (double)(m - 1) / 1000.0 == v ? m - 1 : (double)(m + 1) / 1000.0 == v ? m + 1 : 0;
    }
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

/* ---- json_buf ---- */

void
json_buf_init(struct json_buf *b, char *stack, size_t cap)
{
    b->data = stack;
    b->len = 0;
    b->cap = stack != NULL ? cap : 0;
    b->heap = NULL;
    b->failed = false;
}

void
json_buf_free(struct json_buf *b)
{
    free(b->heap);
    b->heap = NULL;
    b->data = NULL;
    b->len = b->cap = 0;
}

void
json_buf_reset(struct json_buf *b)
{
    b->len = 0;
    b->failed = false;
}

/* Room for n more bytes (and a NUL after them); false, with the buffer
 * failed, when there is no memory. */
static bool
json_buf_room(struct json_buf *b, size_t n)
{
    if (b->failed) {
        return false;
    }
    if (n < b->cap - b->len) {
        return true;
    }
    size_t want = b->cap * 2 > 256 ? b->cap * 2 : 256;
    if (want <= b->len + n) {
        want = b->len + n + 1;
    }
    char *grown = realloc(b->heap, want);
    if (grown == NULL) {
        b->failed = true;
        return false;
    }
    if (b->heap == NULL && b->len > 0) {
        memcpy(grown, b->data, b->len); /* out of the caller's stack array */
    }
    b->heap = b->data = grown;
    b->cap = want;
    return true;
}

void
json_buf_put_grow(struct json_buf *b, const char *s, size_t n)
{
    if (json_buf_room(b, n)) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    }
}

void
json_buf_string(struct json_buf *b, const char *s)
{
    /* One pass: the length, and whether every byte is printable ASCII
     * other than '"' and '\\' (copied as is), or any is not ASCII. */
    size_t n = 0;
    bool plain = true, ascii = true;
    for (unsigned char c; (c = (unsigned char)s[n]) != '\0'; n++) {
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            plain = false;
            ascii = ascii && c < 0x80;
        }
    }
    if (!ascii && !utf8_valid(s, n)) {
        b->failed = true; /* json_string() refuses it: the tree path fails too */
        return;
    }
    if (plain) {
        if (json_buf_room(b, n + 2)) {
            b->data[b->len] = '"';
            memcpy(b->data + b->len + 1, s, n);
            b->data[b->len + 1 + n] = '"';
            b->len += n + 2;
        }
        return;
    }
    /* Escapes: at most 6 bytes a byte, plus the quotes. */
    if (n > (SIZE_MAX - 2) / 6 || !json_buf_room(b, n * 6 + 2)) {
        b->failed = true;
        return;
    }
    struct out o = {b->data + b->len, b->cap - b->len, 0};
    put_string(&o, s, n);
    b->len += o.len;
}

void
json_buf_int(struct json_buf *b, int64_t v)
{
    if (json_buf_room(b, 24)) {
        struct out o = {b->data + b->len, b->cap - b->len, 0};
        put_int(&o, v);
        b->len += o.len;
    }
}

void
json_buf_amount(struct json_buf *b, int64_t milli)
{
    if (milli % 1000 == 0) {
        json_buf_int(b, milli / 1000);
        return;
    }
    /* Below 2^43 * 1000 thousandths, amount_to_json's real is the double
     * nearest to the decimal, which json_out writes as that decimal,
     * trailing zeros dropped (put_real_milli): written here from the
     * integer. */
    if (milli > -(int64_t)(JSON_OUT_MILLI_EXACT * 1000) &&
        milli < (int64_t)(JSON_OUT_MILLI_EXACT * 1000)) {
        if (json_buf_room(b, 28)) {
            struct out o = {b->data + b->len, b->cap - b->len, 0};
            uint64_t u = milli < 0 ? (uint64_t)(-milli) : (uint64_t)milli;
            if (milli < 0) {
                put_char(&o, '-');
            }
            put_int(&o, (int64_t)(u / 1000));
            unsigned frac = (unsigned)(u % 1000);
            char digits[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                              (char)('0' + frac % 10)};
            put(&o, digits, frac % 100 == 0 ? 2 : frac % 10 == 0 ? 3 : 4);
            b->len += o.len;
        }
        return;
    }
    json_t *v = amount_to_json(milli); /* beyond every real amount: as the tree does */
    json_buf_value(b, v);
    json_decref(v);
}

/* Appends `text` in quotes: ASCII that needs no escape (instants, ids). */
static void
buf_quoted_ascii(struct json_buf *b, const char *text)
{
    size_t n = strlen(text);
    if (json_buf_room(b, n + 2)) {
        b->data[b->len] = '"';
        memcpy(b->data + b->len + 1, text, n);
        b->data[b->len + 1 + n] = '"';
        b->len += n + 2;
    }
}

void
json_buf_time(struct json_buf *b, int64_t t)
{
    if (t == TIME_NEVER) {
        JSON_BUF_LIT(b, "null");
        return;
    }
    char text[32];
    time_format_rfc3339(t, text, sizeof text);
    buf_quoted_ascii(b, text);
}

void
json_buf_id(struct json_buf *b, const char *prefix, int64_t id)
{
    char text[48];
    id_format(prefix, id, text, sizeof text);
    buf_quoted_ascii(b, text);
}

void
json_buf_value(struct json_buf *b, const json_t *v)
{
    if (b->failed) {
        return;
    }
    size_t room = b->cap - b->len;
    size_t need = json_out(v, b->data + b->len, room);
    if (need == 0) {
        b->failed = true; /* NULL, or a value json_out refuses */
        return;
    }
    if (need > room) {
        /* Rendered again into room enough for all of it. */
        if (!json_buf_room(b, need) || json_out(v, b->data + b->len, need) != need) {
            b->failed = true;
            return;
        }
    }
    b->len += need;
}

const char *
json_buf_cstr(struct json_buf *b)
{
    if (!json_buf_room(b, 0)) {
        return NULL;
    }
    b->data[b->len] = '\0'; /* json_buf_room leaves room for it */
    return b->data;
}

char *
json_out_text(const json_t *v)
{
    char small[512];
    size_t need = json_out(v, small, sizeof small);
    if (need == 0) {
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    }
    char *text = malloc(need + 1);
    if (text == NULL) {
        return NULL;
    }
    if (need <= sizeof small) {
        memcpy(text, small, need);
    } else if (json_out(v, text, need) != need) {
        free(text);
        return NULL;
    }
    text[need] = '\0';
    return text;
}

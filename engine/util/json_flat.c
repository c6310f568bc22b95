/* json_flat.c - flat JSON objects parsed without jansson's parser.
 *
 * Most request bodies are one object of plain members: quotes and
 * bookings send four to six strings, numbers and booleans.  jansson's
 * parser reads them a character at a time through a stream with UTF-8
 * decoding (~18,000 instructions for a quote's 120 bytes); json_flat_parse
 * builds the same object directly.  It accepts only the plainest text --
 * keys and strings of printable ASCII without escapes, integers of at
 * most 18 digits, true, false and null, no nesting, no repeated key --
 * and returns NULL for anything else, valid or not, which jansson then
 * parses and judges as before: same values, same errors. */
#include "json_flat.h"

#include <stdbool.h>
#include <string.h>

static const char *
flat_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* A plain string at p ('"' ... '"'): its text [*s, *s + *n); the position
 * after it, or NULL. */
static const char *
flat_string(const char *p, const char *end, const char **s, size_t *n)
{
    if (p >= end || *p != '"') {
        return NULL;
    }
    const char *q = ++p;
    while (q < end && *q != '"') {
        if (*q < 0x20 || *q > 0x7e || *q == '\\') {
            return NULL;
        }
        q++;
    }
    if (q >= end) {
        return NULL;
    }
    *s = p;
    *n = (size_t)(q - p);
    return q + 1;
}

static const char *
flat_value(const char *p, const char *end, json_t **v)
{
    const char *s;
    size_t n;
    *v = NULL;
    if (p < end && *p == '"') {
        const char *after = flat_string(p, end, &s, &n);
        *v = after != NULL ? json_stringn_nocheck(s, n) : NULL;
        return *v != NULL ? after : NULL;
    }
    if (p < end && (*p == '-' || (*p >= '0' && *p <= '9'))) {
        const char *q = p + (*p == '-');
        json_int_t x = 0;
        int digits = 0;
        while (q < end && *q >= '0' && *q <= '9') {
            if (++digits > 18) {
                return NULL;
            }
            x = x * 10 + (*q - '0');
            q++;
        }
        bool leading_zero = digits > 1 && q[-digits] == '0';
        if (digits == 0 || leading_zero || (q < end && (*q == '.' || *q == 'e' || *q == 'E'))) {
            return NULL; /* a real, a long or malformed number: jansson's */
        }
        *v = json_integer(*p == '-' ? -x : x);
        return *v != NULL ? q : NULL;
    }
    static const struct {
        const char *word;
        size_t len;
    } words[] = {{"true", 4}, {"false", 5}, {"null", 4}};
    for (int i = 0; i < 3; i++) {
        if ((size_t)(end - p) >= words[i].len && memcmp(p, words[i].word, words[i].len) == 0) {
            *v = i == 0 ? json_true() : i == 1 ? json_false() : json_null();
            return p + words[i].len;
        }
    }
    return NULL;
}

json_t *
json_flat_parse(const char *text, size_t len)
{
    const char *end = text + len;
    const char *p = flat_ws(text, end);
    if (p >= end || *p != '{') {
        return NULL;
    }
    json_t *obj = json_object();
    p = flat_ws(p + 1, end);
    bool first = true;
    while (obj != NULL && p < end && *p != '}') {
        const char *k;
        size_t kn;
        char key[64];
        json_t *v = NULL;
        if (!first) {
            p = *p == ',' ? flat_ws(p + 1, end) : NULL;
        }
        first = false;
        p = p != NULL ? flat_string(p, end, &k, &kn) : NULL;
        if (p != NULL && kn < sizeof key) {
            memcpy(key, k, kn);
            key[kn] = '\0';
            p = flat_ws(p, end);
            p = p < end && *p == ':' ? flat_value(flat_ws(p + 1, end), end, &v) : NULL;
        } else {
            p = NULL;
        }
        if (p == NULL || json_object_get(obj, key) != NULL) {
            json_decref(v);
            json_decref(obj);
            return NULL;
        }
        if (json_object_set_new_nocheck(obj, key, v) != 0) { /* v is taken */
            json_decref(obj);
            return NULL;
        }
        p = flat_ws(p, end);
    }
    if (obj == NULL || p >= end || flat_ws(p + 1, end) != end) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}


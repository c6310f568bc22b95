/* json_out.h - compact JSON text of a jansson value, fast.
 *
 * The same bytes as json_dumpb(v, buf, size, JSON_COMPACT | JSON_ENCODE_ANY
 * | JSON_REAL_PRECISION(15)) (what every HTTP answer is rendered with),
 * at a fraction of the cost: jansson decodes and re-checks each character
 * of every string through a callback (~110 instructions a character, most
 * of a booking answer's rendering), where this copies runs of plain bytes
 * at once.  Strings held by jansson are valid UTF-8 already.
 * tests/c/test_json_out.c compares the two on many values.
 *
 * One difference, on purpose: a real that is the double nearest to a
 * decimal of at most 3 fractional digits (an amount, amount_to_json) below
 * JSON_OUT_MILLI_EXACT is written as that decimal, where 15 significant
 * digits would round a total past 10^12 (1999999999999.999 would read
 * 2000000000000.0). */
#ifndef ENG_JSON_OUT_H
#define ENG_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

/* Amounts below this (2^43, ~8.8 * 10^12: where doubles are still less
 * than a thousandth apart, so each decimal has a double of its own) are
 * written exactly. */
#define JSON_OUT_MILLI_EXACT 8796093022208.0

/* Nesting deeper than this is not rendered (returns 0). */
#define JSON_OUT_DEPTH_MAX 2048

/* Renders v into buf[0..size): returns the length of the whole text, which
 * may exceed size (then buf holds only its beginning: render again into a
 * buffer that large), or 0 when v cannot be rendered (a NaN or infinite
 * real, too deep a nesting).  No NUL is written.  Thread-safe (v is only
 * read). */
size_t json_out(const json_t *v, char *buf, size_t size);

/* json_out's text of v as a NUL-terminated string from malloc (jansson's,
 * with 15 digits, for a value json_out refuses); NULL when out of memory. */
char *json_out_text(const json_t *v);

/* ---- answers written straight as text ----
 *
 * A growing buffer of compact JSON text, for answers written member by
 * member without a jansson tree (ops/ops_booking.c: quotes and bookings).
 * Each writer appends exactly the bytes json_out renders for the value the
 * tree path would have built (json_buf_amount for amount_to_json,
 * json_buf_time for json_time, ...), so a text answer and the rendered tree
 * are the same text.  The buffer starts in the caller's memory (a stack
 * array) and moves to the heap when that is too small.  A failure (no
 * memory, a string that is not UTF-8, a value json_out refuses) is sticky:
 * `failed` is set, and later writes do nothing.  Not thread-safe (one
 * writer at a time; it may be handed from thread to thread). */
struct json_buf {
    char *data;   /* the text so far (not NUL-terminated; see json_buf_cstr) */
    size_t len, cap;
    char *heap;   /* data when it moved to the heap (freed by json_buf_free) */
    bool failed;
};

/* Starts an empty buffer in `stack` (cap bytes, may be 0 and NULL). */
void json_buf_init(struct json_buf *b, char *stack, size_t cap);
/* Frees the heap part; the buffer must be initialised again to be used. */
void json_buf_free(struct json_buf *b);
/* Empties the buffer (keeping its memory) and clears `failed`. */
void json_buf_reset(struct json_buf *b);
/* Appends n raw bytes (punctuation, keys written as literal text).  Inline:
 * an answer is mostly such pieces, a few bytes each. */
void json_buf_put_grow(struct json_buf *b, const char *s, size_t n);
static inline void
json_buf_put(struct json_buf *b, const char *s, size_t n)
{
    if (n < b->cap - b->len && !b->failed) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    } else {
        json_buf_put_grow(b, s, n);
    }
}
/* Appends a string literal's bytes ("" lit: anything but a literal, whose
 * sizeof would not be its length, does not compile). */
#define JSON_BUF_LIT(b, lit) json_buf_put((b), "" lit, sizeof(lit) - 1)
/* A quoted string, escaped as json_out escapes; fails when s is not valid
 * UTF-8 (as json_string() would refuse it). */
void json_buf_string(struct json_buf *b, const char *s);
/* An integer, as a JSON integer. */
void json_buf_int(struct json_buf *b, int64_t v);
/* An amount in thousandths, as json_out renders amount_to_json(milli): a
 * whole amount as an integer, any other as a real (1.5, 0.25, -2.125). */
void json_buf_amount(struct json_buf *b, int64_t milli);
/* An instant as json_time(t) renders: RFC 3339 text, or null for
 * TIME_NEVER. */
void json_buf_time(struct json_buf *b, int64_t t);
/* An id as id_json(prefix, id) renders ("bkg_12"). */
void json_buf_id(struct json_buf *b, const char *prefix, int64_t id);
/* A jansson value as json_out renders it (the parts of an answer still
 * built as trees); v NULL fails. */
void json_buf_value(struct json_buf *b, const json_t *v);
/* The text NUL-terminated (the NUL is not counted in len); NULL when the
 * buffer failed or there is no memory for the NUL. */
const char *json_buf_cstr(struct json_buf *b);

#endif

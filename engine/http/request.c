/* request.c - reading what the client sent, within limits.
 *
 * Every read is bounded before it happens: the announced Content-Length is
 * checked against the body limit before a single body byte is read, and a
 * chunked body is read at most one byte past the limit.  jansson never sees
 * more than the limit, and parses with duplicate keys refused, because a
 * proxy or a log may see the first of two equal keys while we would see the
 * last. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"
#include "json_flat.h"

#define QUERY_PARAMS_MAX 32
#define QUERY_NAME_BYTES_MAX 64
#define QUERY_VALUE_BYTES_MAX 512
#define LIMIT_DIGITS_MAX 15 /* an integer jansson and the engine hold exactly */
#define JSON_DEPTH_MAX 32    /* API bodies nest 6 deep at most (a resource's pricing) */
#define HTTP_BODY_STACK_BYTES 4096 /* bodies up to this size are read onto the stack */

const char *
http_header(const struct http_req *rq, const char *name)
{
    return mg_get_header(rq->conn, name);
}

int
http_header_count(const struct http_req *rq, const char *name)
{
    int n = 0;
    for (int i = 0; i < rq->ri->num_headers; i++) {
        n += strcasecmp(rq->ri->http_headers[i].name, name) == 0;
    }
    return n;
}

bool
http_has_body(const struct http_req *rq)
{
    return rq->ri->content_length > 0 || http_header(rq, "Transfer-Encoding") != NULL;
}

bool
http_content_type_is(const struct http_req *rq, const char *mime)
{
    const char *ct = http_header(rq, "Content-Type");
    if (ct == NULL) {
        return false;
    }
    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    size_t n = strlen(mime);
    if (strncasecmp(ct, mime, n) != 0) {
        return false;
    }
    /* Only parameters (";charset=utf-8") or blanks may follow the type. */
    const char *rest = ct + n;
    while (*rest == ' ' || *rest == '\t') {
        rest++;
    }
    return *rest == '\0' || *rest == ';';
}

/* The request will not be read to its end: the connection cannot carry
 * another request, and civetweb must not drain a huge body to keep it. */
void
http_abandon_body(struct http_req *rq)
{
    rq->must_close = true;
    mg_disable_connection_keep_alive(rq->conn);
}

void
http_skip_body(struct http_req *rq)
{
    /* civetweb drains an unread body to keep the connection; that is cheap
     * up to the body limit, and past it (or of unknown length) we close. */
    if (rq->ri->content_length < 0 ||
        rq->ri->content_length > (long long)rq->srv->cfg.body_bytes_max) {
        http_abandon_body(rq);
    }
}

/* Reads the body into data (cap + 2 bytes), at most cap bytes plus one to
 * detect a chunked body over the limit; NUL-terminates it.  On failure
 * the connection is abandoned. */
static int
read_body_into(struct http_req *rq, char *data, size_t cap, size_t *len, struct eng_error *err)
{
    size_t max = rq->srv->cfg.body_bytes_max;
    size_t n = 0;
    int got = 0;
    /* Ask for one byte more than allowed, so an over-long chunked body is
     * detected without reading the rest of it. */
    while (n <= cap && (got = mg_read(rq->conn, data + n, cap + 1 - n)) > 0) {
        n += (size_t)got;
    }
    if (n > max) {
        http_abandon_body(rq);
        return eng_error_code(err, ENG_ELIMIT, "payload_too_large",
                              "the request body is larger than %zu bytes", max);
    }
    if (got < 0 || (rq->ri->content_length >= 0 && n != (size_t)rq->ri->content_length)) {
        http_abandon_body(rq);
        return eng_error_code(err, ENG_EINVAL, "invalid_request",
                              "the request body ended before its announced length");
    }
    data[n] = '\0';
    *len = n;
    return 0;
}

/* How many bytes a body may need: its announced length, or the limit for
 * a chunked one.  Refuses an announced length over the limit unread. */
static int
body_cap(struct http_req *rq, size_t *cap, struct eng_error *err)
{
    size_t max = rq->srv->cfg.body_bytes_max;
    rq->body_read = true;
    if (rq->ri->content_length > (long long)max) {
        http_abandon_body(rq);
        return eng_error_code(err, ENG_ELIMIT, "payload_too_large",
                              "the request body is larger than %zu bytes", max);
    }
    *cap = rq->ri->content_length >= 0 ? (size_t)rq->ri->content_length : max;
    return 0;
}

int
http_read_body(struct http_req *rq, char **buf, size_t *len, struct eng_error *err)
{
    *buf = NULL;
    *len = 0;
    size_t cap = 0;
    if (body_cap(rq, &cap, err) != 0) {
        return err->status;
    }
    /* Sized to the announced length: a 200-byte body costs 202 bytes, not
     * the 64 KiB limit. */
    char *data = malloc(cap + 2);
    if (data == NULL) {
        http_abandon_body(rq);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    if (read_body_into(rq, data, cap, len, err) != 0) {
        free(data);
        return err->status;
    }
    *buf = data;
    return 0;
}

/* True when no array or object in the text nests deeper than max.  jansson
 * stops only at 2048 levels, by recursion, and everything after it
 * (hashing for idempotency, the engine's checks) recurses again: a cheap
 * scan first keeps every later step shallow. */
static bool
json_depth_ok(const char *text, size_t len, int max)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') {
                i++; /* the escaped character cannot end the string */
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                return false;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}

int
http_read_json(struct http_req *rq, json_t **out, struct eng_error *err)
{
    *out = NULL;
    if (http_has_body(rq) && !http_content_type_is(rq, "application/json")) {
        /* Not read: nothing but JSON is ever parsed. */
        http_skip_body(rq);
        return eng_error_code(err, ENG_EINVAL, "unsupported_media_type",
                              "the request body must be Content-Type: application/json");
    }
    /* A body of announced length that fits is read onto the stack (the
     * handler runs on a stack of its own, 8 MiB): no allocation at all. */
    char small[HTTP_BODY_STACK_BYTES + 2];
    char *heap = NULL, *buf = small;
    size_t len = 0, cap = 0;
    if (body_cap(rq, &cap, err) != 0) {
        return err->status;
    }
    if (rq->ri->content_length < 0 || cap > HTTP_BODY_STACK_BYTES) {
        if ((heap = malloc(cap + 2)) == NULL) {
            http_abandon_body(rq);
            return eng_error_set(err, ENG_ENOMEM, "out of memory");
        }
        buf = heap;
    }
    if (read_body_into(rq, buf, cap, &len, err) != 0) {
        free(heap);
        return err->status;
    }
    if (len == 0) {
        free(heap);
        *out = json_object();
        return 0;
    }
    json_t *flat = json_flat_parse(buf, len); /* util/json_flat.h */
    if (flat != NULL) {
        free(heap);
        *out = flat;
        return 0;
    }
    if (!json_depth_ok(buf, len, JSON_DEPTH_MAX)) {
        free(heap);
        return eng_error_code(err, ENG_EINVAL, "invalid_request",
                              "the request body nests deeper than %d levels", JSON_DEPTH_MAX);
    }
    json_error_t jerr;
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(heap);
    if (v == NULL) {
        /* jansson's text names the problem and its place, nothing more. */
        eng_error_code(err, ENG_EINVAL, "invalid_request",
                       "the request body is not valid JSON: %.200s (line %d, column %d)",
                       jerr.text, jerr.line, jerr.column);
        return ENG_EINVAL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        return eng_error_code(err, ENG_EINVAL, "invalid_request",
                              "the request body must be a JSON object");
    }
    *out = v;
    return 0;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* True when the segment that ends at out[n] (exclusive) is "." or "..". */
static bool
dot_segment(const char *out, size_t n)
{
    size_t start = n;
    while (start > 0 && out[start - 1] != '/') {
        start--;
    }
    size_t len = n - start;
    return (len == 1 && out[start] == '.') ||
           (len == 2 && out[start] == '.' && out[start + 1] == '.');
}

int
http_path_decode(const char *raw, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = raw; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            int hi = hex_value(p[1]);
            int lo = hi >= 0 ? hex_value(p[2]) : -1;
            if (lo < 0) {
                return -1;
            }
            c = (unsigned char)(hi * 16 + lo);
            p += 2;
        }
        if (c < 0x20 || c == 0x7f) {
            return -1;
        }
        if (c == '/' && dot_segment(out, n)) {
            return -1;
        }
        if (n + 1 >= cap) {
            return -1;
        }
        out[n++] = (char)c;
    }
    if (dot_segment(out, n)) {
        return -1;
    }
    out[n] = '\0';
    return (int)n;
}

/* Decodes one %-encoded query component into dst (cap bytes); refuses
 * over-long text and embedded NULs. */
static int
query_decode(const char *src, size_t len, char *dst, size_t cap)
{
    if (len >= cap) {
        return -1;
    }
    int n = mg_url_decode(src, (int)len, dst, (int)cap, 1);
    if (n < 0 || strlen(dst) != (size_t)n) {
        return -1;
    }
    return n;
}

static json_t *
query_value(const char *name, const char *value, size_t len)
{
    if (strcmp(name, "limit") == 0 && len > 0 && len <= LIMIT_DIGITS_MAX) {
        bool digits = true;
        for (size_t i = 0; i < len; i++) {
            digits = digits && isdigit((unsigned char)value[i]);
        }
        if (digits) {
            return json_integer(strtoll(value, NULL, 10));
        }
    }
    return json_stringn(value, len); /* NULL for invalid UTF-8 */
}

static int
query_param(json_t *args, const char *pair, size_t len, struct eng_error *err)
{
    char name[QUERY_NAME_BYTES_MAX + 1], value[QUERY_VALUE_BYTES_MAX + 1];
    const char *eq = memchr(pair, '=', len);
    size_t nlen = eq != NULL ? (size_t)(eq - pair) : len;
    size_t vlen = eq != NULL ? len - nlen - 1 : 0;
    if (query_decode(pair, nlen, name, sizeof name) <= 0) {
        return eng_error_code(err, ENG_EINVAL, "invalid_request",
                              "a query parameter name is empty, too long or malformed");
    }
    int n = query_decode(eq != NULL ? eq + 1 : "", vlen, value, sizeof value);
    if (n < 0) {
        eng_error_code(err, ENG_EINVAL, "invalid_request",
                       "query parameter '%.64s' is too long or malformed", name);
        eng_error_field(err, name);
        return ENG_EINVAL;
    }
    if (n == 0) {
        return 0; /* "?tenant_id=" means no filter */
    }
    if (json_object_get(args, name) != NULL) {
        eng_error_code(err, ENG_EINVAL, "invalid_request",
                       "query parameter '%.64s' is given twice", name);
        eng_error_field(err, name);
        return ENG_EINVAL;
    }
    json_t *v = query_value(name, value, (size_t)n);
    if (v == NULL || json_object_set_new(args, name, v) != 0) {
        eng_error_code(err, ENG_EINVAL, "invalid_request",
                       "a query parameter is not valid UTF-8");
        return ENG_EINVAL; /* the name or the value is not UTF-8 */
    }
    return 0;
}

int
http_query_to_args(const struct http_req *rq, json_t *args, struct eng_error *err)
{
    return http_query_parse(rq->ri->query_string, args, err);
}

int
http_query_parse(const char *query, json_t *args, struct eng_error *err)
{
    const char *q = query;
    int count = 0;
    while (q != NULL && *q != '\0') {
        const char *amp = strchr(q, '&');
        size_t len = amp != NULL ? (size_t)(amp - q) : strlen(q);
        if (len > 0) {
            if (++count > QUERY_PARAMS_MAX) {
                return eng_error_code(err, ENG_EINVAL, "invalid_request",
                                      "at most %d query parameters are accepted",
                                      QUERY_PARAMS_MAX);
            }
            if (query_param(args, q, len, err) != 0) {
                return err->status;
            }
        }
        q = amp != NULL ? amp + 1 : NULL;
    }
    return 0;
}

/* response.c - every response leaves in a single write.
 *
 * Status line, headers and body are assembled in one buffer and handed to
 * mg_write once: a response split over several small writes meets Nagle's
 * algorithm and the peer's delayed ACK, which measured 364 requests/s
 * instead of ~40,000 (reference/performance.md).  tcp_nodelay is set as
 * well, but one write is what makes it irrelevant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "json_out.h"

#define HEAD_BYTES_MAX 1024
/* Answers up to these sizes are rendered and assembled on the stack (the
 * handler runs on its own 8 MiB stack; 17 KiB is safe even on civetweb's). */
#define HTTP_JSON_STACK_BYTES 8192
#define HTTP_SEND_STACK_BYTES (HEAD_BYTES_MAX + HTTP_JSON_STACK_BYTES)

/* Codes only the HTTP layer produces; the engine's own statuses come from
 * error.c's table. */
static const struct {
    const char *code;
    int status;
} http_codes[] = {
    {"unsupported_media_type", 415},
    {"method_not_allowed", 405},
};

static int
status_of(const struct eng_error *err)
{
    for (size_t i = 0; i < sizeof http_codes / sizeof http_codes[0]; i++) {
        if (strcmp(err->code, http_codes[i].code) == 0) {
            return http_codes[i].status;
        }
    }
    return eng_error_http_status(err);
}

static const char *
reason(const struct http_req *rq, int status)
{
    const char *text = mg_get_response_code_text(rq->conn, status);
    return text != NULL ? text : "Unknown";
}

/* Appends text to head (n bytes used of cap); false when it does not fit. */
static bool
head_put(char *head, size_t cap, size_t *n, const char *text)
{
    size_t len = strlen(text);
    if (len >= cap - *n) {
        return false;
    }
    memcpy(head + *n, text, len);
    *n += len;
    return true;
}

/* The status line and headers: what snprintf("HTTP/1.1 %d %s\r\n"
 * "Content-Type: %s\r\n" "Content-Length: %zu\r\n" ... "%s%s\r\n") writes,
 * copied piece by piece (~3,000 instructions less per response).  The
 * length, or -1 when it does not fit (as snprintf's would not). */
static int
head_format(char *head, size_t cap, int status, const char *reason_text,
            const char *content_type, size_t len, const char *extra, const char *closing)
{
    char status_text[16], len_text[24];
    size_t at = sizeof len_text;
    len_text[--at] = '\0';
    do {
        len_text[--at] = (char)('0' + len % 10);
        len /= 10;
    } while (len != 0);
    /* Statuses are 100 to 599 (civetweb's and ours). */
    if (status < 100 || status > 999) {
        return -1;
    }
    status_text[0] = (char)('0' + status / 100);
    status_text[1] = (char)('0' + status / 10 % 10);
    status_text[2] = (char)('0' + status % 10);
    status_text[3] = '\0';
    size_t n = 0;
    bool ok = head_put(head, cap, &n, "HTTP/1.1 ") && head_put(head, cap, &n, status_text) &&
              head_put(head, cap, &n, " ") && head_put(head, cap, &n, reason_text) &&
              head_put(head, cap, &n, "\r\nContent-Type: ") &&
              head_put(head, cap, &n, content_type) &&
              head_put(head, cap, &n, "\r\nContent-Length: ") &&
              head_put(head, cap, &n, len_text + at) &&
              head_put(head, cap, &n,
                       "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n") &&
              head_put(head, cap, &n, extra) && head_put(head, cap, &n, closing) &&
              head_put(head, cap, &n, "\r\n");
    if (!ok) {
        return -1;
    }
    head[n] = '\0';
    return (int)n;
}

int
http_send(struct http_req *rq, int status, const char *content_type, const char *body,
          size_t len, const char *extra_headers)
{
    char head[HEAD_BYTES_MAX];
    if (!rq->body_read && http_has_body(rq)) {
        http_skip_body(rq); /* answered early: a 401 or 404 to a huge upload */
    }
    /* civetweb closes after a 401 on its own; say so, as for every other
     * response after which the connection cannot be reused. */
    bool closing = rq->must_close || status == 401;
    int n = head_format(head, sizeof head, status, reason(rq, status), content_type, len,
                        extra_headers != NULL ? extra_headers : "",
                        closing ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head) {
        /* Only a programmer's over-long extra header can get here. */
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
        rq->must_close = true;
        mg_disable_connection_keep_alive(rq->conn);
        mg_write(rq->conn, head, (size_t)n);
        return 500;
    }
    size_t body_len = rq->head_only ? 0 : len;
    /* One write per response (no Nagle stall between head and body); a
     * small response is assembled on the stack, without an allocation. */
    char small[HTTP_SEND_STACK_BYTES];
    char *out = (size_t)n + body_len <= sizeof small ? small : malloc((size_t)n + body_len);
    if (out == NULL) {
        mg_disable_connection_keep_alive(rq->conn);
        return 503;
    }
    memcpy(out, head, (size_t)n);
    if (body_len > 0) {
        memcpy(out + n, body, body_len);
    }
    mg_write(rq->conn, out, (size_t)n + body_len);
    if (out != small) {
        free(out);
    }
    return status;
}

int
http_send_json(struct http_req *rq, int status, const json_t *value, const char *extra_headers)
{
    /* 15 significant digits print every amount (<= 10^12, 3 decimals)
     * exactly: 1.5 stays 1.5, never 1.5000000000000000.  json_out renders
     * what jansson's dump does with these flags, at a fraction of its cost
     * (util/json_out.h); jansson is left the values json_out refuses. */
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15);
    /* Rendered straight into a stack buffer when it fits; json_out says
     * how much it needed, and a larger answer is rendered again into a
     * heap buffer of that size. */
    char small[HTTP_JSON_STACK_BYTES];
    size_t need = json_out(value, small, sizeof small);
    if (need > 0 && need <= sizeof small) {
        return http_send(rq, status, "application/json", small, need, extra_headers);
    }
    char *text = need > 0 ? malloc(need) : NULL;
    if (text != NULL && json_out(value, text, need) == need) {
        int rc = http_send(rq, status, "application/json", text, need, extra_headers);
        free(text);
        return rc;
    }
    free(text);
    text = json_dumps(value, flags);
    if (text == NULL) {
        return http_send_error(rq, 503, "overloaded", NULL, "out of memory");
    }
    int rc = http_send(rq, status, "application/json", text, strlen(text), extra_headers);
    free(text);
    return rc;
}

int
http_send_error(struct http_req *rq, int status, const char *code, const char *field,
                const char *message)
{
    return http_send_error_with(rq, status, code, field, message, NULL);
}

int
http_send_error_with(struct http_req *rq, int status, const char *code, const char *field,
                     const char *message, const char *extra_headers)
{
    return http_send_error_details(rq, status, code, field, message, NULL, extra_headers);
}

int
http_send_error_details(struct http_req *rq, int status, const char *code, const char *field,
                        const char *message, const char *more, const char *extra_headers)
{
    json_t *details = NULL;
    if (more != NULL && more[0] != '\0') {
        char text[sizeof ((struct eng_error *)0)->details + 2];
        snprintf(text, sizeof text, "{%s}", more);
        details = json_loads(text, 0, NULL);
    }
    if (details == NULL) {
        details = json_object();
    }
    if (field != NULL && field[0] != '\0') {
        /* A limit's name is its field: API.md calls it details.limit. */
        json_object_set_new(details, strcmp(code, "limit_exceeded") == 0 ? "limit" : "field",
                            json_string(field));
    }
    json_t *body = json_pack("{s:{s:s, s:s, s:o}}", "error", "code", code, "message",
                             message != NULL ? message : "", "details", details);
    const char *extra = extra_headers;
    if (status == 401) {
        extra = "WWW-Authenticate: Bearer\r\n";
    }
    if (status >= 500) {
        fprintf(stderr, "allotd: %s %s -> %d %s: %s\n", rq->ri->request_method,
                rq->path != NULL ? rq->path : "?", status, code, message ? message : "");
    }
    int rc;
    if (body == NULL) {
        /* A message that is not valid UTF-8 cannot be JSON; say less. */
        body = json_pack("{s:{s:s, s:s, s:{}}}", "error", "code", code, "message",
                         "the request could not be processed", "details");
    }
    rc = http_send_json(rq, status, body, extra);
    json_decref(body);
    return rc;
}

int
http_send_eng_error(struct http_req *rq, const struct eng_error *err)
{
    return http_send_error_details(rq, status_of(err), eng_error_code_of(err), err->field, err->msg,
                              err->details, NULL);
}

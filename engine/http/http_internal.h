/* http_internal.h - what the files of the HTTP layer share.
 *
 *   server.c    civetweb options, the single request entry point
 *   routes.c    the route table and the generic "route -> operation" path
 *   request.c   reading bodies, content types, query strings, headers
 *   response.c  status lines, headers and bodies written in one call
 *   files.c     static files from the web directory
 *   demo.c      demo data for `allotd --demo` */
#ifndef ENG_HTTP_INTERNAL_H
#define ENG_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <civetweb.h>
#include <jansson.h>

#include "http.h"

/* The longest request path accepted, decoded, with its NUL. */
#define HTTP_PATH_BYTES_MAX 4096
/* The longest request head served (request line, headers, blank line):
 * a longer one is 413 limit_exceeded.  civetweb reads up to
 * HTTP_HEAD_READ_TEXT bytes of head (its buffer, allocated per worker and
 * touched only as far as a head fills it) so that such a head is told
 * apart from a malformed one; past that it cannot say which it was. */
#define HTTP_HEAD_BYTES_MAX 16384
#define HTTP_HEAD_READ_TEXT "65536"

/* One request while it is being handled (lives on the worker's stack). */
struct http_req {
    struct http_server *srv;
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    const char *path;     /* decoded by http_path_decode, in path_buf */
    char path_buf[HTTP_PATH_BYTES_MAX];
    bool head_only;       /* HEAD: headers without the body */
    bool body_read;       /* the request body has been consumed */
    bool must_close;      /* the connection closes after this response */
    struct principal who; /* after authentication */
};

/* ---- export.c ---- */

/* Runs report `op` (reports.usage, reports.credits) without `limit` through
 * engine_exec_stream and streams its rows to the client, as CSV (csv true)
 * or as the JSON page {"data": [...], "next_cursor": null}.  Returns the
 * HTTP status sent (500 when the transfer was cut short). */
int http_export(struct http_req *rq, const char *op, json_t *args, bool csv);

/* ---- request.c ---- */

/* Decodes the %-escapes of a request path (`raw`, as sent, civetweb having
 * removed its literal dot segments) into out (cap bytes, NUL-terminated).
 * Refuses, returning -1: a '%' not followed by two hex digits, a decoded
 * NUL or other control character (which would cut the path short or reach
 * a log), a "." or ".." segment that only appears once decoded, and a
 * result that does not fit.  Returns the decoded length.  Pure; used for
 * every request before routing. */
int http_path_decode(const char *raw, char *out, size_t cap);
/* Adds the query parameters of `query` (raw, may be NULL) to args as
 * strings (`limit` of digits as an integer); empty values count as absent;
 * a repeated name is a 400.  Pure (no connection). */
int http_query_parse(const char *query, json_t *args, struct eng_error *err);

/* A request header (case-insensitive name), or NULL. */
const char *http_header(const struct http_req *rq, const char *name);
/* How many times header `name` came (case-insensitive). */
int http_header_count(const struct http_req *rq, const char *name);
/* True when the request announces a body (Content-Length > 0 or chunked). */
bool http_has_body(const struct http_req *rq);
/* True when Content-Type is `mime` (parameters such as charset ignored). */
bool http_content_type_is(const struct http_req *rq, const char *mime);
/* The body will not be read; closes the connection afterwards when
 * draining it would cost more than reading an allowed body. */
void http_skip_body(struct http_req *rq);
/* The body will not be read and the connection closes after the answer. */
void http_abandon_body(struct http_req *rq);
/* Reads the whole body into a new NUL-terminated buffer (caller frees) of at
 * most cfg.body_bytes_max bytes.  A larger announced Content-Length is
 * refused before any byte is read (ENG_ELIMIT, payload_too_large), and a
 * chunked body stops at the limit; both close the connection afterwards.
 * Returns 0 or an error in *err. */
int http_read_body(struct http_req *rq, char **buf, size_t *len, struct eng_error *err);
/* Reads an application/json body that must be one JSON object (an empty
 * body reads as {}).  415 for another content type; 400 for bad JSON,
 * duplicate keys, or a non-object. *out is new. */
int http_read_json(struct http_req *rq, json_t **out, struct eng_error *err);
/* Adds the query parameters to args as strings (`limit` of digits as an
 * integer); empty values count as absent; a repeated name is a 400. */
int http_query_to_args(const struct http_req *rq, json_t *args, struct eng_error *err);

/* ---- response.c ---- */

/* Writes status line, headers and body in one mg_write.  `extra_headers`
 * (may be NULL) are complete "Name: value\r\n" lines.  Returns `status`,
 * which is what civetweb's begin_request callback must return. */
int http_send(struct http_req *rq, int status, const char *content_type, const char *body,
              size_t len, const char *extra_headers);
/* `value` (borrowed) as compact JSON, amounts printed exactly. */
int http_send_json(struct http_req *rq, int status, const json_t *value,
                   const char *extra_headers);
/* {"error": {"code", "message", "details": {"field"?}}}. */
int http_send_error(struct http_req *rq, int status, const char *code, const char *field,
                    const char *message);
/* The same with extra header lines (an Allow list for a 405). */
int http_send_error_with(struct http_req *rq, int status, const char *code, const char *field,
                         const char *message, const char *extra_headers);
/* The same with more members of `details` (an engine error's details text). */
int http_send_error_details(struct http_req *rq, int status, const char *code, const char *field,
                            const char *message, const char *more, const char *extra_headers);
/* The same for an engine error: status and code from error.h's table. */
int http_send_eng_error(struct http_req *rq, const struct eng_error *err);

/* ---- routes.c ---- */

/* Handles every path under /v1. */
int http_api(struct http_req *rq);

/* ---- files.c ---- */

/* Serves a static file for GET/HEAD of rq->path from the web directory. */
int http_static(struct http_req *rq);
/* Sends the file `name` (relative to the web directory, no "..") with
 * `content_type`, or a 404 error. */
int http_send_web_file(struct http_req *rq, const char *name, const char *content_type);

#endif

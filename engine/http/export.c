/* export.c - reports that stream: rows go to the client as they are read.
 *
 * The usage and credit-management reports without `limit` (JSON or CSV)
 * run through engine_exec_stream() with the sink below: each row is
 * rendered into a buffer, and every EXPORT_CHUNK_BYTES the buffer leaves as
 * one HTTP/1.1 chunk (`Transfer-Encoding: chunked`), so the server holds at
 * most one chunk and one row per export, whatever the number of rows.
 *
 * Until the first chunk leaves nothing has been sent: a report that fails
 * before (a bad argument, a storage error on the first rows) answers its
 * JSON error as usual, and a report that fits in one chunk is sent whole
 * with a Content-Length.  A failure after the first chunk cannot change the
 * status any more: the connection is then closed without the terminating
 * zero-length chunk, which HTTP clients report as an incomplete transfer
 * (curl: "transfer closed with outstanding read data remaining"), so a
 * truncated export is never taken for a complete one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "engine.h"
#include "http_internal.h"
#include "json_out.h"

#define EXPORT_CHUNK_BYTES (64 * 1024)
#define EXPORT_HEAD_BYTES_MAX 512

struct export_sink {
    struct http_req *rq;
    bool csv;
    const char *name;           /* report name, for the CSV file name */
    const char *const *columns; /* CSV column order */
    struct csv text;            /* rendered, not yet sent (CSV and JSON) */
    char *frame;                /* one chunk with its framing */
    bool head_sent, failed;
    int64_t rows;
};

/* Appends raw bytes to the pending text (JSON rendering; the CSV rows go
 * through util/csv.c into the same buffer). */
static void
pending_raw(struct export_sink *x, const char *s, size_t n)
{
    if (n == 0 || x->text.failed) {
        return;
    }
    size_t need = x->text.len + n + 1;
    if (need > x->text.cap) {
        size_t cap = x->text.cap != 0 ? x->text.cap : 1024;
        while (cap < need) {
            cap *= 2;
        }
        char *bigger = realloc(x->text.buf, cap);
        if (bigger == NULL) {
            x->text.failed = true;
            return;
        }
        x->text.buf = bigger;
        x->text.cap = cap;
    }
    memcpy(x->text.buf + x->text.len, s, n);
    x->text.len += n;
    x->text.buf[x->text.len] = '\0';
}

static const char *
content_type(const struct export_sink *x)
{
    return x->csv ? "text/csv; charset=utf-8" : "application/json";
}

static int
send_head(struct export_sink *x)
{
    char head[EXPORT_HEAD_BYTES_MAX], disposition[128] = "";
    if (!x->rq->body_read && http_has_body(x->rq)) {
        http_skip_body(x->rq); /* as http_send does: a GET that sent a body */
    }
    if (x->csv) {
        snprintf(disposition, sizeof disposition,
                 "Content-Disposition: attachment; filename=\"%s.csv\"\r\n", x->name);
    }
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Type: %s\r\n"
                     "Transfer-Encoding: chunked\r\n"
                     "Cache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "%s%s\r\n",
                     content_type(x), disposition,
                     x->rq->must_close ? "Connection: close\r\n" : "");
    x->head_sent = true;
    if (n < 0 || (size_t)n >= sizeof head || mg_write(x->rq->conn, head, (size_t)n) != n) {
        x->failed = true;
        return -1;
    }
    return 0;
}

/* Sends the pending text as one chunk (after the head, the first time). */
static int
flush_chunk(struct export_sink *x)
{
    if (x->failed || x->text.failed) {
        return -1;
    }
    if (!x->head_sent && send_head(x) != 0) {
        return -1;
    }
    size_t len = x->text.len;
    x->text.len = 0;
    if (len == 0 || x->rq->head_only) {
        return 0;
    }
    if (x->frame == NULL && (x->frame = malloc(EXPORT_CHUNK_BYTES * 2 + 32)) == NULL) {
        x->failed = true;
        return -1;
    }
    /* The pending text never passes 2 x EXPORT_CHUNK_BYTES: a flush follows
     * every row that takes it past EXPORT_CHUNK_BYTES, and a row is far
     * smaller.  A longer one is sent in pieces. */
    for (size_t off = 0; off < len;) {
        size_t part = len - off < EXPORT_CHUNK_BYTES * 2 ? len - off : EXPORT_CHUNK_BYTES * 2;
        int n = snprintf(x->frame, 32, "%zx\r\n", part);
        memcpy(x->frame + n, x->text.buf + off, part);
        memcpy(x->frame + (size_t)n + part, "\r\n", 2);
        size_t total = (size_t)n + part + 2;
        if (mg_write(x->rq->conn, x->frame, total) != (int)total) {
            x->failed = true; /* the client has gone */
            return -1;
        }
        off += part;
    }
    return 0;
}

static int
export_begin(void *ud, const char *const columns[])
{
    struct export_sink *x = ud;
    x->columns = columns;
    if (x->csv) {
        for (int k = 0; columns[k] != NULL; k++) {
            csv_field(&x->text, columns[k]);
        }
        csv_end_row(&x->text);
    } else {
        pending_raw(x, "{\"data\":[", 9);
    }
    return x->text.failed ? -1 : 0;
}

static int
export_row(void *ud, const json_t *row)
{
    struct export_sink *x = ud;
    if (x->csv) {
        for (int k = 0; x->columns[k] != NULL; k++) {
            csv_json(&x->text, json_object_get(row, x->columns[k]));
        }
        csv_end_row(&x->text);
    } else {
        char *text = json_out_text(row);
        if (text == NULL) {
            return -1;
        }
        if (x->rows > 0) {
            pending_raw(x, ",", 1);
        }
        pending_raw(x, text, strlen(text));
        free(text);
    }
    x->rows++;
    if (x->text.failed) {
        return -1;
    }
    return x->text.len >= EXPORT_CHUNK_BYTES ? flush_chunk(x) : 0;
}

int
http_export(struct http_req *rq, const char *op, json_t *args, bool csv)
{
    const char *dot = strchr(op, '.');
    struct export_sink x = {.rq = rq, .csv = csv, .name = dot != NULL ? dot + 1 : op};
    struct row_sink sink = {export_begin, export_row, &x};
    struct eng_error err = {0};
    json_t *out = NULL;
    int rc = engine_exec_stream(rq->srv->eng, &rq->who, op, args, &sink, &out, &err);
    json_decref(out);
    int status = 200;
    if (rc != 0 && !x.head_sent) {
        status = http_send_eng_error(rq, &err);
    } else if (rc != 0) {
        /* Part of the report has left: end the connection without the
         * last chunk, so the client knows the file is incomplete. */
        fprintf(stderr, "allotd: %s aborted after %lld rows: %s\n", op, (long long)x.rows,
                err.msg);
        rq->must_close = true;
        mg_disable_connection_keep_alive(rq->conn);
        status = 500;
    } else {
        if (!csv) {
            pending_raw(&x, "],\"next_cursor\":null}", 21);
        }
        if (x.text.failed) {
            struct eng_error oom = {0};
            eng_error_code(&oom, ENG_ENOMEM, "overloaded", "out of memory; try again");
            status = x.head_sent ? 500 : http_send_eng_error(rq, &oom);
            if (x.head_sent) {
                rq->must_close = true;
                mg_disable_connection_keep_alive(rq->conn);
            }
        } else if (!x.head_sent) {
            /* It all fits in one chunk: one plain response. */
            char extra[128] = "";
            if (csv) {
                snprintf(extra, sizeof extra,
                         "Content-Disposition: attachment; filename=\"%s.csv\"\r\n", x.name);
            }
            status = http_send(rq, 200, content_type(&x), x.text.buf != NULL ? x.text.buf : "",
                               x.text.len, extra);
        } else if (flush_chunk(&x) != 0 ||
                   (!rq->head_only && mg_write(rq->conn, "0\r\n\r\n", 5) != 5)) {
            rq->must_close = true;
            mg_disable_connection_keep_alive(rq->conn);
            status = 500;
        }
    }
    free(x.text.buf);
    free(x.frame);
    return status;
}

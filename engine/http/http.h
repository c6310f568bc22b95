/* http.h - the REST API server (API.md) on top of civetweb.
 *
 * The HTTP layer maps routes to engine operations and JSON to JSON; every
 * business rule (validation, authorization, transactions, idempotency)
 * lives in engine_exec().  What this layer owns is the protocol: API keys,
 * size limits, content types, status lines, and writing each response in
 * one call. */
#ifndef ENG_HTTP_H
#define ENG_HTTP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "engine.h"

#define HTTP_BODY_BYTES_MAX ((size_t)64 * 1024) /* http_body_bytes_max */
/* civetweb gives each open connection a worker thread of its own, from the
 * moment it is accepted until it closes: a client that connects and sends
 * nothing, or trickles its request head, holds a thread as surely as one
 * being served.  So the pool is sized for attackers, not for the work:
 * 2,048 workers cost ~45 MiB resident (~20 KiB each while idle, measured),
 * and with the header deadline below every slot comes back within
 * HTTP_HEADER_MS_MAX.  The work itself is bounded elsewhere (one writer,
 * a fixed pool of shared read connections, whatever the thread count). */
#define HTTP_THREADS_DEFAULT 2048
#define HTTP_THREADS_MAX 16384
/* The whole request head (line and headers) must arrive within this time
 * of the connection being taken up, however it trickles in; civetweb
 * checks it after every read.  It is also the limit of each single read
 * or write of a body. */
#define HTTP_HEADER_MS_MAX 5000
/* How long an idle keep-alive connection may wait for its next request. */
#define HTTP_KEEP_ALIVE_MS_MAX 2000
/* Connections the kernel queues before we accept them (also capped by
 * net.core.somaxconn). */
#define HTTP_LISTEN_BACKLOG 1024
#define HTTP_LISTEN_MAX 128

struct mg_context;

struct http_config {
    char listen[HTTP_LISTEN_MAX];   /* civetweb form: "127.0.0.1:8080" */
    char web_dir[ENGINE_PATH_MAX];  /* static files; may be missing */
    int threads;                    /* worker threads = concurrent connections */
    bool fake_clock;                /* adds PUT /v1/clock */
    size_t body_bytes_max;
};

struct http_server {
    struct engine *eng;             /* borrowed; outlives the server */
    struct mg_context *ctx;
    struct http_config cfg;
    char web_root[PATH_MAX];        /* realpath of cfg.web_dir, "" when absent */
    char url[HTTP_LISTEN_MAX + 16]; /* "http://127.0.0.1:8080", the bound port */
};

void http_config_default(struct http_config *cfg);

/* Starts listening and serving `eng` with cfg (copied).  Returns 0, or
 * ENG_EINVAL with civetweb's reason (port taken, bad option) in *err.
 * Not thread-safe with http_server_stop on the same server. */
ENG_MUST_CHECK int http_server_start(struct http_server *srv, struct engine *eng,
                                     const struct http_config *cfg, struct eng_error *err);

/* Stops accepting, waits for requests in flight to finish, and frees the
 * server.  Accepts a server that never started. */
void http_server_stop(struct http_server *srv);

/* Prints the route table (routes.c) as a JSON array of {"method",
 * "pattern", "path" (its OpenAPI template), "op", and the flags "body",
 * "query", "idempotent", "public", "csv", "fake_clock"}: `allotd --routes`,
 * read by the authorization matrix spec.  0, or ENG_ENOMEM. */
int http_routes_print(FILE *f);

#endif

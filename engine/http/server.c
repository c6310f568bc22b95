/* server.c - civetweb set-up and the one entry point for every request.
 *
 * Everything goes through civetweb's begin_request callback, which answers
 * every request itself: civetweb's own handling (files, CGI, SSI, WebDAV,
 * CORS preflights, directory listings) never runs.  The options below are
 * still set to their safe values, so that nothing changes if a request
 * ever fell through (security notes §2.3). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "http_internal.h"

/* Debian's civetweb gives its workers 100 KiB of stack (USE_STACK_SIZE).
 * A request runs SQLite, ICU and a Lua policy, and Lua alone may nest 200
 * C calls (pcall, metamethods) before it says "C stack overflow": a policy
 * could crash the whole server on 100 KiB.  So each worker thread runs its
 * requests on a stack of its own, as large as a main thread's, mapped once
 * (lazily committed by the kernel) with a guard page below it. */
#define HANDLER_STACK_BYTES ((size_t)8 * 1024 * 1024)

struct handler_stack {
    void *map;        /* the mapping, guard page included */
    size_t map_bytes;
    ucontext_t caller, callee;
    struct http_req *rq;
    int status;
};

static pthread_key_t stack_key;
static pthread_once_t stack_once = PTHREAD_ONCE_INIT;

void
http_config_default(struct http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "127.0.0.1:8080");
    snprintf(cfg->web_dir, sizeof cfg->web_dir, "web");
    cfg->threads = HTTP_THREADS_DEFAULT;
    cfg->body_bytes_max = HTTP_BODY_BYTES_MAX;
}

static void
stack_free(void *p)
{
    struct handler_stack *hs = p;
    if (hs != NULL) {
        munmap(hs->map, hs->map_bytes);
        free(hs);
    }
}

static void
stack_key_init(void)
{
    (void)pthread_key_create(&stack_key, stack_free);
}

/* The calling worker's stack, mapped on its first request; NULL when it
 * cannot be had (the request then runs on civetweb's stack). */
static struct handler_stack *
stack_of_thread(void)
{
    pthread_once(&stack_once, stack_key_init);
    struct handler_stack *hs = pthread_getspecific(stack_key);
    if (hs != NULL) {
        return hs;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    hs = calloc(1, sizeof *hs);
    if (hs == NULL) {
        return NULL;
    }
    hs->map_bytes = HANDLER_STACK_BYTES + page;
    hs->map = mmap(NULL, hs->map_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (hs->map == MAP_FAILED || mprotect(hs->map, page, PROT_NONE) != 0) {
        if (hs->map != MAP_FAILED) {
            munmap(hs->map, hs->map_bytes);
        }
        free(hs);
        return NULL;
    }
    pthread_setspecific(stack_key, hs);
    return hs;
}

static int dispatch(struct http_req *rq);

/* Switching stacks with swapcontext costs a sigprocmask system call each
 * way (glibc saves and restores the signal mask), three per request.  On
 * x86-64 a call on the other stack needs no system call: save the stack
 * pointer in a callee-saved register, point it at the new stack, call,
 * restore.  Sanitizer builds keep ucontext, which their runtimes know
 * about (ASan intercepts swapcontext). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HANDLER_PLAIN_SWITCH 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                   \
    __has_feature(memory_sanitizer)
#define HANDLER_PLAIN_SWITCH 0
#endif
#endif
#if !defined(HANDLER_PLAIN_SWITCH) && defined(__x86_64__) && defined(__GNUC__)
#define HANDLER_PLAIN_SWITCH 1
#elif !defined(HANDLER_PLAIN_SWITCH)
#define HANDLER_PLAIN_SWITCH 0
#endif

#if HANDLER_PLAIN_SWITCH
static void
handler_entry(void *p)
{
    struct handler_stack *hs = p;
    hs->status = dispatch(hs->rq);
}

/* Calls fn(arg) with the stack pointer at top (16-byte aligned).  Not
 * inlined, so that no value of a caller lives in a register across it but
 * in the callee-saved ones, which fn preserves as the ABI requires. */
__attribute__((noinline)) static void
call_on_stack(void *top, void (*fn)(void *), void *arg)
{
    __asm__ volatile("movq %%rsp, %%rbx\n\t"
                     "movq %[top], %%rsp\n\t"
                     "callq *%[fn]\n\t"
                     "movq %%rbx, %%rsp\n\t"
                     : "+D"(arg), [top] "+r"(top), [fn] "+r"(fn)
                     :
                     : "rbx", "rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory",
                       "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
                       "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

static int
run_on_big_stack(struct http_req *rq)
{
    struct handler_stack *hs = stack_of_thread();
    if (hs == NULL) {
        return dispatch(rq);
    }
    hs->rq = rq;
    hs->status = 500;
    call_on_stack((char *)hs->map + hs->map_bytes, handler_entry, hs);
    return hs->status;
}
#else
/* ASan must be told when a request moves to its own stack and back: it
 * then knows the current stack's bounds, so that a longjmp out of a policy
 * error (Lua's) clears the poison of the frames it skips.  Unannotated,
 * that poison stays on the reused stack and a later request's locals trip
 * over it (a false stack-use-after-scope). */
#if defined(__SANITIZE_ADDRESS__)
#define HANDLER_FIBERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HANDLER_FIBERS 1
#endif
#endif
#ifdef HANDLER_FIBERS
#include <sanitizer/common_interface_defs.h>
#endif

/* The stack the trampoline runs on: makecontext passes only ints. */
static _Thread_local struct handler_stack *current_stack;
#ifdef HANDLER_FIBERS
static _Thread_local const void *caller_bottom;
static _Thread_local size_t caller_size;
#endif

static void
trampoline(void)
{
#ifdef HANDLER_FIBERS
    __sanitizer_finish_switch_fiber(NULL, &caller_bottom, &caller_size);
#endif
    current_stack->status = dispatch(current_stack->rq);
#ifdef HANDLER_FIBERS
    /* This context ends here: nothing of it is to be kept. */
    __sanitizer_start_switch_fiber(NULL, caller_bottom, caller_size);
#endif
    /* Returning resumes uc_link: the caller's context on civetweb's stack. */
}

static int
run_on_big_stack(struct http_req *rq)
{
    struct handler_stack *hs = stack_of_thread();
    if (hs == NULL || getcontext(&hs->callee) != 0) {
        return dispatch(rq);
    }
    hs->callee.uc_stack.ss_sp = (char *)hs->map + (hs->map_bytes - HANDLER_STACK_BYTES);
    hs->callee.uc_stack.ss_size = HANDLER_STACK_BYTES;
    hs->callee.uc_link = &hs->caller;
    hs->rq = rq;
    hs->status = 500;
    current_stack = hs;
    makecontext(&hs->callee, trampoline, 0);
#ifdef HANDLER_FIBERS
    void *fake_stack = NULL;
    __sanitizer_start_switch_fiber(&fake_stack, hs->callee.uc_stack.ss_sp, HANDLER_STACK_BYTES);
#endif
    int rc = swapcontext(&hs->caller, &hs->callee);
#ifdef HANDLER_FIBERS
    __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
#endif
    if (rc != 0) {
        return dispatch(rq);
    }
    return hs->status;
}
#endif

/* Whether civetweb's http_error callback answered the request this worker
 * read last (a connection lives on one worker from accept to close). */
static _Thread_local bool error_answered;

static int
begin_request(struct mg_connection *conn)
{
    error_answered = false;
    struct http_req rq = {
        .srv = mg_get_user_data(mg_get_context(conn)),
        .conn = conn,
        .ri = mg_get_request_info(conn),
    };
    return run_on_big_stack(&rq);
}

/* The request head as sent, near enough: the request line and each
 * header line with their CRLFs, and the blank line.  civetweb trims the
 * blanks around a value, so this can fall short of the bytes received by
 * a few per header, never exceed them. */
static size_t
head_bytes(const struct mg_request_info *ri)
{
    const char *uri = ri->request_uri != NULL ? ri->request_uri : "";
    const char *method = ri->request_method != NULL ? ri->request_method : "";
    const char *version = ri->http_version != NULL ? ri->http_version : "";
    size_t n = strlen(method) + 1 + strlen(uri) + 1 + 5 + strlen(version) + 2 + 2;
    if (ri->query_string != NULL) {
        n += 1 + strlen(ri->query_string);
    }
    for (int i = 0; i < ri->num_headers; i++) {
        n += strlen(ri->http_headers[i].name) + 2 + strlen(ri->http_headers[i].value) + 2;
    }
    return n;
}

/* The framing of the body must be one thing (RFC 9112 §6.3): every
 * Content-Length all digits and the same (civetweb reads the first and
 * stops at the first non-digit), and not beside Transfer-Encoding (civetweb
 * would follow the latter).  Anything else is how requests are smuggled
 * past a proxy that reads the other header. */
static const char *
framing_problem(const struct mg_request_info *ri)
{
    const char *length = NULL;
    bool coding = false;
    for (int i = 0; i < ri->num_headers; i++) {
        const char *name = ri->http_headers[i].name;
        const char *value = ri->http_headers[i].value;
        if (strcasecmp(name, "Transfer-Encoding") == 0) {
            coding = true;
        } else if (strcasecmp(name, "Content-Length") == 0) {
            if (value[0] == '\0' || strspn(value, "0123456789") != strlen(value)) {
                return "Content-Length must be a non-negative decimal integer";
            }
            if (length != NULL && strcmp(length, value) != 0) {
                return "the request has two different Content-Length headers";
            }
            length = value;
        }
    }
    return coding && length != NULL
               ? "the request has both Content-Length and Transfer-Encoding"
               : NULL;
}

static int
dispatch(struct http_req *rq)
{
    /* civetweb reads heads up to HTTP_HEAD_READ_TEXT bytes so that one past
     * our limit is told apart from a malformed one (API.md: limit_exceeded,
     * 413, naming the limit); the body is left unread, so the connection
     * closes. */
    if (head_bytes(rq->ri) > HTTP_HEAD_BYTES_MAX) {
        rq->path = "?";
        http_abandon_body(rq);
        char msg[96];
        snprintf(msg, sizeof msg, "the request head is larger than %d bytes",
                 HTTP_HEAD_BYTES_MAX);
        return http_send_error(rq, 413, "limit_exceeded", "request_head_bytes", msg);
    }
    const char *framing = framing_problem(rq->ri);
    if (framing != NULL) {
        rq->path = "?";
        http_abandon_body(rq);
        return http_send_error(rq, 400, "invalid_request", NULL, framing);
    }
    rq->path = rq->ri->local_uri;
    if (rq->path == NULL || rq->path[0] != '/') {
        /* "OPTIONS *" or an absolute URI naming another host. */
        rq->path = "?";
        return http_send_error(rq, 400, "invalid_request", NULL,
                               "the request target must be a path");
    }
    /* civetweb leaves the path as sent (decode_url is off): decoding it
     * here refuses what its decoder let through, such as "%00" cutting
     * "/index.html%00.js" short to "/index.html". */
    if (http_path_decode(rq->path, rq->path_buf, sizeof rq->path_buf) < 0) {
        rq->path = "?";
        return http_send_error(rq, 400, "invalid_request", NULL,
                               "the path has a malformed escape, a control character, a dot "
                               "segment, or more than 4095 bytes");
    }
    rq->path = rq->path_buf;
    if (strncmp(rq->path, "/v1/", 4) == 0 || strcmp(rq->path, "/v1") == 0) {
        return http_api(rq);
    }
    return http_static(rq);
}

/* The methods civetweb knows (its request parser refuses any other with a
 * bare "Bad request", which we answer as 405). */
static bool
known_method(const char *m)
{
    static const char *const methods[] = {
        "GET",  "HEAD",  "POST", "PUT",    "DELETE",    "OPTIONS", "CONNECT", "TRACE", "PATCH",
        "COPY", "LOCK",  "MOVE", "MKCOL",  "PROPFIND",  "PROPPATCH", "UNLOCK", "REPORT",
        "MKACTIVITY", "CHECKOUT", "MERGE", "MKCALENDAR", NULL};
    for (int i = 0; methods[i] != NULL; i++) {
        if (strcmp(m, methods[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Writes an error in the API's shape on a connection no route handles;
 * the connection closes afterwards. */
static void
send_protocol_error(struct mg_connection *conn, int status, const char *code,
                    const char *message)
{
    json_t *body = json_pack("{s:{s:s, s:s, s:{}}}", "error", "code", code, "message",
                             message, "details");
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        return;
    }
    const char *reason = mg_get_response_code_text(conn, status);
    char out[1024];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n%s",
                     status, reason != NULL ? reason : "Error", strlen(text), text);
    free(text);
    if (n > 0 && (size_t)n < sizeof out) {
        mg_write(conn, out, (size_t)n);
    }
}

/* civetweb refuses a request before any route runs (its parser, its
 * length and version checks): answer in the API's error shape instead of
 * its HTML page.  `status` and `msg` are civetweb's; the request fields
 * are set as far as its parser got.  Returns 0: answered. */
static int
http_error(struct mg_connection *conn, int status, const char *msg)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *version = ri != NULL ? ri->http_version : NULL;
    const char *method = ri != NULL ? ri->request_method : NULL;
    bool http1 = version != NULL && (strcmp(version, "1.0") == 0 || strcmp(version, "1.1") == 0);
    error_answered = true;
    (void)msg; /* civetweb's wording ("Bad request") says less than ours */
    if (status == 505 || (status == 400 && version != NULL && !http1)) {
        /* HTTP/2's preface ("PRI * HTTP/2.0") lands here too. */
        send_protocol_error(conn, 505, "http_version_not_supported",
                            "only HTTP/1.0 and HTTP/1.1 are served");
    } else if (status == 400 && http1 && method != NULL && !known_method(method)) {
        send_protocol_error(conn, 405, "method_not_allowed", "the request method is unknown");
    } else if (status == 411) {
        /* civetweb's 411 is for a Content-Length that is not a length. */
        send_protocol_error(conn, 400, "invalid_request",
                            "Content-Length must be a non-negative decimal integer");
    } else if (status == 413 || (status == 400 && method == NULL)) {
        /* No request line parsed: the head had a control character (a tab
         * in a header name), exceeded what civetweb reads (far past our
         * limit, which dispatch answers), or did not arrive complete before
         * the header deadline. */
        send_protocol_error(conn, status == 413 ? 413 : 400, "invalid_request",
                            "the request head is malformed, incomplete, or larger than "
                            HTTP_HEAD_READ_TEXT " bytes");
    } else if (status >= 500) {
        send_protocol_error(conn, status, "internal_error",
                            "the server could not read the request");
    } else {
        send_protocol_error(conn, status, "invalid_request", "the request is malformed");
    }
    return 0;
}

/* A request civetweb parsed but routes nowhere ("OPTIONS *", an absolute
 * URI naming another server) gets neither begin_request nor http_error;
 * civetweb would close without a word.  The last thing it does is close
 * the connection, so answer there. */
static void
connection_close(const struct mg_connection *cconn)
{
    /* civetweb hands a const pointer to a connection it still writes to;
     * writing the answer is what this callback is for. */
    struct mg_connection *conn = (struct mg_connection *)(uintptr_t)cconn;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    bool unanswered = ri != NULL && ri->request_uri != NULL && ri->local_uri == NULL &&
                      !error_answered;
    error_answered = false;
    if (unanswered) {
        send_protocol_error(conn, 400, "invalid_request",
                            "the request target must be a path on this server");
    }
}

/* civetweb's own diagnostics go to the server log. */
static int
log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    fprintf(stderr, "allotd: civetweb: %s\n", message);
    return 1;
}

/* The URL clients use: the configured address with the port civetweb
 * actually bound (which differs when the configuration says port 0). */
static void
server_url(struct http_server *srv)
{
    struct mg_server_port ports[4];
    int n = mg_get_server_ports(srv->ctx, 4, ports);
    const char *colon = strrchr(srv->cfg.listen, ':');
    int host_len = colon != NULL ? (int)(colon - srv->cfg.listen) : 0;
    const char *host = host_len > 0 ? srv->cfg.listen : "0.0.0.0";
    if (host_len == 0) {
        host_len = (int)strlen(host);
    }
    int port = n > 0 ? ports[0].port : 0;
    snprintf(srv->url, sizeof srv->url, "http://%.*s:%d", host_len, host, port);
}

int
http_server_start(struct http_server *srv, struct engine *eng, const struct http_config *cfg,
                  struct eng_error *err)
{
    memset(srv, 0, sizeof *srv);
    srv->eng = eng;
    srv->cfg = *cfg;
    if (realpath(cfg->web_dir, srv->web_root) == NULL) {
        fprintf(stderr, "allotd: web directory '%s' not found; serving no static files\n",
                cfg->web_dir);
        srv->web_root[0] = '\0';
    }
    char threads[16], header_ms[16], keep_alive_ms[16], backlog[16];
    snprintf(threads, sizeof threads, "%d", cfg->threads);
    snprintf(header_ms, sizeof header_ms, "%d", HTTP_HEADER_MS_MAX);
    snprintf(keep_alive_ms, sizeof keep_alive_ms, "%d", HTTP_KEEP_ALIVE_MS_MAX);
    snprintf(backlog, sizeof backlog, "%d", HTTP_LISTEN_BACKLOG);
    /* Empty patterns match nothing: no CGI, no SSI, no CORS headers.  The
     * document root comes last so that, without a web directory, its NULL
     * name ends the list there. */
    const char *options[] = {
        "listening_ports", cfg->listen,
        "num_threads", threads,
        "enable_keep_alive", "yes",
        "tcp_nodelay", "1",
        /* Slow and idle clients (slowloris): a deadline for the whole
         * head, a short keep-alive wait, and a thread for each of them
         * (http.h) so that they cannot crowd out the others. */
        "request_timeout_ms", header_ms,
        "keep_alive_timeout_ms", keep_alive_ms,
        "listen_backlog", backlog,
        "max_request_size", HTTP_HEAD_READ_TEXT,
        "enable_directory_listing", "no",
        "cgi_pattern", "",
        "ssi_pattern", "",
        "access_control_allow_origin", "",
        "access_control_allow_methods", "",
        "access_control_allow_headers", "",
        /* An absolute URI naming our port is ours whatever its host (RFC
         * 9112 §3.2.2); one naming another port is refused. */
        "enable_auth_domain_check", "no",
        /* We decode the path ourselves, strictly (http_path_decode). */
        "decode_url", "no",
        srv->web_root[0] != '\0' ? "document_root" : NULL, srv->web_root,
        NULL, NULL,
    };
    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.begin_request = begin_request;
    callbacks.log_message = log_message;
    callbacks.http_error = http_error;
    callbacks.connection_close = connection_close;
    char why[256] = "";
    unsigned code = 0;
    struct mg_init_data init = {&callbacks, srv, options};
    struct mg_error_data error = {&code, why, sizeof why};
    mg_init_library(0);
    srv->ctx = mg_start2(&init, &error);
    if (srv->ctx == NULL) {
        mg_exit_library();
        return eng_error_set(err, ENG_EINVAL, "cannot listen on %s: %s", cfg->listen,
                             why[0] != '\0' ? why : "civetweb refused to start");
    }
    server_url(srv);
    return 0;
}

void
http_server_stop(struct http_server *srv)
{
    if (srv == NULL || srv->ctx == NULL) {
        return;
    }
    /* mg_stop returns once every worker has finished its request. */
    mg_stop(srv->ctx);
    srv->ctx = NULL;
    mg_exit_library();
}

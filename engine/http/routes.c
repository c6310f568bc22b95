/* routes.c - the /v1 routes and how a request becomes an operation.
 *
 * A route names an engine operation; its arguments are the JSON body (an
 * object), the query parameters of a GET, and the ids in the path.  This
 * file decides nothing about the business: engine_exec() validates,
 * authorizes and runs every operation, and its answer (or error) is sent
 * back as it is.  The few routes that are not operations (health, the API
 * description, the test clock) have their own small handlers here. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "csv.h"
#include "http_internal.h"
#include "timeutil.h"

#define ROUTE_PARAMS_MAX 3
#define ROUTE_SEGMENT_BYTES_MAX 128
#define ROUTE_PARAM_NAME_MAX 32
#define IDEMPOTENCY_KEY_BYTES_MAX 200
#define ALLOW_BYTES_MAX 64

enum route_flag {
    ROUTE_BODY = 1u << 0,       /* takes a JSON object body */
    ROUTE_QUERY = 1u << 1,      /* query parameters become arguments */
    ROUTE_IDEMPOTENT = 1u << 2, /* honours Idempotency-Key (state-changing) */
    ROUTE_PUBLIC = 1u << 3,     /* answers without an API key */
    ROUTE_CSV = 1u << 4,        /* answers text/csv on request */
    ROUTE_FAKE_CLOCK = 1u << 5, /* exists only with --fake-clock */
    ROUTE_STREAM = 1u << 6,     /* without `limit`, rows stream (http/export.c) */
};

/* The values taken from the path, under the argument names the pattern
 * gives them. */
struct route_params {
    int count;
    char names[ROUTE_PARAMS_MAX][ROUTE_PARAM_NAME_MAX];
    char values[ROUTE_PARAMS_MAX][ROUTE_SEGMENT_BYTES_MAX + 1];
};

struct route;
typedef int (*route_fn)(struct http_req *rq, const struct route *r,
                        const struct route_params *params);

/* Pattern segments: a literal, "{prefix:arg}" for an id such as "bld_3"
 * passed as argument `arg` (a malformed id matches nothing, so it is a
 * 404 like an unknown one), or "{:arg}" for any segment. */
struct route {
    const char *method;
    const char *pattern;
    const char *op; /* engine operation, for routes without a handler */
    unsigned flags;
    route_fn fn;    /* NULL: run `op` through engine_exec */
};

static int route_exec(struct http_req *rq, const struct route *r,
                      const struct route_params *params);
static int route_health(struct http_req *rq, const struct route *r,
                        const struct route_params *params);
static int route_openapi(struct http_req *rq, const struct route *r,
                         const struct route_params *params);
static int route_clock(struct http_req *rq, const struct route *r,
                       const struct route_params *params);
static int route_policy_put(struct http_req *rq, const struct route *r,
                            const struct route_params *params);

#define WRITE (ROUTE_BODY | ROUTE_IDEMPOTENT)
#define READ ROUTE_QUERY

/* Every route the server answers; web/openapi.json describes each one and a
 * test checks that they agree. */
static const struct route routes[] = {
    {"GET", "/v1/health", NULL, ROUTE_PUBLIC, route_health},
    {"GET", "/v1/openapi.json", NULL, 0, route_openapi},
    {"PUT", "/v1/clock", NULL, ROUTE_BODY | ROUTE_FAKE_CLOCK, route_clock},
    {"POST", "/v1/keys", "keys.create", WRITE, NULL},
    {"POST", "/v1/keys/{key:id}/revoke", "keys.revoke", WRITE, NULL},
    {"GET", "/v1/me", "me", 0, NULL},
    {"GET", "/v1/verify", "verify", 0, NULL},

    {"POST", "/v1/buildings", "buildings.create", WRITE, NULL},
    {"GET", "/v1/buildings", "buildings.list", READ, NULL},
    {"GET", "/v1/buildings/{bld:id}", "buildings.get", 0, NULL},
    {"PATCH", "/v1/buildings/{bld:id}", "buildings.patch", WRITE, NULL},
    {"GET", "/v1/buildings/{bld:building_id}/policies", "policies.get", 0, NULL},
    {"PUT", "/v1/buildings/{bld:building_id}/policies/{:kind}", "policies.put", 0,
     route_policy_put},
    {"DELETE", "/v1/buildings/{bld:building_id}/policies/{:kind}", "policies.delete", 0, NULL},
    {"GET", "/v1/buildings/{bld:building_id}/policies/{:kind}/history", "policies.history", 0,
     NULL},
    {"POST", "/v1/buildings/{bld:building_id}/policies/{:kind}/rollback", "policies.rollback",
     ROUTE_BODY, NULL},
    {"POST", "/v1/buildings/{bld:building_id}/policies/{:kind}/simulate", "policies.simulate",
     ROUTE_BODY, NULL},
    {"POST", "/v1/policies/reload", "policies.reload", 0, NULL},

    {"POST", "/v1/resources", "resources.create", WRITE, NULL},
    {"GET", "/v1/resources", "resources.list", READ, NULL},
    {"GET", "/v1/resources/{res:id}", "resources.get", 0, NULL},
    {"PATCH", "/v1/resources/{res:id}", "resources.patch", WRITE, NULL},
    /* A resource keeps its history: DELETE archives it. */
    {"DELETE", "/v1/resources/{res:id}", "resources.archive", 0, NULL},

    {"POST", "/v1/tenants", "tenants.create", WRITE, NULL},
    {"GET", "/v1/tenants", "tenants.list", READ, NULL},
    {"GET", "/v1/tenants/{ten:id}", "tenants.get", 0, NULL},
    {"PATCH", "/v1/tenants/{ten:id}", "tenants.patch", WRITE, NULL},

    {"POST", "/v1/users", "users.create", WRITE, NULL},
    {"GET", "/v1/users", "users.list", READ, NULL},
    {"GET", "/v1/users/{usr:id}", "users.get", 0, NULL},
    {"PATCH", "/v1/users/{usr:id}", "users.patch", WRITE, NULL},
    {"GET", "/v1/users/{usr:user_id}/wallet", "wallet", READ, NULL},

    {"POST", "/v1/allocations", "allocations.create", WRITE, NULL},
    {"GET", "/v1/allocations", "allocations.list", READ, NULL},
    {"GET", "/v1/allocations/{alc:id}", "allocations.get", 0, NULL},
    {"PATCH", "/v1/allocations/{alc:id}", "allocations.patch", WRITE, NULL},
    {"POST", "/v1/allocations/{alc:id}/end", "allocations.end", WRITE, NULL},
    {"POST", "/v1/adjustments", "adjustments.create", WRITE, NULL},
    {"GET", "/v1/entries", "entries.list", READ, NULL},

    /* A quote changes nothing, so it takes no Idempotency-Key. */
    {"POST", "/v1/quotes", "quotes.create", ROUTE_BODY, NULL},
    {"POST", "/v1/bookings", "bookings.create", WRITE, NULL},
    {"GET", "/v1/bookings", "bookings.list", READ, NULL},
    {"GET", "/v1/bookings/{bkg:id}", "bookings.get", 0, NULL},
    {"POST", "/v1/bookings/{bkg:id}/cancel", "bookings.cancel", WRITE, NULL},
    /* What a cancel now would give back; changes nothing. */
    {"GET", "/v1/bookings/{bkg:id}/refund", "bookings.refund_preview", 0, NULL},

    {"GET", "/v1/reports/datahub", "reports.datahub", READ | ROUTE_CSV, NULL},
    {"GET", "/v1/reports/dashboard", "reports.dashboard", READ | ROUTE_CSV, NULL},
    {"GET", "/v1/reports/credits", "reports.credits", READ | ROUTE_CSV | ROUTE_STREAM, NULL},
    {"GET", "/v1/reports/usage", "reports.usage", READ | ROUTE_CSV | ROUTE_STREAM, NULL},
};

#define ROUTES_COUNT (sizeof routes / sizeof routes[0])

/* The table as JSON, one object per route: {"method", "pattern", "path"
 * (the OpenAPI template: "{bld:id}" is "{id}", "{:kind}" is "{kind}"),
 * "op" (null for a handler of its own), and the flags as booleans}.  The
 * authorization matrix (tests/spec/http/authz_matrix_spec.lua) enumerates
 * the routes through `allotd --routes`, so a new route cannot skip it. */
static json_t *
route_json(const struct route *r)
{
    char path[256];
    size_t n = 0;
    for (const char *p = r->pattern; *p != '\0' && n + 1 < sizeof path; p++) {
        if (*p == '{' && strchr(p, ':') != NULL) {
            const char *colon = strchr(p, ':');
            const char *close = strchr(p, '}');
            bool has_prefix = colon > p + 1;
            const char *name = has_prefix ? "id" : colon + 1;
            size_t len = has_prefix ? 2 : (size_t)(close - colon - 1);
            n += (size_t)snprintf(path + n, sizeof path - n, "{%.*s}", (int)len, name);
            p = close;
            continue;
        }
        path[n++] = *p;
    }
    path[n < sizeof path ? n : sizeof path - 1] = '\0';
    return json_pack("{s:s, s:s, s:s, s:s?, s:b, s:b, s:b, s:b, s:b, s:b}", "method", r->method,
                     "pattern", r->pattern, "path", path, "op", r->op, "body",
                     (r->flags & ROUTE_BODY) != 0, "query", (r->flags & ROUTE_QUERY) != 0,
                     "idempotent", (r->flags & ROUTE_IDEMPOTENT) != 0, "public",
                     (r->flags & ROUTE_PUBLIC) != 0, "csv", (r->flags & ROUTE_CSV) != 0,
                     "fake_clock", (r->flags & ROUTE_FAKE_CLOCK) != 0);
}

int
http_routes_print(FILE *f)
{
    json_t *all = json_array();
    for (size_t i = 0; all != NULL && i < ROUTES_COUNT; i++) {
        if (json_array_append_new(all, route_json(&routes[i])) != 0) {
            json_decref(all);
            all = NULL;
        }
    }
    int rc = all != NULL && json_dumpf(all, f, JSON_INDENT(1)) == 0 && fputc('\n', f) != EOF
                 ? 0
                 : ENG_ENOMEM;
    json_decref(all);
    return rc;
}

/* ---------- matching ---------- */

static const char *
segment_end(const char *s)
{
    while (*s != '\0' && *s != '/') {
        s++;
    }
    return s;
}

/* Binds one "{prefix:arg}" pattern segment to a path segment. */
static bool
bind_param(const char *pat, size_t plen, const char *seg, size_t slen, struct route_params *p)
{
    const char *colon = memchr(pat, ':', plen);
    if (colon == NULL || slen == 0 || slen > ROUTE_SEGMENT_BYTES_MAX ||
        p->count == ROUTE_PARAMS_MAX) {
        return false;
    }
    size_t prefix_len = (size_t)(colon - pat) - 1;
    size_t name_len = plen - prefix_len - 3; /* '{', ':', '}' */
    char *name = p->names[p->count];
    char *value = p->values[p->count];
    snprintf(name, ROUTE_PARAM_NAME_MAX, "%.*s", (int)name_len, colon + 1);
    memcpy(value, seg, slen);
    value[slen] = '\0';
    if (prefix_len > 0) {
        char prefix[16];
        int64_t id;
        snprintf(prefix, sizeof prefix, "%.*s", (int)prefix_len, pat + 1);
        if (id_parse(prefix, value, &id) != 0) {
            return false;
        }
    }
    p->count++;
    return true;
}

static bool
route_match(const char *pattern, const char *path, struct route_params *p)
{
    p->count = 0;
    while (*pattern == '/' && *path == '/') {
        pattern++;
        path++;
        const char *pend = segment_end(pattern), *send = segment_end(path);
        size_t plen = (size_t)(pend - pattern), slen = (size_t)(send - path);
        if (plen > 2 && pattern[0] == '{') {
            if (!bind_param(pattern, plen, path, slen, p)) {
                return false;
            }
        } else if (plen != slen || memcmp(pattern, path, plen) != 0) {
            return false;
        }
        pattern = pend;
        path = send;
    }
    return *pattern == '\0' && *path == '\0';
}

/* The route for the request, or NULL with the methods the path does allow
 * (for 405) written into `allow` (empty: no such path). */
/* Each pattern's literal start, up to its first parameter: a path that
 * does not begin with it cannot match, which one strncmp tells for most of
 * the table (walking every pattern segment by segment cost a quote ~7,000
 * instructions). */
static size_t route_literal[ROUTES_COUNT];
static pthread_once_t route_literal_once = PTHREAD_ONCE_INIT;

static void
route_literal_init(void)
{
    for (size_t i = 0; i < ROUTES_COUNT; i++) {
        route_literal[i] = strcspn(routes[i].pattern, "{");
    }
}

static const struct route *
route_find(const struct http_req *rq, struct route_params *p, char *allow, size_t cap)
{
    allow[0] = '\0';
    pthread_once(&route_literal_once, route_literal_init);
    for (size_t i = 0; i < ROUTES_COUNT; i++) {
        const struct route *r = &routes[i];
        if ((r->flags & ROUTE_FAKE_CLOCK) != 0 && !rq->srv->cfg.fake_clock) {
            continue; /* without --fake-clock the route does not exist */
        }
        if (strncmp(rq->path, r->pattern, route_literal[i]) != 0 ||
            !route_match(r->pattern, rq->path, p)) {
            continue;
        }
        const char *method = rq->ri->request_method;
        if (strcmp(r->method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
            return r; /* HEAD is a GET without the body */
        }
        size_t used = strlen(allow);
        snprintf(allow + used, cap - used, "%s%s", used > 0 ? ", " : "", r->method);
    }
    return NULL;
}

/* ---------- authentication ---------- */

static int
authenticate(struct http_req *rq, struct eng_error *err)
{
    const char *h = http_header(rq, "Authorization");
    while (h != NULL && (*h == ' ' || *h == '\t')) {
        h++;
    }
    if (h == NULL || *h == '\0') {
        return engine_authenticate(rq->srv->eng, NULL, &rq->who, err);
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        return eng_error_code(err, ENG_EUNAUTH, "unauthorized",
                              "use Authorization: Bearer <api key>");
    }
    h += 7;
    while (*h == ' ' || *h == '\t') {
        h++;
    }
    char key[AUTH_KEY_BYTES_MAX + 2];
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t')) {
        n--;
    }
    if (n > AUTH_KEY_BYTES_MAX) {
        n = AUTH_KEY_BYTES_MAX + 1; /* still refused, without hashing it all */
    }
    memcpy(key, h, n);
    key[n] = '\0';
    return engine_authenticate(rq->srv->eng, key, &rq->who, err);
}

int
http_api(struct http_req *rq)
{
    struct route_params params;
    char allow[ALLOW_BYTES_MAX];
    const struct route *r = route_find(rq, &params, allow, sizeof allow);
    if (r == NULL && allow[0] != '\0') {
        char extra[ALLOW_BYTES_MAX + 16];
        snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
        return http_send_error_with(rq, 405, "method_not_allowed", NULL,
                                    "this method is not allowed here", extra);
    }
    if (r == NULL) {
        return http_send_error(rq, 404, "not_found", NULL, "there is nothing at this path");
    }
    rq->head_only = strcmp(rq->ri->request_method, "HEAD") == 0;
    if ((r->flags & ROUTE_PUBLIC) == 0) {
        struct eng_error err = {0};
        if (authenticate(rq, &err) != 0) {
            return http_send_eng_error(rq, &err);
        }
    }
    return r->fn != NULL ? r->fn(rq, r, &params) : route_exec(rq, r, &params);
}

/* ---------- operations ---------- */

static int
invalid(struct eng_error *err, const char *field, const char *msg)
{
    eng_error_code(err, ENG_EINVAL, "invalid_request", "%s", msg);
    eng_error_field(err, field);
    return ENG_EINVAL;
}

/* Path ids win over nothing: a body naming the same argument must agree. */
static int
add_path_params(json_t *args, const struct route_params *p, struct eng_error *err)
{
    for (int i = 0; i < p->count; i++) {
        json_t *given = json_object_get(args, p->names[i]);
        if (given != NULL &&
            (!json_is_string(given) || strcmp(json_string_value(given), p->values[i]) != 0)) {
            return invalid(err, p->names[i], "this field is given by the path and must not "
                                             "differ from it");
        }
        json_object_set_new(args, p->names[i], json_string(p->values[i]));
    }
    return 0;
}

static int
build_args(struct http_req *rq, const struct route *r, const struct route_params *p,
           json_t **args, struct eng_error *err)
{
    *args = NULL;
    if ((r->flags & ROUTE_BODY) != 0) {
        if (http_read_json(rq, args, err) != 0) {
            return err->status;
        }
    } else if (http_has_body(rq)) {
        http_skip_body(rq);
        return invalid(err, "", "this route takes no request body");
    } else {
        *args = json_object();
    }
    const char *q = rq->ri->query_string;
    if ((r->flags & ROUTE_QUERY) != 0) {
        if (http_query_to_args(rq, *args, err) != 0) {
            return err->status;
        }
    } else if (q != NULL && q[0] != '\0') {
        return invalid(err, "", "this route takes no query parameters");
    }
    return add_path_params(*args, p, err);
}

static int
idempotency_key(struct http_req *rq, const struct route *r, const char **key,
                struct eng_error *err)
{
    *key = NULL;
    const char *h = http_header(rq, "Idempotency-Key");
    if (h == NULL || (r->flags & ROUTE_IDEMPOTENT) == 0) {
        return 0;
    }
    if (http_header_count(rq, "Idempotency-Key") > 1) {
        /* Which one would the retry send?  Answers would differ by key. */
        return invalid(err, "Idempotency-Key", "send one Idempotency-Key header, not several");
    }
    size_t n = strlen(h);
    if (n == 0 || n > IDEMPOTENCY_KEY_BYTES_MAX) {
        return invalid(err, "Idempotency-Key", "the Idempotency-Key header must hold 1 to 200 "
                                               "characters");
    }
    for (size_t i = 0; i < n; i++) {
        if (h[i] < 0x20 || h[i] > 0x7e) {
            return invalid(err, "Idempotency-Key", "the Idempotency-Key header must be "
                                                   "printable ASCII");
        }
    }
    *key = h;
    return 0;
}

/* The q of media range `type` in an Accept value (1000 = q=1, in
 * thousandths; -1 when not listed). */
static int
accept_q(const char *accept, const char *type)
{
    size_t tlen = strlen(type);
    const char *p = accept;
    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        size_t mlen = 0;
        while (mlen < len && p[mlen] != ';' && p[mlen] != ' ' && p[mlen] != '\t') {
            mlen++;
        }
        if (mlen == tlen && strncasecmp(p, type, tlen) == 0) {
            int q = 1000;
            for (size_t i = mlen; i + 2 < len; i++) {
                if ((p[i] == 'q' || p[i] == 'Q') && p[i + 1] == '=' &&
                    (i == 0 || p[i - 1] == ';' || p[i - 1] == ' ')) {
                    /* "0", "0.5", "1", "1.000": three decimals at most. */
                    const char *v = p + i + 2;
                    q = (*v == '1') ? 1000 : 0;
                    if (*v == '0' && v[1] == '.') {
                        int scale = 100;
                        for (v += 2; *v >= '0' && *v <= '9' && scale > 0; v++, scale /= 10) {
                            q += (*v - '0') * scale;
                        }
                    }
                    break;
                }
            }
            return q;
        }
        p = end;
    }
    return -1;
}

/* CSV by Accept: text/csv listed with q > 0, and not below an explicit
 * application/json (a tie is JSON's; wildcards do not count). */
static bool
accepts_csv(const struct http_req *rq)
{
    const char *a = http_header(rq, "Accept");
    if (a == NULL) {
        return false;
    }
    int csv = accept_q(a, "text/csv"), json = accept_q(a, "application/json");
    return csv > 0 && csv > json;
}

/* A report asked for as CSV: `?format=csv` or `Accept: text/csv`. */
static bool
wants_csv(const struct http_req *rq, const struct route *r, json_t *args)
{
    if ((r->flags & ROUTE_CSV) == 0) {
        return false;
    }
    json_t *format = json_object_get(args, "format");
    if (format == NULL && accepts_csv(rq)) {
        format = json_string("csv");
        json_object_set_new(args, "format", format);
    }
    return json_is_string(format) && strcmp(json_string_value(format), "csv") == 0;
}

/* Renders a report's table {"columns", "rows"} (what a report op answers
 * for format=csv) as the CSV download. */
static int
send_csv(struct http_req *rq, const struct route *r, const json_t *out)
{
    if (json_object_get(out, "columns") == NULL) {
        return http_send_json(rq, 200, out, NULL);
    }
    char *text = csv_report(out);
    if (text == NULL) {
        struct eng_error err = {0};
        eng_error_set(&err, ENG_ENOMEM, "out of memory");
        return http_send_eng_error(rq, &err);
    }
    const char *name = strchr(r->op, '.') != NULL ? strchr(r->op, '.') + 1 : r->op;
    /* A page (`limit`): its cursor in X-Next-Cursor, the header absent on
     * the last page.  Cursors are short ASCII ("c_1234"). */
    const char *cursor = json_string_value(json_object_get(out, "next_cursor"));
    char extra[256];
    snprintf(extra, sizeof extra,
             "Content-Disposition: attachment; filename=\"%s.csv\"\r\n%s%s%s", name,
             cursor != NULL && strlen(cursor) < 64 ? "X-Next-Cursor: " : "",
             cursor != NULL && strlen(cursor) < 64 ? cursor : "",
             cursor != NULL && strlen(cursor) < 64 ? "\r\n" : "");
    int rc = http_send(rq, 200, "text/csv; charset=utf-8", text, strlen(text), extra);
    free(text);
    return rc;
}

/* Text answers up to this size stay on the stack (a booking's is ~700
 * bytes); http_send's own stack buffer comes on top (response.c). */
#define ROUTE_TEXT_STACK_BYTES 4096

static int
route_exec(struct http_req *rq, const struct route *r, const struct route_params *params)
{
    struct eng_error err = {0};
    json_t *args = NULL;
    const char *idem = NULL;
    if (build_args(rq, r, params, &args, &err) != 0 ||
        idempotency_key(rq, r, &idem, &err) != 0) {
        json_decref(args);
        return http_send_eng_error(rq, &err);
    }
    bool csv = wants_csv(rq, r, args);
    if ((r->flags & ROUTE_STREAM) != 0 && json_object_get(args, "limit") == NULL) {
        int status = http_export(rq, r->op, args, csv);
        json_decref(args);
        return status;
    }
    json_t *out = NULL;
    bool created = false;
    bool replayed = false;
    /* Quotes and bookings answer as text, written straight into this
     * buffer (engine_exec_text); other operations as trees, rendered by
     * http_send_json.  Either way the response leaves in one write. */
    char small[ROUTE_TEXT_STACK_BYTES];
    struct json_buf text;
    json_buf_init(&text, small, sizeof small);
    int rc = engine_exec_text(rq->srv->eng, &rq->who, r->op, args, idem, &text, &out, &created,
                              &replayed, &err);
    json_decref(args);
    const char *replay_header = replayed ? "Idempotent-Replayed: true\r\n" : NULL;
    if (rc == 0 && out == NULL) {
        rc = http_send(rq, created ? 201 : 200, "application/json", text.data, text.len,
                       replay_header);
        json_buf_free(&text);
        return rc;
    }
    json_buf_free(&text);
    if (rc != 0 && replayed) {
        /* A stored refusal: the same status and body as the first time.
         * Only engine statuses are stored, so error.h's table applies. */
        return http_send_error_details(rq, eng_error_http_status(&err), eng_error_code_of(&err),
                                       err.field, err.msg, err.details, replay_header);
    }
    if (rc != 0) {
        return http_send_eng_error(rq, &err);
    }
    if (csv) {
        rc = send_csv(rq, r, out);
    } else {
        rc = http_send_json(rq, created ? 201 : 200, out, replay_header);
    }
    json_decref(out);
    return rc;
}

/* ---------- handlers ---------- */

static int
route_health(struct http_req *rq, const struct route *r, const struct route_params *params)
{
    (void)r;
    (void)params;
    static const char ok[] = "{\"status\":\"ok\"}";
    return http_send(rq, 200, "application/json", ok, sizeof ok - 1, NULL);
}

static int
route_openapi(struct http_req *rq, const struct route *r, const struct route_params *params)
{
    (void)r;
    (void)params;
    return http_send_web_file(rq, "openapi.json", "application/json");
}

/* Reads {"now": RFC 3339} into *t. */
static int
clock_body(struct http_req *rq, int64_t *t, struct eng_error *err)
{
    json_t *body = NULL;
    if (http_read_json(rq, &body, err) != 0) {
        return err->status;
    }
    json_t *now = json_object_get(body, "now");
    int rc = 0;
    if (json_object_size(body) != 1 || !json_is_string(now) ||
        time_parse_rfc3339(json_string_value(now), t, err) != 0) {
        rc = invalid(err, "now", "the body must be {\"now\": an RFC 3339 time}");
    }
    json_decref(body);
    return rc;
}

/* PUT /v1/clock {"now": "..."}: a test tool, so only a super_admin may
 * move time; the engine processes every boundary up to the new instant
 * before this answers. */
static int
route_clock(struct http_req *rq, const struct route *r, const struct route_params *params)
{
    (void)r;
    (void)params;
    struct eng_error err = {0};
    int64_t t = 0;
    if (rq->who.role != ROLE_SUPER_ADMIN) {
        eng_error_code(&err, ENG_EFORBIDDEN, "forbidden", "only a super_admin may set the clock");
        return http_send_eng_error(rq, &err);
    }
    if (clock_body(rq, &t, &err) != 0 || engine_set_clock(rq->srv->eng, t, &err) != 0) {
        return http_send_eng_error(rq, &err);
    }
    char text[32];
    time_format_rfc3339(engine_now(rq->srv->eng), text, sizeof text);
    json_t *out = json_pack("{s:s}", "now", text);
    int rc = http_send_json(rq, 200, out, NULL);
    json_decref(out);
    return rc;
}

/* PUT /v1/buildings/{id}/policies/{kind} with the Lua source as a
 * text/x-lua body: the source is compiled and self-checked by the engine,
 * and the answer is the new version or 422 with the compiler's words. */
static int
route_policy_put(struct http_req *rq, const struct route *r, const struct route_params *params)
{
    struct eng_error err = {0};
    const char *ct = http_header(rq, "Content-Type");
    if (ct == NULL || (strncasecmp(ct, "text/x-lua", 10) != 0 &&
                       strncasecmp(ct, "text/plain", 10) != 0)) {
        http_skip_body(rq);
        eng_error_code(&err, ENG_EINVAL, "unsupported_media_type",
                       "send the policy source as Content-Type: text/x-lua");
        return http_send_error(rq, 415, "unsupported_media_type", NULL, err.msg);
    }
    char *buf = NULL;
    size_t len = 0;
    if (http_read_body(rq, &buf, &len, &err) != 0) {
        return http_send_eng_error(rq, &err);
    }
    json_t *source = json_stringn(buf, len);
    free(buf);
    if (source == NULL) {
        /* A rejected upload (API.md: 422 policy_error), like one that does
         * not compile: a binary chunk ("\27Lua...") is never loaded. */
        eng_error_code(&err, ENG_EREJECTED, "policy_error",
                       "the policy source must be Lua text (UTF-8, no NUL bytes): binary "
                       "chunks are refused");
        eng_error_field(&err, "source");
        return http_send_eng_error(rq, &err);
    }
    json_t *args = json_pack("{s:o}", "source", source);
    if (add_path_params(args, params, &err) != 0) {
        json_decref(args);
        return http_send_eng_error(rq, &err);
    }
    json_t *out = NULL;
    bool created = false;
    bool replayed = false;
    int rc = engine_exec(rq->srv->eng, &rq->who, r->op, args, NULL, &out, &created, &replayed,
                         &err);
    json_decref(args);
    if (rc != 0) {
        return http_send_eng_error(rq, &err);
    }
    rc = http_send_json(rq, created ? 201 : 200, out, NULL);
    json_decref(out);
    return rc;
}

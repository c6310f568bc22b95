/* test_stream.c - engine_exec_stream: reports that hand their rows to a
 * sink one at a time (issue 10 R2), on an engine over a temporary file.
 *
 * Covers: an unpaged usage report streams every row to the sink, columns
 * first, and answers only {"rows": n}; with `limit` it pages as before and
 * leaves the sink alone; a sink that refuses a row stops the report, which
 * fails (so a face never ends a cut export as complete); the credit report
 * streams too; a report that does not stream (the dashboard) answers as
 * engine_exec does; a write cannot be streamed. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "engine.h"

static struct principal console = {.role = ROLE_SUPER_ADMIN, .name = "console"};

static json_t *
exec_ok(struct engine *eng, const char *op, const char *args_text)
{
    json_error_t jerr;
    json_t *args = json_loads(args_text, 0, &jerr);
    json_t *out = NULL;
    bool created, replayed;
    struct eng_error err = {0};
    int rc = engine_exec(eng, &console, op, args, NULL, &out, &created, &replayed, &err);
    json_decref(args);
    if (rc != 0) {
        fprintf(stderr, "%s failed: %s %s\n", op, err.code, err.msg);
        exit(2);
    }
    return out;
}

static void
id_of(json_t *out, char *id, size_t len)
{
    snprintf(id, len, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
}

struct counting_sink {
    int begun, rows, fail_at; /* fail_at: refuse that row (1-based), 0 never */
    char first_column[32], first_booking[32];
};

static int
count_begin(void *ud, const char *const columns[])
{
    struct counting_sink *c = ud;
    c->begun++;
    snprintf(c->first_column, sizeof c->first_column, "%s", columns[0]);
    return 0;
}

static int
count_row(void *ud, const json_t *row)
{
    struct counting_sink *c = ud;
    c->rows++;
    if (c->rows == 1) {
        const char *id = json_string_value(json_object_get(row, "booking_id"));
        snprintf(c->first_booking, sizeof c->first_booking, "%s", id != NULL ? id : "");
    }
    return c->rows == c->fail_at ? -1 : 0;
}

static int
stream(struct engine *eng, const char *op, const char *args_text, struct counting_sink *c,
       json_t **out, struct eng_error *err)
{
    json_error_t jerr;
    json_t *args = json_loads(args_text, 0, &jerr);
    struct row_sink sink = {count_begin, count_row, c};
    int rc = engine_exec_stream(eng, &console, op, args, &sink, out, err);
    json_decref(args);
    return rc;
}

int
main(void)
{
    char dir[] = "/tmp/allot_stream_XXXXXX";
    if (mkdtemp(dir) == NULL) {
        return 2;
    }
    struct engine_config cfg;
    engine_config_default(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s/a.db", dir);
    const char *pol = getenv("ALLOT_POLICIES");
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s", pol != NULL ? pol : "policies");
    cfg.fake_clock = true;
    cfg.fake_now = 1767225600; /* 2026-01-01T00:00:00Z */
    struct engine eng;
    struct eng_error err = {0};
    if (engine_open(&eng, &cfg, &err) != 0) {
        fprintf(stderr, "engine_open: %s\n", err.msg);
        return 2;
    }
    char building[32], tenant[32], user[32], room[32], args[1024];
    id_of(exec_ok(&eng, "buildings.create",
                  "{\"name\":\"HQ\",\"timezone\":\"UTC\",\"currency\":\"EUR\","
                  "\"payment\":{\"credits\":true,\"invoice\":true,\"card\":true}}"),
          building, sizeof building);
    snprintf(args, sizeof args, "{\"name\":\"Acme\",\"building_ids\":[\"%s\"]}", building);
    id_of(exec_ok(&eng, "tenants.create", args), tenant, sizeof tenant);
    snprintf(args, sizeof args,
             "{\"tenant_id\":\"%s\",\"name\":\"Ada\",\"email\":\"ada@example.com\"}", tenant);
    id_of(exec_ok(&eng, "users.create", args), user, sizeof user);
    snprintf(args, sizeof args,
             "{\"building_id\":\"%s\",\"name\":\"Room\",\"pricing\":{\"money\":{\"per_hour\":"
             "7000},\"credits\":{\"per_hour\":1,\"increment_minutes\":30}}}",
             building);
    id_of(exec_ok(&eng, "resources.create", args), room, sizeof room);
    snprintf(args, sizeof args,
             "{\"tenant_id\":\"%s\",\"building_ids\":[\"%s\"],\"unit\":\"hour\","
             "\"lines\":[{\"scope\":\"all\",\"amount\":10}],"
             "\"schedule\":{\"start\":\"2026-01-01\",\"recurrence\":\"monthly\"}}",
             tenant, building);
    json_decref(exec_ok(&eng, "allocations.create", args));
    enum { BOOKINGS = 5 };
    for (int i = 0; i < BOOKINGS; i++) {
        snprintf(args, sizeof args,
                 "{\"resource_id\":\"%s\",\"user_id\":\"%s\",\"start\":\"2026-01-05T%02d:00:00Z\","
                 "\"end\":\"2026-01-05T%02d:00:00Z\",\"payment_method\":\"card\"}",
                 room, user, 8 + i, 9 + i);
        json_decref(exec_ok(&eng, "bookings.create", args));
    }

    /* Unpaged: every row to the sink, columns first; only a count back. */
    struct counting_sink c = {0};
    json_t *out = NULL;
    CHECK_INT(stream(&eng, "reports.usage", "{\"format\":\"csv\"}", &c, &out, &err), 0);
    CHECK_INT(c.begun, 1);
    CHECK_STR(c.first_column, "booking_id");
    CHECK_INT(c.rows, BOOKINGS);
    CHECK_STR(c.first_booking, "bkg_1");
    CHECK_INT(json_integer_value(json_object_get(out, "rows")), BOOKINGS);
    CHECK(json_object_get(out, "data") == NULL);
    json_decref(out);

    /* With a cursor: the rows after it. */
    memset(&c, 0, sizeof c);
    CHECK_INT(stream(&eng, "reports.usage", "{\"cursor\":\"c_2\"}", &c, &out, &err), 0);
    CHECK_INT(c.rows, BOOKINGS - 2);
    CHECK_STR(c.first_booking, "bkg_3");
    json_decref(out);

    /* Paged: a page as before; the sink is not used. */
    memset(&c, 0, sizeof c);
    CHECK_INT(stream(&eng, "reports.usage", "{\"limit\":2}", &c, &out, &err), 0);
    CHECK_INT(c.begun + c.rows, 0);
    CHECK_INT(json_array_size(json_object_get(out, "data")), 2);
    CHECK(json_is_string(json_object_get(out, "next_cursor")));
    json_decref(out);

    /* A sink that refuses the third row stops the report, which fails. */
    memset(&c, 0, sizeof c);
    c.fail_at = 3;
    out = NULL;
    CHECK(stream(&eng, "reports.usage", "{}", &c, &out, &err) != 0);
    CHECK_INT(c.rows, 3);
    CHECK(out == NULL);

    /* The credit report streams its allocations. */
    memset(&c, 0, sizeof c);
    CHECK_INT(stream(&eng, "reports.credits", "{\"format\":\"csv\"}", &c, &out, &err), 0);
    CHECK_INT(c.begun, 1);
    CHECK_STR(c.first_column, "allocation_id");
    CHECK_INT(c.rows, 1);
    json_decref(out);

    /* A report that does not stream answers as engine_exec does. */
    memset(&c, 0, sizeof c);
    CHECK_INT(stream(&eng, "reports.dashboard", "{}", &c, &out, &err), 0);
    CHECK_INT(c.begun + c.rows, 0);
    CHECK(json_is_object(out) && json_object_size(out) > 0);
    json_decref(out);

    /* Validation still comes first: nothing reaches the sink. */
    memset(&c, 0, sizeof c);
    CHECK_INT(stream(&eng, "reports.usage", "{\"unit\":\"litre\"}", &c, &out, &err), ENG_EINVAL);
    CHECK_INT(c.begun + c.rows, 0);

    /* Writes do not stream. */
    CHECK_INT(stream(&eng, "bookings.create", "{}", &c, &out, &err), ENG_EINVAL);

    engine_close(&eng);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return check_exit();
}

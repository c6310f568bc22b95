/* test_store_reports.c - the reports' store queries (store/reports.c) and
 * the CSV of a report table (csv_report): rows stream through callbacks, a
 * callback's non-zero answer stops and comes back as is, and a failing query
 * is ENG_ESTORE, never "no rows" or zero figures. */
#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "csv.h"
#include "reports.h"

/* Raw SQL on a second connection: seeds rows and breaks the schema. */
static void
raw(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    CHECK_INT(rc, SQLITE_OK);
    sqlite3_close(db);
}

static int
count_usage(void *ud, const struct usage_row *row)
{
    (void)row;
    (*(int *)ud)++;
    return 0;
}

static int
stop_usage(void *ud, const struct usage_row *row)
{
    (void)ud;
    return row->booking_id == 2 ? 42 : 0;
}

static int
count_credit(void *ud, const struct credit_report_row *row)
{
    (void)row;
    (*(int *)ud)++;
    return 0;
}

static int
count_entry(void *ud, const struct hub_entry_row *row)
{
    (void)row;
    (*(int *)ud)++;
    return 0;
}

static int
count_unl(void *ud, const struct hub_unlimited_row *row)
{
    (void)row;
    (*(int *)ud)++;
    return 0;
}

static const char SEED[] =
    "INSERT INTO building (id, name, timezone, currency, pay_credits, pay_invoice, pay_card,"
    " created_at) VALUES (1, 'HQ', 'UTC', 'USD', 1, 1, 1, 0);"
    "INSERT INTO tenant (id, name, cross_building, created_at) VALUES (1, 'Acme', 0, 0);"
    "INSERT INTO user (id, tenant_id, name, email, roles, created_at)"
    " VALUES (1, 1, 'Ada', 'a@x.io', '[]', 0);"
    "INSERT INTO resource (id, building_id, name, kind, tags, pricing, credit_only, created_at)"
    " VALUES (1, 1, 'Room', 'meeting_room', '[]', '{}', 0, 0);";

static const char BOOKINGS[] =
    "INSERT INTO booking (id, resource_id, building_id, tenant_id, user_id, start_at, end_at,"
    " status, payment_method, unit, credits, money, currency, discount_pm, policy_versions,"
    " created_at, created_by) VALUES"
    " (1, 1, 1, 1, 1, 100, 200, 'confirmed', 'card', NULL, NULL, 7000, 'USD', 0, '{}', 50, 'x'),"
    " (2, 1, 1, 1, 1, 300, 400, 'cancelled', 'card', NULL, NULL, 7000, 'USD', 0, '{}', 50, 'x'),"
    " (3, 1, 1, 1, 1, 500, 600, 'confirmed', 'card', NULL, NULL, 7000, 'USD', 0, '{}', 50, 'x');";

static void
test_rows(struct store *s)
{
    struct eng_error err = {0};
    struct usage_filter u = {.from_t = INT64_MIN, .to_t = INT64_MAX, .limit = 10};
    int n = 0;
    CHECK_INT(store_usage_each(s, &u, count_usage, &n, &err), 0);
    CHECK_INT(n, 3);
    /* A callback's stop comes back as is. */
    CHECK_INT(store_usage_each(s, &u, stop_usage, NULL, &err), 42);
    /* The limit and the cursor. */
    u.limit = 2;
    n = 0;
    CHECK_INT(store_usage_each(s, &u, count_usage, &n, &err), 0);
    CHECK_INT(n, 2);
    u.after = 2;
    n = 0;
    CHECK_INT(store_usage_each(s, &u, count_usage, &n, &err), 0);
    CHECK_INT(n, 1);
    struct dash_filter d = {.unit = "hour", .now = 1000, .since = 0};
    struct dash_figures fig;
    CHECK_INT(store_dashboard(s, &d, &fig, &err), 0);
    CHECK_INT(fig.used, 0);
    CHECK(!fig.has_top);
}

/* With the tables gone every query fails loudly. */
static void
test_failures(struct store *s)
{
    struct eng_error err = {0};
    int n = 0;
    struct usage_filter u = {.from_t = INT64_MIN, .to_t = INT64_MAX, .limit = 10};
    CHECK_INT(store_usage_each(s, &u, count_usage, &n, &err), ENG_ESTORE);
    CHECK_STR(eng_error_code_of(&err), "storage_error");
    struct credit_filter c = {.limit = 10};
    CHECK_INT(store_credit_report_each(s, &c, count_credit, &n, &err), ENG_ESTORE);
    struct dash_filter d = {.unit = "hour", .now = 1000};
    struct dash_figures fig;
    CHECK_INT(store_dashboard(s, &d, &fig, &err), ENG_ESTORE);
    struct hub_filter h = {.unit = "hour", .window_lo = 0, .window_hi = 1000};
    CHECK_INT(store_hub_entries_each(s, &h, count_entry, &n, &err), ENG_ESTORE);
    h.tenant_id = 1;
    CHECK_INT(store_hub_entries_each(s, &h, count_entry, &n, &err), ENG_ESTORE);
    h.tenant_id = 0;
    h.building_id = 1;
    CHECK_INT(store_hub_unlimited_each(s, &h, count_unl, &n, &err), ENG_ESTORE);
    CHECK_INT(n, 0);
}

static void
test_csv_report(void)
{
    json_t *table = json_pack("{s:[s, s, s], s:[{s:s, s:f, s:n}, {s:s, s:[s, s]}]}", "columns",
                              "name", "amount", "end", "rows", "name", "a, \"b\"", "amount",
                              1.5, "end", "name", "plain", "amount", "x", "y");
    char *text = csv_report(table);
    CHECK_STR(text, "name,amount,end\r\n\"a, \"\"b\"\"\",1.5,\r\nplain,x y,\r\n");
    free(text);
    json_decref(table);
    json_t *not_table = json_pack("{s:s}", "csv", "x");
    CHECK(csv_report(not_table) == NULL);
    json_decref(not_table);
}

int
main(void)
{
    char path[] = "/tmp/allot_test_reports_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    unlink(path);
    struct store *s = NULL;
    struct eng_error err = {0};
    CHECK_INT(store_open(&s, path, STORE_CREATE, 1000, 0, &err), 0);
    raw(path, SEED);
    raw(path, BOOKINGS);
    test_rows(s);
    raw(path, "PRAGMA foreign_keys = OFF; DROP TABLE booking; DROP TABLE entry;"
              " DROP TABLE lot;");
    test_failures(s);
    store_close(s);
    char side[sizeof path + 8];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    test_csv_report();
    return check_exit();
}

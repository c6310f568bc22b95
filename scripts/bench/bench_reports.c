/* bench_reports.c - builds a large portfolio through the engine and times
 * every report on it: 1,000 tenants, 20,000 users, 100,000 bookings and
 * about 1,000,000 ledger entries (per-user monthly pools, shared monthly
 * and once grants, a year of period ends, adjustments).
 *
 *   bench_reports [--db DIR] [--tenants N] [--bookings N] [--keep]
 *   bench_reports --open FILE     (time the reports of a kept database)
 *
 * Prints the portfolio's size, then "report: ms" lines (median of 5). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_util.h"
#include "engine.h"
#include "timeutil.h"

static int tenants_n = 1000, users_per = 20, rooms_n = 200;
static long bookings_n = 100000;
static char **tenants, **users, **rooms, *buildings[2];

/* Runs fn(i) for i in [0, n) on 16 threads (the writer batches them). */
struct range {
    long from, to;
    void (*fn)(long);
};

static void *
range_main(void *arg)
{
    struct range *r = arg;
    for (long i = r->from; i < r->to; i++) {
        r->fn(i);
    }
    return NULL;
}

static void
parallel(long n, void (*fn)(long))
{
    pthread_t tid[16];
    struct range rs[16];
    for (int t = 0; t < 16; t++) {
        rs[t] = (struct range){n * t / 16, n * (t + 1) / 16, fn};
        pthread_create(&tid[t], NULL, range_main, &rs[t]);
    }
    for (int t = 0; t < 16; t++) {
        pthread_join(tid[t], NULL);
    }
}

static void
make_tenant(long i)
{
    char name[32];
    snprintf(name, sizeof name, "Tenant %ld", i);
    tenants[i] = id_of(must("tenants.create", json_pack("{s:s, s:[s], s:b}", "name", name,
                                                        "building_ids", buildings[i % 2],
                                                        "cross_building", 0)));
}

static void
make_user(long i)
{
    char name[32];
    snprintf(name, sizeof name, "User %ld", i);
    users[i] = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id",
                                                    tenants[i / users_per], "name", name,
                                                    "email", "u@example.com")));
}

static void
make_allocations(long i)
{
    const char *b = buildings[i % 2];
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:s, s:[{s:s, s:i}], s:s, s:{s:s, s:s}}",
                               "tenant_id", tenants[i], "building_ids", b, "description",
                               "per-user monthly", "unit", "hour", "lines", "scope", "all",
                               "amount", 5, "pool", "per_user", "schedule", "start",
                               "2026-01-01", "recurrence", "monthly")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:s, s:[{s:s, s:i}], s:{s:s, s:s}}",
                               "tenant_id", tenants[i], "building_ids", b, "description",
                               "shared monthly", "unit", "hour", "lines", "scope", "all",
                               "amount", 100, "schedule", "start", "2026-01-01", "recurrence",
                               "monthly")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id",
                               tenants[i], "building_ids", b, "description", "once coins",
                               "unit", "coin", "lines", "scope", "all", "amount", 100000,
                               "schedule", "start", "2026-01-01")));
}

static void
make_booking(long n)
{
    /* Spread over 2026: each booking its own room-hour. */
    long tenant = n % tenants_n;
    long user = tenant * users_per + (n / tenants_n) % users_per;
    long half = rooms_n / 2;
    long room = (tenant % 2) * half + n % half;
    int64_t slot = n / half;
    int64_t day = slot % 360, hour = 8 + slot / 360 % 10;
    int64_t t0 = 1767225600 + 86400 * day + 3600 * hour;
    char s[32], e[32];
    time_format_rfc3339(t0, s, sizeof s);
    time_format_rfc3339(t0 + 3600, e, sizeof e);
    json_t *out = NULL;
    bool created;
    bool replayed;
    struct eng_error err = {0};
    json_t *args = json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[room], "user_id",
                             users[user], "start", s, "end", e, "payment_method",
                             (n / tenants_n) % 10 == 0 ? "card" : "credits");
    /* Some fail for lack of credits late in a month: that is fine. */
    if (engine_exec(&eng, &admin, "bookings.create", args, NULL, &out, &created, &replayed,
                    &err) != 0) {
        out = NULL;
    }
    json_decref(args);
    json_decref(out);
}

static long adjust_lots[1000];

static void
make_adjustment(long n)
{
    char lot[32];
    snprintf(lot, sizeof lot, "lot_%ld", adjust_lots[n % 1000]);
    json_decref(must("adjustments.create",
                     json_pack("{s:s, s:f, s:s}", "lot_id", lot, "amount", 0.5, "memo", "b")));
}

static double
time_op(const char *op, const char *json)
{
    double best[5];
    for (int k = 0; k < 5; k++) {
        json_t *args = json_loads(json, 0, NULL);
        double t0 = now_s();
        json_decref(must(op, args));
        best[k] = (now_s() - t0) * 1000;
    }
    /* median of 5 */
    for (int i = 0; i < 5; i++) {
        for (int j = i + 1; j < 5; j++) {
            if (best[j] < best[i]) {
                double x = best[i];
                best[i] = best[j];
                best[j] = x;
            }
        }
    }
    return best[2];
}

/* The benchmark's own read connection, to count rows independently of the
 * engine (the engine's store is not for outside callers). */
static sqlite3 *
bench_db(void)
{
    static sqlite3 *db;
    if (db == NULL && sqlite3_open_v2(eng.cfg.db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
                          SQLITE_OK) {
        fprintf(stderr, "bench: cannot open %s\n", eng.cfg.db_path);
        exit(1);
    }
    return db;
}

static long
count(const char *table)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st = NULL;
    long n = 0;
    if (sqlite3_prepare_v2(bench_db(), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        n = (long)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

int
main(int argc, char **argv)
{
    const char *dir = "/tmp";
    bool keep = false;
    const char *reuse = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--open") == 0 && i + 1 < argc) {
            reuse = argv[++i];
            keep = true;
            continue;
        }
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--tenants") == 0 && i + 1 < argc) {
            tenants_n = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--bookings") == 0 && i + 1 < argc) {
            bookings_n = atol(argv[++i]);
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        }
    }
    struct engine_config cfg;
    engine_config_default(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s/bench-reports-%d.db", dir, (int)getpid());
    if (reuse != NULL) {
        snprintf(cfg.db_path, sizeof cfg.db_path, "%s", reuse);
    }
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s/policies", ALLOT_SOURCE_DIR);
    cfg.fake_clock = true;
    cfg.fake_now = 1767225600 - 86400; /* 2025-12-31 */
    if (reuse != NULL) {
        cfg.fake_now = 1798761600 + 14 * 86400; /* where the build left it */
    }
    struct eng_error err = {0};
    if (engine_open(&eng, &cfg, &err) != 0 || engine_start_writer(&eng, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    double t0 = now_s();
    if (reuse != NULL) {
        goto timing;
    }
    buildings[0] = id_of(must("buildings.create", json_pack("{s:s, s:s, s:s}", "name", "North",
                                                            "timezone", "UTC", "currency", "USD")));
    buildings[1] = id_of(must("buildings.create",
                              json_pack("{s:s, s:s, s:s}", "name", "South", "timezone",
                                        "Europe/Paris", "currency", "EUR")));
    rooms = calloc((size_t)rooms_n, sizeof *rooms);
    tenants = calloc((size_t)tenants_n, sizeof *tenants);
    users = calloc((size_t)(tenants_n * users_per), sizeof *users);
    for (int i = 0; i < rooms_n; i++) {
        char name[32];
        snprintf(name, sizeof name, "Room %d", i);
        rooms[i] = id_of(must("resources.create",
                              json_pack("{s:s, s:s, s:{s:{s:i}, s:{s:s, s:i, s:i}}}",
                                        "building_id", buildings[i / (rooms_n / 2)], "name", name,
                                        "pricing", "money", "per_hour", 5000, "credits", "unit",
                                        "hour", "per_hour", 1, "increment_minutes", 30)));
    }
    parallel(tenants_n, make_tenant);
    parallel((long)tenants_n * users_per, make_user);
    parallel(tenants_n, make_allocations);
    printf("portfolio set up in %.1f s\n", now_s() - t0);
    t0 = now_s();
    parallel(bookings_n, make_booking);
    printf("%ld booking attempts in %.1f s\n", bookings_n, now_s() - t0);
    t0 = now_s();
    struct eng_error e2 = {0};
    if (engine_set_clock(&eng, 1798761600 + 14 * 86400, &e2) != 0) { /* 2027-01-15 */
        fprintf(stderr, "bench: clock: %s\n", e2.msg);
    }
    printf("a year of period boundaries processed in %.1f s\n", now_s() - t0);
    /* Top up to ~1,000,000 entries with adjustments on open once lots. */
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(bench_db(),
                       "SELECT id FROM lot WHERE closed = 0 AND unit = 'coin' LIMIT 1000", -1,
                       &st, NULL);
    int nlots = 0;
    while (sqlite3_step(st) == SQLITE_ROW && nlots < 1000) {
        adjust_lots[nlots++] = (long)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    long entries = count("entry");
    long missing = 1000000 - entries;
    if (missing > 0 && nlots == 1000) {
        t0 = now_s();
        parallel(missing, make_adjustment);
        printf("%ld adjustments in %.1f s\n", missing, now_s() - t0);
    }
timing:
    printf("tenants %ld, users %ld, bookings %ld, lots %ld, entries %ld\n", count("tenant"),
           count("user"), count("booking"), count("lot"), count("entry"));
    printf("datahub 12 months, hours, portfolio: %.0f ms\n",
           time_op("reports.datahub", "{\"unit\":\"hour\",\"from\":\"2026-01\",\"to\":\"2026-12\"}"));
    printf("datahub 12 months, coins, portfolio: %.0f ms\n",
           time_op("reports.datahub", "{\"unit\":\"coin\",\"from\":\"2026-01\",\"to\":\"2026-12\"}"));
    printf("datahub 12 months, hours, portfolio, CSV: %.0f ms\n",
           time_op("reports.datahub",
                   "{\"unit\":\"hour\",\"from\":\"2026-01\",\"to\":\"2026-12\",\"format\":\"csv\"}"));
    printf("datahub 12 months, one tenant: %.0f ms\n",
           time_op("reports.datahub",
                   "{\"unit\":\"hour\",\"from\":\"2026-01\",\"to\":\"2026-12\",\"tenant_id\":\"ten_7\"}"));
    printf("dashboard, portfolio: %.0f ms\n", time_op("reports.dashboard", "{\"unit\":\"hour\"}"));
    printf("dashboard, one building: %.0f ms\n",
           time_op("reports.dashboard", "{\"unit\":\"hour\",\"building_id\":\"bld_2\"}"));
    printf("dashboard, one tenant: %.0f ms\n",
           time_op("reports.dashboard", "{\"unit\":\"hour\",\"tenant_id\":\"ten_7\"}"));
    printf("credit management, portfolio: %.0f ms\n", time_op("reports.credits", "{}"));
    printf("usage, one month, portfolio: %.0f ms\n",
           time_op("reports.usage",
                   "{\"from\":\"2026-03-01T00:00:00Z\",\"to\":\"2026-04-01T00:00:00Z\"}"));
    engine_close(&eng);
    if (!keep) {
        unlink(cfg.db_path);
    } else {
        printf("database kept: %s\n", cfg.db_path);
    }
    return 0;
}

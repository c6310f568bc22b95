/* bench_engine.c - measures the engine without HTTP: credit bookings per
 * second (one transaction each, and batched by the group-commit writer),
 * balance and quote latency with 10 and with 100,000 entries on a lot, and
 * the cost of one pricing-policy call.  Durable: synchronous=FULL, WAL.
 *
 *   bench_engine [--db DIR] [--bookings N] [--threads T]
 *
 * Prints one "name: value unit" line per figure. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "engine.h"
#include "timeutil.h"


static char *building, *tenant, *user, *rooms[200];

static void
setup(void)
{
    building = id_of(must("buildings.create",
                          json_pack("{s:s, s:s, s:s}", "name", "Bench", "timezone", "UTC",
                                    "currency", "USD")));
    tenant = id_of(must("tenants.create", json_pack("{s:s, s:[s]}", "name", "T", "building_ids",
                                                    building)));
    user = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", tenant, "name",
                                                 "U", "email", "u@x.io")));
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "Room %d", i);
        rooms[i] = id_of(must(
            "resources.create",
            json_pack("{s:s, s:s, s:{s:{s:i}, s:{s:s, s:i, s:i}}}", "building_id", building,
                      "name", name, "pricing", "money", "per_hour", 7000, "credits", "unit",
                      "hour", "per_hour", 1, "increment_minutes", 30)));
    }
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id", tenant,
                               "building_ids", building, "unit", "hour", "lines", "scope", "all",
                               "amount", 1000000000, "schedule", "start", "2026-01-01")));
}

static json_t *
booking_args(long n)
{
    /* Every booking its own slot: 200 rooms x one hour each, going forward. */
    char s[32], e[32];
    int64_t t0 = 1767225600 + 86400 + (int64_t)(n / 200) * 3600;
    time_format_rfc3339(t0, s, sizeof s);
    time_format_rfc3339(t0 + 3600, e, sizeof e);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[n % 200], "user_id", user,
                     "start", s, "end", e, "payment_method", "credits");
}

struct worker {
    long from, to;
};

static void *
book_worker(void *arg)
{
    struct worker *w = arg;
    for (long n = w->from; n < w->to; n++) {
        json_decref(must("bookings.create", booking_args(n)));
    }
    return NULL;
}

static double
run_bookings(long first, long count, int threads)
{
    pthread_t tid[64];
    struct worker ws[64];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        ws[i].from = first + count * i / threads;
        ws[i].to = first + count * (i + 1) / threads;
        pthread_create(&tid[i], NULL, book_worker, &ws[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
    }
    return (double)count / (now_s() - t0);
}

/* Mean microseconds of one wallet read and one quote. */
static void
time_reads(const char *label)
{
    int n = 2000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        json_decref(must("wallet", json_pack("{s:s}", "user_id", user)));
    }
    double wallet_us = (now_s() - t0) / n * 1e6;
    t0 = now_s();
    for (int i = 0; i < n; i++) {
        json_decref(must("quotes.create",
                         json_pack("{s:s, s:s, s:s, s:s}", "resource_id", rooms[0], "user_id",
                                   user, "start", "2027-06-01T09:00:00Z", "end",
                                   "2027-06-01T10:30:00Z")));
    }
    double quote_us = (now_s() - t0) / n * 1e6;
    printf("balance (wallet) with %s entries on the lot: %.1f us\n", label, wallet_us);
    printf("quote with %s entries on the lot: %.1f us\n", label, quote_us);
}

struct adj_worker {
    const char *lot;
    int count;
};

static void *
adjust_worker(void *arg)
{
    struct adj_worker *w = arg;
    for (int i = 0; i < w->count; i++) {
        json_decref(must("adjustments.create",
                         json_pack("{s:s, s:i, s:s}", "lot_id", w->lot, "amount", 1, "memo",
                                   "bench")));
    }
    return NULL;
}

static void
bench_policy_call(void)
{
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    if (policy_cache_get(&eng.policies, NULL, 1, &set, NULL, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    json_t *ctx = json_pack(
        "{s:{s:s, s:s, s:[], s:b, s:{s:{s:i}, s:{s:s, s:i, s:i}}}, s:{s:s, s:s, s:s},"
        " s:{s:i, s:i, s:i, s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:i}, s:i}",
        "resource", "id", "res_1", "building_id", "bld_1", "tags", "credit_only", 0, "pricing",
        "money", "per_hour", 7000, "credits", "unit", "hour", "per_hour", 1,
        "increment_minutes", 30, "building", "id", "bld_1", "timezone", "UTC", "currency", "USD",
        "booking", "start", 0, "end", 5400, "minutes", 90, "local_start", "year", 2026, "month",
        1, "day", 1, "hour", 9, "minute", 0, "wday", 4, "discount_pm", 0, "now", 0);
    int n = 100000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        json_t *res = NULL;
        if (policy_set_call(set, POLICY_PRICING, ctx, &res, &err) != 0) {
            fprintf(stderr, "bench: %s\n", err.msg);
            exit(1);
        }
        json_decref(res);
    }
    printf("pricing policy call (default policy, real ctx): %.2f us\n",
           (now_s() - t0) / n * 1e6);
    json_decref(ctx);
    policy_set_release(set);
}

int
main(int argc, char **argv)
{
    const char *dir = "/tmp";
    long bookings = 3000;
    int threads = 16;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--db") == 0) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--bookings") == 0) {
            bookings = atol(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0) {
            threads = atoi(argv[++i]);
        }
    }
    struct engine_config cfg;
    engine_config_default(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s/bench-%d.db", dir, (int)getpid());
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s/policies", ALLOT_SOURCE_DIR);
    cfg.fake_clock = true;
    cfg.fake_now = 1767225600; /* 2026-01-01 */
    struct eng_error err = {0};
    if (engine_open(&eng, &cfg, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    setup();
    time_reads("1");
    printf("credit bookings, one transaction each (1 thread): %.0f /s\n",
           run_bookings(0, bookings, 1));
    if (engine_start_writer(&eng, &err) != 0) {
        return 1;
    }
    printf("credit bookings, group commit (%d threads): %.0f /s\n", threads,
           run_bookings(bookings, bookings * 4, threads));
    /* A fresh lot with 10 entries, then the same lot with 100,000. */
    json_t *wallet = must("wallet", json_pack("{s:s}", "user_id", user));
    const char *lot = json_string_value(
        json_object_get(json_array_get(json_object_get(wallet, "lots"), 0), "id"));
    struct adj_worker aw[16];
    pthread_t tid[16];
    double t0 = now_s();
    for (int i = 0; i < 16; i++) {
        aw[i] = (struct adj_worker){lot, 100000 / 16};
        pthread_create(&tid[i], NULL, adjust_worker, &aw[i]);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(tid[i], NULL);
    }
    printf("adjustments, group commit (16 threads): %.0f /s\n", 100000.0 / (now_s() - t0));
    char label[64];
    snprintf(label, sizeof label, "%ld", 1 + bookings * 5 + 100000);
    time_reads(label);
    json_decref(wallet);
    bench_policy_call();
    engine_close(&eng);
    unlink(cfg.db_path);
    return 0;
}

/* history_cost.c - instructions per credit booking as the user's history in
 * the month grows (issue 12: "cost flat in history").  In process, through
 * engine_exec with the group-commit writer thread running, so that
 * `callgrind --separate-threads=yes` tells the writer thread's share from
 * the caller's.  scripts/bench/history_cost.sh drives it.
 *
 *   history_cost prep DB N   a fresh database: one user, 8 rooms, a large
 *                            shared allocation, N credit bookings of that
 *                            user in January 2026 (each its own slot)
 *   history_cost run DB M    2 warm-up bookings, then M more
 *
 * Prints what it did; the figures are callgrind's: the script runs `run`
 * with M = 0 and M = 10, collecting only inside engine_exec (the caller's
 * thread) and writer_main (the writer thread), and divides the difference
 * by 10, so that opening, warming up and closing cancel out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "timeutil.h"

#define ROOMS 8
#define JAN_2026 1767225600 /* 2026-01-01T00:00:00Z */
#define SLOT_S 1800

static struct engine eng;
static struct principal admin = {.role = ROLE_SUPER_ADMIN, .name = "bench"};

/* Runs an op that must succeed (args consumed); a failure ends the run. */
static json_t *
must(const char *op, json_t *args)
{
    json_t *out = NULL;
    bool created, replayed;
    struct eng_error err = {0};
    if (engine_exec(&eng, &admin, op, args, NULL, &out, &created, &replayed, &err) != 0) {
        fprintf(stderr, "history_cost: %s failed: %s\n", op, err.msg);
        exit(1);
    }
    json_decref(args);
    return out;
}

static char *
id_of(json_t *obj)
{
    char *id = strdup(json_string_value(json_object_get(obj, "id")));
    json_decref(obj);
    return id;
}

/* Booking n: room n % ROOMS, the n / ROOMS-th half hour of January (UTC). */
static void
book(const char *user, char *const rooms[], long n)
{
    char s[32], e[32];
    int64_t t0 = JAN_2026 + (int64_t)(n / ROOMS) * SLOT_S;
    time_format_rfc3339(t0, s, sizeof s);
    time_format_rfc3339(t0 + SLOT_S, e, sizeof e);
    json_decref(must("bookings.create",
                     json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[n % ROOMS],
                               "user_id", user, "start", s, "end", e, "payment_method",
                               "credits")));
}

int
main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "prep") != 0 && strcmp(argv[1], "run") != 0)) {
        fprintf(stderr, "usage: history_cost prep|run DB N\n");
        return 2;
    }
    bool prep = strcmp(argv[1], "prep") == 0;
    long n = strtol(argv[3], NULL, 10);
    struct engine_config cfg;
    engine_config_default(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s", argv[2]);
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s/policies", ALLOT_SOURCE_DIR);
    cfg.fake_clock = true;
    cfg.fake_now = JAN_2026 - 86400;
    cfg.create = prep;
    struct eng_error err = {0};
    if (engine_open(&eng, &cfg, &err) != 0 || engine_start_writer(&eng, &err) != 0) {
        fprintf(stderr, "history_cost: %s\n", err.msg);
        return 1;
    }
    /* A fresh database numbers everything from 1. */
    char *user = strdup("usr_1"), *rooms[ROOMS];
    for (int i = 0; i < ROOMS; i++) {
        char id[32];
        snprintf(id, sizeof id, "res_%d", i + 1);
        rooms[i] = strdup(id);
    }
    long next = 0;
    if (prep) {
        char *building = id_of(must(
            "buildings.create",
            json_pack("{s:s, s:s, s:s}", "name", "Bench", "timezone", "UTC", "currency", "USD")));
        char *tenant = id_of(must("tenants.create", json_pack("{s:s, s:[s]}", "name", "T",
                                                              "building_ids", building)));
        char *u = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", tenant,
                                                        "name", "U", "email", "u@x.io")));
        for (int i = 0; i < ROOMS; i++) {
            char name[32];
            snprintf(name, sizeof name, "Room %d", i);
            char *r = id_of(must(
                "resources.create",
                json_pack("{s:s, s:s, s:{s:{s:i}, s:{s:s, s:i, s:i}}}", "building_id",
                          building, "name", name, "pricing", "money", "per_hour", 7000,
                          "credits", "unit", "hour", "per_hour", 1, "increment_minutes", 30)));
            if (strcmp(r, rooms[i]) != 0) {
                fprintf(stderr, "history_cost: expected %s, got %s\n", rooms[i], r);
                return 1;
            }
            free(r);
        }
        if (strcmp(u, user) != 0) {
            fprintf(stderr, "history_cost: expected %s, got %s\n", user, u);
            return 1;
        }
        json_decref(must("allocations.create",
                         json_pack("{s:s, s:[s], s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id",
                                   tenant, "building_ids", building, "unit", "hour", "lines",
                                   "scope", "all", "amount", 1000000000, "schedule", "start",
                                   "2026-01-01")));
        free(building);
        free(tenant);
        free(u);
        for (long i = 0; i < n; i++) {
            book(user, rooms, i);
        }
        printf("history_cost: %s holds %ld bookings of %s in January 2026\n", argv[2], n, user);
    } else {
        /* Slots follow the bookings prep made (their count is beside the file). */
        char path[4200];
        snprintf(path, sizeof path, "%s.count", argv[2]);
        FILE *f = fopen(path, "r");
        if (f == NULL || fscanf(f, "%ld", &next) != 1) {
            fprintf(stderr, "history_cost: cannot read %s\n", path);
            return 1;
        }
        fclose(f);
        book(user, rooms, next++);
        book(user, rooms, next++);
        for (long i = 0; i < n; i++) {
            book(user, rooms, next++);
        }
        printf("history_cost: %ld measured bookings after %ld\n", n, next - n);
    }
    if (prep) {
        char path[4200];
        snprintf(path, sizeof path, "%s.count", argv[2]);
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            return 1;
        }
        fprintf(f, "%ld\n", n);
        fclose(f);
    }
    engine_close(&eng);
    for (int i = 0; i < ROOMS; i++) {
        free(rooms[i]);
    }
    free(user);
    return 0;
}

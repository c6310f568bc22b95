/* history_cost.c - instructions per credit booking as the user's history in
 * the month grows (issue 12: "cost flat in history").  In process, through
 * engine_exec with the group-commit writer thread running, so that
 * `callgrind --separate-threads=yes` tells the writer thread's share from
 * the caller's.  scripts/bench/history_cost.sh drives it.
 *
 *   history_cost prep DB N [ROOMS]
 *       a fresh database: one user, ROOMS rooms (72), a large shared
 *       allocation, and N credit bookings of that user in January 2026
 *       made through the engine like any other, CLOCK_STEP_S apart: booking
 *       n is room n % ROOMS at the (HIST_ROW0 + n / ROOMS)-th half hour of
 *       the month.
 *       72 rooms hold 101,376 bookings; DB.count keeps N and ROOMS.
 *   history_cost run DB M
 *       one quote in each room, 2 warm-up bookings, then M more.
 *
 * The bookings a run makes are the same whatever N: the same rooms and
 * slots (half hours MEASURE_ROW0.. of January 31st, which no history
 * reaches), so that two histories differ only by the history.  Every slot
 * of either kind lies in the part of the month that is January in every
 * time zone, where the usage counters move in one statement (store/usage.c
 * month_add); a booking within 16 hours of the month's ends takes a slower
 * path, and an earlier layout compared one against the other.
 *
 * Prints what it did; the figures are callgrind's: the script runs `run`
 * with M = 0 and M > 0, collecting only inside engine_exec (the caller's
 * thread) and writer_main (the writer thread), and divides the difference
 * by M, so that opening, warming up and closing cancel out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "timeutil.h"

#define ROOMS_DEFAULT 72
#define ROOMS_MAX 256
#define JAN_2026 1767225600 /* 2026-01-01T00:00:00Z */
#define SLOT_S 1800
/* Half hours of January: the history from 16:00 on the 1st, the runs' at
 * 00:00 on the 31st, all before 08:00 on the 31st (store/usage.c
 * MONTH_EDGE_S). */
#define HIST_ROW0 32
/* The clock: the history is booked from December 2nd, one booking every
 * CLOCK_STEP_S seconds (100,000 by December 14th), each at its own
 * instant as real bookings are; the run goes on from where it ended. */
#define CLOCK0 (JAN_2026 - 30 * 86400)
#define CLOCK_STEP_S 10
#define MEASURE_ROW0 1440
#define ROWS_END 1456

static struct engine eng;
static int n_rooms = ROOMS_DEFAULT;
static int64_t clock_now = CLOCK0;
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

/* The arguments of the booking (or, payment method NULL, the quote) of
 * room `room` at the `row`-th half hour of January (UTC), new. */
static json_t *
slot_args(const char *user, char *const rooms[], int room, long row, const char *payment_method)
{
    char s[32], e[32];
    int64_t t0 = JAN_2026 + (int64_t)row * SLOT_S;
    time_format_rfc3339(t0, s, sizeof s);
    time_format_rfc3339(t0 + SLOT_S, e, sizeof e);
    json_t *args = json_pack("{s:s, s:s, s:s, s:s}", "resource_id", rooms[room], "user_id",
                             user, "start", s, "end", e);
    if (args == NULL ||
        (payment_method != NULL &&
         json_object_set_new(args, "payment_method", json_string(payment_method)) != 0)) {
        fprintf(stderr, "history_cost: out of memory\n");
        exit(1);
    }
    return args;
}

/* History booking n, or (measure) the run's booking n. */
static void
book(const char *user, char *const rooms[], long n, bool measure)
{
    long row = (measure ? MEASURE_ROW0 : HIST_ROW0) + n / n_rooms;
    if (row >= (measure ? ROWS_END : MEASURE_ROW0)) {
        fprintf(stderr, "history_cost: %s booking %ld does not fit in January with %d rooms\n",
                measure ? "measured" : "history", n, n_rooms);
        exit(1);
    }
    struct eng_error err = {0};
    clock_now += CLOCK_STEP_S;
    if (engine_set_clock(&eng, clock_now, &err) != 0) {
        fprintf(stderr, "history_cost: clock: %s\n", err.msg);
        exit(1);
    }
    json_decref(must("bookings.create",
                     slot_args(user, rooms, (int)(n % n_rooms), row, "credits")));
}

int
main(int argc, char **argv)
{
    bool prep = argc >= 2 && strcmp(argv[1], "prep") == 0;
    if (!(prep ? argc == 4 || argc == 5 : argc == 4 && strcmp(argv[1], "run") == 0)) {
        fprintf(stderr, "usage: history_cost prep DB N [ROOMS] | run DB M\n");
        return 2;
    }
    long n = strtol(argv[3], NULL, 10);
    long history = 0;
    char count_path[4200];
    snprintf(count_path, sizeof count_path, "%s.count", argv[2]);
    if (prep && argc == 5) {
        n_rooms = (int)strtol(argv[4], NULL, 10);
    } else if (!prep) {
        /* Slots and rooms follow what prep made (written beside the file). */
        FILE *f = fopen(count_path, "r");
        if (f == NULL || fscanf(f, "%ld %d", &history, &n_rooms) != 2) {
            fprintf(stderr, "history_cost: cannot read %s\n", count_path);
            return 1;
        }
        fclose(f);
    }
    if (n_rooms < 1 || n_rooms > ROOMS_MAX) {
        fprintf(stderr, "history_cost: rooms must be 1..%d\n", ROOMS_MAX);
        return 2;
    }
    struct engine_config cfg;
    engine_config_default(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s", argv[2]);
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s/policies", ALLOT_SOURCE_DIR);
    cfg.fake_clock = true;
    clock_now = CLOCK0 + history * CLOCK_STEP_S;
    cfg.fake_now = clock_now;
    cfg.create = prep;
    struct eng_error err = {0};
    if (engine_open(&eng, &cfg, &err) != 0 || engine_start_writer(&eng, &err) != 0) {
        fprintf(stderr, "history_cost: %s\n", err.msg);
        return 1;
    }
    /* A fresh database numbers everything from 1. */
    char *user = strdup("usr_1"), *rooms[ROOMS_MAX];
    for (int i = 0; i < n_rooms; i++) {
        char id[32];
        snprintf(id, sizeof id, "res_%d", i + 1);
        rooms[i] = strdup(id);
    }
    if (prep) {
        char *building = id_of(must(
            "buildings.create",
            json_pack("{s:s, s:s, s:s}", "name", "Bench", "timezone", "UTC", "currency", "USD")));
        char *tenant = id_of(must("tenants.create", json_pack("{s:s, s:[s]}", "name", "T",
                                                              "building_ids", building)));
        char *u = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", tenant,
                                                        "name", "U", "email", "u@x.io")));
        for (int i = 0; i < n_rooms; i++) {
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
            book(user, rooms, i, false);
        }
        printf("history_cost: %s holds %ld bookings of %s in January 2026\n", argv[2], n, user);
    } else {
        /* Every room once through a quote (the same in every run, whatever
         * M), so that the measured bookings find their room, its building
         * and what the policies made of them in the engine's caches, as a
         * running server does; without it each of the M bookings in a room
         * the process had not yet seen paid its first load (~130,000
         * instructions; the figures before 2026-12 include that share). */
        for (int i = 0; i < n_rooms; i++) {
            json_decref(must("quotes.create", slot_args(user, rooms, i, ROWS_END - 1, NULL)));
        }
        for (long i = 0; i < 2 + n; i++) {
            book(user, rooms, i, true);
        }
        printf("history_cost: %ld measured bookings after %ld\n", n, history + 2);
    }
    if (prep) {
        FILE *f = fopen(count_path, "w");
        if (f == NULL) {
            return 1;
        }
        fprintf(f, "%ld %d\n", n, n_rooms);
        fclose(f);
    }
    engine_close(&eng);
    for (int i = 0; i < n_rooms; i++) {
        free(rooms[i]);
    }
    free(user);
    return 0;
}

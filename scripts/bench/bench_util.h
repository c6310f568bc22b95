/* bench_util.h - what the in-process benchmarks share: one engine, a
 * super_admin principal, a monotonic clock, and ops that must succeed. */
#ifndef ALLOT_BENCH_UTIL_H
#define ALLOT_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

static struct engine eng;
static struct principal admin = {.role = ROLE_SUPER_ADMIN, .name = "bench"};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs an op that must succeed (args consumed); returns its result, which
 * the caller decrefs.  A failure ends the benchmark: its figures would lie. */
static json_t *
must(const char *op, json_t *args)
{
    json_t *out = NULL;
    bool created;
    bool replayed;
    struct eng_error err = {0};
    if (engine_exec(&eng, &admin, op, args, NULL, &out, &created, &replayed, &err) != 0) {
        fprintf(stderr, "bench: %s failed: %s\n", op, err.msg);
        exit(1);
    }
    json_decref(args);
    return out;
}

/* The "id" of a created object (a copy), consuming the object. */
static char *
id_of(json_t *obj)
{
    char *id = strdup(json_string_value(json_object_get(obj, "id")));
    json_decref(obj);
    return id;
}

#endif

/* engine_calls.h - set-up calls of the C tests that drive an engine: an
 * operation that must succeed (the test stops with its message otherwise)
 * and the id of the object it answered. */
#ifndef ALLOT_ENGINE_CALLS_H
#define ALLOT_ENGINE_CALLS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* Runs `op` as `who`; takes `args`; exits the test if it fails. */
static json_t *
engine_must(struct engine *e, const struct principal *who, const char *test, const char *op,
            json_t *args)
{
    json_t *out = NULL;
    bool created, replayed;
    struct eng_error err = {0};
    int rc = engine_exec(e, who, op, args, NULL, &out, &created, &replayed, &err);
    json_decref(args);
    if (rc != 0) {
        fprintf(stderr, "%s: %s failed: %s\n", test, op, err.msg);
        exit(1);
    }
    return out;
}

/* The "id" of an answer, copied; takes the answer. */
static char *
id_of(json_t *obj)
{
    char *id = strdup(json_string_value(json_object_get(obj, "id")));
    json_decref(obj);
    return id;
}

#endif

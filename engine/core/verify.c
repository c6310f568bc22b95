/* verify.c - engine_verify: every invariant on a private read snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "verify.h"

/* Problems listed in memory at most; more is an error naming the limit
 * (`allot verify` streams any number of them). */
#define ENGINE_VERIFY_PROBLEMS_MAX 1000

struct problems {
    json_t *list;
    struct eng_error *err;
};

static int
add_problem(void *ud, int check, const char *what, const char *problem)
{
    (void)check;
    struct problems *p = ud;
    if (json_array_size(p->list) >= ENGINE_VERIFY_PROBLEMS_MAX) {
        eng_error_code(p->err, ENG_ELIMIT, "limit_exceeded",
                       "more than %d problems (limit %d): run `allot verify` for all of them",
                       ENGINE_VERIFY_PROBLEMS_MAX, ENGINE_VERIFY_PROBLEMS_MAX);
        eng_error_field(p->err, "verify_problems_max");
        return ENG_ELIMIT;
    }
    /* Sized to fit: a problem is never cut. */
    size_t len = strlen(what) + strlen(problem) + 3;
    char *line = malloc(len);
    json_t *s = NULL;
    if (line != NULL) {
        snprintf(line, len, "%s: %s", what, problem);
        s = json_string(line);
        free(line);
    }
    if (s == NULL || json_array_append_new(p->list, s) != 0) {
        return eng_error_set(p->err, ENG_ENOMEM, "out of memory");
    }
    return 0;
}

int
engine_verify(struct engine *eng, json_t *problems, struct eng_error *err)
{
    struct store *s = store_pool_acquire(eng->reporters, err);
    if (s == NULL) {
        return err->status;
    }
    struct problems p = {problems, err};
    int rc = store_tx(s, STORE_BEGIN, err);
    if (rc == 0) {
        rc = store_verify(s, add_problem, &p, NULL, err);
        (void)store_tx(s, STORE_ROLLBACK, NULL);
    }
    store_pool_release(eng->reporters, s);
    return rc;
}

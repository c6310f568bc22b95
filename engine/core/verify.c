/* verify.c - engine_verify: every invariant on a private read snapshot. */
#include <stdio.h>

#include "engine.h"
#include "verify.h"

static int
add_problem(void *ud, int check, const char *what, const char *problem)
{
    (void)check;
    json_t *problems = ud;
    if (json_array_size(problems) < 1000) {
        char line[600];
        snprintf(line, sizeof line, "%s: %s", what, problem);
        json_array_append_new(problems, json_string(line));
    }
    return 0;
}

int
engine_verify(struct engine *eng, json_t *problems, struct eng_error *err)
{
    struct store *s = store_pool_acquire(eng->readers, err);
    if (s == NULL) {
        return err->status;
    }
    int rc = store_tx(s, STORE_BEGIN, err);
    if (rc == 0) {
        rc = store_verify(s, add_problem, problems, NULL, err);
        (void)store_tx(s, STORE_ROLLBACK, NULL);
    }
    store_pool_release(eng->readers, s);
    return rc;
}

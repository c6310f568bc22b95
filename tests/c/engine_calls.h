/* engine_calls.h - set-up calls of the C tests that drive an engine: an
 * configuration they start from, an operation that must succeed (the test
 * stops with its message otherwise) and the id of the object it answered. */
#ifndef ALLOT_ENGINE_CALLS_H
#define ALLOT_ENGINE_CALLS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* The configuration the engine tests start from: `file` in `dir`, the
 * policies of $ALLOT_POLICIES (else the source tree's), the fake clock at
 * 2026-01-01T00:00:00Z. */
static inline void
engine_test_config(struct engine_config *cfg, const char *dir, const char *file)
{
    const char *policies = getenv("ALLOT_POLICIES");
    engine_config_default(cfg);
    snprintf(cfg->db_path, sizeof cfg->db_path, "%s/%s", dir, file);
    snprintf(cfg->policies_dir, sizeof cfg->policies_dir, "%s",
             policies != NULL ? policies : ALLOT_SOURCE_DIR "/policies");
    cfg->fake_clock = true;
    cfg->fake_now = 1767225600; /* 2026-01-01T00:00:00Z */
}

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

/* A tenant of `bld` with one user (Ada) and a monthly allocation of
 * `hours` credit hours from 2026-01-01; the tenant's and the user's ids,
 * copied. */
static inline void
engine_test_tenant(struct engine *e, const struct principal *who, const char *test,
                   const char *bld, int hours, char **tenant, char **user)
{
    *tenant = id_of(engine_must(e, who, test, "tenants.create",
                                json_pack("{s:s, s:[s]}", "name", "One", "building_ids", bld)));
    *user = id_of(engine_must(e, who, test, "users.create",
                              json_pack("{s:s, s:s, s:s}", "tenant_id", *tenant, "name", "Ada",
                                        "email", "ada@x.io")));
    json_decref(engine_must(e, who, test, "allocations.create",
                            json_pack("{s:s, s:[s], s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id",
                                      *tenant, "building_ids", bld, "unit", "hour", "lines",
                                      "scope", "all", "amount", hours, "schedule", "start",
                                      "2026-01-01")));
}

#endif

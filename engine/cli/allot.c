/* allot.c - the command line: verify a database, create API keys, reload
 * policies, open the console.
 *
 *   allot verify --db FILE
 *   allot keys create --db FILE --role ROLE [--name N] [--tenant ID] [--user ID]
 *   allot policies reload --pid PID | --db FILE
 *   allot repl --db FILE | --url URL --key KEY     (the Lua console: repl.c)
 *
 * It opens the database through the engine, so it migrates and checks it
 * exactly as the server would. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "engine.h"
#include "repl.h"

static void
usage(void)
{
    fprintf(stderr,
            "usage:\n"
            "  allot verify --db FILE [--policies DIR]\n"
            "  allot keys create --db FILE --role ROLE [--name NAME] [--tenant ID] [--user ID]\n"
            "  allot policies reload --pid PID   (a running allotd: SIGHUP)\n"
            "  allot policies reload --db FILE [--policies DIR]   (check every building)\n"
            "  allot repl --db FILE [--policies DIR] [--now RFC3339]\n"
            "  allot repl --url http://HOST:PORT --key KEY\n"
            "roles: super_admin manager viewer tenant_admin tenant_user\n");
}

static const char *
flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return argv[i + 1];
        }
    }
    return NULL;
}

static int
open_engine(struct engine *eng, int argc, char **argv)
{
    struct engine_config cfg;
    engine_config_default(&cfg);
    const char *db = flag(argc, argv, "--db");
    const char *pol = flag(argc, argv, "--policies");
    if (db == NULL) {
        usage();
        return 2;
    }
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s", db);
    if (pol == NULL) {
        pol = getenv("ALLOT_POLICIES");
    }
    if (pol == NULL) {
        pol = ALLOT_SOURCE_DIR "/policies";
    }
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s", pol);
    struct eng_error err = {0};
    if (engine_open(eng, &cfg, &err) != 0) {
        fprintf(stderr, "allot: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int
cmd_verify(int argc, char **argv)
{
    struct engine eng;
    int rc = open_engine(&eng, argc, argv);
    if (rc != 0) {
        return rc;
    }
    json_t *problems = json_array();
    struct eng_error err = {0};
    if (engine_verify(&eng, problems, &err) != 0) {
        fprintf(stderr, "allot: %s\n", err.msg);
        rc = 1;
    } else if (json_array_size(problems) == 0) {
        printf("ok: every invariant holds\n");
    } else {
        size_t i;
        json_t *p;
        json_array_foreach(problems, i, p) {
            printf("problem: %s\n", json_string_value(p));
        }
        printf("%zu problem(s)\n", json_array_size(problems));
        rc = 1;
    }
    json_decref(problems);
    engine_close(&eng);
    return rc;
}

static int
cmd_keys_create(int argc, char **argv)
{
    const char *role = flag(argc, argv, "--role");
    if (role == NULL) {
        usage();
        return 2;
    }
    struct engine eng;
    int rc = open_engine(&eng, argc, argv);
    if (rc != 0) {
        return rc;
    }
    json_t *args = json_pack("{s:s}", "role", role);
    const char *opt[][2] = {{"--name", "name"}, {"--tenant", "tenant_id"}, {"--user", "user_id"}};
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
        const char *v = flag(argc, argv, opt[i][0]);
        if (v != NULL) {
            json_object_set_new(args, opt[i][1], json_string(v));
        }
    }
    struct principal console = {.role = ROLE_SUPER_ADMIN};
    snprintf(console.name, sizeof console.name, "console");
    json_t *out = NULL;
    bool created;
    bool replayed;
    struct eng_error err = {0};
    if (engine_exec(&eng, &console, "keys.create", args, NULL, &out, &created, &replayed, &err) !=
        0) {
        fprintf(stderr, "allot: %s\n", err.msg);
        rc = 1;
    } else {
        printf("created %s key %s; it is shown only once:\n",
               json_string_value(json_object_get(out, "role")),
               json_string_value(json_object_get(out, "id")));
        printf("%s\n", json_string_value(json_object_get(out, "key")));
    }
    json_decref(out);
    json_decref(args);
    engine_close(&eng);
    return rc;
}

/* Reloads the policies of a running allotd (SIGHUP: every building's set
 * is rebuilt, a failing one keeps serving its old set), or checks them
 * against a database: every building's set is built as a reload would, and
 * the ones that fail are listed. */
static int
cmd_policies_reload(int argc, char **argv)
{
    const char *pid = flag(argc, argv, "--pid");
    if (pid != NULL) {
        long n = strtol(pid, NULL, 10);
        if (n <= 1 || kill((pid_t)n, SIGHUP) != 0) {
            fprintf(stderr, "allot: cannot signal process %s\n", pid);
            return 1;
        }
        printf("sent SIGHUP to allotd %ld: it reloads its policies\n", n);
        return 0;
    }
    struct engine eng;
    int rc = open_engine(&eng, argc, argv);
    if (rc != 0) {
        return rc;
    }
    struct principal console = {.role = ROLE_SUPER_ADMIN, .name = "console"};
    json_t *out = NULL;
    bool created;
    bool replayed;
    struct eng_error err = {0};
    if (engine_exec(&eng, &console, "policies.reload", NULL, NULL, &out, &created, &replayed,
                    &err) != 0) {
        fprintf(stderr, "allot: %s\n", err.msg);
        rc = 1;
    } else {
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(out, "failed"), i, f) {
            printf("refused: %s: %s\n", json_string_value(json_object_get(f, "building_id")),
                   json_string_value(json_object_get(f, "message")));
        }
        printf("%lld building policy sets load, %zu refused\n",
               (long long)json_integer_value(json_object_get(out, "reloaded")),
               json_array_size(json_object_get(out, "failed")));
        rc = json_array_size(json_object_get(out, "failed")) == 0 ? 0 : 1;
    }
    json_decref(out);
    engine_close(&eng);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "policies") == 0 && strcmp(argv[2], "reload") == 0) {
        return cmd_policies_reload(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "verify") == 0) {
        return cmd_verify(argc, argv);
    }
    if (argc >= 3 && strcmp(argv[1], "keys") == 0 && strcmp(argv[2], "create") == 0) {
        return cmd_keys_create(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "repl") == 0) {
        return repl_main(argc, argv);
    }
    usage();
    return 2;
}

/* allot.c - the command line: verify a database, create API keys, reload
 * policies, open the console.
 *
 *   allot verify --db FILE
 *   allot keys create --db FILE [--create] --role ROLE [--name N] [--tenant ID] [--user ID]
 *   allot policies reload --pid PID | --db FILE
 *   allot repl --db FILE [--create] | --url URL --key KEY     (the Lua console: repl.c)
 *
 * `verify` opens the file read-only and reads one snapshot: it never writes,
 * never migrates and never processes a period boundary, so what it checks is
 * exactly what is on disk.  The other commands open the database through the
 * engine, so they migrate and check it exactly as the server would; a
 * missing file is refused (a typo must not create an empty database) unless
 * --create is given. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "engine.h"
#include "repl.h"
#include "store.h"
#include "verify.h"

static void
usage(void)
{
    fprintf(stderr,
            "usage:\n"
            "  allot verify --db FILE   (read-only: exit 0 only when every invariant holds)\n"
            "  allot keys create --db FILE [--create] --role ROLE [--name NAME] [--tenant ID]\n"
            "                    [--user ID]\n"
            "  allot policies reload --pid PID   (a running allotd: SIGHUP)\n"
            "  allot policies reload --db FILE [--policies DIR]   (check every building)\n"
            "  allot repl --db FILE [--create] [--policies DIR] [--now RFC3339]\n"
            "  allot repl --url http://HOST:PORT --key KEY\n"
            "roles: super_admin manager viewer tenant_admin tenant_user\n"
            "--create makes a new database when FILE does not exist (else it is refused)\n");
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

/* Whether the bare flag `name` (one without a value, such as --create) is
 * given. */
static bool
has_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return true;
        }
    }
    return false;
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
    cfg.create = has_flag(argc, argv, "--create");
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

/* Prints each problem as store_verify finds it (constant memory, however
 * many there are). */
static int
print_problem(void *ud, int check, const char *what, const char *problem)
{
    (void)ud;
    (void)check;
    printf("problem: %s: %s\n", what, problem);
    return 0;
}

/* Checks every invariant on one read snapshot of the file, opened
 * read-only: the file is left exactly as it was (no migration, no period
 * processing, whatever the clock says).  Prints the problems, then one line
 * per invariant with its count of problems.  Exit status: 0 when every
 * invariant holds, 1 with a problem or when the file cannot be read, 2 on
 * bad usage. */
static int
cmd_verify(int argc, char **argv)
{
    const char *db = flag(argc, argv, "--db");
    if (db == NULL) {
        usage();
        return 2;
    }
    if (has_flag(argc, argv, "--create")) {
        fprintf(stderr, "allot verify: --create does not apply: verify never writes\n");
        return 2;
    }
    struct engine_config cfg;
    engine_config_default(&cfg); /* for the busy timeout only */
    struct eng_error err = {0};
    struct store *s = NULL;
    if (store_open(&s, db, STORE_READONLY, cfg.sqlite_busy_timeout_ms, 0, &err) != 0) {
        if (err.status == ENG_ENOTFOUND) {
            fprintf(stderr, "allot verify: no database at '%s'\n", db);
        } else {
            fprintf(stderr, "allot verify: %s\n", err.msg);
        }
        return 1;
    }
    int checks = store_verify_count();
    int64_t *counts = calloc((size_t)checks, sizeof *counts);
    if (counts == NULL) {
        store_close(s);
        fprintf(stderr, "allot verify: out of memory\n");
        return 1;
    }
    int rc = store_tx(s, STORE_BEGIN, &err);
    if (rc == 0) {
        rc = store_verify(s, print_problem, NULL, counts, &err);
        (void)store_tx(s, STORE_ROLLBACK, NULL);
    }
    store_close(s);
    if (rc != 0) {
        free(counts);
        fprintf(stderr, "allot verify: %s\n", err.msg);
        return 1;
    }
    int64_t total = 0;
    int failing = 0;
    printf("%s (read-only): %d invariants\n", db, checks);
    for (int i = 0; i < checks; i++) {
        printf("%-4s %6" PRId64 "  %s\n", counts[i] == 0 ? "ok" : "FAIL", counts[i],
               store_verify_name(i));
        total += counts[i];
        failing += counts[i] != 0;
    }
    free(counts);
    if (total == 0) {
        printf("ok: every invariant holds\n");
        return 0;
    }
    printf("%" PRId64 " problem(s) in %d of %d invariants\n", total, failing, checks);
    return 1;
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

/* allot.c - the command line: verify a database, create API keys, reload
 * policies, open the console.
 *
 *   allot verify --db FILE
 *   allot keys create --db FILE [--create] --role ROLE [--name N] [--tenant ID] [--user ID]
 *   allot policies reload --db FILE [--pid-file FILE] [--policies DIR] | --pid PID
 *   allot repl --db FILE [--create] | --url URL --key KEY     (the Lua console: repl.c)
 *
 * `verify` opens the file read-only and reads one snapshot: it never writes,
 * never migrates and never processes a period boundary, so what it checks is
 * exactly what is on disk.  The other commands open the database through the
 * engine, so they migrate and check it exactly as the server would; a
 * missing file is refused (a typo must not create an empty database) unless
 * --create is given.
 *
 * Every mistake on the command line is named in the words the user typed:
 * an unknown command or option, a missing --db, a value the engine refuses
 * (its field names are translated back to the flags, so "needs 'user_id'"
 * reads "needs --user").  Such mistakes exit 2 after the usage. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/types.h>
#include <unistd.h>

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
            "  allot policies reload --db FILE [--pid-file FILE] [--policies DIR]\n"
            "        (the allotd serving FILE reloads, found by its pid file FILE.pid;\n"
            "         with none running, every building's policies are checked on FILE)\n"
            "  allot policies reload --pid PID   (SIGHUP to that allotd)\n"
            "  allot repl --db FILE [--create] [--policies DIR] [--now RFC3339]\n"
            "  allot repl --url http://HOST:PORT --key KEY\n"
            "roles: super_admin manager viewer tenant_admin tenant_user\n"
            "--create makes a new database when FILE does not exist (else it is refused)\n");
}

/* Says what is wrong with the command line, then shows the usage.  Returns
 * 2, the exit status of a usage mistake. */
static int
bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
bad_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("allot: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage();
    return 2;
}

static bool
listed(const char *word, const char *const *names)
{
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(word, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Checks the words of `cmd` from argv[first]: each is one of its options,
 * and an option in `valued` is followed by its value.  Returns 0, or 2 with
 * the first mistake printed. */
static int
check_options(const char *cmd, int argc, char **argv, int first, const char *const *valued,
              const char *const *bare)
{
    for (int i = first; i < argc; i++) {
        if (listed(argv[i], bare)) {
            continue;
        }
        if (!listed(argv[i], valued)) {
            return bad_usage("%s: unknown option '%s'", cmd, argv[i]);
        }
        if (i + 1 >= argc) {
            return bad_usage("%s: %s needs a value", cmd, argv[i]);
        }
        i++;
    }
    return 0;
}

/* The engine names its arguments ('user_id'); the user typed flags
 * (--user).  Prints the engine's message with each argument it quotes
 * turned into its flag, or, when it quotes none, prefixed with the flag and
 * the value the user gave ("--user usr_9: unknown user"). */
static void
print_refusal(const char *cmd, const struct eng_error *err, int argc, char **argv)
{
    static const char *const names[][2] = {{"user_id", "--user"}, {"tenant_id", "--tenant"},
                                           {"role", "--role"},    {"name", "--name"},
                                           {"db", "--db"},        {"policies", "--policies"}};
    char msg[sizeof err->msg + 64];
    size_t len = 0;
    bool quoted = false;
    for (const char *c = err->msg; *c != '\0' && len + 16 < sizeof msg;) {
        size_t k = 0;
        for (; k < sizeof names / sizeof names[0]; k++) {
            size_t n = strlen(names[k][0]);
            if (c[0] == '\'' && strncmp(c + 1, names[k][0], n) == 0 && c[1 + n] == '\'') {
                len += (size_t)snprintf(msg + len, sizeof msg - len, "%s", names[k][1]);
                c += n + 2;
                quoted = true;
                break;
            }
        }
        if (k == sizeof names / sizeof names[0]) {
            msg[len++] = *c++;
        }
    }
    msg[len] = '\0';
    for (size_t k = 0; !quoted && k < sizeof names / sizeof names[0]; k++) {
        if (strcmp(err->field, names[k][0]) == 0) {
            const char *given = NULL;
            for (int i = 1; i + 1 < argc; i++) {
                given = strcmp(argv[i], names[k][1]) == 0 ? argv[i + 1] : given;
            }
            fprintf(stderr, "allot %s: %s%s%s: %s\n", cmd, names[k][1], given ? " " : "",
                    given ? given : "", msg);
            return;
        }
    }
    fprintf(stderr, "allot %s: %s\n", cmd, msg);
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
        return bad_usage("%s: --db FILE is required (the database to open)", argv[1]);
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
        fprintf(stderr, "allot %s: %s\n", argv[1], err.msg);
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
    /* --policies is accepted and unused (verify reads no policy), so the
     * same flags serve every command in scripts. */
    static const char *const valued[] = {"--db", "--policies", NULL};
    static const char *const bare[] = {"--create", NULL};
    int bad = check_options("verify", argc, argv, 2, valued, bare);
    if (bad != 0) {
        return bad;
    }
    const char *db = flag(argc, argv, "--db");
    if (db == NULL) {
        return bad_usage("verify: --db FILE is required (the database to check)");
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
    static const char *const valued[] = {"--db", "--role", "--name", "--tenant", "--user",
                                         "--policies", NULL};
    static const char *const bare[] = {"--create", NULL};
    int bad = check_options("keys create", argc, argv, 3, valued, bare);
    if (bad != 0) {
        return bad;
    }
    const char *role = flag(argc, argv, "--role");
    if (role == NULL) {
        return bad_usage("keys create: --role ROLE is required");
    }
    if (flag(argc, argv, "--db") == NULL) {
        return bad_usage("keys create: --db FILE is required (the database to add the key to)");
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
        print_refusal("keys create", &err, argc, argv);
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

/* Sends SIGHUP to process `pid` (an allotd). */
static int
signal_allotd(long pid, const char *what)
{
    if (pid <= 1 || kill((pid_t)pid, SIGHUP) != 0) {
        fprintf(stderr, "allot policies reload: cannot signal process %ld%s: %s\n", pid, what,
                strerror(errno));
        return 1;
    }
    printf("sent SIGHUP to allotd %ld%s: it reloads every building's policies\n"
           "(its log lists any it refused; POST /v1/policies/reload answers them)\n",
           pid, what);
    return 0;
}

/* The process id in allotd's pid file `path`, when an allotd holds it: the
 * server keeps an exclusive lock on the file while it runs, so a file left
 * behind by a crash, or a pid since reused by another program, is never
 * taken for a server.  Returns 1 with *pid, 0 when no allotd holds the
 * file, -1 on an unreadable file (message printed). */
static int
pidfile_holder(const char *path, long *pid)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        fprintf(stderr, "allot policies reload: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        char text[32] = {0};
        ssize_t n = read(fd, text, sizeof text - 1);
        char *end = NULL;
        *pid = n > 0 ? strtol(text, &end, 10) : 0;
        if (*pid <= 1 || end == NULL || (*end != '\n' && *end != '\0')) {
            fprintf(stderr, "allot policies reload: %s holds no process id\n", path);
            rc = -1;
        } else {
            rc = 1;
        }
    }
    close(fd); /* also drops a shared lock taken on a file nobody held */
    return rc;
}

/* Builds every building's policy set on the --db file as a reload would,
 * and lists the ones that fail.  Exit status 0 when all load. */
static int
check_policies_here(int argc, char **argv)
{
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
        print_refusal("policies reload", &err, argc, argv);
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

/* Reloads the policies of the allotd that serves --db (found through its pid
 * file, FILE.pid unless --pid-file says otherwise: every building's set is
 * rebuilt, a failing one keeps serving its old set), or of the process
 * --pid.  With no allotd serving the file, checks them against the
 * database instead: every building's set is built as a reload would, and
 * the ones that fail are listed. */
static int
cmd_policies_reload(int argc, char **argv)
{
    static const char *const valued[] = {"--db", "--pid", "--pid-file", "--policies", NULL};
    static const char *const bare[] = {NULL};
    int bad = check_options("policies reload", argc, argv, 3, valued, bare);
    if (bad != 0) {
        return bad;
    }
    const char *pid = flag(argc, argv, "--pid");
    const char *db = flag(argc, argv, "--db");
    const char *pidfile = flag(argc, argv, "--pid-file");
    if (pid != NULL) {
        char *end;
        long n = strtol(pid, &end, 10);
        if (*end != '\0' || db != NULL || pidfile != NULL) {
            return bad_usage("policies reload: --pid takes a process id, and no --db or "
                             "--pid-file");
        }
        return signal_allotd(n, "");
    }
    if (db == NULL && pidfile == NULL) {
        return bad_usage("policies reload: --db FILE is required (the database allotd serves)");
    }
    char path[ENGINE_PATH_MAX + 8];
    snprintf(path, sizeof path, "%s%s", pidfile != NULL ? pidfile : db,
             pidfile != NULL ? "" : ".pid");
    long holder = 0;
    int held = pidfile_holder(path, &holder);
    if (held < 0) {
        return 1;
    }
    if (held > 0) {
        char what[sizeof path + 32];
        snprintf(what, sizeof what, " (its pid file %s)", path);
        return signal_allotd(holder, what);
    }
    if (db == NULL) {
        fprintf(stderr, "allot policies reload: no allotd holds %s\n", path);
        return 1;
    }
    printf("no allotd serves %s (no live pid file %s): checking its policies here\n", db,
           path);
    return check_policies_here(argc, argv);
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
    if (argc < 2) {
        return bad_usage("no command given");
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage();
        return 0;
    }
    bool two_words = strcmp(argv[1], "keys") == 0 || strcmp(argv[1], "policies") == 0;
    if (two_words && argc >= 3 && argv[2][0] != '-') {
        return bad_usage("unknown command '%s %s'", argv[1], argv[2]);
    }
    if (two_words) {
        return bad_usage("'%s' needs a command: %s", argv[1],
                         strcmp(argv[1], "keys") == 0 ? "keys create" : "policies reload");
    }
    return bad_usage("unknown command '%s'", argv[1]);
}

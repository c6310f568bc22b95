/* fuzz_engine.c - the JSON argument reader and the operations behind it,
 * through the public engine API only (engine.h): engine_open on a
 * temporary SQLite file with the fake clock, a small portfolio, then one
 * engine_exec per input as super_admin.  The first input byte picks the
 * operation (and, with its high bit, an idempotency key); the rest is the
 * JSON arguments.  Every call must succeed or fail with a status and a
 * message, and the ledger must still verify. */
#include <unistd.h>

#include "engine.h"
#include "fuzz_util.h"

static const char *const ops[] = {
    "buildings.create",   "resources.create", "tenants.create",    "users.create",
    "allocations.create", "quotes.create",    "bookings.create",   "bookings.cancel",
    "bookings.list",      "adjustments.create", "reports.datahub", "reports.usage",
    "entries.list",       "allocations.end",  "resources.patch",   "reports.credits",
    "allocations.patch",  "resources.archive", "bookings.refund_preview",
};
#define OPS_COUNT (sizeof ops / sizeof ops[0])

static struct engine eng;
static struct principal admin = {.role = ROLE_SUPER_ADMIN, .name = "fuzz"};
static unsigned long runs;

static void
exec_text(const char *op, const char *json)
{
    json_error_t jerr;
    json_t *args = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    json_t *out = NULL;
    bool created = false;
    bool replayed = false;
    struct eng_error err = {0};
    if (engine_exec(&eng, &admin, op, args, NULL, &out, &created, &replayed, &err) != 0) {
        fprintf(stderr, "fuzz_engine: setting up, %s: %s\n", op, err.msg);
        abort();
    }
    json_decref(out);
    json_decref(args);
}

static void
remove_db(void)
{
    char path[ENGINE_PATH_MAX + 8];
    unlink(eng.cfg.db_path);
    snprintf(path, sizeof path, "%s-wal", eng.cfg.db_path);
    unlink(path);
    snprintf(path, sizeof path, "%s-shm", eng.cfg.db_path);
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct engine_config cfg;
    engine_config_default(&cfg);
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s/allot-fuzz-%ld.db", tmp, (long)getpid());
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s/policies", ALLOT_SOURCE_DIR);
    cfg.fake_clock = true;
    cfg.fake_now = 1767225600; /* 2026-01-01T00:00:00Z */
    struct eng_error err = {0};
    if (engine_open(&eng, &cfg, &err) != 0) {
        fprintf(stderr, "fuzz_engine: %s\n", err.msg);
        abort();
    }
    /* The file is needed only while the process runs (engine_verify opens
     * it again by name, so it stays until exit). */
    atexit(remove_db);
    exec_text("buildings.create", "{\"name\":\"HQ\",\"timezone\":\"Europe/Paris\","
              "\"currency\":\"EUR\",\"payment\":{\"credits\":true,\"invoice\":true,"
              "\"card\":true}}");
    exec_text("tenants.create", "{\"name\":\"Acme\",\"building_ids\":[\"bld_1\"],"
              "\"cross_building\":false}");
    exec_text("users.create", "{\"tenant_id\":\"ten_1\",\"name\":\"Ada\","
              "\"email\":\"ada@example.com\",\"roles\":[]}");
    exec_text("resources.create", "{\"building_id\":\"bld_1\",\"name\":\"Room\","
              "\"kind\":\"meeting_room\",\"tags\":[],\"credit_only\":false,\"pricing\":"
              "{\"money\":{\"per_hour\":7000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
              "\"per_hour\":1,\"increment_minutes\":30}}}");
    exec_text("allocations.create", "{\"tenant_id\":\"ten_1\",\"building_ids\":[\"bld_1\"],"
              "\"unit\":\"hour\",\"lines\":[{\"scope\":\"all\",\"amount\":100}],"
              "\"targeting\":{\"type\":\"all\"},\"pool\":\"shared\",\"schedule\":"
              "{\"start\":\"2026-01-01\",\"recurrence\":\"monthly\"}}");
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192) {
        return 0;
    }
    const char *op = ops[data[0] % OPS_COUNT];
    char key[16];
    snprintf(key, sizeof key, "fuzz-%d", data[0] & 7);
    json_error_t jerr;
    json_t *args = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &jerr);
    if (args == NULL) {
        json_decref(args);
        return 0;
    }
    json_t *out = NULL;
    bool created = false;
    bool replayed = false;
    struct eng_error err = {0};
    int rc = engine_exec(&eng, &admin, op, args, (data[0] & 0x80) ? key : NULL, &out, &created,
                         &replayed, &err);
    if (rc == 0) {
        FUZZ_ASSERT(out != NULL);
        json_decref(out);
    } else {
        FUZZ_ASSERT(rc < 0 && out == NULL && err.msg[0] != '\0');
    }
    json_decref(args);
    /* Now and then, every invariant of the ledger. */
    if (++runs % 256 == 0) {
        json_t *problems = json_array();
        if (engine_verify(&eng, problems, &err) != 0) {
            fprintf(stderr, "fuzz_engine: verify: %s\n", err.msg);
            abort();
        }
        if (json_array_size(problems) > 0) {
            char *text = json_dumps(problems, 0);
            fprintf(stderr, "fuzz_engine: ledger problems: %s\n", text);
            abort();
        }
        json_decref(problems);
    }
    return 0;
}

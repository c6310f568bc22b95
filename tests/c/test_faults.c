/* test_faults.c - fault injection: every write either commits whole or
 * fails with an error and leaves the ledger as it was.
 *
 * Two injectors, swept over a booking, a cancellation, a period close (the
 * clock crossing a month end) and an allocation:
 *   - a SQLite VFS wrapped around the default one that fails the n-th read,
 *     write, sync or truncate with an I/O error;
 *   - an allocator (SQLite's and jansson's) that fails the n-th allocation.
 * For every n until the operation runs without meeting a fault, the run is
 * made on a fresh copy of a seeded database; then the file is reopened
 * without faults and must be exactly the state before the operation or
 * exactly the state after a fault-free run of it (an I/O error at commit
 * may leave the commit durable although it was not acknowledged: atomic
 * either way, never partial), with every invariant holding.  An
 * acknowledged operation must be there after reopening.  A crash, a
 * sanitizer report or a wrong answer fails the test. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <execinfo.h>

#include <sqlite3.h>

#include "alloc.h"
#include "check.h"
#include "engine.h"
#include "sha256.h"

/* ---------- the faulty VFS ---------- */

static sqlite3_vfs *real_vfs;
static atomic_long io_calls;  /* counted while armed */
static atomic_long io_fail_at; /* 0 = never */
static atomic_bool io_armed;
static atomic_bool io_fired;

struct faulty_file {
    sqlite3_file base;
    sqlite3_file *real; /* follows this struct in the same allocation */
};

static bool
io_fault(void)
{
    if (!atomic_load(&io_armed)) {
        return false;
    }
    long n = atomic_fetch_add(&io_calls, 1) + 1;
    if (n == atomic_load(&io_fail_at)) {
        atomic_store(&io_fired, true);
        return true;
    }
    return false;
}

static int
f_close(sqlite3_file *f)
{
    struct faulty_file *ff = (struct faulty_file *)f;
    return ff->real->pMethods->xClose(ff->real);
}

static int
f_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    struct faulty_file *ff = (struct faulty_file *)f;
    if (io_fault()) {
        return SQLITE_IOERR_READ;
    }
    return ff->real->pMethods->xRead(ff->real, buf, amt, off);
}

static int
f_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    struct faulty_file *ff = (struct faulty_file *)f;
    if (io_fault()) {
        return SQLITE_IOERR_WRITE;
    }
    return ff->real->pMethods->xWrite(ff->real, buf, amt, off);
}

static int
f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct faulty_file *ff = (struct faulty_file *)f;
    if (io_fault()) {
        return SQLITE_IOERR_TRUNCATE;
    }
    return ff->real->pMethods->xTruncate(ff->real, size);
}

static int
f_sync(sqlite3_file *f, int flags)
{
    struct faulty_file *ff = (struct faulty_file *)f;
    if (io_fault()) {
        return SQLITE_IOERR_FSYNC;
    }
    return ff->real->pMethods->xSync(ff->real, flags);
}

#define PASS(name, args, call)                                                             \
    static int name args                                                                   \
    {                                                                                      \
        struct faulty_file *ff = (struct faulty_file *)f;                                  \
        return ff->real->pMethods->call;                                                   \
    }

PASS(f_size, (sqlite3_file * f, sqlite3_int64 *size), xFileSize(ff->real, size))
PASS(f_lock, (sqlite3_file * f, int l), xLock(ff->real, l))
PASS(f_unlock, (sqlite3_file * f, int l), xUnlock(ff->real, l))
PASS(f_reserved, (sqlite3_file * f, int *out), xCheckReservedLock(ff->real, out))
PASS(f_control, (sqlite3_file * f, int op, void *arg), xFileControl(ff->real, op, arg))
PASS(f_sector, (sqlite3_file * f), xSectorSize(ff->real))
PASS(f_devchar, (sqlite3_file * f), xDeviceCharacteristics(ff->real))
PASS(f_shm_map, (sqlite3_file * f, int pg, int sz, int ext, void volatile **pp),
     xShmMap(ff->real, pg, sz, ext, pp))
PASS(f_shm_lock, (sqlite3_file * f, int off, int n, int flags), xShmLock(ff->real, off, n, flags))
PASS(f_shm_unmap, (sqlite3_file * f, int del), xShmUnmap(ff->real, del))
PASS(f_fetch, (sqlite3_file * f, sqlite3_int64 off, int amt, void **pp),
     xFetch(ff->real, off, amt, pp))
PASS(f_unfetch, (sqlite3_file * f, sqlite3_int64 off, void *p), xUnfetch(ff->real, off, p))

static void
f_shm_barrier(sqlite3_file *f)
{
    struct faulty_file *ff = (struct faulty_file *)f;
    ff->real->pMethods->xShmBarrier(ff->real);
}

static const sqlite3_io_methods faulty_methods = {
    3,        f_close,    f_read,     f_write,      f_truncate,    f_sync,
    f_size,   f_lock,     f_unlock,   f_reserved,   f_control,     f_sector,
    f_devchar, f_shm_map, f_shm_lock, f_shm_barrier, f_shm_unmap,  f_fetch,
    f_unfetch,
};

static int
v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    struct faulty_file *ff = (struct faulty_file *)f;
    ff->real = (sqlite3_file *)(ff + 1);
    int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
    /* A file the real VFS did not open has no methods: so neither has ours. */
    ff->base.pMethods = ff->real->pMethods != NULL ? &faulty_methods : NULL;
    return rc;
}

static int
v_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
    (void)vfs;
    return real_vfs->xDelete(real_vfs, name, sync);
}

static int
v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int
v_full(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int
v_random(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int
v_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}

static int
v_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int
v_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError(real_vfs, n, out);
}

static int
v_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static sqlite3_vfs faulty_vfs;

static void
faulty_vfs_install(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    faulty_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct faulty_file) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = "allot-faulty",
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full,
        .xDlOpen = NULL,
        .xRandomness = v_random,
        .xSleep = v_sleep,
        .xCurrentTime = v_time,
        .xGetLastError = v_error,
        .xCurrentTimeInt64 = v_time64,
    };
    sqlite3_vfs_register(&faulty_vfs, 1);
}

/* ---------- the failing allocator ---------- */

static sqlite3_mem_methods real_mem;
static atomic_long mem_calls;
static atomic_long mem_fail_at;
static atomic_bool mem_armed;
static atomic_bool mem_fired;

static bool
mem_fault(void)
{
    if (!atomic_load(&mem_armed)) {
        return false;
    }
    long n = atomic_fetch_add(&mem_calls, 1) + 1;
    if (n == atomic_load(&mem_fail_at)) {
        atomic_store(&mem_fired, true);
        /* ALLOT_FAULT_TRACE=N prints where the N-th allocation failed. */
        const char *trace = getenv("ALLOT_FAULT_TRACE");
        if (trace != NULL && atol(trace) == n) {
            void *frames[24];
            backtrace_symbols_fd(frames, backtrace(frames, 24), 2);
        }
        return true;
    }
    return false;
}

static void *
m_malloc(int n)
{
    return mem_fault() ? NULL : real_mem.xMalloc(n);
}

static void *
m_realloc(void *p, int n)
{
    return mem_fault() ? NULL : real_mem.xRealloc(p, n);
}

static void
m_free(void *p)
{
    real_mem.xFree(p);
}

static int
m_size(void *p)
{
    return real_mem.xSize(p);
}

static int
m_roundup(int n)
{
    return real_mem.xRoundup(n);
}

static int
m_init(void *p)
{
    return real_mem.xInit(p);
}

static void
m_shutdown(void *p)
{
    real_mem.xShutdown(p);
}

static void *
j_malloc(size_t n)
{
    return mem_fault() ? NULL : malloc(n);
}

static void
failing_allocator_install(void)
{
    sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem);
    static sqlite3_mem_methods wrapped;
    wrapped = (sqlite3_mem_methods){m_malloc, m_free, m_realloc, m_size,
                                    m_roundup, m_init, m_shutdown, NULL};
    sqlite3_config(SQLITE_CONFIG_MALLOC, &wrapped);
    json_set_alloc_funcs(j_malloc, free);
}

/* ---------- a seeded database and its fingerprint ---------- */

static char dir[256];
static const char *policies;

static void
path_of(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static int
open_engine(struct engine *eng, const char *db, struct eng_error *err)
{
    struct engine_config cfg;
    engine_config_default(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s", db);
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s", policies);
    cfg.fake_clock = true;
    cfg.fake_now = 1769904000; /* 2026-02-01T00:00:00Z */
    cfg.readers = 1;
    return engine_open(eng, &cfg, err);
}

static struct principal console = {.role = ROLE_SUPER_ADMIN, .name = "console"};

/* Runs an op that must succeed; returns the result's "id" (copied). */
static void
must(struct engine *eng, const char *op, const char *args_text, char *id, size_t id_len)
{
    json_error_t jerr;
    json_t *args = json_loads(args_text, 0, &jerr);
    json_t *out = NULL;
    bool created, replayed;
    struct eng_error err = {0};
    int rc = engine_exec(eng, &console, op, args, NULL, &out, &created, &replayed, &err);
    if (rc != 0) {
        fprintf(stderr, "seed %s failed: %s %s\n", op, err.code, err.msg);
        exit(2);
    }
    if (id != NULL) {
        snprintf(id, id_len, "%s", json_string_value(json_object_get(out, "id")));
    }
    json_decref(args);
    json_decref(out);
}

static char building[32], tenant[32], user[32], room[32], booking[32];

static void
seed(const char *db)
{
    struct engine eng;
    struct eng_error err = {0};
    if (open_engine(&eng, db, &err) != 0) {
        fprintf(stderr, "seed: %s\n", err.msg);
        exit(2);
    }
    char args[1024];
    must(&eng, "buildings.create",
         "{\"name\":\"HQ\",\"timezone\":\"Europe/Paris\",\"currency\":\"EUR\","
         "\"payment\":{\"credits\":true,\"invoice\":true,\"card\":true}}",
         building, sizeof building);
    snprintf(args, sizeof args,
             "{\"name\":\"Acme\",\"building_ids\":[\"%s\"],\"cross_building\":false}", building);
    must(&eng, "tenants.create", args, tenant, sizeof tenant);
    snprintf(args, sizeof args,
             "{\"tenant_id\":\"%s\",\"name\":\"Ada\",\"email\":\"ada@example.com\","
             "\"roles\":[]}",
             tenant);
    must(&eng, "users.create", args, user, sizeof user);
    snprintf(args, sizeof args,
             "{\"building_id\":\"%s\",\"name\":\"Room\",\"kind\":\"meeting_room\",\"tags\":[],"
             "\"credit_only\":false,\"pricing\":{\"money\":{\"per_hour\":7000},"
             "\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\",\"per_hour\":1,"
             "\"increment_minutes\":30}}}",
             building);
    must(&eng, "resources.create", args, room, sizeof room);
    snprintf(args, sizeof args,
             "{\"tenant_id\":\"%s\",\"building_ids\":[\"%s\"],\"description\":\"monthly\","
             "\"unit\":\"hour\",\"lines\":[{\"scope\":\"all\",\"amount\":10}],"
             "\"targeting\":{\"type\":\"all\"},\"pool\":\"shared\","
             "\"schedule\":{\"start\":\"2026-02-01\",\"recurrence\":\"monthly\","
             "\"rollover\":{\"enabled\":true}}}",
             tenant, building);
    must(&eng, "allocations.create", args, NULL, 0);
    snprintf(args, sizeof args,
             "{\"resource_id\":\"%s\",\"user_id\":\"%s\",\"start\":\"2026-02-10T09:00:00Z\","
             "\"end\":\"2026-02-10T11:00:00Z\",\"payment_method\":\"credits\"}",
             room, user);
    must(&eng, "bookings.create", args, booking, sizeof booking);
    engine_close(&eng);
}

/* A digest of every ledger table's rows, and whether verify is clean. */
static void
fingerprint(const char *db, char out[65], bool *clean)
{
    sqlite3 *h = NULL;
    *clean = false;
    out[0] = '\0';
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(h);
        return;
    }
    static const char *const tables[] = {"allocation", "allocation_line", "lot", "entry",
                                         "booking", "idempotency", "policy_active", NULL};
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    for (int t = 0; tables[t] != NULL && text != NULL; t++) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY 1", tables[t]);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
            continue;
        }
        while (sqlite3_step(st) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                const char *v = (const char *)sqlite3_column_text(st, c);
                size_t n = v ? strlen(v) : 4;
                if (len + n + 2 > cap) {
                    cap = (len + n + 2) * 2;
                    char *grown = realloc(text, cap);
                    if (grown == NULL) {
                        free(text);
                        text = NULL;
                        break;
                    }
                    text = grown;
                }
                memcpy(text + len, v ? v : "NULL", n);
                len += n;
                text[len++] = '|';
            }
            if (text == NULL) {
                break;
            }
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    if (text == NULL) {
        return;
    }
    sha256_hex(text, len, out);
    free(text);
    struct engine eng;
    struct eng_error err = {0};
    if (open_engine(&eng, db, &err) == 0) {
        json_t *problems = json_array();
        *clean = engine_verify(&eng, problems, &err) == 0 && json_array_size(problems) == 0;
        if (json_array_size(problems) > 0) {
            char *p = json_dumps(problems, 0);
            fprintf(stderr, "verify: %s\n", p);
            free(p);
        }
        json_decref(problems);
        engine_close(&eng);
    }
}

static void
copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    while (in != NULL && out != NULL && (n = fread(buf, 1, sizeof buf, in)) > 0) {
        fwrite(buf, 1, n, out);
    }
    if (in) {
        fclose(in);
    }
    if (out) {
        fclose(out);
    }
    char wal[600], shm[600];
    snprintf(wal, sizeof wal, "%s-wal", to);
    snprintf(shm, sizeof shm, "%s-shm", to);
    unlink(wal);
    unlink(shm);
}

/* ---------- the operations swept ---------- */

enum victim { V_BOOK, V_CANCEL, V_PERIOD_CLOSE, V_ALLOCATE, V_COUNT };
static const char *const victim_names[V_COUNT] = {"booking", "cancel", "period close",
                                                  "allocation"};

/* Arms the injector of the sweep in progress (NULL: a fault-free run). */
static void (*arm_hook)(void);

static int
run_victim(struct engine *eng, enum victim v, struct eng_error *err)
{
    char args[1024];
    const char *op = NULL;
    switch (v) {
    case V_BOOK:
        op = "bookings.create";
        snprintf(args, sizeof args,
                 "{\"resource_id\":\"%s\",\"user_id\":\"%s\",\"start\":\"2026-02-12T09:00:00Z\","
                 "\"end\":\"2026-02-12T10:30:00Z\",\"payment_method\":\"credits\"}",
                 room, user);
        break;
    case V_CANCEL:
        op = "bookings.cancel";
        snprintf(args, sizeof args, "{\"id\":\"%s\"}", booking);
        break;
    case V_PERIOD_CLOSE:
        if (arm_hook != NULL) {
            arm_hook();
        }
        return engine_set_clock(eng, 1772323200 + 3600, err); /* 2026-03-01T01:00Z */
    case V_ALLOCATE:
        op = "allocations.create";
        snprintf(args, sizeof args,
                 "{\"tenant_id\":\"%s\",\"building_ids\":[\"%s\"],\"description\":\"once\","
                 "\"unit\":\"hour\",\"lines\":[{\"scope\":\"all\",\"amount\":5}],"
                 "\"targeting\":{\"type\":\"all\"},\"pool\":\"per_user\","
                 "\"schedule\":{\"start\":\"2026-01-15\",\"recurrence\":\"weekly\"}}",
                 tenant, building);
        break;
    case V_COUNT:
        break;
    }
    json_t *a = json_loads(args, 0, NULL);
    if (a == NULL) {
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    json_t *out = NULL;
    bool created, replayed;
    /* Armed only now: the test's own parsing above is not under test. */
    if (arm_hook != NULL) {
        arm_hook();
    }
    int rc = engine_exec(eng, &console, op, a, NULL, &out, &created, &replayed, err);
    atomic_store(&io_armed, false);
    atomic_store(&mem_armed, false);
    json_decref(a);
    json_decref(out);
    return rc;
}

static enum injector { INJECT_IO, INJECT_MEM } arming;

static void
arm_now(void)
{
    atomic_store(arming == INJECT_IO ? &io_armed : &mem_armed, true);
}

/* Sweeps one injector over one operation.  Returns the number of runs. */
static int
sweep(enum injector inj, enum victim v, const char *base, const char *before,
      const char *after)
{
    char db[300];
    path_of("run.db", db, sizeof db);
    int runs = 0, acked = 0, refused = 0;
    long step = 1;
    const char *ex = getenv("ALLOT_FAULT_EXHAUSTIVE");
    long exhaustive = ex != NULL && atol(ex) > 0 ? atol(ex) : 400;
    for (long n = 1; n < 200000; n += step) {
        copy_file(base, db);
        struct engine eng;
        struct eng_error err = {0};
        if (open_engine(&eng, db, &err) != 0) {
            CHECK(!"the copy opens");
            return runs;
        }
        atomic_store(inj == INJECT_IO ? &io_calls : &mem_calls, 0);
        atomic_store(inj == INJECT_IO ? &io_fail_at : &mem_fail_at, n);
        atomic_store(inj == INJECT_IO ? &io_fired : &mem_fired, false);
        arming = inj;
        arm_hook = arm_now;
        int rc = run_victim(&eng, v, &err);
        arm_hook = NULL;
        atomic_store(&io_armed, false);
        atomic_store(&mem_armed, false);
        bool fired = atomic_load(inj == INJECT_IO ? &io_fired : &mem_fired);
        long calls = atomic_load(inj == INJECT_IO ? &io_calls : &mem_calls);
        engine_close(&eng);
        runs++;
        char fp[65];
        bool clean;
        fingerprint(db, fp, &clean);
        bool is_before = strcmp(fp, before) == 0, is_after = strcmp(fp, after) == 0;
        if (rc == 0) {
            acked++;
        } else {
            refused++;
        }
        /* An error answer carries a status a client can act on. */
        bool sane_error = rc == 0 || err.status == ENG_ESTORE || err.status == ENG_ENOMEM ||
                          err.status == ENG_EPOLICY;
        bool ok = clean && (rc == 0 ? is_after : (is_before || is_after)) && sane_error;
        if (!ok) {
            printf("# %s, %s fault at call %ld: rc %d (%s: %s), %s, state %s\n",
                   victim_names[v], inj == INJECT_IO ? "I/O" : "allocation", n, rc, err.code,
                   err.msg, clean ? "verify clean" : "VERIFY FAILS",
                   is_before ? "before" : is_after ? "after" : "PARTIAL");
            CHECK(ok);
            /* The first wrong state is kept for a look (the directory stays). */
            char kept[320];
            path_of("first-failure.db", kept, sizeof kept);
            if (access(kept, F_OK) != 0) {
                copy_file(db, kept);
                printf("# kept as %s\n", kept);
            }
        }
        if (!fired) {
            break; /* the operation ran to its end without meeting call n */
        }
        /* Allocation sweeps are long: every call for the first 400
         * (ALLOT_FAULT_EXHAUSTIVE), then a sample that still reaches the
         * end. */
        if (inj == INJECT_MEM && n >= exhaustive) {
            step = calls / 150 > 1 ? calls / 150 : 1;
        }
    }
    printf("# %s, %s faults: %d runs, %d acknowledged, %d refused\n", victim_names[v],
           inj == INJECT_IO ? "I/O" : "allocation", runs, acked, refused);
    return runs;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Before SQLite initialises: its allocator can only be swapped now. */
    failing_allocator_install();
    faulty_vfs_install();
    policies = getenv("ALLOT_POLICIES");
    if (policies == NULL) {
        policies = ALLOT_SOURCE_DIR "/policies";
    }
    snprintf(dir, sizeof dir, "/tmp/allot-faults-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    char base[300], scratch[300];
    path_of("base.db", base, sizeof base);
    path_of("scratch.db", scratch, sizeof scratch);
    seed(base);
    char before[65];
    bool clean;
    fingerprint(base, before, &clean);
    CHECK(clean);
    for (int v = 0; v < V_COUNT; v++) {
        /* The state after a fault-free run. */
        copy_file(base, scratch);
        struct engine eng;
        struct eng_error err = {0};
        CHECK_INT(open_engine(&eng, scratch, &err), 0);
        /* Our allocator came first: the engine's block cache stays out of
         * the way, so every allocation reaches it and can fail. */
        CHECK(!eng_alloc_cached());
        int rc = run_victim(&eng, (enum victim)v, &err);
        if (rc != 0) {
            printf("# %s fails without faults: %s\n", victim_names[v], err.msg);
        }
        CHECK_INT(rc, 0);
        engine_close(&eng);
        char after[65];
        fingerprint(scratch, after, &clean);
        CHECK(clean);
        CHECK(strcmp(before, after) != 0);
        /* ALLOT_FAULTS=io or =mem runs one injector only (for debugging). */
        const char *only = getenv("ALLOT_FAULTS");
        if (only == NULL || strcmp(only, "io") == 0) {
            CHECK(sweep(INJECT_IO, (enum victim)v, base, before, after) > 1);
        }
        if (only == NULL || strcmp(only, "mem") == 0) {
            CHECK(sweep(INJECT_MEM, (enum victim)v, base, before, after) > 1);
        }
    }
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (check_failed_ == 0 && system(cmd) != 0) {
        printf("# could not remove %s\n", dir);
    }
    return check_exit();
}

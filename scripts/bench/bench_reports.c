/* bench_reports.c - builds a large portfolio through the engine and times
 * every report on it: 1,000 tenants, 20,000 users, 100,000 bookings and
 * about 1,000,000 ledger entries (per-user monthly pools, shared monthly
 * and once grants, a year of period ends, adjustments).
 *
 *   bench_reports [--db DIR] [--tenants N] [--bookings N] [--keep] [--no-http]
 *                 [--cache DIR | --no-cache] [--rebuild] [--rss-max MIB]
 *                 [--only TEXT] [--once]
 *   bench_reports --open FILE     (time the reports of a kept database)
 *
 * --only times only the reports whose label holds TEXT, --once runs each
 * once instead of five times (both for callgrind, e.g.
 * `valgrind --tool=callgrind --toggle-collect=op_datahub bench_reports
 * --open FILE --only "hours, portfolio" --once --no-http`).
 *
 * The portfolio is built once and kept in a cache directory (--cache, else
 * $ALLOT_BENCH_CACHE, else /var/tmp/allot-bench), under a name that holds
 * the schema version, the recipe version below and the sizes: later runs
 * copy it (a second) instead of building it again.  A build runs on tmpfs
 * (/dev/shm) when there is one, where a commit's fsync costs nothing (the
 * build needs no durability; the timings run on the copy in --db DIR).
 *
 * Prints the portfolio's size, then per report the median of 5 runs in
 * process (engine_exec), with three significant digits (0.0412 ms, never
 * "0 ms").  Then, unless --no-http, it starts the allotd built beside it
 * (BENCH_THREADS workers, default 96) on the same database and times each
 * report over HTTP: median of 5 requests, each on a new connection (so on
 * different workers), every answer checked (status 200 and a body), with
 * the server's peak resident memory (VmHWM) after each report.  Last,
 * BENCH_HAMMER client threads (default 96) request every report at once,
 * BENCH_HAMMER_ROUNDS times each (default 3), every answer checked; the
 * run fails when the server's peak resident memory passes --rss-max MiB
 * (default 512). */
#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_util.h"
#include "engine.h"
#include "timeutil.h"

/* Bump when the portfolio built below changes: cached files of another
 * recipe are then not used. */
#define RECIPE_VERSION 2

/* Client threads while building (the writer batches what they queue). */
#define BUILD_THREADS 16

static int tenants_n = 1000, users_per = 20, rooms_n = 200;
static long bookings_n = 100000;
static char **tenants, **users, **rooms, *buildings[2];

/* Runs fn(i) for i in [0, n) on BUILD_THREADS threads (the writer batches
 * them). */
struct range {
    long from, to;
    void (*fn)(long);
};

static void *
range_main(void *arg)
{
    struct range *r = arg;
    for (long i = r->from; i < r->to; i++) {
        r->fn(i);
    }
    return NULL;
}

static void
parallel(long n, void (*fn)(long))
{
    pthread_t tid[BUILD_THREADS];
    struct range rs[BUILD_THREADS];
    for (int t = 0; t < BUILD_THREADS; t++) {
        rs[t] = (struct range){n * t / BUILD_THREADS, n * (t + 1) / BUILD_THREADS, fn};
        pthread_create(&tid[t], NULL, range_main, &rs[t]);
    }
    for (int t = 0; t < BUILD_THREADS; t++) {
        pthread_join(tid[t], NULL);
    }
}

static void
make_tenant(long i)
{
    char name[32];
    snprintf(name, sizeof name, "Tenant %ld", i);
    tenants[i] = id_of(must("tenants.create", json_pack("{s:s, s:[s], s:b}", "name", name,
                                                        "building_ids", buildings[i % 2],
                                                        "cross_building", 0)));
}

static void
make_user(long i)
{
    char name[32];
    snprintf(name, sizeof name, "User %ld", i);
    users[i] = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id",
                                                    tenants[i / users_per], "name", name,
                                                    "email", "u@example.com")));
}

static void
make_allocations(long i)
{
    const char *b = buildings[i % 2];
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:s, s:[{s:s, s:i}], s:s, s:{s:s, s:s}}",
                               "tenant_id", tenants[i], "building_ids", b, "description",
                               "per-user monthly", "unit", "hour", "lines", "scope", "all",
                               "amount", 5, "pool", "per_user", "schedule", "start",
                               "2026-01-01", "recurrence", "monthly")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:s, s:[{s:s, s:i}], s:{s:s, s:s}}",
                               "tenant_id", tenants[i], "building_ids", b, "description",
                               "shared monthly", "unit", "hour", "lines", "scope", "all",
                               "amount", 100, "schedule", "start", "2026-01-01", "recurrence",
                               "monthly")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id",
                               tenants[i], "building_ids", b, "description", "once coins",
                               "unit", "coin", "lines", "scope", "all", "amount", 100000,
                               "schedule", "start", "2026-01-01")));
}

static void
make_booking(long n)
{
    /* Spread over 2026: each booking its own room-hour. */
    long tenant = n % tenants_n;
    long user = tenant * users_per + (n / tenants_n) % users_per;
    long half = rooms_n / 2;
    long room = (tenant % 2) * half + n % half;
    int64_t slot = n / half;
    int64_t day = slot % 360, hour = 8 + slot / 360 % 10;
    int64_t t0 = 1767225600 + 86400 * day + 3600 * hour;
    char s[32], e[32];
    time_format_rfc3339(t0, s, sizeof s);
    time_format_rfc3339(t0 + 3600, e, sizeof e);
    json_t *out = NULL;
    bool created;
    bool replayed;
    struct eng_error err = {0};
    json_t *args = json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[room], "user_id",
                             users[user], "start", s, "end", e, "payment_method",
                             (n / tenants_n) % 10 == 0 ? "card" : "credits");
    /* Some fail for lack of credits late in a month: that is fine. */
    if (engine_exec(&eng, &admin, "bookings.create", args, NULL, &out, &created, &replayed,
                    &err) != 0) {
        out = NULL;
    }
    json_decref(args);
    json_decref(out);
}

static long adjust_lots[1000];
static int adjust_n;

static void
make_adjustment(long n)
{
    char lot[32];
    snprintf(lot, sizeof lot, "lot_%ld", adjust_lots[n % adjust_n]);
    json_decref(must("adjustments.create",
                     json_pack("{s:s, s:f, s:s}", "lot_id", lot, "amount", 0.5, "memo", "b")));
}

static double
median5(double v[5])
{
    for (int i = 0; i < 5; i++) {
        for (int j = i + 1; j < 5; j++) {
            if (v[j] < v[i]) {
                double x = v[i];
                v[i] = v[j];
                v[j] = x;
            }
        }
    }
    return v[2];
}

/* Runs per report in process (--runs; 5 by default, the median printed). */
static int runs_n = 5;

static double
time_op(const char *op, const char *json)
{
    double ms[5];
    for (int k = 0; k < runs_n; k++) {
        json_t *args = json_loads(json, 0, NULL);
        double t0 = now_s();
        json_decref(must(op, args));
        ms[k] = (now_s() - t0) * 1000;
    }
    return runs_n == 5 ? median5(ms) : ms[0];
}

/* Milliseconds with three significant digits: 434, 72.3, 1.84, 0.0412. */
static const char *
fmt_ms(double ms, char *buf, size_t cap)
{
    int decimals = ms >= 100 ? 0 : ms >= 10 ? 1 : ms >= 1 ? 2 : ms >= 0.1 ? 3 : 4;
    snprintf(buf, cap, "%.*f ms", decimals, ms);
    return buf;
}

/* The reports timed, in process and over HTTP (the same arguments). */
static const struct bench_report {
    const char *label, *op, *args, *path;
} reports[] = {
    {"datahub 12 months, hours, portfolio", "reports.datahub",
     "{\"unit\":\"hour\",\"from\":\"2026-01\",\"to\":\"2026-12\"}",
     "/v1/reports/datahub?unit=hour&from=2026-01&to=2026-12"},
    {"datahub 12 months, coins, portfolio", "reports.datahub",
     "{\"unit\":\"coin\",\"from\":\"2026-01\",\"to\":\"2026-12\"}",
     "/v1/reports/datahub?unit=coin&from=2026-01&to=2026-12"},
    {"datahub 12 months, hours, portfolio, CSV", "reports.datahub",
     "{\"unit\":\"hour\",\"from\":\"2026-01\",\"to\":\"2026-12\",\"format\":\"csv\"}",
     "/v1/reports/datahub?unit=hour&from=2026-01&to=2026-12&format=csv"},
    {"datahub 12 months, one tenant", "reports.datahub",
     "{\"unit\":\"hour\",\"from\":\"2026-01\",\"to\":\"2026-12\",\"tenant_id\":\"ten_7\"}",
     "/v1/reports/datahub?unit=hour&from=2026-01&to=2026-12&tenant_id=ten_7"},
    {"dashboard, portfolio", "reports.dashboard", "{\"unit\":\"hour\"}",
     "/v1/reports/dashboard?unit=hour"},
    {"dashboard, one building", "reports.dashboard",
     "{\"unit\":\"hour\",\"building_id\":\"bld_2\"}",
     "/v1/reports/dashboard?unit=hour&building_id=bld_2"},
    {"dashboard, one tenant", "reports.dashboard", "{\"unit\":\"hour\",\"tenant_id\":\"ten_7\"}",
     "/v1/reports/dashboard?unit=hour&tenant_id=ten_7"},
    {"credit management, portfolio", "reports.credits", "{}", "/v1/reports/credits"},
    {"usage, one month, portfolio", "reports.usage",
     "{\"from\":\"2026-03-01T00:00:00Z\",\"to\":\"2026-04-01T00:00:00Z\"}",
     "/v1/reports/usage?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z"},
};
#define REPORTS_COUNT (sizeof reports / sizeof reports[0])

/* ---------- over HTTP ---------- */

static int
connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        return fd;
    }
    if (fd >= 0) {
        close(fd);
    }
    return -1;
}

/* One GET on a new connection; returns the status (0 on a socket failure)
 * and the bytes received in *bytes. */
static int
http_get(int port, const char *key, const char *path, long *bytes)
{
    *bytes = 0;
    int fd = connect_port(port);
    if (fd < 0) {
        return 0;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer %s\r\n"
                     "Connection: close\r\n\r\n",
                     path, key);
    if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != (ssize_t)n) {
        close(fd);
        return 0;
    }
    char buf[65536];
    char head[16] = {0};
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0) {
        if (*bytes == 0) {
            memcpy(head, buf, got < 15 ? (size_t)got : 15);
        }
        *bytes += (long)got;
    }
    close(fd);
    int status = 0;
    return sscanf(head, "HTTP/1.1 %d", &status) == 1 ? status : 0;
}

/* The server's peak resident memory, in MiB (-1 when unreadable). */
static double
vm_hwm_mib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib < 0 ? -1 : (double)kib / 1024.0;
}

static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static const char *
bench_threads(void)
{
    return getenv("BENCH_THREADS") != NULL ? getenv("BENCH_THREADS") : "96";
}

/* Starts the allotd built beside this program on db (the engine here is
 * closed by then); returns its pid once it accepts connections, or -1. */
static pid_t
start_allotd(const char *db, int port)
{
    char self[1024] = {0}, allotd[1100], listen_at[64];
    if (readlink("/proc/self/exe", self, sizeof self - 1) < 0) {
        return -1;
    }
    snprintf(allotd, sizeof allotd, "%s/allotd", dirname(self));
    snprintf(listen_at, sizeof listen_at, "127.0.0.1:%d", port);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL ||
            freopen("/dev/null", "w", stderr) == NULL) {
            _exit(127);
        }
        execl(allotd, allotd, "--db", db, "--listen", listen_at, "--policies",
              ALLOT_SOURCE_DIR "/policies", "--threads", bench_threads(), "--fake-clock", "--now",
              "2027-01-15T00:00:00Z", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; pid > 0 && i < 600; i++) {
        int fd = connect_port(port);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        usleep(50000);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return -1;
}

/* The hammer: thread i requests report i % REPORTS_COUNT `rounds` times,
 * each on a new connection, and counts bad answers. */
struct hammer {
    pthread_t tid;
    int port, index, rounds;
    const char *key;
    int bad;
};

static void *
hammer_main(void *arg)
{
    struct hammer *h = arg;
    const char *path = reports[(size_t)h->index % REPORTS_COUNT].path;
    for (int k = 0; k < h->rounds; k++) {
        long bytes = 0;
        int status = http_get(h->port, h->key, path, &bytes);
        if (status != 200 || bytes == 0) {
            fprintf(stderr, "bench: FAILED: GET %s answered %d under load\n", path, status);
            h->bad++;
        }
    }
    return NULL;
}

static int
env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v != NULL && atoi(v) > 0 ? atoi(v) : dflt;
}

/* Times every report over HTTP, then hammers them all at once; returns
 * non-zero when an answer was bad or the peak memory passed rss_max MiB. */
static int
time_http(const char *db, const char *key, double rss_max)
{
    int port = free_port();
    pid_t pid = start_allotd(db, port);
    if (pid < 0) {
        fprintf(stderr, "bench: FAILED: allotd did not start\n");
        return 1;
    }
    printf("over HTTP (allotd, %s workers, VmHWM at start %.0f MiB):\n", bench_threads(),
           vm_hwm_mib(pid));
    int bad = 0;
    for (size_t r = 0; r < REPORTS_COUNT && bad == 0; r++) {
        double ms[5];
        long bytes = 0;
        for (int k = 0; k < 5 && bad == 0; k++) {
            double t0 = now_s();
            int status = http_get(port, key, reports[r].path, &bytes);
            ms[k] = (now_s() - t0) * 1000;
            if (status != 200 || bytes == 0) {
                fprintf(stderr, "bench: FAILED: GET %s answered %d\n", reports[r].path, status);
                bad = 1;
            }
        }
        if (bad == 0) {
            char b[32];
            printf("  %s: %s, %ld bytes, VmHWM %.0f MiB\n", reports[r].label,
                   fmt_ms(median5(ms), b, sizeof b), bytes, vm_hwm_mib(pid));
        }
    }
    int n = env_int("BENCH_HAMMER", 96), rounds = env_int("BENCH_HAMMER_ROUNDS", 3);
    struct hammer *hs = calloc((size_t)n, sizeof *hs);
    double t0 = now_s();
    for (int i = 0; bad == 0 && hs != NULL && i < n; i++) {
        hs[i] = (struct hammer){.port = port, .index = i, .rounds = rounds, .key = key};
        if (pthread_create(&hs[i].tid, NULL, hammer_main, &hs[i]) != 0) {
            fprintf(stderr, "bench: FAILED: no thread for the hammer\n");
            n = i;
            bad = 1;
        }
    }
    for (int i = 0; hs != NULL && i < n; i++) {
        pthread_join(hs[i].tid, NULL);
        bad |= hs[i].bad != 0;
    }
    free(hs);
    double hwm = vm_hwm_mib(pid);
    printf("  %d clients at once, every report, %d rounds each: %.1f s, VmHWM %.0f MiB"
           " (bound %.0f MiB)\n",
           n, rounds, now_s() - t0, hwm, rss_max);
    if (hwm < 0 || hwm > rss_max) {
        fprintf(stderr, "bench: FAILED: allotd's peak resident memory %.0f MiB is above %.0f MiB\n",
                hwm, rss_max);
        bad = 1;
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return bad;
}

/* The benchmark's own read connection to `path`, to count rows
 * independently of the engine (the engine's store is not for outside
 * callers); NULL closes it. */
static sqlite3 *
bench_db(const char *path)
{
    static sqlite3 *db;
    if (path == NULL) {
        sqlite3_close(db);
        db = NULL;
        return NULL;
    }
    if (db == NULL && sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench: cannot open %s\n", path);
        exit(1);
    }
    return db;
}

static long
count(const char *path, const char *table)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st = NULL;
    long n = 0;
    if (sqlite3_prepare_v2(bench_db(path), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        n = (long)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

/* Copies file `from` to `to` (created or truncated); 0 or -1. */
static int
copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    int out = in >= 0 ? open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    int rc = in >= 0 && out >= 0 ? 0 : -1;
    char *buf = malloc(1 << 20);
    ssize_t got = 0;
    while (rc == 0 && buf != NULL && (got = read(in, buf, 1 << 20)) > 0) {
        rc = write(out, buf, (size_t)got) == got ? 0 : -1;
    }
    if (got < 0 || buf == NULL || (out >= 0 && fsync(out) != 0)) {
        rc = -1;
    }
    free(buf);
    if (in >= 0) {
        close(in);
    }
    if (out >= 0 && close(out) != 0) {
        rc = -1;
    }
    return rc;
}

static bool
file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int
open_engine(const char *path, int64_t now, bool building)
{
    struct engine_config cfg;
    engine_config_default(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s", path);
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s/policies", ALLOT_SOURCE_DIR);
    cfg.fake_clock = true;
    cfg.fake_now = now;
    cfg.create = true;
    /* Building: as many readers as client threads, so each booking's plan
     * finds one and runs outside the writer; timing: allotd's defaults. */
    if (building) {
        cfg.readers = BUILD_THREADS;
    }
    struct eng_error err = {0};
    if (engine_open(&eng, &cfg, &err) != 0 || engine_start_writer(&eng, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Builds the portfolio at `path` through the engine (then closed). */
static int
build_portfolio(const char *path)
{
    if (open_engine(path, 1767225600 - 86400, true) != 0) { /* 2025-12-31 */
        return -1;
    }
    double t0 = now_s(), start = t0;
    buildings[0] = id_of(must("buildings.create", json_pack("{s:s, s:s, s:s}", "name", "North",
                                                            "timezone", "UTC", "currency", "USD")));
    buildings[1] = id_of(must("buildings.create",
                              json_pack("{s:s, s:s, s:s}", "name", "South", "timezone",
                                        "Europe/Paris", "currency", "EUR")));
    rooms = calloc((size_t)rooms_n, sizeof *rooms);
    tenants = calloc((size_t)tenants_n, sizeof *tenants);
    users = calloc((size_t)(tenants_n * users_per), sizeof *users);
    for (int i = 0; i < rooms_n; i++) {
        char name[32];
        snprintf(name, sizeof name, "Room %d", i);
        rooms[i] = id_of(must("resources.create",
                              json_pack("{s:s, s:s, s:{s:{s:i}, s:{s:s, s:i, s:i}}}",
                                        "building_id", buildings[i / (rooms_n / 2)], "name", name,
                                        "pricing", "money", "per_hour", 5000, "credits", "unit",
                                        "hour", "per_hour", 1, "increment_minutes", 30)));
    }
    parallel(tenants_n, make_tenant);
    parallel((long)tenants_n * users_per, make_user);
    parallel(tenants_n, make_allocations);
    printf("portfolio set up in %.1f s\n", now_s() - t0);
    t0 = now_s();
    parallel(bookings_n, make_booking);
    printf("%ld booking attempts in %.1f s\n", bookings_n, now_s() - t0);
    t0 = now_s();
    struct eng_error e2 = {0};
    if (engine_set_clock(&eng, 1798761600 + 14 * 86400, &e2) != 0) { /* 2027-01-15 */
        fprintf(stderr, "bench: clock: %s\n", e2.msg);
    }
    printf("a year of period boundaries processed in %.1f s\n", now_s() - t0);
    /* Top up to ~1,000 entries per tenant (1,000,000 for the 1,000 tenants
     * of the default) with adjustments on open once lots. */
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(bench_db(path),
                       "SELECT id FROM lot WHERE closed = 0 AND unit = 'coin' LIMIT 1000", -1,
                       &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW && adjust_n < 1000) {
        adjust_lots[adjust_n++] = (long)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    long entries = count(path, "entry");
    long missing = 1000L * tenants_n - entries;
    if (missing > 0 && adjust_n > 0) {
        t0 = now_s();
        parallel(missing, make_adjustment);
        printf("%ld adjustments in %.1f s\n", missing, now_s() - t0);
    }
    bench_db(NULL);
    engine_close(&eng);
    printf("portfolio built in %.1f s\n", now_s() - start);
    return 0;
}

/* The newest cached portfolio of the same recipe and sizes made by an older
 * schema, into out; false if there is none. */
static bool
older_cached(const char *cache, char *out, size_t size)
{
    for (int v = store_schema_version() - 1; v >= 1; v--) {
        snprintf(out, size, "%s/reports-schema%d-recipe%d-t%d-b%ld.db", cache, v,
                 RECIPE_VERSION, tenants_n, bookings_n);
        if (file_exists(out)) {
            return true;
        }
    }
    return false;
}

int
main(int argc, char **argv)
{
    const char *dir = "/tmp";
    const char *cache = getenv("ALLOT_BENCH_CACHE") != NULL ? getenv("ALLOT_BENCH_CACHE")
                                                             : "/var/tmp/allot-bench";
    bool keep = false, http = true, rebuild = false;
    double rss_max = 512;
    const char *reuse = NULL, *only = NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--open") == 0 && i + 1 < argc) {
            reuse = argv[++i];
            keep = true;
            continue;
        }
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--cache") == 0 && i + 1 < argc) {
            cache = argv[++i];
        } else if (strcmp(argv[i], "--no-cache") == 0) {
            cache = NULL;
        } else if (strcmp(argv[i], "--rebuild") == 0) {
            rebuild = true;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--once") == 0) {
            runs_n = 1;
        } else if (strcmp(argv[i], "--rss-max") == 0 && i + 1 < argc) {
            rss_max = atof(argv[++i]);
        } else if (strcmp(argv[i], "--tenants") == 0 && i + 1 < argc) {
            tenants_n = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--bookings") == 0 && i + 1 < argc) {
            bookings_n = atol(argv[++i]);
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else if (strcmp(argv[i], "--no-http") == 0) {
            http = false;
        } else {
            fprintf(stderr, "bench: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    char path[1024], cached[1024] = "", built[1024];
    snprintf(path, sizeof path, "%s/bench-reports-%d.db", dir, (int)getpid());
    if (reuse != NULL) {
        snprintf(path, sizeof path, "%s", reuse);
    }
    if (cache != NULL) {
        snprintf(cached, sizeof cached, "%s/reports-schema%d-recipe%d-t%d-b%ld.db", cache,
                 store_schema_version(), RECIPE_VERSION, tenants_n, bookings_n);
    }
    if (reuse == NULL && cached[0] != '\0' && !rebuild && file_exists(cached)) {
        double t0 = now_s();
        if (copy_file(cached, path) != 0) {
            fprintf(stderr, "bench: cannot copy %s to %s\n", cached, path);
            return 1;
        }
        printf("portfolio from the cache %s (copied in %.1f s)\n", cached, now_s() - t0);
    } else if (reuse == NULL && cached[0] != '\0' && !rebuild &&
               older_cached(cache, built, sizeof built)) {
        /* A portfolio cached by an older schema: the engine migrates the
         * copy when it opens it, as it would a user's database (seconds,
         * against an hour to build it again). */
        double t0 = now_s();
        if (copy_file(built, path) != 0) {
            fprintf(stderr, "bench: cannot copy %s to %s\n", built, path);
            return 1;
        }
        printf("portfolio from the cache %s of an older schema (copied in %.1f s, migrated at"
               " open)\n",
               built, now_s() - t0);
    } else if (reuse == NULL) {
        /* On tmpfs when there is one: fsync is free there. */
        snprintf(built, sizeof built, "%s/bench-reports-build-%d.db",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : dir, (int)getpid());
        char wal[1100];
        snprintf(wal, sizeof wal, "%s-wal", built);
        if (build_portfolio(built) != 0 || file_exists(wal)) {
            fprintf(stderr, "bench: the build failed or left its WAL %s\n", wal);
            return 1;
        }
        if (cached[0] != '\0') {
            char tmp[1100];
            snprintf(tmp, sizeof tmp, "%s.%d.tmp", cached, (int)getpid());
            if (mkdir(cache, 0755) != 0 && !file_exists(cache)) {
                fprintf(stderr, "bench: cannot make the cache directory %s\n", cache);
            } else if (copy_file(built, tmp) != 0 || rename(tmp, cached) != 0) {
                fprintf(stderr, "bench: cannot write the cache %s\n", cached);
                unlink(tmp);
            } else {
                printf("portfolio cached as %s\n", cached);
            }
        }
        if (copy_file(built, path) != 0) {
            fprintf(stderr, "bench: cannot copy %s to %s\n", built, path);
            return 1;
        }
        unlink(built);
    }
    /* Timings on a fresh open of the file, where the build left the clock. */
    if (open_engine(path, 1798761600 + 14 * 86400, false) != 0) { /* 2027-01-15 */
        return 1;
    }
    printf("tenants %ld, users %ld, bookings %ld, lots %ld, entries %ld\n", count(path, "tenant"),
           count(path, "user"), count(path, "booking"), count(path, "lot"),
           count(path, "entry"));
    bench_db(NULL);
    for (size_t r = 0; r < REPORTS_COUNT; r++) {
        char b[32];
        if (only != NULL && strstr(reports[r].label, only) == NULL) {
            continue;
        }
        printf("%s: %s\n", reports[r].label,
               fmt_ms(time_op(reports[r].op, reports[r].args), b, sizeof b));
    }
    /* A key for the HTTP half; the engine closes before allotd opens. */
    json_t *made = must("keys.create", json_pack("{s:s}", "role", "super_admin"));
    char *key = strdup(json_string_value(json_object_get(made, "key")));
    json_decref(made);
    engine_close(&eng);
    int bad = http ? time_http(path, key, rss_max) : 0;
    free(key);
    if (!keep) {
        unlink(path);
    } else {
        printf("database kept: %s\n", path);
    }
    if (bad != 0) {
        printf("bench: FAILED (a report over HTTP did not answer 200, or the server's peak"
               " memory passed %.0f MiB)\n",
               rss_max);
    }
    return bad;
}

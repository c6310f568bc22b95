/* bench_reports.c - builds a large portfolio through the engine and times
 * every report on it: 1,000 tenants, 20,000 users, 100,000 bookings and
 * about 1,000,000 ledger entries (per-user monthly pools, shared monthly
 * and once grants, a year of period ends, adjustments).
 *
 *   bench_reports [--db DIR] [--tenants N] [--bookings N] [--keep] [--no-http]
 *   bench_reports --open FILE     (time the reports of a kept database)
 *
 * Prints the portfolio's size, then per report the median of 5 runs in
 * process (engine_exec), with three significant digits (0.0412 ms, never
 * "0 ms").  Then, unless --no-http, it starts the allotd built beside it
 * (BENCH_THREADS workers, default 96) on the same database and times each
 * report over HTTP: median of 5 requests, each on a new connection (so on
 * different workers), every answer checked (status 200 and a body), with
 * the server's peak resident memory (VmHWM) after each report. */
#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_util.h"
#include "engine.h"
#include "timeutil.h"

static int tenants_n = 1000, users_per = 20, rooms_n = 200;
static long bookings_n = 100000;
static char **tenants, **users, **rooms, *buildings[2];

/* Runs fn(i) for i in [0, n) on 16 threads (the writer batches them). */
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
    pthread_t tid[16];
    struct range rs[16];
    for (int t = 0; t < 16; t++) {
        rs[t] = (struct range){n * t / 16, n * (t + 1) / 16, fn};
        pthread_create(&tid[t], NULL, range_main, &rs[t]);
    }
    for (int t = 0; t < 16; t++) {
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

static void
make_adjustment(long n)
{
    char lot[32];
    snprintf(lot, sizeof lot, "lot_%ld", adjust_lots[n % 1000]);
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

static double
time_op(const char *op, const char *json)
{
    double ms[5];
    for (int k = 0; k < 5; k++) {
        json_t *args = json_loads(json, 0, NULL);
        double t0 = now_s();
        json_decref(must(op, args));
        ms[k] = (now_s() - t0) * 1000;
    }
    return median5(ms);
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
    static char buf[65536];
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

/* Times every report over HTTP; returns non-zero when an answer was bad. */
static int
time_http(const char *db, const char *key)
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
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return bad;
}

/* The benchmark's own read connection, to count rows independently of the
 * engine (the engine's store is not for outside callers). */
static sqlite3 *
bench_db(void)
{
    static sqlite3 *db;
    if (db == NULL && sqlite3_open_v2(eng.cfg.db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
                          SQLITE_OK) {
        fprintf(stderr, "bench: cannot open %s\n", eng.cfg.db_path);
        exit(1);
    }
    return db;
}

static long
count(const char *table)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st = NULL;
    long n = 0;
    if (sqlite3_prepare_v2(bench_db(), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        n = (long)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

int
main(int argc, char **argv)
{
    const char *dir = "/tmp";
    bool keep = false, http = true;
    const char *reuse = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--open") == 0 && i + 1 < argc) {
            reuse = argv[++i];
            keep = true;
            continue;
        }
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--tenants") == 0 && i + 1 < argc) {
            tenants_n = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--bookings") == 0 && i + 1 < argc) {
            bookings_n = atol(argv[++i]);
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else if (strcmp(argv[i], "--no-http") == 0) {
            http = false;
        }
    }
    struct engine_config cfg;
    engine_config_default(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s/bench-reports-%d.db", dir, (int)getpid());
    if (reuse != NULL) {
        snprintf(cfg.db_path, sizeof cfg.db_path, "%s", reuse);
    }
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s/policies", ALLOT_SOURCE_DIR);
    cfg.fake_clock = true;
    cfg.fake_now = 1767225600 - 86400; /* 2025-12-31 */
    if (reuse != NULL) {
        cfg.fake_now = 1798761600 + 14 * 86400; /* where the build left it */
    }
    struct eng_error err = {0};
    if (engine_open(&eng, &cfg, &err) != 0 || engine_start_writer(&eng, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    double t0 = now_s();
    if (reuse != NULL) {
        goto timing;
    }
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
    /* Top up to ~1,000,000 entries with adjustments on open once lots. */
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(bench_db(),
                       "SELECT id FROM lot WHERE closed = 0 AND unit = 'coin' LIMIT 1000", -1,
                       &st, NULL);
    int nlots = 0;
    while (sqlite3_step(st) == SQLITE_ROW && nlots < 1000) {
        adjust_lots[nlots++] = (long)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    long entries = count("entry");
    long missing = 1000000 - entries;
    if (missing > 0 && nlots == 1000) {
        t0 = now_s();
        parallel(missing, make_adjustment);
        printf("%ld adjustments in %.1f s\n", missing, now_s() - t0);
    }
timing:
    printf("tenants %ld, users %ld, bookings %ld, lots %ld, entries %ld\n", count("tenant"),
           count("user"), count("booking"), count("lot"), count("entry"));
    for (size_t r = 0; r < REPORTS_COUNT; r++) {
        char b[32];
        printf("%s: %s\n", reports[r].label,
               fmt_ms(time_op(reports[r].op, reports[r].args), b, sizeof b));
    }
    /* A key for the HTTP half; the engine closes before allotd opens. */
    json_t *made = must("keys.create", json_pack("{s:s}", "role", "super_admin"));
    char *key = strdup(json_string_value(json_object_get(made, "key")));
    json_decref(made);
    engine_close(&eng);
    int bad = http ? time_http(cfg.db_path, key) : 0;
    free(key);
    if (!keep) {
        unlink(cfg.db_path);
    } else {
        printf("database kept: %s\n", cfg.db_path);
    }
    if (bad != 0) {
        printf("bench: FAILED (a report over HTTP did not answer 200)\n");
    }
    return bad;
}

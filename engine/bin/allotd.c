/* allotd.c - the server: startup order, signals and shutdown; no logic.
 *
 *   allotd [--db FILE] [--listen ADDR:PORT] [--policies DIR] [--web DIR]
 *          [--threads N] [--policy-wall-ms N] [--fake-clock [--now RFC3339]] [--demo]
 *          [--pid-file FILE] [--batch-max N] [--readers N] [--compute-slots N]
 *          [--checkpoint-frames N]
 *   allotd --routes       prints the route table as JSON and exits
 *
 * Order: options, signals blocked (so every thread inherits the mask and
 * only the main thread takes them), demo data, engine, HTTP server, the
 * period ticker, then the "listening" line.  SIGTERM or SIGINT stops the
 * listener, waits for requests in flight (each acknowledged write has been
 * committed before its response was written), closes the engine and exits
 * 0, after one line of counters on stderr ("allotd: since start: ...":
 * group-commit batches, the writer's busy time, booking plans, reader
 * waits, compute slots taken and waited for, checkpoints off the writer,
 * policy copies alive, peak resident memory;
 * engine_stats).  SIGHUP rebuilds every building's policy set from
 * the database and the policy directory; a set that fails to load keeps
 * the old one serving.
 *
 * The pid file (FILE.pid next to the database unless --pid-file says
 * otherwise) is taken first of all: allotd writes its process id there and
 * holds an exclusive lock on it until it exits, so `allot policies reload
 * --db FILE` signals the server of that database and no other, a file left
 * by a crash is never mistaken for a live server, and a second allotd on
 * the same database is refused before it touches it. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#include "auth.h"
#include "demo.h"
#include "engine.h"
#include "http.h"
#include "timeutil.h"

#define TICK_MS 250
#define POLICY_WALL_MS_FLAG_MAX 3600000
#define READERS_FLAG_MAX 64

struct options {
    struct engine_config eng;
    struct http_config http;
    bool demo;
    char pid_file[ENGINE_PATH_MAX + 8]; /* "" = FILE.pid next to the database */
};

/* Every 250 ms: follows what other processes committed to the database
 * (engine_sync: policy versions, a shared fake clock), so a policy
 * activated on another node serves here within a second; and, on the real
 * clock, processes period boundaries (expiry, rollover, new periods), so
 * they happen on time even when no request comes in. */
struct ticker {
    struct engine *eng;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    pthread_t thread;
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: allotd [--db FILE] [--listen ADDR:PORT] [--policies DIR] [--web DIR]\n"
               "              [--threads N] [--policy-wall-ms N] [--fake-clock [--now RFC3339]]\n"
               "              [--demo] [--pid-file FILE] [--batch-max N] [--readers N]\n"
               "              [--compute-slots N]   (requests computing at once; 0 = no "
               "limit;\n"
               "                                    default: 4 per CPU)\n"
               "              [--checkpoint-frames N] (WAL frames that start a checkpoint "
               "off the\n"
               "                                    writer, default %d; 0 = inside the "
               "commits)\n"
               "       allotd --routes   (the route table as JSON)\n"
               "the pid file (default: the database's path + .pid) is locked while allotd "
               "runs;\n`allot policies reload --db FILE` finds the server through it\n",
            ENGINE_CHECKPOINT_FRAMES);
}

static int
copy_opt(char *dst, size_t cap, const char *flag, const char *value)
{
    if ((size_t)snprintf(dst, cap, "%s", value) >= cap) {
        fprintf(stderr, "allotd: %s is too long\n", flag);
        return -1;
    }
    return 0;
}

/* One flag and its value (argv[*i + 1]); -1 on a bad flag or value. */
static int
parse_flag(struct options *o, int argc, char **argv, int *i)
{
    const char *f = argv[*i];
    if (strcmp(f, "--fake-clock") == 0) {
        o->eng.fake_clock = true;
        return 0;
    }
    if (strcmp(f, "--demo") == 0) {
        o->demo = true;
        return 0;
    }
    static const char *const with_value[] = {"--db", "--policies", "--listen", "--web",
                                             "--threads", "--now", "--policy-wall-ms",
                                             "--pid-file", "--batch-max", "--readers",
                                             "--compute-slots", "--checkpoint-frames", NULL};
    bool known = false;
    for (int k = 0; with_value[k] != NULL; k++) {
        known = known || strcmp(f, with_value[k]) == 0;
    }
    if (!known) {
        fprintf(stderr, "allotd: unknown option %s\n", f);
        return -1;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "allotd: %s needs a value\n", f);
        return -1;
    }
    const char *v = argv[++*i];
    if (strcmp(f, "--db") == 0) {
        return copy_opt(o->eng.db_path, sizeof o->eng.db_path, f, v);
    } else if (strcmp(f, "--policies") == 0) {
        return copy_opt(o->eng.policies_dir, sizeof o->eng.policies_dir, f, v);
    } else if (strcmp(f, "--listen") == 0) {
        return copy_opt(o->http.listen, sizeof o->http.listen, f, v);
    } else if (strcmp(f, "--pid-file") == 0) {
        return copy_opt(o->pid_file, sizeof o->pid_file, f, v);
    } else if (strcmp(f, "--web") == 0) {
        return copy_opt(o->http.web_dir, sizeof o->http.web_dir, f, v);
    } else if (strcmp(f, "--threads") == 0) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end != '\0' || n < 1 || n > HTTP_THREADS_MAX) {
            fprintf(stderr, "allotd: --threads must be from 1 to %d\n", HTTP_THREADS_MAX);
            return -1;
        }
        o->http.threads = (int)n;
        return 0;
    } else if (strcmp(f, "--readers") == 0) {
        /* Pooled read connections (quotes, plans, reports).  On SQLite each
         * holds its own page cache; on PostgreSQL each is a server backend
         * that mostly waits on round trips, so more of them serve more
         * concurrent reads (engine/README.md, "Deploying N nodes"). */
        char *end;
        long n = strtol(v, &end, 10);
        if (*end != '\0' || n < 1 || n > READERS_FLAG_MAX) {
            fprintf(stderr, "allotd: --readers must be from 1 to %d\n", READERS_FLAG_MAX);
            return -1;
        }
        o->eng.readers = (int)n;
        return 0;
    } else if (strcmp(f, "--batch-max") == 0) {
        /* Writes per group-commit transaction; 1 = one transaction per
         * write (to measure what batching buys, scripts/README.md). */
        char *end;
        long n = strtol(v, &end, 10);
        if (*end != '\0' || n < 1 || n > ENGINE_BATCH_MAX) {
            fprintf(stderr, "allotd: --batch-max must be from 1 to %d\n", ENGINE_BATCH_MAX);
            return -1;
        }
        o->eng.batch_max = (int)n;
        return 0;
    } else if (strcmp(f, "--compute-slots") == 0) {
        /* Requests computing at once; the rest wait in line in the order
         * they came (engine/README.md, "Compute slots").  0 = no limit. */
        char *end;
        long n = strtol(v, &end, 10);
        if (*end != '\0' || n < 0 || n > ENGINE_COMPUTE_SLOTS_MAX) {
            fprintf(stderr, "allotd: --compute-slots must be from 0 to %d\n",
                    ENGINE_COMPUTE_SLOTS_MAX);
            return -1;
        }
        o->eng.compute_slots = (int)n;
        return 0;
    } else if (strcmp(f, "--checkpoint-frames") == 0) {
        /* engine/README.md, "Checkpoints off the writer"; 0 leaves them to
         * SQLite, inside the commit that crosses 1,000 frames. */
        char *end;
        long n = strtol(v, &end, 10);
        if (*end != '\0' || n < 0 || n > ENGINE_CHECKPOINT_FRAMES_MAX) {
            fprintf(stderr, "allotd: --checkpoint-frames must be from 0 to %d\n",
                    ENGINE_CHECKPOINT_FRAMES_MAX);
            return -1;
        }
        o->eng.checkpoint_frames = n == 0 ? -1 : (int)n;
        return 0;
    } else if (strcmp(f, "--policy-wall-ms") == 0) {
        /* The policy wall-clock backstop (the instruction budget is the
         * real limit); the engine refuses values over an hour. */
        char *end;
        long long ms = strtoll(v, &end, 10);
        if (*end != '\0' || ms < 1 || ms > POLICY_WALL_MS_FLAG_MAX) {
            fprintf(stderr, "allotd: --policy-wall-ms must be from 1 to %d\n",
                    POLICY_WALL_MS_FLAG_MAX);
            return -1;
        }
        o->eng.policy.wall_ms_max = ms;
        return 0;
    } else if (strcmp(f, "--now") == 0) {
        struct eng_error err = {0};
        if (time_parse_rfc3339(v, &o->eng.fake_now, &err) != 0) {
            fprintf(stderr, "allotd: --now: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

static int
parse_options(struct options *o, int argc, char **argv)
{
    engine_config_default(&o->eng);
    /* Four per CPU: few enough that the threads computing are a short
     * round for the scheduler, enough that a CPU never idles while a slot
     * holder waits for a lock or a reader (scripts/README.md measured 3, 8
     * and 16 on 2 CPUs: 3 made every request wait and halved the quotes). */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->eng.compute_slots =
        cpus >= 1 && cpus <= ENGINE_COMPUTE_SLOTS_MAX / 4 ? (int)cpus * 4 : 8;
    http_config_default(&o->http);
    snprintf(o->eng.policies_dir, sizeof o->eng.policies_dir, "./policies");
    snprintf(o->http.web_dir, sizeof o->http.web_dir, "./web");
    o->demo = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--routes") == 0) {
            /* The route table as JSON (for the authorization matrix). */
            exit(http_routes_print(stdout) == 0 && fflush(stdout) == 0 ? 0 : 1);
        }
        if (parse_flag(o, argc, argv, &i) != 0) {
            return -1;
        }
    }
    if (o->eng.fake_now != 0 && !o->eng.fake_clock) {
        fprintf(stderr, "allotd: --now needs --fake-clock\n");
        return -1;
    }
    o->http.fake_clock = o->eng.fake_clock;
    /* A database URI (postgresql://...) is served by many nodes: no pid file
     * unless one is asked for. */
    if (o->pid_file[0] == '\0' && strstr(o->eng.db_path, "://") == NULL) {
        snprintf(o->pid_file, sizeof o->pid_file, "%s.pid", o->eng.db_path);
    }
    return 0;
}

/* Takes the pid file: opens (or creates) it, locks it for the life of the
 * process and writes our process id in it.  The descriptor stays open (the
 * lock goes with it; the kernel drops it however the process ends).
 * Returns the descriptor, or -1 with the reason printed: another allotd
 * holds the file, or it cannot be written. */
static int
pidfile_take(const char *path)
{
    if (path[0] == '\0') {
        return INT_MAX; /* none */
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "allotd: pid file %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char text[32] = {0};
        ssize_t n = errno == EWOULDBLOCK ? read(fd, text, sizeof text - 1) : 0;
        text[n > 0 ? strcspn(text, "\n") : 0] = '\0';
        fprintf(stderr, "allotd: %s is locked: allotd %s already serves this database\n",
                path, text[0] != '\0' ? text : "(unknown pid)");
        close(fd);
        return -1;
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, text, (size_t)len) != (ssize_t)len) {
        fprintf(stderr, "allotd: pid file %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Locks the database file itself for the life of the process (flock, which
 * SQLite's own fcntl locks do not see), so that a second allotd on the same
 * file is refused even when the two were given different pid files.  The
 * descriptor is never closed before the process ends: closing a descriptor
 * of the file would drop the fcntl locks SQLite holds on it.  A database
 * URI (many nodes share it) takes no lock.  0, or -1 with the reason. */
static int
dbfile_lock(const char *path)
{
    if (strstr(path, "://") != NULL || strcmp(path, ":memory:") == 0) {
        return 0;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return 0; /* SQLite will say why it cannot open it */
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "allotd: another allotd already serves the database %s\n", path);
        close(fd); /* before SQLite opened it: no lock of ours to drop */
        return -1;
    }
    return 0;
}

/* Removes the pid file at a clean stop, while still holding its lock, so
 * no reader takes the file of a server that has gone for a live one. */
static void
pidfile_release(const char *path, int fd)
{
    if (path[0] == '\0') {
        return;
    }
    (void)unlink(path);
    close(fd);
}

static void *
ticker_main(void *p)
{
    struct ticker *t = p;
    bool sync_failing = false; /* log a failing sync once, not every tick */
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&t->cv, &t->mu, &until);
        if (t->stop) {
            break;
        }
        pthread_mutex_unlock(&t->mu);
        struct eng_error err = {0};
        int synced = engine_sync(t->eng, &err);
        if ((synced != 0) != sync_failing) {
            fprintf(stderr, synced != 0 ? "allotd: following the database: %s\n"
                                        : "allotd: following the database again%s\n",
                    synced != 0 ? err.msg : "");
            sync_failing = synced != 0;
        }
        /* The same test engine_exec makes before a read: only when a
         * boundary is due does it take the writer.  The fake clock moves
         * only when told, and its setter processes what it makes due. */
        memset(&err, 0, sizeof err);
        if (!t->eng->cfg.fake_clock && engine_now(t->eng) >= atomic_load(&t->eng->next_due) &&
            engine_advance(t->eng, &err) != 0) {
            fprintf(stderr, "allotd: processing period boundaries: %s\n", err.msg);
        }
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Every worker thread may hold a client socket and, once it has served a
 * read, its own SQLite reader (database and WAL files): about 3 descriptors
 * each, plus the writer, the listener and the logs.  The usual soft limit
 * of 1,024 would refuse connections long before the workers are busy, so
 * the soft limit is raised as far as needed and the hard limit allows (a
 * process may do that unprivileged); when even the hard limit is short,
 * say so and carry on with what there is. */
#define FDS_PER_THREAD 3
#define FDS_SPARE 256

static void
raise_fd_limit(int threads)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)threads * FDS_PER_THREAD + FDS_SPARE;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want) {
        return;
    }
    rlim_t before = rl.rlim_cur;
    rlim_t got = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    rl.rlim_cur = got;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        got = before;
    }
    if (got < want) {
        fprintf(stderr, "allotd: open files limited to %llu (%d threads want %llu); "
                        "raise the hard limit (ulimit -Hn)\n",
                (unsigned long long)got, threads, (unsigned long long)want);
    }
}

static int
ticker_start(struct ticker *t, struct engine *eng)
{
    pthread_condattr_t attr;
    memset(t, 0, sizeof *t);
    t->eng = eng;
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &attr);
    pthread_condattr_destroy(&attr);
    return pthread_create(&t->thread, NULL, ticker_main, t);
}

static void
ticker_stop(struct ticker *t)
{
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
}

/* Waits for SIGTERM or SIGINT; SIGHUP reloads the policies. */
static void
wait_for_stop(struct engine *eng, const sigset_t *set)
{
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            /* Rebuild every building's set now; one that fails to load keeps
             * serving the set it has. */
            struct principal console = {.role = ROLE_SUPER_ADMIN, .name = "sighup"};
            json_t *out = NULL;
            bool created;
            bool replayed;
            struct eng_error err = {0};
            if (engine_exec(eng, &console, "policies.reload", NULL, NULL, &out, &created,
                            &replayed, &err) != 0) {
                fprintf(stderr, "allotd: SIGHUP: reload failed: %s\n", err.msg);
            } else {
                fprintf(stderr, "allotd: SIGHUP: %lld building policy sets reloaded, %zu refused\n",
                        (long long)json_integer_value(json_object_get(out, "reloaded")),
                        json_array_size(json_object_get(out, "failed")));
            }
            json_decref(out);
            continue;
        }
        fprintf(stderr, "allotd: %s: stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
}

static void
print_ready(const struct demo_keys *keys, const struct http_server *srv)
{
    /* "demo key ROLE: KEY" alone on its line (scripts read it), whom the
     * key stands for on the next. */
    if (keys != NULL) {
        printf("demo keys, the same at every start (%s; %d new):\n", keys->path, keys->minted);
    }
    for (int i = 0; keys != NULL && i < keys->count; i++) {
        printf("demo key %s: %s\n", keys->role[i], keys->key[i]);
        printf("    %s\n", keys->who[i]);
    }
    printf("allotd: listening on %s\n", srv->url);
    fflush(stdout);
}

/* glibc gives threads up to 8 malloc arenas per core, and an arena keeps
 * what was freed in it: with 96 workers each building a large report now
 * and then, allotd's resident memory grew with the number of workers that
 * had served one (570 MiB after five Data Hubs on five workers, 900 MiB
 * under 96 clients; issue 12).  One arena per core bounds it by the
 * machine instead of --threads (140 MiB after the same five; small
 * allocations still go through each thread's cache first).
 * MALLOC_ARENA_MAX in the environment still decides when set. */
static void
bound_malloc_arenas(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (getenv("MALLOC_ARENA_MAX") == NULL) {
        (void)mallopt(M_ARENA_MAX, cores > 0 && cores < 64 ? (int)cores : 2);
    }
}

int
main(int argc, char **argv)
{
    bound_malloc_arenas();
    struct options o;
    if (parse_options(&o, argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(o.http.threads);

    int pid_fd = pidfile_take(o.pid_file);
    if (pid_fd < 0) {
        return 1;
    }
    if (dbfile_lock(o.eng.db_path) != 0) {
        pidfile_release(o.pid_file, pid_fd);
        return 1;
    }
    struct eng_error err = {0};
    struct demo_keys keys = {0};
    if (o.demo && demo_prepare(&o.eng, &keys, &err) != 0) {
        fprintf(stderr, "allotd: demo data: %s\n", err.msg);
        pidfile_release(o.pid_file, pid_fd);
        return 1;
    }
    static struct engine eng; /* large; and it must outlive every worker */
    if (engine_open(&eng, &o.eng, &err) != 0) {
        fprintf(stderr, "allotd: %s\n", err.msg);
        pidfile_release(o.pid_file, pid_fd);
        return 1;
    }
    /* Concurrent writes share one commit (and one fsync) per batch. */
    struct http_server srv;
    if (engine_start_writer(&eng, &err) != 0 ||
        http_server_start(&srv, &eng, &o.http, &err) != 0) {
        fprintf(stderr, "allotd: %s\n", err.msg);
        engine_close(&eng);
        pidfile_release(o.pid_file, pid_fd);
        return 1;
    }
    struct ticker ticker;
    bool ticking = ticker_start(&ticker, &eng) == 0;
    print_ready(o.demo ? &keys : NULL, &srv);

    wait_for_stop(&eng, &set);
    if (ticking) {
        ticker_stop(&ticker);
    }
    http_server_stop(&srv);
    char stats[1024];
    engine_stats_text(&eng, stats, sizeof stats);
    fprintf(stderr, "allotd: since start: %s\n", stats);
    engine_auth_thread_done();
    engine_close(&eng);
    pidfile_release(o.pid_file, pid_fd);
    return 0;
}

/* engine.h - the engine: one database, its policies, its clock.
 *
 * Everything that changes the ledger goes through engine_exec(), which runs
 * one operation (ops.h) as one transaction on the single writer connection,
 * with the caller's principal, an optional idempotency key, and the
 * engine's clock.  Reads run on a fixed pool of shared read connections.  The HTTP
 * server, the Lua module and the REPL all call engine_exec() with the same
 * JSON-shaped arguments, so they share every rule. */
#ifndef ENG_ENGINE_H
#define ENG_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "gate.h"
#include "json_out.h"
#include "policy_host.h"
#include "row_sink.h"
#include "sets.h"
#include "store.h"
#include "values.h"

struct op_env;
struct auth_cache;

#define ENGINE_PATH_MAX 1024
/* Default reader pools (engine_config.readers = 0): on SQLite as many as
 * the concurrent requests a benchmark's 64 connections make, so that a
 * read never waits for a connection (a wait is two context switches;
 * scripts/README.md "HTTP"); on PostgreSQL each is a server process. */
#define ENGINE_READERS_SQLITE 64
#define ENGINE_READERS_PG 4
#define ENGINE_REPORTERS_SQLITE 4

struct engine_config {
    char db_path[ENGINE_PATH_MAX];
    char policies_dir[ENGINE_PATH_MAX]; /* holds default/ and buildings/<id>/ */
    bool fake_clock;                    /* the clock only moves when told */
    int64_t fake_now;                   /* its start instant (0 = the real time) */
    bool create;                        /* create the database file when missing */
    int sqlite_busy_timeout_ms;
    /* Shared read connections for requests (quotes, booking plans, lists,
     * authentication), opened as concurrent requests first need them;
     * 0 = ENGINE_READERS_SQLITE on SQLite, ENGINE_READERS_PG on PostgreSQL. */
    int readers;
    /* Read connections for reports, simulations and verify, which build
     * large answers in memory (so at most this many at once); 0 = 4 on
     * SQLite, and on PostgreSQL these share the readers (each connection
     * there is a server process). */
    int reporters;
    int reader_cache_kib, reporter_cache_kib, writer_cache_kib;
    int exporters;                      /* read connections for streamed reports */
    int exporter_cache_kib;
    int list_rows_max;
    int batch_max; /* jobs per group-commit transaction, 1..ENGINE_BATCH_MAX (0 = the max) */
    /* Requests computing at once (engine/README.md, "Compute slots"): the
     * others wait in line, in the order they came; reports and writes
     * waiting for the writer hold none.  0 = no limit (the CLI, the Lua
     * module); allotd gives 4 per CPU unless told. */
    int compute_slots;
    /* WAL frames that start a checkpoint on the checkpointer's connection
     * (engine/README.md, "Checkpoints off the writer"); 0 =
     * ENGINE_CHECKPOINT_FRAMES; < 0: no checkpointer, SQLite checkpoints
     * inside the commits.  Only with the writer thread, on SQLite. */
    int checkpoint_frames;
    /* Tests only (tests/c/test_checkpoint.c): > 0, the checkpointer starts
     * each round only once the WAL is at the backstop, and this many ms
     * later still, as one late for its CPU might. */
    int checkpoint_test_delay_ms;
    struct policy_limits policy;
};
#define ENGINE_CHECKPOINT_FRAMES 4000
#define ENGINE_CHECKPOINT_FRAMES_MAX 1000000
/* A WAL this many times the threshold is emptied with the writer held, and
 * the writer starts no batch on it until a checkpoint has started it over
 * (at most ENGINE_CHECKPOINT_STALL_MS a batch): the WAL file stays within
 * this and one batch's frames, but for a reader holding it longer. */
#define ENGINE_CHECKPOINT_BACKSTOP 8
#define ENGINE_CHECKPOINT_STALL_MS 1000
/* Rounds left for a reader, the copy stuck at one frame, this long: one
 * reader holds one snapshot (a report), and the writer no longer waits at
 * the backstop until a round starts the WAL over. */
#define ENGINE_CHECKPOINT_LONG_READER_MS 100
#define ENGINE_COMPUTE_SLOTS_MAX 1024

struct engine {
    struct engine_config cfg;
    struct store *writer;
    struct store_pool *readers;
    struct store_pool *reporters; /* == readers when they share (PostgreSQL) */
    struct store_pool *exporters; /* streamed reports only: never pins `readers` */
    struct policy_cache policies;
    struct op_env *env; /* what every operation is handed */
    pthread_mutex_t write_mu;
    _Atomic int64_t fake_now;
    _Atomic int64_t next_due;    /* the earliest unprocessed boundary (reads check it) */
    /* Other processes may write the database (PostgreSQL): the fake clock
     * is the database's and boundaries are processed under its lock. */
    bool shared;
    _Atomic int64_t policy_gen_seen; /* the policy generation engine_sync last followed */
    /* The portfolio generation next_due was computed at (-1: unknown).  The
     * boundaries only move with what moves the generation (lots opened,
     * closed, re-dated; allocations), so while it is unchanged and the
     * clock is before next_due, a write need not look for due boundaries.
     * Under write_mu. */
    int64_t next_due_gen;
    /* Group commit (engine_start_writer): writes queue here and one thread
     * runs them in batches, one transaction and one fsync per batch. */
    bool writer_running, writer_stop;
    pthread_t writer_thread;
    pthread_mutex_t queue_mu;
    pthread_cond_t queue_cv;
    struct write_job *queue_head, *queue_tail;
    uint64_t jobs_queued; /* ever, under queue_mu (tests wait on it) */
    /* The authentication cache (auth.c), made on first use. */
    _Atomic(struct auth_cache *) auth_cache;
    /* Counters for engine_stats (relaxed atomics; the writer's are written
     * by the writer thread only). */
    _Atomic uint64_t st_writes, st_batches, st_batch_largest, st_writer_busy_ns, st_writer_cpu_ns;
    _Atomic uint64_t st_plans, st_plans_no_reader;
    int64_t st_since_ns;
    /* Compute slots (cfg.compute_slots > 0). */
    bool gated;
    struct gate gate;
    /* The checkpointer thread and its connection (SQLite, writer running). */
    struct store *ckpt_store;
    bool ckpt_running, ckpt_stop;
    pthread_t ckpt_thread;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    pthread_cond_t ckpt_done_cv; /* a round's second step is over (ckpt_resets moved) */
    _Atomic bool ckpt_asked;
    _Atomic int wal_frames; /* after the last commit; 0 once a checkpoint restarted it */
    _Atomic uint64_t ckpt_resets; /* WAL restarts (and failed rounds), counted holding write_mu */
    _Atomic uint64_t st_ckpts, st_ckpt_frames, st_ckpt_held_ns, st_ckpt_truncates;
    _Atomic uint64_t st_ckpt_stalls, st_ckpt_blocked, st_ckpt_skipped, st_ckpt_unstalled;
    _Atomic uint64_t st_ckpt_held_frames, st_ckpt_synced_beside;
    /* Rounds left for a reader, the copy stuck at ckpt_left_at frames, since
     * (mono ns; 0: none).  ckpt_left_at: the checkpointer thread's only. */
    _Atomic int64_t ckpt_left_since, ckpt_left_seen; /* ..., and the last round that saw it */
    int ckpt_left_at;
};

/* What the engine did since it opened, to tell where a load waits
 * (allotd prints it at stop; scripts/bench/bench_http.sh shows it): writes
 * through the group-commit queue and the batches they were committed in,
 * the writer thread's busy time, booking plans computed on a reader or,
 * finding none free, left whole to the writer, and the reader pool's
 * acquisitions and how many of them had to wait. */
struct engine_stats {
    uint64_t writes, batches, batch_largest;
    double seconds, writer_busy_seconds;
    uint64_t plans, plans_no_reader;
    uint64_t reader_acquires, reader_waits;
    double writer_cpu_seconds;       /* the writer thread's CPU in batches */
    uint64_t wal_writes, wal_calls;  /* WAL writes gathered into calls (walbuf) */
    int compute_slots;               /* 0: no limit */
    uint64_t checkpoints, checkpoint_frames, checkpoint_truncates; /* off the writer */
    double checkpoint_held_seconds;  /* the writer held up for their last part */
    uint64_t checkpoint_held_frames; /* frames that last part copied */
    uint64_t checkpoint_synced_beside; /* database-file syncs beside the writer, before it */
    uint64_t checkpoint_stalls;      /* batches that waited for a WAL at the backstop */
    uint64_t checkpoint_blocked;     /* second steps that could not wait out a reader */
    uint64_t checkpoint_skipped;     /* rounds with a reader behind the WAL's end: writer not held */
    uint64_t checkpoint_unstalled;   /* backstop waits not made: a reader holds the WAL for long */
    uint64_t slot_entries, slot_waits; /* requests that took a slot, and waited for it */
};
void engine_stats(struct engine *eng, struct engine_stats *st);
/* The same as one line of text (no newline). */
void engine_stats_text(struct engine *eng, char *buf, size_t len);

void engine_config_default(struct engine_config *cfg);

/* Opens the database (migrating it), loads the default policies.  Returns 0
 * or an error; on failure nothing is left open. */
ENG_MUST_CHECK int engine_open(struct engine *eng, const struct engine_config *cfg,
                               struct eng_error *err);
void engine_close(struct engine *eng);

/* Starts the group-commit writer thread: from then on concurrent writes are
 * batched, each in its own savepoint, in one transaction per batch (at most
 * cfg.batch_max, by default ENGINE_BATCH_MAX; 1 = one transaction per write).  A write is acknowledged only after its batch commits.
 * engine_close stops the thread after the queued writes are done. */
ENG_MUST_CHECK int engine_start_writer(struct engine *eng, struct eng_error *err);
#define ENGINE_BATCH_MAX 128

/* The engine's current instant (Unix seconds). */
int64_t engine_now(struct engine *eng);
/* Sets the fake clock (only with cfg.fake_clock) and processes every period
 * boundary up to it.  The clock may move backwards only for tests that
 * re-open; here it must not go back: ENG_EINVAL. */
ENG_MUST_CHECK int engine_set_clock(struct engine *eng, int64_t now, struct eng_error *err);

/* Runs operation `op` (see ops.c's table) for `who` with JSON `args`
 * (borrowed; may be NULL).  On success *out is a new JSON value (owned by the
 * caller) and *created tells whether the op made a new object (HTTP 201).  When
 * `idem_key` is non-NULL and the op writes, the first answer is stored with
 * the key in the same transaction: a success, or a business refusal (an
 * ENG_ECONFLICT such as insufficient_credits, with the op's own writes rolled
 * back); validation, authorization, not-found and server errors are not
 * stored.  A retry with the same key and the same args gives the stored
 * answer again with *replayed = true and no second effect: the result with
 * 0, or the refusal's status with *err as the first time.  The same key
 * with other args is ENG_ECONFLICT idempotency_conflict. */
ENG_MUST_CHECK int engine_exec(struct engine *eng, const struct principal *who, const char *op,
                               json_t *args, const char *idem_key, json_t **out,
                               bool *created, bool *replayed, struct eng_error *err);

/* engine_exec for a caller that sends the answer on as JSON text (the
 * HTTP face): `text` is an initialised buffer (json_buf_init; the caller
 * frees it).  On success either *out is a tree, as engine_exec gives, or
 * *out is NULL and `text` holds the answer's compact JSON text: the bytes
 * json_out renders of the tree engine_exec would give, written without
 * building it (quotes.create, bookings.create; ops.h), or, for an
 * idempotent replay, the stored answer's text as it was stored.  On
 * failure *out is NULL and `text` is to be ignored. */
ENG_MUST_CHECK int engine_exec_text(struct engine *eng, const struct principal *who,
                                    const char *op, json_t *args, const char *idem_key,
                                    struct json_buf *text, json_t **out, bool *created,
                                    bool *replayed, struct eng_error *err);

/* Runs read operation `op` like engine_exec, handing `sink` to it: a report
 * that streams (reports.usage and reports.credits without `limit`) calls
 * sink->begin once and sink->row for each row while it reads, on one
 * snapshot, and answers a small summary in *out instead of its rows; other
 * operations ignore the sink and answer as engine_exec does.  It runs on
 * its own small pool of read connections (cfg.exporters, 2 by default), so
 * exports that take long - a slow client on the other side of the sink -
 * wait for each other, never for authentication and ordinary reads. */
ENG_MUST_CHECK int engine_exec_stream(struct engine *eng, const struct principal *who,
                                      const char *op, json_t *args,
                                      const struct row_sink *sink, json_t **out,
                                      struct eng_error *err);

/* Processes every due period boundary (expiry, rollover, new periods) up to
 * now, in its own write transaction.  Cheap when nothing is due. */
ENG_MUST_CHECK int engine_advance(struct engine *eng, struct eng_error *err);

/* Follows what other processes committed to the database: policy
 * versions activated or deactivated elsewhere (cached sets that disagree
 * are dropped: policy_cache_sync) and, on a shared database with the fake
 * clock, the clock.  One read transaction, cheap when nothing changed
 * (allotd calls it every 250 ms, so a policy activated on one node serves
 * on every node within a second).  0 or a store error; thread-safe. */
ENG_MUST_CHECK int engine_sync(struct engine *eng, struct eng_error *err);

/* Implemented by nodes.c, for engine.c: the fake clock of a database that
 * several processes serve (eng->shared).
 * engine_clock_join, at open without a start instant: takes the database's
 * clock, or stores the real time as its start when none is stored yet (the
 * first node to start sets it).
 * engine_clock_refresh, before each request: reads the database's clock
 * into fake_now, so a clock set on any node is the one the request runs at.
 * Both: 0 or a store error. */
ENG_MUST_CHECK int engine_clock_join(struct engine *eng, struct eng_error *err);
ENG_MUST_CHECK int engine_clock_refresh(struct engine *eng, struct eng_error *err);

/* Verifies every invariant of the ledger; appends one string per problem to
 * `problems` (a JSON array).  Returns 0 (even when problems were found) or a
 * store error. */
ENG_MUST_CHECK int engine_verify(struct engine *eng, json_t *problems, struct eng_error *err);

/* Implemented by the authentication cache (auth.c; see auth.h). */
/* Tells the cache that op `name` committed (the engine calls it after each
 * commit, for every job that succeeded): keys.*, users.* and tenants.*
 * drop every entry, so the very next request sees the change.  Thread-safe. */
void engine_auth_note_commit(struct engine *eng, const char *name);

/* Frees the cache (engine_close). */
void engine_auth_close(struct engine *eng);

#endif

/* engine.c - opening the engine, the clock, transactions and group commit. */
#include "engine.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <semaphore.h>
#include <time.h>

#include <sys/resource.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "entities.h"
#include "ledger.h"
#include "ops.h"
#include "alloc.h"
#include "cluster.h"
#include "generation.h"
#include "idempotency.h"
#include "timeutil.h"
#include "sha256.h"

extern const struct op_def ops_portfolio[];
extern const struct op_def ops_credits[];
extern const struct op_def ops_booking[];
extern const struct op_def ops_admin[];
extern const struct op_def ops_reports[];
extern const struct op_def ops_policies[];

static void engine_stop_writer(struct engine *eng);
static int64_t mono_ns(void);
static void ckpt_backstop_wait(struct engine *eng, int wal_frames, uint64_t resets);

/* How long opening and the clock setter wait for another node processing
 * period boundaries (others wait the busy timeout, then go on without). */
#define ENGINE_LOCK_WAIT_LONG_MS 60000
static int advance_locked(struct engine *eng, const int64_t *clock, int wait_ms,
                          struct eng_error *err);

static const struct op_def *const op_groups[] = {ops_portfolio, ops_credits, ops_booking,
                                                 ops_admin, ops_reports, ops_policies};

/* ---------- opening ---------- */

void
engine_config_default(struct engine_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->db_path, sizeof cfg->db_path, "allot.db");
    snprintf(cfg->policies_dir, sizeof cfg->policies_dir, "policies");
    cfg->sqlite_busy_timeout_ms = 2000;
    cfg->list_rows_max = 500;
    cfg->create = true;
    cfg->readers = 0;    /* by backend: ENGINE_READERS_SQLITE or _PG */
    cfg->reporters = 0;  /* by backend */
    /* A request's reads touch a few dozen pages, and a reader's cache is
     * dropped whenever another connection committed since its last
     * transaction (WAL): the reports' connections keep the large caches. */
    cfg->reader_cache_kib = 2048;
    cfg->reporter_cache_kib = 16384;
    cfg->exporters = 2;
    cfg->exporter_cache_kib = 4096;
    cfg->writer_cache_kib = 65536;
    policy_limits_default(&cfg->policy);
}




int
engine_open(struct engine *eng, const struct engine_config *cfg, struct eng_error *err)
{
    eng_alloc_install();
    memset(eng, 0, sizeof *eng);
    eng->cfg = *cfg;
    atomic_store(&eng->fake_now, cfg->fake_now != 0 ? cfg->fake_now : (int64_t)time(NULL));
    pthread_mutex_init(&eng->write_mu, NULL);
    pthread_mutex_init(&eng->queue_mu, NULL);
    pthread_cond_init(&eng->queue_cv, NULL);
    eng->st_since_ns = mono_ns();
    eng->env = calloc(1, sizeof *eng->env);
    if (eng->env == NULL) {
        engine_close(eng);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    if (policy_cache_open(&eng->policies, cfg->policies_dir, &cfg->policy, err) != 0) {
        engine_close(eng);
        return err->status;
    }
    eng->env->policies = &eng->policies;
    eng->env->entities = entity_cache_open(); /* NULL: every read loads */
    eng->env->list_rows_max = cfg->list_rows_max;
    eng->env->policy_source_max = cfg->policy.source_bytes_max;
    bool remote = strstr(cfg->db_path, "://") != NULL; /* a PostgreSQL URI */
    bool share_reporters = remote && cfg->reporters <= 0;
    if (store_open(&eng->writer, cfg->db_path, cfg->create ? STORE_CREATE : STORE_WRITER,
                   cfg->sqlite_busy_timeout_ms, cfg->writer_cache_kib, err) != 0 ||
        store_pool_open(&eng->readers, cfg->db_path,
                        cfg->readers > 0 ? cfg->readers
                        : remote    ? ENGINE_READERS_PG
                                    : ENGINE_READERS_SQLITE,
                        cfg->sqlite_busy_timeout_ms, cfg->reader_cache_kib, err) != 0 ||
        (!share_reporters &&
         store_pool_open(&eng->reporters, cfg->db_path,
                         cfg->reporters > 0 ? cfg->reporters : ENGINE_REPORTERS_SQLITE,
                         cfg->sqlite_busy_timeout_ms, cfg->reporter_cache_kib, err) != 0) ||
        store_pool_open(&eng->exporters, cfg->db_path, cfg->exporters > 0 ? cfg->exporters : 2,
                        cfg->sqlite_busy_timeout_ms, cfg->exporter_cache_kib, err) != 0) {
        engine_close(eng);
        return err->status;
    }
    if (share_reporters) {
        eng->reporters = eng->readers;
    }
    if (cfg->compute_slots > 0) {
        if (cfg->compute_slots > ENGINE_COMPUTE_SLOTS_MAX ||
            gate_init(&eng->gate, cfg->compute_slots) != 0) {
            engine_close(eng);
            return eng_error_set(err, ENG_EINVAL, "compute slots must be from 1 to %d",
                                 ENGINE_COMPUTE_SLOTS_MAX);
        }
        eng->gated = true;
    }
    atomic_store(&eng->next_due, INT64_MIN);
    eng->next_due_gen = -1;
    eng->shared = store_shared(eng->writer);
    if (cfg->fake_clock && eng->shared) {
        /* The fake clock of a shared database is the database's: a start
         * instant given (--now) sets it for every node, like PUT /v1/clock;
         * without one a node takes the clock the others use. */
        if (cfg->fake_now != 0) {
            return advance_locked(eng, &cfg->fake_now, ENGINE_LOCK_WAIT_LONG_MS, err);
        }
        if (engine_clock_join(eng, err) != 0) {
            return err->status;
        }
    }
    /* Catching up after downtime may take another node a while: wait for
     * it rather than start without the boundaries processed. */
    int rc = advance_locked(eng, NULL, ENGINE_LOCK_WAIT_LONG_MS, err);
    if (rc == 0 && eng->shared && engine_now(eng) >= atomic_load(&eng->next_due)) {
        rc = eng_error_code(err, ENG_ESTORE, "busy",
                            "another node has been processing period boundaries for %d s",
                            ENGINE_LOCK_WAIT_LONG_MS / 1000);
    }
    return rc;
}

void
engine_close(struct engine *eng)
{
    if (eng == NULL) {
        return;
    }
    engine_stop_writer(eng);
    engine_auth_close(eng);
    policy_cache_close(&eng->policies);
    /* The idle holders' copies of this engine's sets (retired just now). */
    policy_copies_flush();
    if (eng->reporters != eng->readers) {
        store_pool_close(eng->reporters);
    }
    eng->reporters = NULL;
    store_pool_close(eng->readers);
    eng->readers = NULL;
    store_pool_close(eng->exporters);
    eng->exporters = NULL;
    store_close(eng->writer);
    eng->writer = NULL;
    if (eng->env != NULL) {
        entity_cache_close(eng->env->entities);
    }
    free(eng->env);
    eng->env = NULL;
    if (eng->gated) {
        gate_destroy(&eng->gate);
        eng->gated = false;
    }
    pthread_mutex_destroy(&eng->write_mu);
    pthread_mutex_destroy(&eng->queue_mu);
    pthread_cond_destroy(&eng->queue_cv);
}

int64_t
engine_now(struct engine *eng)
{
    if (eng->cfg.fake_clock) {
        return atomic_load(&eng->fake_now);
    }
    return (int64_t)time(NULL);
}

int
engine_set_clock(struct engine *eng, int64_t now, struct eng_error *err)
{
    if (!eng->cfg.fake_clock) {
        return eng_error_code(err, ENG_ENOTFOUND, "not_found",
                              "the clock can only be set with --fake-clock");
    }
    /* A test clock may also move back; boundaries already processed stay
     * processed (the ledger never un-expires credits). */
    pthread_mutex_lock(&eng->write_mu);
    if (eng->shared) {
        /* Stored with the boundaries it makes due, under the boundary lock:
         * every node then reads it (engine_clock_refresh). */
        int rc = advance_locked(eng, &now, ENGINE_LOCK_WAIT_LONG_MS, err);
        pthread_mutex_unlock(&eng->write_mu);
        return rc;
    }
    atomic_store(&eng->fake_now, now);
    pthread_mutex_unlock(&eng->write_mu);
    return engine_advance(eng, err);
}

/* ---------- transactions ---------- */

static const struct op_def *
op_find(const char *name)
{
    for (size_t g = 0; g < sizeof op_groups / sizeof op_groups[0]; g++) {
        for (const struct op_def *d = op_groups[g]; d->name != NULL; d++) {
            if (strcmp(d->name, name) == 0) {
                return d;
            }
        }
    }
    return NULL;
}


/* Reads that build a large answer in memory (reports, a simulation, the
 * whole ledger's verification) run on the reporters' connections, so that
 * at most that many are being built at once (allotd's memory), and never
 * keep a request's quote or booking plan waiting for a reader. */
static bool
op_builds_report(const struct op_def *def)
{
    return strncmp(def->name, "reports.", 8) == 0 || strcmp(def->name, "policies.simulate") == 0 ||
           strcmp(def->name, "verify") == 0;
}

static void
principal_label(const struct principal *who, char *buf, size_t len)
{
    if (who->key_id > 0 && len >= 24) {
        /* "key:<id>" digit by digit (every write asks; snprintf costs
         * ~700 instructions). */
        char digits[20];
        int k = 0;
        for (uint64_t v = (uint64_t)who->key_id; v > 0; v /= 10) {
            digits[k++] = (char)('0' + v % 10);
        }
        memcpy(buf, "key:", 4);
        size_t n = 4;
        while (k > 0) {
            buf[n++] = digits[--k];
        }
        buf[n] = '\0';
    } else if (who->key_id != 0) {
        snprintf(buf, len, "key:%" PRId64, who->key_id);
    } else {
        snprintf(buf, len, "%s", who->name[0] ? who->name : "console");
    }
}

/* What idem_lookup found. */
enum idem_found { IDEM_NEW = 0, IDEM_REPLAY_RESULT = 1, IDEM_REPLAY_REFUSAL = 2 };

/* The stored refusal's error back from its JSON {"code", "message", "field"}
 * and its engine status. */
static int
idem_refusal_read(struct op *op, int status, const json_t *stored)
{
    const char *code = json_string_value(json_object_get(stored, "code"));
    const char *msg = json_string_value(json_object_get(stored, "message"));
    const char *field = json_string_value(json_object_get(stored, "field"));
    if (code == NULL || msg == NULL) {
        return eng_error_code(op->err, ENG_ESTORE, "storage_error",
                              "a stored idempotent refusal is damaged");
    }
    const char *details = json_string_value(json_object_get(stored, "details"));
    eng_error_code(op->err, (enum eng_status)status, code, "%s", msg);
    eng_error_field(op->err, field);
    if (details != NULL && details[0] != '\0') {
        eng_error_details(op->err, "%s", details);
    }
    return 0;
}

/* Looks the key up: IDEM_NEW, IDEM_REPLAY_RESULT (*out set),
 * IDEM_REPLAY_REFUSAL (op->err holds the stored refusal), or <0 error. */
static int
idem_lookup(struct op *op, const char *who, const char *key, const char *hash, json_t **out)
{
    bool found = false;
    struct idem_row row;
    if (store_idem_get(op->store, who, key, hash, &found, &row, op->err) != 0) {
        return op->err->status;
    }
    if (!found) {
        return IDEM_NEW;
    }
    if (!row.hash_matches) {
        return eng_error_code(op->err, ENG_ECONFLICT, "idempotency_conflict",
                              "this Idempotency-Key was used with a different request");
    }
    if (row.status >= 0 && op->text != NULL && row.response != NULL) {
        /* A caller taking text gets the stored answer as it was stored:
         * the compact text json_out renders of it (idem_store), so the
         * same bytes as parsing and rendering it again, without either. */
        json_buf_put(op->text, row.response, strlen(row.response));
        free(row.response);
        if (op->text->failed) {
            return eng_error_code(op->err, ENG_ENOMEM, "overloaded", "out of memory; try again");
        }
        op->text_given = true;
        op->created = row.status == IDEM_CREATED;
        return IDEM_REPLAY_RESULT;
    }
    json_t *stored = json_from_text(row.response);
    free(row.response);
    if (stored == NULL) {
        /* A record written by this engine always parses: only memory is
         * missing here, and a replay must never answer nothing. */
        return eng_error_code(op->err, ENG_ENOMEM, "overloaded", "out of memory; try again");
    }
    if (row.status < 0) {
        int rc = idem_refusal_read(op, row.status, stored);
        json_decref(stored);
        return rc != 0 ? rc : IDEM_REPLAY_REFUSAL;
    }
    op->created = row.status == IDEM_CREATED;
    *out = stored;
    return IDEM_REPLAY_RESULT;
}

static int
idem_store(struct op *op, const char *who, const char *key, const char *hash, json_t *out)
{
    /* An answer given as text is stored as it is: json_to_text of its
     * tree would be the same bytes (json_out.h). */
    if (op->idem_response == NULL && out == NULL && op->text_given) {
        const char *given = json_buf_cstr(op->text);
        if (given == NULL) {
            return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
        }
        return store_idem_put(op->store, who, key, hash,
                              op->created ? IDEM_CREATED : IDEM_DONE, given, op->now, op->err);
    }
    /* An op whose result holds a secret names what a replay answers. */
    char *text = json_to_text(op->idem_response != NULL ? op->idem_response : out);
    if (text == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    int rc = store_idem_put(op->store, who, key, hash, op->created ? IDEM_CREATED : IDEM_DONE,
                            text, op->now, op->err);
    free(text);
    return rc;
}

/* API.md: a business refusal after the request was accepted is stored and
 * replayed; a request refused by validation (400), authorization (401, 403)
 * or addressing (404), and a server error (5xx), is not, so a retry once
 * the cause is fixed runs afresh.  The refusals kept are the 409s an
 * operation gives about the state it found (insufficient_credits,
 * slot_taken, credits_not_accepted, already_cancelled, lot_expired, ...). */
static bool
idem_keeps_refusal(const struct eng_error *err)
{
    return err->status == ENG_ECONFLICT && strcmp(err->code, "idempotency_conflict") != 0;
}

/* Stores `refusal` as the key's answer, in the open savepoint (whose own
 * writes the caller has rolled back).  op->err is left as refusal on
 * success, and holds the storage error otherwise. */
static int
idem_store_refusal(struct op *op, const char *who, const char *key, const char *hash,
                   const struct eng_error *refusal)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "code", eng_error_code_of(refusal), "message",
                          refusal->msg, "field", refusal->field, "details", refusal->details);
    char *text = j != NULL ? json_to_text(j) : NULL;
    json_decref(j);
    if (text == NULL) {
        return eng_error_code(op->err, ENG_ENOMEM, "overloaded", "out of memory; try again");
    }
    int rc = store_idem_put(op->store, who, key, hash, (int)refusal->status, text, op->now,
                            op->err);
    free(text);
    if (rc == 0) {
        *op->err = *refusal;
    }
    return rc;
}

/* Recomputes next_due, unless the generation it was computed at is still
 * the database's (then nothing it depends on moved).  The generation is
 * read first (or `known`, >= 0: the generation the caller's commit left,
 * derived before it): a change committed meanwhile (another node) leaves an
 * older generation beside the new figure, and the next look recomputes. */
static void
note_next_due(struct engine *eng, struct op *op, int64_t known)
{
    int64_t due, gen = known;
    struct eng_error ignored = {0};
    if (gen < 0 && store_generation_get(op->store, &gen, &ignored) != 0) {
        gen = -1;
    } else if (gen == eng->next_due_gen) {
        return;
    }
    if (ledger_next_due(&op->lx, &due) == 0) {
        atomic_store(&eng->next_due, due);
        eng->next_due_gen = gen;
    } else {
        eng->next_due_gen = -1;
    }
}

/* Whether a write must look for due period boundaries first: the clock
 * reached next_due, or the generation moved since it was computed (an
 * earlier job of the batch, another process, another node).  An error
 * reading the generation answers yes. */
static bool
boundaries_may_be_due(struct engine *eng, struct op *op)
{
    if (eng->next_due_gen < 0 || op->now >= atomic_load(&eng->next_due)) {
        return true;
    }
    struct eng_error ignored = {0};
    int64_t gen = -1;
    return store_generation_now(op->store, &gen, &ignored) != 0 || gen != eng->next_due_gen;
}

/* Whether op answered in op->text (engine_exec_text), and the text is
 * whole: a failed text is an answer that could not be built. */
static bool
answered_in_text(const struct op *op)
{
    return op->text != NULL && op->text_given && !op->text->failed;
}

/* One queued write. */
struct write_job {
    const struct op_def *def;
    struct op op;
    struct eng_error err;
    json_t *args;
    const char *idem_key;
    char who[64], hash[65];
    json_t *out;
    bool replayed;
    sem_t done_sem; /* posted by the writer once the job's batch is over */
    bool refusal_stored; /* rc is a refusal whose record awaits the commit */
    bool solo;           /* alone in its transaction: no savepoint of its own */
    bool bare;           /* in a batch without a savepoint of its own (below) */
    bool undo_needed;    /* bare, failed after writing: the batch runs again */
    int64_t changes_before; /* store_changes_total as the bare job began */
    bool retry_advised;  /* failed meeting another writer: the batch runs again */
    int rc;
    struct write_job *next;
};

/* Undoes the job's writes: back to its savepoint, or, for a job alone in
 * its transaction (which then needs no savepoint), the whole transaction,
 * begun afresh for what the job still writes (a refusal kept for its key).
 * A bare job has nothing to undo when it wrote nothing; when it did, it
 * cannot undo alone: it is marked, and batch_run runs the batch again with
 * a savepoint per job.  0, or an error with the transaction gone (or, for
 * a bare job, to be rolled back). */
static int
job_undo(struct write_job *job)
{
    struct store *s = job->op.store;
    if (job->bare) {
        if (store_changes_total(s) == job->changes_before) {
            return 0;
        }
        job->undo_needed = true; /* the job's own error stays its answer */
        return ENG_ESTORE;
    }
    if (!job->solo) {
        return store_tx(s, STORE_ROLLBACK_TO, NULL);
    }
    int rc = store_tx(s, STORE_ROLLBACK, NULL);
    return rc != 0 ? rc : store_tx(s, STORE_BEGIN_IMMEDIATE, NULL);
}

/* After a failed job's writes are rolled back: a refusal the key keeps is
 * written in their place, in the same savepoint, so it commits (or not)
 * with the batch.  Anything going wrong here answers that failure instead,
 * with nothing of the job written. */
static int
job_keep_refusal(struct write_job *job, unsigned long oom_before)
{
    struct op *op = &job->op;
    struct eng_error refusal = *op->err;
    int rc = idem_store_refusal(op, job->who, job->idem_key, job->hash, &refusal);
    if (rc == 0 && eng_alloc_failures() != oom_before) {
        rc = eng_error_code(op->err, ENG_ENOMEM, "overloaded", "out of memory; try again");
    }
    if (rc != 0) {
        (void)job_undo(job);
        return rc;
    }
    job->refusal_stored = true;
    return refusal.status;
}

/* Runs one job inside the open transaction, in its own savepoint, so a
 * failing job leaves the batch's other writes untouched. */
static void
job_run(struct engine *eng, struct write_job *job)
{
    struct op *op = &job->op;
    op->store = eng->writer;
    op->now = engine_now(eng);
    op_bind_ledger(op);
    unsigned long oom_before = eng_alloc_failures();
    if (op->text != NULL) {
        /* A batch run again answers afresh. */
        json_buf_reset(op->text);
        op->text_given = false;
    }
    job->changes_before = job->bare ? store_changes_total(op->store) : 0;
    int rc = job->solo || job->bare ? 0 : store_tx(op->store, STORE_SAVEPOINT, op->err);
    if (rc != 0) {
        job->rc = rc;
        return;
    }
    bool refused = false; /* the operation itself refused (not the key, not a failure) */
    if (job->idem_key != NULL) {
        rc = idem_lookup(op, job->who, job->idem_key, job->hash, &job->out);
        if (rc == IDEM_REPLAY_RESULT || rc == IDEM_REPLAY_REFUSAL) {
            job->replayed = true;
            rc = rc == IDEM_REPLAY_RESULT ? 0 : op->err->status;
            goto release;
        }
    }
    /* A policy refusing a period end concerns other allocations: it is
     * logged and retried, and never fails this request. */
    if (rc == 0 && boundaries_may_be_due(eng, op) &&
        (rc = ledger_advance(&op->lx)) == ENG_EPOLICY) {
        rc = 0;
    }
    if (rc == 0) {
        rc = job->def->fn(op, job->args, &job->out);
        refused = rc != 0 && idem_keeps_refusal(op->err);
        if (rc == 0 && job->out == NULL && !answered_in_text(op)) {
            /* A result that could not be built (out of memory): the write
             * must not commit without an answer to give. */
            rc = eng_error_code(op->err, ENG_ENOMEM, "overloaded", "out of memory; try again");
        }
    }
    if (rc == 0 && job->idem_key != NULL) {
        rc = idem_store(op, job->who, job->idem_key, job->hash, job->out);
    }
    if (eng_alloc_failures() != oom_before) {
        /* Whatever answer was reached, something was missing from it. */
        rc = eng_error_code(op->err, ENG_ENOMEM, "overloaded", "out of memory; try again");
        refused = false;
    }
    if (rc != 0) {
        /* Met another writer (PostgreSQL: another node)?  Asked before the
         * undo, whose own statements leave the connection's last error. */
        job->retry_advised = store_retry_advised(op->store);
        int undone = job_undo(job);
        json_decref(job->out);
        job->out = NULL;
        op->text_given = false;
        if (op->install_set != NULL) {
            policy_set_release(op->install_set);
            op->install_set = NULL;
        }
        if (refused && job->idem_key != NULL && undone == 0) {
            rc = job_keep_refusal(job, oom_before);
        }
    }
release:
    json_decref(op->idem_response);
    op->idem_response = NULL;
    if (!job->solo && !job->bare) {
        (void)store_tx(op->store, STORE_RELEASE, NULL);
    }
    job->rc = rc;
}

/* Fails the jobs [from, to) whose answer needed the commit: those that had
 * succeeded, and the refusals that were to be stored.  Their transaction is
 * gone. */
static void
batch_fail(struct write_job *from, struct write_job *to, const struct eng_error *err)
{
    for (struct write_job *j = from; j != to; j = j->next) {
        if (j->rc == 0 || j->refusal_stored) {
            j->rc = err->status;
            j->err = *err;
            j->refusal_stored = false;
            json_decref(j->out);
            j->out = NULL;
        }
    }
}

/* Forgets what a batch's jobs answered, to run them again in a fresh
 * transaction (the first one failed to commit and wrote nothing). */
static void
batch_reset(struct write_job *jobs)
{
    for (struct write_job *j = jobs; j != NULL; j = j->next) {
        json_decref(j->out);
        j->out = NULL;
        j->rc = 0;
        j->replayed = false;
        j->refusal_stored = false;
        j->retry_advised = false;
        j->undo_needed = false;
        memset(&j->err, 0, sizeof j->err);
        if (j->op.install_set != NULL) {
            policy_set_release(j->op.install_set);
            j->op.install_set = NULL;
        }
    }
}

/* Whole-batch attempts when the commit meets a concurrent writer (on
 * PostgreSQL, another node: a serialization failure or a deadlock). */
#define ENGINE_COMMIT_TRIES_MAX 8

/* Before another attempt: a pause growing with the attempts, jittered so
 * that two nodes colliding do not collide again in step (1-4 ms, then up
 * to 8, 16, ... 128 ms). */
static void
batch_backoff(int attempt)
{
    static _Thread_local unsigned seed;
    if (seed == 0) {
        seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
    }
    seed = seed * 1103515245u + 12345u;
    long cap_us = 1000L << (attempt < 7 ? attempt : 7);
    long us = 1000 + (long)((seed >> 8) % (unsigned long)cap_us);
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Runs a batch of jobs in one transaction.  The caller holds write_mu.
 *
 * On SQLite the jobs of a batch first run bare, without a savepoint each
 * (a SAVEPOINT and its RELEASE, and the copy of every page a job touches
 * first kept to roll back to, cost a job more than its own writes): most
 * jobs succeed, and a job that fails before writing anything (a refusal
 * found by its checks: slot taken, credits short, a replay) has nothing to
 * undo.  A job that fails after writing cannot be undone alone: the
 * transaction is rolled back and the batch runs again from its first job,
 * each job in its own savepoint as before (the retry PostgreSQL conflicts
 * use: every job is computed afresh, nobody was answered yet).  On
 * PostgreSQL a failed statement aborts the whole transaction, so its jobs
 * keep their savepoints. */
static void
batch_run(struct engine *eng, struct write_job *jobs)
{
    int tries_left = ENGINE_COMMIT_TRIES_MAX - 1;
    bool savepoints = eng->shared;
    if (eng->shared && engine_now(eng) >= atomic_load(&eng->next_due)) {
        /* Due boundaries first, under the boundary lock, in a transaction
         * of their own: processed inside the batch, they would race
         * another node's processing of the same ones (and the loser's
         * whole batch would run again).  A failure here is left to the
         * jobs' own ledger_advance. */
        struct eng_error adv_err = {0};
        (void)advance_locked(eng, NULL, eng->cfg.sqlite_busy_timeout_ms, &adv_err);
    }
again:;
    struct eng_error err = {0};
    int rc = store_tx(eng->writer, STORE_BEGIN_IMMEDIATE, &err);
    struct write_job *tx_first = jobs; /* the first job of the open transaction */
    for (struct write_job *j = jobs; j != NULL; j = j->next) {
        if (rc != 0) {
            j->rc = rc;
            j->err = err;
            continue;
        }
        /* A job alone in the transaction needs no savepoint: undoing it is
         * rolling the transaction back. */
        j->solo = j == tx_first && j->next == NULL;
        j->bare = !j->solo && !savepoints;
        job_run(eng, j);
        if (j->undo_needed && store_in_tx(eng->writer)) {
            /* A bare job failed after writing: everything again, each job
             * in its own savepoint this time. */
            (void)store_tx(eng->writer, STORE_ROLLBACK, NULL);
            batch_reset(jobs);
            savepoints = true;
            goto again;
        }
        if (!store_in_tx(eng->writer)) {
            /* SQLite rolled the whole transaction back (an I/O error, a
             * full disk): nothing since tx_first is written, so none of
             * those jobs may be acknowledged.  The rest of the batch gets a
             * fresh transaction. */
            struct eng_error lost = {0};
            eng_error_code(&lost, ENG_ESTORE, "storage_unavailable",
                           "the database failed during this write; nothing was written");
            bool own_failure = j->rc != 0 && !j->refusal_stored;
            batch_fail(tx_first, j->next, own_failure ? &j->err : &lost);
            tx_first = j->next;
            rc = store_tx(eng->writer, STORE_BEGIN_IMMEDIATE, &err);
        }
    }
    bool advised = store_retry_advised(eng->writer);
    for (struct write_job *j = jobs; j != NULL; j = j->next) {
        advised = advised || j->retry_advised;
    }
    if (rc == 0 && tx_first == jobs && tries_left > 0 && advised) {
        /* A job met a concurrent writer mid-transaction (PostgreSQL raises
         * most serialization failures at the statement): run them all
         * again rather than answer that job "busy". */
        tries_left--;
        (void)store_tx(eng->writer, STORE_ROLLBACK, NULL);
        batch_reset(jobs);
        batch_backoff(ENGINE_COMMIT_TRIES_MAX - 1 - tries_left);
        goto again;
    }
    /* The generation this commit leaves, when the writer knows it without
     * a statement (store_generation_known: the jobs read it, and nothing
     * has moved it since): next_due's check after the commit then reads
     * nothing (a read there, outside any transaction, cost ~4,500
     * instructions a batch). */
    int64_t gen_after = -1;
    if (rc == 0 && !store_generation_known(eng->writer, &gen_after)) {
        gen_after = -1;
    }
    if (rc == 0) {
        rc = store_tx(eng->writer, STORE_COMMIT, &err);
        if (rc != 0) {
            gen_after = -1;
            /* Nothing of the transaction is durable: nobody may be told it is. */
            bool retry = tx_first == jobs && tries_left-- > 0 &&
                         store_retry_advised(eng->writer);
            (void)store_tx(eng->writer, STORE_ROLLBACK, NULL);
            if (retry) {
                batch_reset(jobs);
                batch_backoff(ENGINE_COMMIT_TRIES_MAX - 1 - tries_left);
                goto again;
            }
            batch_fail(tx_first, NULL, &err);
        }
    }
    /* Policy versions go live only once they are durable, in job (= commit)
     * order: each job built its set after its own writes, seeing every
     * earlier job of the batch, so when two jobs change one building the
     * later one's set is both the newer and the one installed last.  A job
     * that failed (its savepoint rolled back, or the batch did not commit)
     * installs nothing. */
    for (struct write_job *j = jobs; j != NULL; j = j->next) {
        if (j->rc == 0) {
            engine_auth_note_commit(eng, j->def->name); /* a changed key is refused at once */
        }
        if (j->op.install_set != NULL) {
            if (j->rc == 0) {
                policy_cache_install(&eng->policies, j->op.install_building, j->op.install_set,
                                      j->op.install_versions);
            }
            policy_set_release(j->op.install_set);
            j->op.install_set = NULL;
        }
    }
    struct op probe = {.env = eng->env, .store = eng->writer, .err = &err};
    probe.now = engine_now(eng);
    op_bind_ledger(&probe);
    note_next_due(eng, &probe, gen_after);
}

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The calling thread's CPU time (a system call: twice a batch). */
static int64_t
thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
        return 0;
    }
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
stats_note_batch(struct engine *eng, const struct write_job *batch, int64_t ns, int64_t cpu_ns)
{
    atomic_fetch_add_explicit(&eng->st_writer_cpu_ns, (uint64_t)(cpu_ns > 0 ? cpu_ns : 0),
                              memory_order_relaxed);
    uint64_t n = 0;
    for (const struct write_job *j = batch; j != NULL; j = j->next) {
        n++;
    }
    atomic_fetch_add_explicit(&eng->st_writes, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&eng->st_batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&eng->st_writer_busy_ns, (uint64_t)(ns > 0 ? ns : 0),
                              memory_order_relaxed);
    if (n > atomic_load_explicit(&eng->st_batch_largest, memory_order_relaxed)) {
        atomic_store_explicit(&eng->st_batch_largest, n, memory_order_relaxed);
    }
}

void
engine_stats(struct engine *eng, struct engine_stats *st)
{
    memset(st, 0, sizeof *st);
    st->writes = atomic_load(&eng->st_writes);
    st->batches = atomic_load(&eng->st_batches);
    st->batch_largest = atomic_load(&eng->st_batch_largest);
    st->writer_busy_seconds = (double)atomic_load(&eng->st_writer_busy_ns) / 1e9;
    st->writer_cpu_seconds = (double)atomic_load(&eng->st_writer_cpu_ns) / 1e9;
    store_wal_writes(&st->wal_writes, &st->wal_calls);
    st->seconds = (double)(mono_ns() - eng->st_since_ns) / 1e9;
    st->plans = atomic_load(&eng->st_plans);
    st->plans_no_reader = atomic_load(&eng->st_plans_no_reader);
    if (eng->readers != NULL) {
        store_pool_counts(eng->readers, &st->reader_acquires, &st->reader_waits);
    }
    st->compute_slots = eng->gated ? eng->gate.slots : 0;
    st->checkpoints = atomic_load(&eng->st_ckpts);
    st->checkpoint_frames = atomic_load(&eng->st_ckpt_frames);
    st->checkpoint_truncates = atomic_load(&eng->st_ckpt_truncates);
    st->checkpoint_held_seconds = (double)atomic_load(&eng->st_ckpt_held_ns) / 1e9;
    st->checkpoint_held_frames = atomic_load(&eng->st_ckpt_held_frames);
    st->checkpoint_synced_beside = atomic_load(&eng->st_ckpt_synced_beside);
    st->checkpoint_stalls = atomic_load(&eng->st_ckpt_stalls);
    st->checkpoint_blocked = atomic_load(&eng->st_ckpt_blocked);
    st->checkpoint_skipped = atomic_load(&eng->st_ckpt_skipped);
    st->checkpoint_unstalled = atomic_load(&eng->st_ckpt_unstalled);
    if (eng->gated) {
        gate_counts(&eng->gate, &st->slot_entries, &st->slot_waits);
    }
}

/* The process's peak resident set so far, in MiB (0 when unknown). */
static long
peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0;
    }
    return ru.ru_maxrss / 1024; /* KiB on Linux */
}

void
engine_stats_text(struct engine *eng, char *buf, size_t len)
{
    struct engine_stats st;
    engine_stats(eng, &st);
    struct ops_plan_stats ps;
    ops_plan_stats(&ps);
    snprintf(buf, len,
             "%" PRIu64 " writes in %" PRIu64 " batches (%.1f a batch, largest %" PRIu64
             "), writer busy %.2f of %.2f s (CPU %.2f s); WAL writes %" PRIu64 " in %" PRIu64
             " calls; %" PRIu64 " plans, %" PRIu64
             " left to the writer without a reader (made %ld, applied %ld, of which repriced "
             "%ld, recomputed %ld); readers acquired %" PRIu64 " times, %" PRIu64
             " waited; compute slots %d: taken %" PRIu64 " times, %" PRIu64
             " waited; checkpoints off the writer %" PRIu64 " (%" PRIu64
             " frames, writer held %.3f s for %" PRIu64 " of them, file synced %" PRIu64
             " times beside it, %" PRIu64 " emptying, %" PRIu64 " stalls, %" PRIu64
             " blocked by a reader, %" PRIu64 " left for one, %" PRIu64
             " writes not stalled for one); policy copies %d; peak resident %ld MiB",
             st.writes, st.batches, st.batches > 0 ? (double)st.writes / (double)st.batches : 0.0,
             st.batch_largest, st.writer_busy_seconds, st.seconds, st.writer_cpu_seconds,
             st.wal_writes, st.wal_calls, st.plans, st.plans_no_reader,
             ps.made, ps.applied, ps.repriced, ps.recomputed, st.reader_acquires,
             st.reader_waits, st.compute_slots, st.slot_entries, st.slot_waits, st.checkpoints,
             st.checkpoint_frames, st.checkpoint_held_seconds, st.checkpoint_held_frames,
             st.checkpoint_synced_beside, st.checkpoint_truncates,
             st.checkpoint_stalls, st.checkpoint_blocked, st.checkpoint_skipped,
             st.checkpoint_unstalled, policy_copies_live(), peak_rss_mib());
}

static void *
writer_main(void *arg)
{
    struct engine *eng = arg;
#ifdef __linux__
    (void)prctl(PR_SET_NAME, "allot-writer", 0, 0, 0); /* for top -H, perf, /proc */
#endif
    pthread_mutex_lock(&eng->queue_mu);
    for (;;) {
        while (eng->queue_head == NULL && !eng->writer_stop) {
            pthread_cond_wait(&eng->queue_cv, &eng->queue_mu);
        }
        if (eng->queue_head == NULL) {
            break;
        }
        /* Take up to a batch; the rest waits for the next round. */
        struct write_job *batch = eng->queue_head, *last = batch;
        int max = eng->cfg.batch_max > 0 && eng->cfg.batch_max < ENGINE_BATCH_MAX
                      ? eng->cfg.batch_max
                      : ENGINE_BATCH_MAX;
        for (int n = 1; n < max && last->next != NULL; n++) {
            last = last->next;
        }
        eng->queue_head = last->next;
        if (eng->queue_head == NULL) {
            eng->queue_tail = NULL;
        }
        last->next = NULL;
        pthread_mutex_unlock(&eng->queue_mu);
        pthread_mutex_lock(&eng->write_mu);
        int64_t t0 = mono_ns(), c0 = thread_cpu_ns();
        batch_run(eng, batch);
        stats_note_batch(eng, batch, mono_ns() - t0, thread_cpu_ns() - c0);
        int wal_frames = atomic_load_explicit(&eng->wal_frames, memory_order_relaxed);
        uint64_t resets = atomic_load(&eng->ckpt_resets);
        pthread_mutex_unlock(&eng->write_mu);
        /* Each job's worker waits on its own semaphore: posting it wakes
         * that worker alone, without the queue's lock (a broadcast on one
         * condition variable woke every waiting worker, those of the next
         * batch too, to fight for the lock the writer needs next).  The
         * job lives on its worker's stack: its successor is read first.
         * Measured and not kept (scripts/README.md): the workers waking
         * each other in chains, to take these ~30 wake-ups a batch off the
         * writer (under load a woken worker waits for a CPU before passing
         * the wake-up on: smaller batches, fewer bookings), and the WAL
         * synced by a thread of its own while the writer commits the next
         * batch (smaller batches, more commits and syncs for the same
         * bookings, and readers would see commits not yet durable). */
        for (struct write_job *j = batch, *next; j != NULL; j = next) {
            next = j->next;
            sem_post(&j->done_sem);
        }
        ckpt_backstop_wait(eng, wal_frames, resets);
        pthread_mutex_lock(&eng->queue_mu);
    }
    pthread_mutex_unlock(&eng->queue_mu);
    return NULL;
}

/* ---- checkpoints off the writer (engine/README.md) ---------------------- */

static int
ckpt_threshold(const struct engine *eng)
{
    return eng->cfg.checkpoint_frames > 0 ? eng->cfg.checkpoint_frames
                                          : ENGINE_CHECKPOINT_FRAMES;
}

static int
ckpt_backstop_frames(const struct engine *eng)
{
    return ckpt_threshold(eng) * ENGINE_CHECKPOINT_BACKSTOP;
}

/* After every commit of the writer's connection (in the committing
 * thread): past the threshold, wakes the checkpointer once. */
static void
ckpt_note(void *ud, int frames)
{
    struct engine *eng = ud;
    atomic_store_explicit(&eng->wal_frames, frames, memory_order_relaxed);
    if (frames >= ckpt_threshold(eng) && !atomic_exchange(&eng->ckpt_asked, true)) {
        pthread_mutex_lock(&eng->ckpt_mu);
        pthread_cond_signal(&eng->ckpt_cv);
        pthread_mutex_unlock(&eng->ckpt_mu);
    }
}

/* After a round that did not start the WAL over, the next one waits 2 ms,
 * twice that after each further one, at most 100 ms: readers that come and
 * go are soon past, and one that stays (a report, or a shell left in a
 * transaction) costs a round a tenth of a second.  The second step waits
 * for readers at most 10 ms: it runs only when the first found no reader
 * behind the WAL's end, so it waits for those that began since (a quote's
 * read lasts ~50 µs). */
#define CKPT_RETRY_NS 2000000L
#define CKPT_RETRY_MAX_NS 100000000L
#define CKPT_WAIT_US 10000
#ifndef CKPT_CATCHUP_PASSES
#define CKPT_CATCHUP_PASSES 1
#endif
#define CKPT_CATCHUP_FRAMES 64

/* The WAL started over (or a round failed for an error, which waiting
 * would not mend): a writer waiting at the backstop goes on.  Call
 * holding write_mu. */
static void
ckpt_progress(struct engine *eng)
{
    atomic_fetch_add(&eng->ckpt_resets, 1);
}

/* Wakes a writer waiting at the backstop (ckpt_backstop_wait) to look. */
static void
ckpt_round_over(struct engine *eng)
{
    pthread_mutex_lock(&eng->ckpt_mu);
    pthread_cond_broadcast(&eng->ckpt_done_cv);
    pthread_mutex_unlock(&eng->ckpt_mu);
}

static bool
ckpt_stopping(struct engine *eng)
{
    pthread_mutex_lock(&eng->ckpt_mu);
    bool stop = eng->ckpt_stop;
    pthread_mutex_unlock(&eng->ckpt_mu);
    return stop;
}

/* Tests only (cfg.checkpoint_test_delay_ms): a checkpointer as late as it
 * can be, starting a round only once the WAL is at the backstop (or 5 s
 * on, or at stop), and then that many ms later still. */
static void
ckpt_test_late(struct engine *eng)
{
    struct timespec ms = {0, 1000000L};
    for (int i = 0; i < 5000 && atomic_load(&eng->wal_frames) < ckpt_backstop_frames(eng); i++) {
        if (ckpt_stopping(eng)) {
            return;
        }
        nanosleep(&ms, NULL);
    }
    struct timespec late = {eng->cfg.checkpoint_test_delay_ms / 1000,
                            (long)(eng->cfg.checkpoint_test_delay_ms % 1000) * 1000000L};
    nanosleep(&late, NULL);
}

/* One round: the bulk copied beside the writer (PASSIVE); then, if no
 * reader kept that copy short, the rest (what the writer committed
 * meanwhile) with the writer held between batches (RESTART: it also waits
 * for the readers that began since, at most CKPT_WAIT_US), so the copy is
 * whole and the writer's next transaction starts the WAL over instead of
 * appending to it; a WAL that grew past the backstop is cut back to
 * nothing.  A reader behind the WAL's end (a report's snapshot, for
 * seconds) is not waited for with the writer held: that held every batch
 * up for as long as the report read (370 ms a round, measured).  The
 * round is tried again soon (CKPT_RETRY_NS), and the WAL grows meanwhile,
 * as SQLite's own would.  Returns whether the WAL was started over. */
static bool
ckpt_round(struct engine *eng)
{
    struct eng_error err = {0};
    int frames = 0, copied = 0;
    if (eng->cfg.checkpoint_test_delay_ms > 0) {
        ckpt_test_late(eng);
    }
    if (store_checkpoint(eng->ckpt_store, STORE_CHECKPOINT_PASSIVE, 0, &frames, &copied, NULL,
                         &err) != 0) {
        fprintf(stderr, "allot: checkpoint: %s\n", err.msg);
        /* The next commit asks again; the data is safe in the WAL. */
        pthread_mutex_lock(&eng->write_mu);
        ckpt_progress(eng);
        pthread_mutex_unlock(&eng->write_mu);
        ckpt_round_over(eng);
        return false;
    }
    if (frames == 0) {
        return false; /* the writer has just started the WAL over itself */
    }
    if (copied < frames) {
        atomic_fetch_add_explicit(&eng->st_ckpt_skipped, 1, memory_order_relaxed);
        /* Readers that come and go move the copy on from round to round;
         * one that stays keeps it where its snapshot ends. */
        int64_t now = mono_ns();
        if (atomic_load(&eng->ckpt_left_since) == 0 || copied != eng->ckpt_left_at) {
            eng->ckpt_left_at = copied;
            atomic_store(&eng->ckpt_left_since, now);
        }
        atomic_store(&eng->ckpt_left_seen, now);
        ckpt_round_over(eng); /* a writer at the backstop looks again */
        return false;
    }
    atomic_store(&eng->ckpt_left_since, 0); /* no reader behind the WAL's end now */
    /* SQLite syncs the file after a PASSIVE copy only when the copy
     * reached the WAL's end, which under load it never does (the writer
     * commits meanwhile): the RESTART below would then sync every page
     * this round copied, ~4-5 ms with the writer held.  Synced here,
     * beside the writer, and caught up on what it committed meanwhile,
     * the held step copies and syncs only the last batches. */
    for (int pass = 0;; pass++) {
        if (store_sync_file(eng->ckpt_store, &err) != 0) {
            break; /* the held step syncs, and reports an error */
        }
        atomic_fetch_add_explicit(&eng->st_ckpt_synced_beside, 1, memory_order_relaxed);
        if (pass == CKPT_CATCHUP_PASSES ||
            atomic_load_explicit(&eng->wal_frames, memory_order_relaxed) - frames <=
                CKPT_CATCHUP_FRAMES) {
            break;
        }
        int more = 0, more_copied = 0;
        if (store_checkpoint(eng->ckpt_store, STORE_CHECKPOINT_PASSIVE, 0, &more, &more_copied,
                             NULL, &err) != 0 ||
            more < frames || more_copied < more) {
            break; /* the writer started over, or a reader began since */
        }
        frames = more;
        copied = more_copied;
    }
    bool backstop = frames >= ckpt_backstop_frames(eng);
    bool whole = false;
    int first_copied = copied; /* a TRUNCATE reports 0 of 0 after it */
    pthread_mutex_lock(&eng->write_mu);
    /* What the writer committed since the last copy: the held step's share. */
    int left = atomic_load_explicit(&eng->wal_frames, memory_order_relaxed) - first_copied;
    int64_t t0 = mono_ns();
    int rc = store_checkpoint(eng->ckpt_store,
                              backstop ? STORE_CHECKPOINT_TRUNCATE : STORE_CHECKPOINT_RESTART,
                              CKPT_WAIT_US, &frames, &copied, &whole, &err);
    atomic_fetch_add_explicit(&eng->st_ckpt_held_ns, (uint64_t)(mono_ns() - t0),
                              memory_order_relaxed);
    if (whole && left > 0) {
        atomic_fetch_add_explicit(&eng->st_ckpt_held_frames, (uint64_t)left,
                                  memory_order_relaxed);
    }
    if (rc != 0 || whole) {
        if (whole) {
            atomic_store_explicit(&eng->wal_frames, 0, memory_order_relaxed);
            atomic_store(&eng->ckpt_left_since, 0);
        }
        ckpt_progress(eng);
    }
    pthread_mutex_unlock(&eng->write_mu);
    ckpt_round_over(eng);
    if (rc != 0) {
        fprintf(stderr, "allot: checkpoint: %s\n", err.msg);
        return false;
    }
    if (!whole) {
        atomic_fetch_add_explicit(&eng->st_ckpt_blocked, 1, memory_order_relaxed);
        return false;
    }
    atomic_fetch_add_explicit(&eng->st_ckpts, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&eng->st_ckpt_frames,
                              (uint64_t)(copied > first_copied ? copied : first_copied),
                              memory_order_relaxed);
    if (backstop) {
        atomic_fetch_add_explicit(&eng->st_ckpt_truncates, 1, memory_order_relaxed);
    }
    return true;
}

/* Rounds have been left for a reader, the copy stuck where its snapshot
 * ends, for ENGINE_CHECKPOINT_LONG_READER_MS: a report reads.  Waiting for
 * it at the backstop would hold every booking up while it lasts; the WAL
 * grows instead, as SQLite's own would, and the first round after it cuts
 * it back. */
static bool
ckpt_long_reader(struct engine *eng)
{
    /* As the rounds saw it: a checkpointer that made no round meanwhile
     * (late, or backing off) has seen nothing stay. */
    int64_t since = atomic_load(&eng->ckpt_left_since), seen = atomic_load(&eng->ckpt_left_seen);
    return since != 0 && seen - since >= (int64_t)ENGINE_CHECKPOINT_LONG_READER_MS * 1000000;
}

/* In the writer thread between two batches: a WAL the last batch left at
 * the backstop (wal_frames, read with the count of restarts `resets` while
 * holding write_mu) takes no more frames until a checkpoint has started it
 * over since that commit, for at most ENGINE_CHECKPOINT_STALL_MS.  A
 * checkpointer late for its CPU would otherwise let the WAL file grow by
 * every batch; this bounds it to the backstop and one batch.  A long
 * reader (ckpt_long_reader) ends the wait, and so does the time limit:
 * nothing is lost by going on, the WAL is only longer. */
static void
ckpt_backstop_wait(struct engine *eng, int wal_frames, uint64_t resets)
{
    if (wal_frames < ckpt_backstop_frames(eng)) {
        return; /* also without a checkpointer: wal_frames stays 0 */
    }
    if (ckpt_long_reader(eng)) {
        atomic_fetch_add_explicit(&eng->st_ckpt_unstalled, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&eng->st_ckpt_stalls, 1, memory_order_relaxed);
    int64_t until = mono_ns() + (int64_t)ENGINE_CHECKPOINT_STALL_MS * 1000000;
    pthread_mutex_lock(&eng->ckpt_mu);
    if (!atomic_exchange(&eng->ckpt_asked, true)) {
        pthread_cond_signal(&eng->ckpt_cv);
    }
    struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
    while (atomic_load(&eng->ckpt_resets) == resets && !ckpt_long_reader(eng)) {
        /* Each round wakes it to look again (ckpt_round_over). */
        if (pthread_cond_timedwait(&eng->ckpt_done_cv, &eng->ckpt_mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&eng->ckpt_mu);
}

static void *
ckpt_main(void *arg)
{
    struct engine *eng = arg;
    (void)prctl(PR_SET_NAME, "allot-ckpt", 0, 0, 0);
    long retry_ns = CKPT_RETRY_NS;
    pthread_mutex_lock(&eng->ckpt_mu);
    while (!eng->ckpt_stop) {
        if (!atomic_load(&eng->ckpt_asked)) {
            pthread_cond_wait(&eng->ckpt_cv, &eng->ckpt_mu);
            continue;
        }
        pthread_mutex_unlock(&eng->ckpt_mu);
        bool restarted = ckpt_round(eng);
        /* Cleared after the round: commits made during it, with the WAL not
         * yet started over, do not ask for another at once.  A round that
         * did not start it over is tried again, a little later, while the
         * WAL is past the threshold (the writer may be waiting at the
         * backstop, and asks no more). */
        atomic_store(&eng->ckpt_asked, false);
        if (!restarted && atomic_load(&eng->wal_frames) >= ckpt_threshold(eng)) {
            struct timespec pause = {0, retry_ns};
            if (!ckpt_stopping(eng)) {
                nanosleep(&pause, NULL);
            }
            retry_ns = retry_ns * 2 < CKPT_RETRY_MAX_NS ? retry_ns * 2 : CKPT_RETRY_MAX_NS;
            atomic_store(&eng->ckpt_asked, true);
        } else {
            retry_ns = CKPT_RETRY_NS;
        }
        pthread_mutex_lock(&eng->ckpt_mu);
    }
    pthread_mutex_unlock(&eng->ckpt_mu);
    return NULL;
}

/* On SQLite: the checkpointer's own connection and thread, and the
 * writer's connection no longer checkpointing in its commits.  Without
 * them (PostgreSQL, or a failure here) SQLite's own checkpoints stay. */
static void
ckpt_start(struct engine *eng)
{
    if (eng->shared || eng->cfg.checkpoint_frames < 0) {
        return; /* PostgreSQL: no WAL of ours; or told to leave them to SQLite */
    }
    struct eng_error err = {0};
    if (store_open(&eng->ckpt_store, eng->cfg.db_path, STORE_WRITER,
                   eng->cfg.sqlite_busy_timeout_ms, 256, &err) != 0) {
        fprintf(stderr, "allot: checkpoints stay in the commits: %s\n", err.msg);
        return;
    }
    pthread_mutex_init(&eng->ckpt_mu, NULL);
    pthread_cond_init(&eng->ckpt_cv, NULL);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&eng->ckpt_done_cv, &monotonic);
    pthread_condattr_destroy(&monotonic);
    eng->ckpt_stop = false;
    atomic_store(&eng->ckpt_asked, false);
    atomic_store(&eng->ckpt_left_since, 0);
    atomic_store(&eng->ckpt_left_seen, 0);
    if (pthread_create(&eng->ckpt_thread, NULL, ckpt_main, eng) != 0) {
        fprintf(stderr, "allot: checkpoints stay in the commits: no thread\n");
        pthread_mutex_destroy(&eng->ckpt_mu);
        pthread_cond_destroy(&eng->ckpt_cv);
        pthread_cond_destroy(&eng->ckpt_done_cv);
        store_close(eng->ckpt_store);
        eng->ckpt_store = NULL;
        return;
    }
    eng->ckpt_running = true;
    pthread_mutex_lock(&eng->write_mu);
    int rc = store_wal_hook(eng->writer, ckpt_note, eng);
    pthread_mutex_unlock(&eng->write_mu);
    if (rc != 0) {
        fprintf(stderr, "allot: checkpoints stay in the commits\n");
    }
}

static void
ckpt_stop(struct engine *eng)
{
    if (!eng->ckpt_running) {
        return;
    }
    pthread_mutex_lock(&eng->write_mu);
    if (store_wal_hook(eng->writer, NULL, NULL) != 0) {
        fprintf(stderr, "allot: SQLite's own checkpoints could not be turned back on\n");
    }
    atomic_store(&eng->wal_frames, 0);
    pthread_mutex_unlock(&eng->write_mu);
    pthread_mutex_lock(&eng->ckpt_mu);
    eng->ckpt_stop = true;
    pthread_cond_signal(&eng->ckpt_cv);
    pthread_mutex_unlock(&eng->ckpt_mu);
    pthread_join(eng->ckpt_thread, NULL);
    eng->ckpt_running = false;
    pthread_mutex_destroy(&eng->ckpt_mu);
    pthread_cond_destroy(&eng->ckpt_cv);
    pthread_cond_destroy(&eng->ckpt_done_cv);
    store_close(eng->ckpt_store);
    eng->ckpt_store = NULL;
}

int
engine_start_writer(struct engine *eng, struct eng_error *err)
{
    if (eng->writer_running) {
        return 0;
    }
    eng->writer_stop = false;
    if (pthread_create(&eng->writer_thread, NULL, writer_main, eng) != 0) {
        return eng_error_set(err, ENG_ENOMEM, "cannot start the writer thread");
    }
    eng->writer_running = true;
    ckpt_start(eng);
    return 0;
}

static void
engine_stop_writer(struct engine *eng)
{
    if (!eng->writer_running) {
        return;
    }
    pthread_mutex_lock(&eng->queue_mu);
    eng->writer_stop = true;
    pthread_cond_signal(&eng->queue_cv);
    pthread_mutex_unlock(&eng->queue_mu);
    pthread_join(eng->writer_thread, NULL);
    eng->writer_running = false;
    ckpt_stop(eng);
}

static const struct op_plan_def *
plan_find(const char *name)
{
    for (const struct op_plan_def *p = ops_plans; p->name != NULL; p++) {
        if (strcmp(p->name, name) == 0) {
            return p;
        }
    }
    return NULL;
}

/* Runs def->plan on a reader snapshot, on the caller's thread: the
 * computing the writer then need not do (ops.h).  Any failure means no
 * plan; the writer computes the op itself and gives its answer. */
static void *
plan_compute(struct engine *eng, const struct op_plan_def *def, const struct principal *who,
             json_t *args)
{
    struct eng_error err = {0};
    struct op op = {.env = eng->env, .who = who, .err = &err};
    /* Never wait for a reader (long reports may hold them all): without
     * one, the writer does the computing, as it always could. */
    atomic_fetch_add_explicit(&eng->st_plans, 1, memory_order_relaxed);
    op.store = store_pool_try_acquire(eng->readers);
    if (op.store == NULL) {
        atomic_fetch_add_explicit(&eng->st_plans_no_reader, 1, memory_order_relaxed);
        return NULL;
    }
    op.now = engine_now(eng);
    op_bind_ledger(&op);
    void *plan = NULL;
    unsigned long oom_before = eng_alloc_failures();
    if (store_tx(op.store, STORE_BEGIN, &err) == 0) {
        if (def->plan(&op, args, &plan) != 0) {
            plan = NULL;
        }
        (void)store_tx(op.store, STORE_ROLLBACK, NULL);
    }
    store_pool_release(eng->readers, op.store);
    if (plan != NULL && eng_alloc_failures() != oom_before) {
        /* Computed short of memory: not to be trusted. */
        def->plan_free(plan);
        plan = NULL;
    }
    return plan;
}

/* Compute slots (engine/README.md).  The slot this thread holds, and how
 * deeply engine_exec_text is nested on it: only the outermost call takes
 * one. */
static _Thread_local struct gate *slot_held;
static _Thread_local int slot_depth;

/* Reports, simulations and verify run long on their own connections: they
 * take no slot, so they never hold quotes and bookings in line. */
static void
slot_take(struct engine *eng, bool report)
{
    if (slot_depth++ == 0 && eng->gated && !report) {
        gate_enter(&eng->gate);
        slot_held = &eng->gate;
    }
}

/* Gives the slot back before the thread waits for something other than a
 * CPU (the writer's commit): held there, it would keep a computing request
 * in line and the writer's batches small. */
static void
slot_give_back(void)
{
    if (slot_held != NULL) {
        gate_leave(slot_held);
        slot_held = NULL;
    }
}

static void
slot_done(void)
{
    if (--slot_depth == 0) {
        slot_give_back();
    }
}

static int
exec_write(struct engine *eng, const struct op_def *def, struct op *op, json_t *args,
           const char *idem_key, json_t **out, bool *replayed)
{
    struct write_job job = {.def = def, .op = *op, .args = args, .idem_key = idem_key};
    job.op.err = &job.err;
    job.op.plan = NULL;
    principal_label(op->who, job.who, sizeof job.who);
    if (idem_key != NULL) {
        /* The request's identity: the operation and its canonical JSON. */
        char *text = json_dumps(args ? args : json_null(),
                                JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        size_t n = strlen(def->name) + (text ? strlen(text) : 0) + 2;
        char *buf = text != NULL ? malloc(n) : NULL;
        bool hashed = buf != NULL;
        if (hashed) {
            snprintf(buf, n, "%s %s", def->name, text);
            sha256_hex(buf, strlen(buf), job.hash);
        }
        free(buf);
        free(text);
        if (!hashed) {
            /* Without the request's identity a key could match another
             * request: refuse rather than guess. */
            *out = NULL;
            *replayed = false;
            return eng_error_code(op->err, ENG_ENOMEM, "overloaded", "out of memory; try again");
        }
    }
    const struct op_plan_def *planner = plan_find(def->name);
    if (planner != NULL) {
        job.op.plan = plan_compute(eng, planner, op->who, args);
        job.op.plan_answer_later = idem_key == NULL;
    }
    slot_give_back();
    if (eng->writer_running) {
        if (sem_init(&job.done_sem, 0, 0) != 0) {
            if (job.op.plan != NULL) {
                planner->plan_free(job.op.plan);
            }
            *out = NULL;
            *replayed = false;
            return eng_error_code(op->err, ENG_ENOMEM, "overloaded", "out of memory; try again");
        }
        pthread_mutex_lock(&eng->queue_mu);
        if (eng->queue_tail != NULL) {
            eng->queue_tail->next = &job;
        } else {
            eng->queue_head = &job;
        }
        eng->queue_tail = &job;
        eng->jobs_queued++;
        pthread_cond_signal(&eng->queue_cv);
        pthread_mutex_unlock(&eng->queue_mu);
        while (sem_wait(&job.done_sem) != 0) {
            /* EINTR: a signal handler ran; the job is not done yet. */
        }
        sem_destroy(&job.done_sem);
    } else {
        pthread_mutex_lock(&eng->write_mu);
        batch_run(eng, &job);
        pthread_mutex_unlock(&eng->write_mu);
    }
    if (job.op.plan != NULL) {
        if (job.rc == 0 && job.op.plan_answer_later) {
            /* The write is durable: only the answer is left to build, here
             * rather than in the writer.  Failing for memory, the client
             * is told so (503) and a retry finds the slot taken. */
            unsigned long oom_before = eng_alloc_failures();
            int rc = planner->finish(job.op.plan, &job.op, &job.out);
            if (rc == 0 && eng_alloc_failures() != oom_before) {
                rc = eng_error_code(&job.err, ENG_ENOMEM, "overloaded", "out of memory; try again");
            }
            if (rc == 0 && job.out == NULL && !answered_in_text(&job.op)) {
                rc = eng_error_code(&job.err, ENG_ENOMEM, "overloaded", "out of memory; try again");
            }
            if (rc != 0) {
                job.rc = rc;
                json_decref(job.out);
                job.out = NULL;
            }
        }
        planner->plan_free(job.op.plan);
    }
    *op->err = job.err;
    op->created = job.op.created;
    op->text_given = job.rc == 0 && answered_in_text(&job.op);
    *out = job.out;
    *replayed = job.replayed;
    return job.rc;
}

/* Whether this transaction has boundaries to process (a node's log says
 * which node did the work: engine/README.md, "PostgreSQL: two drivers"). */
static bool
advance_due(struct op *op)
{
    int64_t due;
    return ledger_next_due(&op->lx, &due) == 0 && due <= op->now;
}

/* One attempt of advance_locked: the transaction, committed or rolled back. */
static int
advance_once(struct engine *eng, struct op *op, const int64_t *clock, bool *worked)
{
    struct eng_error *err = op->err;
    /* A clock being set is the instant: fake_now may meanwhile have been
     * refreshed from the database's older value (engine_clock_refresh). */
    op->now = clock != NULL ? *clock : engine_now(eng);
    op_bind_ledger(op);
    unsigned long oom_before = eng_alloc_failures();
    int rc = store_tx(op->store, STORE_BEGIN_IMMEDIATE, err);
    if (rc == 0 && clock != NULL && eng->shared) {
        rc = store_cluster_clock_put(op->store, *clock, false, err);
    }
    *worked = rc == 0 && eng->shared && advance_due(op);
    if (rc == 0) {
        memset(err, 0, sizeof *err); /* advance_due may leave a note */
        rc = ledger_advance(&op->lx);
    }
    if (eng_alloc_failures() != oom_before) {
        rc = eng_error_code(err, ENG_ENOMEM, "overloaded", "out of memory; try again");
    }
    if (rc == 0 || rc == ENG_EPOLICY) {
        /* Keep what was processed; a refused period end stays open. */
        struct eng_error commit_err = {0};
        if (store_tx(op->store, STORE_COMMIT, &commit_err) != 0) {
            *err = commit_err;
            rc = commit_err.status;
        }
    } else {
        (void)store_tx(op->store, STORE_ROLLBACK, NULL);
    }
    return rc;
}

/* Processes every due boundary in its own transaction; with `clock`, sets
 * the fake clock first (on a shared database, storing it in that same
 * transaction, so every node reads it).  The caller holds write_mu.
 *
 * On a shared database the boundary lock (store/cluster.h) is held around
 * the transaction: a second node waits for it, then begins its snapshot
 * after the first one's commit and finds nothing left to do, so each
 * boundary is processed once.  A conflict with another node's write is
 * retried like a batch.  On SQLite the lock is a no-op and no retry is
 * ever advised. */
static int
advance_locked(struct engine *eng, const int64_t *clock, int wait_ms, struct eng_error *err)
{
    struct principal system = {.role = ROLE_SUPER_ADMIN};
    snprintf(system.name, sizeof system.name, "system");
    struct op op = {.env = eng->env, .who = &system, .err = err, .store = eng->writer};
    if (clock != NULL) {
        atomic_store(&eng->fake_now, *clock);
    }
    bool got = false;
    if (store_cluster_lock(op.store, wait_ms, &got, err) != 0) {
        return err->status;
    }
    if (!got) {
        /* Another node has been processing boundaries all this while: what
         * it commits is what this one would have done.  Only a clock being
         * set must not answer before its boundaries are processed. */
        return clock == NULL ? 0
                             : eng_error_code(err, ENG_ESTORE, "busy",
                                              "the database is busy; try again");
    }
    int rc;
    for (int attempt = 1;; attempt++) {
        bool worked = false;
        rc = advance_once(eng, &op, clock, &worked);
        if (worked) {
            /* Each attempt that found work, so the logs of all nodes show
             * who did it, and that nobody did it twice. */
            char at[40];
            time_format_rfc3339(op.now, at, sizeof at);
            fprintf(stderr, "allot: period boundaries due by %s: %s\n", at,
                    rc == 0 || rc == ENG_EPOLICY ? "processed by this node"
                                                 : "this node's attempt failed");
        }
        if (rc == 0 || rc == ENG_EPOLICY || attempt >= ENGINE_COMMIT_TRIES_MAX ||
            !store_retry_advised(op.store)) {
            break;
        }
        batch_backoff(attempt);
        memset(err, 0, sizeof *err);
    }
    if (clock != NULL) {
        atomic_store(&eng->fake_now, *clock); /* whatever a refresh read meanwhile */
    }
    struct eng_error probe_err = {0};
    op.err = &probe_err;
    op_bind_ledger(&op);
    note_next_due(eng, &op, -1);
    store_cluster_unlock(op.store);
    return rc;
}

int
engine_advance(struct engine *eng, struct eng_error *err)
{
    pthread_mutex_lock(&eng->write_mu);
    int rc = advance_locked(eng, NULL, eng->cfg.sqlite_busy_timeout_ms, err);
    pthread_mutex_unlock(&eng->write_mu);
    return rc;
}

/* Runs a read op on a connection of `pool`, in one read transaction (one
 * snapshot) that is rolled back afterwards. */
static int
exec_read(struct engine *eng, struct store_pool *pool, const struct op_def *def, struct op *op,
          json_t *args, json_t **out)
{
    struct eng_error *err = op->err;
    /* Reads see every boundary that is due: process it first.  Only a
     * storage failure stops the read; a refusing policy leaves its
     * period open (reads filter lots by validity anyway). */
    if (engine_now(eng) >= atomic_load(&eng->next_due) && engine_advance(eng, err) != 0 &&
        err->status != ENG_EPOLICY) {
        return err->status;
    }
    memset(err, 0, sizeof *err);
    op->store = store_pool_acquire(pool, err);
    if (op->store == NULL) {
        return err->status;
    }
    op->now = engine_now(eng);
    op_bind_ledger(op);
    unsigned long oom_before = eng_alloc_failures();
    int rc = store_tx(op->store, STORE_BEGIN, err);
    if (rc == 0) {
        rc = def->fn(op, args, out);
        if (eng_alloc_failures() != oom_before) {
            rc = eng_error_code(err, ENG_ENOMEM, "overloaded", "out of memory; try again");
        }
        if (rc == 0 && *out == NULL && !answered_in_text(op)) {
            rc = eng_error_code(err, ENG_ENOMEM, "overloaded", "out of memory; try again");
        }
        json_decref(op->idem_response); /* reads store no response */
        (void)store_tx(op->store, STORE_ROLLBACK, NULL);
    }
    store_pool_release(pool, op->store);
    if (rc != 0 && *out != NULL) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int
engine_exec(struct engine *eng, const struct principal *who, const char *name, json_t *args,
            const char *idem_key, json_t **out, bool *created, bool *replayed,
            struct eng_error *err)
{
    return engine_exec_text(eng, who, name, args, idem_key, NULL, out, created, replayed, err);
}

int
engine_exec_text(struct engine *eng, const struct principal *who, const char *name,
                 json_t *args, const char *idem_key, struct json_buf *text, json_t **out,
                 bool *created, bool *replayed, struct eng_error *err)
{
    const struct op_def *def = op_find(name);
    *out = NULL;
    *replayed = false;
    memset(err, 0, sizeof *err);
    if (def == NULL) {
        return eng_error_code(err, ENG_ENOTFOUND, "not_found", "no operation '%.60s'", name);
    }
    if (eng->shared && eng->cfg.fake_clock && engine_clock_refresh(eng, err) != 0) {
        return err->status; /* the shared clock must be the one used */
    }
    struct op op = {.env = eng->env, .who = who, .err = err, .text = text};
    if (text != NULL) {
        json_buf_reset(text);
    }
    int rc;
    bool report = op_builds_report(def);
    slot_take(eng, report);
    if (def->write) {
        rc = exec_write(eng, def, &op, args, idem_key, out, replayed);
    } else {
        rc = exec_read(eng, report ? eng->reporters : eng->readers, def, &op, args, out);
    }
    slot_done();
    *created = op.created;
    return rc;
}


int
engine_exec_stream(struct engine *eng, const struct principal *who, const char *name,
                   json_t *args, const struct row_sink *sink, json_t **out,
                   struct eng_error *err)
{
    const struct op_def *def = op_find(name);
    *out = NULL;
    memset(err, 0, sizeof *err);
    if (def == NULL) {
        return eng_error_code(err, ENG_ENOTFOUND, "not_found", "no operation '%.60s'", name);
    }
    if (def->write) {
        return eng_error_code(err, ENG_EINVAL, "invalid_request",
                              "'%.60s' changes state and cannot stream", name);
    }
    if (eng->shared && eng->cfg.fake_clock && engine_clock_refresh(eng, err) != 0) {
        return err->status;
    }
    struct op op = {.env = eng->env, .who = who, .err = err, .sink = sink};
    return exec_read(eng, eng->exporters, def, &op, args, out);
}

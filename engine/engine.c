/* engine.c - opening the engine, the clock, transactions, policy sets. */
#include "engine.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ledger.h"
#include "ops.h"
#include "sha256.h"

extern const struct op_def ops_portfolio[];
extern const struct op_def ops_credits[];
extern const struct op_def ops_booking[];
extern const struct op_def ops_admin[];
extern const struct op_def ops_reports[];
extern const struct op_def ops_policies[];

static void engine_stop_writer(struct engine *eng);

static const struct op_def *const op_groups[] = {ops_portfolio, ops_credits, ops_booking,
                                                 ops_admin, ops_reports, ops_policies};

/* ---------- names and ids ---------- */

static const char *const role_names[ROLE_COUNT] = {"super_admin", "manager", "viewer",
                                                   "tenant_admin", "tenant_user"};

const char *
role_name(enum role role)
{
    return role >= 0 && role < ROLE_COUNT ? role_names[role] : "unknown";
}

int
role_parse(const char *s, enum role *out)
{
    for (int i = 0; s != NULL && i < ROLE_COUNT; i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *out = (enum role)i;
            return 0;
        }
    }
    return ENG_EINVAL;
}

bool
role_is_admin(enum role role)
{
    return role == ROLE_SUPER_ADMIN || role == ROLE_MANAGER || role == ROLE_VIEWER;
}

void
id_format(const char *prefix, int64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s_%" PRId64, prefix, id);
}

json_t *
id_json(const char *prefix, int64_t id)
{
    char buf[48];
    id_format(prefix, id, buf, sizeof buf);
    return json_string(buf);
}

int
id_parse(const char *prefix, const char *s, int64_t *out)
{
    size_t n = strlen(prefix);
    if (s == NULL || strncmp(s, prefix, n) != 0 || s[n] != '_' || s[n + 1] < '1' ||
        s[n + 1] > '9' || strlen(s + n + 1) > 18) {
        return ENG_ENOTFOUND;
    }
    int64_t v = 0;
    for (const char *p = s + n + 1; *p; p++) {
        if (*p < '0' || *p > '9') {
            return ENG_ENOTFOUND;
        }
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

/* ---------- opening ---------- */

void
engine_config_default(struct engine_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->db_path, sizeof cfg->db_path, "allot.db");
    snprintf(cfg->policies_dir, sizeof cfg->policies_dir, "policies");
    cfg->sqlite_busy_timeout_ms = 2000;
    cfg->list_rows_max = 500;
    policy_limits_default(&cfg->policy);
}

static char *
read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (buf == NULL || n > max) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void
reader_destroy(void *p)
{
    store_close(p);
    free(p);
}

static int
load_defaults(struct engine *eng, struct eng_error *err)
{
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        char path[ENGINE_PATH_MAX + 64];
        size_t len = 0;
        const char *kind = policy_kind_name((enum policy_kind)k);
        snprintf(path, sizeof path, "%s/default/%s.lua", eng->cfg.policies_dir, kind);
        eng->default_text[k] = read_file(path, eng->cfg.policy.source_bytes_max, &len);
        if (eng->default_text[k] == NULL) {
            return eng_error_set(err, ENG_EINVAL, "cannot read the default policy '%s'", path);
        }
        static char names[POLICY_KIND_COUNT][64];
        snprintf(names[k], sizeof names[k], "policies/default/%s.lua", kind);
        eng->defaults[k] = (struct policy_source){names[k], eng->default_text[k], len};
        sha256_hex(eng->default_text[k], len, eng->default_sha[k]);
    }
    /* Compile them once now, so a broken default fails at start-up. */
    struct policy_set *set = NULL;
    struct policy_source none[POLICY_KIND_COUNT] = {{0}};
    if (policy_set_load(&set, eng->defaults, none, &eng->cfg.policy, err) != 0) {
        return err->status;
    }
    policy_set_release(set);
    return 0;
}

int
engine_open(struct engine *eng, const struct engine_config *cfg, struct eng_error *err)
{
    memset(eng, 0, sizeof *eng);
    eng->cfg = *cfg;
    atomic_store(&eng->fake_now, cfg->fake_now != 0 ? cfg->fake_now : (int64_t)time(NULL));
    eng->policy_slots = calloc(ENGINE_POLICY_SLOTS, sizeof *eng->policy_slots);
    if (eng->policy_slots == NULL) {
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&eng->write_mu, NULL);
    pthread_mutex_init(&eng->policy_mu, NULL);
    pthread_mutex_init(&eng->queue_mu, NULL);
    pthread_cond_init(&eng->queue_cv, NULL);
    pthread_cond_init(&eng->done_cv, NULL);
    pthread_key_create(&eng->reader_key, reader_destroy);
    if (store_open(&eng->writer, cfg->db_path, false, cfg->sqlite_busy_timeout_ms, err) != 0 ||
        load_defaults(eng, err) != 0) {
        engine_close(eng);
        return err->status;
    }
    atomic_store(&eng->next_due, INT64_MIN);
    return engine_advance(eng, err);
}

void
engine_close(struct engine *eng)
{
    if (eng == NULL) {
        return;
    }
    engine_stop_writer(eng);
    engine_policy_invalidate(eng, 0);
    free(eng->policy_slots);
    eng->policy_slots = NULL;
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        free(eng->default_text[k]);
        eng->default_text[k] = NULL;
    }
    void *reader = pthread_getspecific(eng->reader_key);
    if (reader != NULL) {
        reader_destroy(reader);
        pthread_setspecific(eng->reader_key, NULL);
    }
    pthread_key_delete(eng->reader_key);
    store_close(&eng->writer);
    pthread_mutex_destroy(&eng->write_mu);
    pthread_mutex_destroy(&eng->policy_mu);
    pthread_mutex_destroy(&eng->queue_mu);
    pthread_cond_destroy(&eng->queue_cv);
    pthread_cond_destroy(&eng->done_cv);
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

static struct store *
reader_store(struct engine *eng, struct eng_error *err)
{
    struct store *s = pthread_getspecific(eng->reader_key);
    if (s != NULL) {
        return s;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        eng_error_set(err, ENG_ENOMEM, "out of memory");
        return NULL;
    }
    if (store_open(s, eng->cfg.db_path, true, eng->cfg.sqlite_busy_timeout_ms, err) != 0) {
        free(s);
        return NULL;
    }
    pthread_setspecific(eng->reader_key, s);
    return s;
}

static void
principal_label(const struct principal *who, char *buf, size_t len)
{
    if (who->key_id != 0) {
        snprintf(buf, len, "key:%" PRId64, who->key_id);
    } else {
        snprintf(buf, len, "%s", who->name[0] ? who->name : "console");
    }
}

/* Looks the key up; 1 = replay (*out set), 0 = new, <0 = error. */
static int
idem_lookup(struct op *op, const char *who, const char *key, const char *hash, json_t **out)
{
    sqlite3_stmt *st = store_prep(op->store,
                                  "SELECT request_hash, status, response FROM idempotency"
                                  " WHERE principal = ? AND key = ?",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    sqlite3_bind_text(st, 1, who, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (strcmp((const char *)sqlite3_column_text(st, 0), hash) != 0) {
            rc = eng_error_code(op->err, ENG_ECONFLICT, "idempotency_conflict",
                                "this Idempotency-Key was used with a different request");
        } else {
            op->http_status = sqlite3_column_int(st, 1);
            *out = json_from_text((const char *)sqlite3_column_text(st, 2));
            rc = 1;
        }
    }
    sqlite3_reset(st);
    return rc;
}

static int
idem_store(struct op *op, const char *who, const char *key, const char *hash, json_t *out)
{
    sqlite3_stmt *st = store_prep(op->store,
                                  "INSERT INTO idempotency (principal, key, request_hash, status,"
                                  " response, created_at) VALUES (?,?,?,?,?,?)",
                                  op->err);
    if (st == NULL) {
        return ENG_ESTORE;
    }
    char *text = json_to_text(out);
    sqlite3_bind_text(st, 1, who, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, op->http_status);
    sqlite3_bind_text(st, 5, text ? text : "null", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, op->now);
    free(text);
    return sql_step_done(op, st, "idempotency");
}

static void
note_next_due(struct engine *eng, struct op *op)
{
    int64_t due;
    if (ledger_next_due(op, &due) == 0) {
        atomic_store(&eng->next_due, due);
    }
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
    bool replayed, done;
    int rc;
    struct write_job *next;
};

/* Runs one job inside the open transaction, in its own savepoint, so a
 * failing job leaves the batch's other writes untouched. */
static void
job_run(struct engine *eng, struct write_job *job)
{
    struct op *op = &job->op;
    op->store = &eng->writer;
    op->now = engine_now(eng);
    int rc = store_exec(op->store, "SAVEPOINT job", op->err);
    if (rc != 0) {
        job->rc = rc;
        return;
    }
    if (job->idem_key != NULL) {
        rc = idem_lookup(op, job->who, job->idem_key, job->hash, &job->out);
        if (rc == 1) {
            job->replayed = true;
            rc = 0;
            goto release;
        }
    }
    /* A policy refusing a period end concerns other allocations: it is
     * logged and retried, and never fails this request. */
    if (rc == 0 && (rc = ledger_advance(op)) == ENG_EPOLICY) {
        rc = 0;
    }
    if (rc == 0) {
        rc = job->def->fn(op, job->args, &job->out);
    }
    if (rc == 0 && job->idem_key != NULL) {
        rc = idem_store(op, job->who, job->idem_key, job->hash, job->out);
    }
    if (rc != 0) {
        (void)store_exec(op->store, "ROLLBACK TO job", NULL);
        json_decref(job->out);
        job->out = NULL;
        if (op->install_set != NULL) {
            policy_set_release(op->install_set);
            op->install_set = NULL;
        }
    }
release:
    (void)store_exec(op->store, "RELEASE job", NULL);
    job->rc = rc;
}

/* Runs a batch of jobs in one transaction.  The caller holds write_mu. */
static void
batch_run(struct engine *eng, struct write_job *jobs)
{
    struct eng_error err = {0};
    int rc = store_exec(&eng->writer, "BEGIN IMMEDIATE", &err);
    for (struct write_job *j = jobs; j != NULL; j = j->next) {
        if (rc == 0) {
            job_run(eng, j);
        } else {
            j->rc = rc;
            j->err = err;
        }
    }
    if (rc == 0) {
        rc = store_exec(&eng->writer, "COMMIT", &err);
        if (rc != 0) {
            /* Nothing of the batch is durable: nobody may be told it is. */
            (void)store_exec(&eng->writer, "ROLLBACK", NULL);
            for (struct write_job *j = jobs; j != NULL; j = j->next) {
                if (j->rc == 0) {
                    j->rc = rc;
                    j->err = err;
                    json_decref(j->out);
                    j->out = NULL;
                }
            }
        }
    }
    /* Policy versions go live only once they are durable. */
    for (struct write_job *j = jobs; j != NULL; j = j->next) {
        if (j->op.install_set != NULL) {
            if (j->rc == 0) {
                engine_policy_install(eng, j->op.install_building, j->op.install_set,
                                      j->op.install_versions);
            }
            policy_set_release(j->op.install_set);
            j->op.install_set = NULL;
        }
    }
    struct op probe = {.eng = eng, .store = &eng->writer, .err = &err};
    note_next_due(eng, &probe);
}

static void *
writer_main(void *arg)
{
    struct engine *eng = arg;
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
        for (int n = 1; n < ENGINE_BATCH_MAX && last->next != NULL; n++) {
            last = last->next;
        }
        eng->queue_head = last->next;
        if (eng->queue_head == NULL) {
            eng->queue_tail = NULL;
        }
        last->next = NULL;
        pthread_mutex_unlock(&eng->queue_mu);
        pthread_mutex_lock(&eng->write_mu);
        batch_run(eng, batch);
        pthread_mutex_unlock(&eng->write_mu);
        pthread_mutex_lock(&eng->queue_mu);
        for (struct write_job *j = batch, *next; j != NULL; j = next) {
            next = j->next;
            j->done = true;
        }
        pthread_cond_broadcast(&eng->done_cv);
    }
    pthread_mutex_unlock(&eng->queue_mu);
    return NULL;
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
}

static int
exec_write(struct engine *eng, const struct op_def *def, struct op *op, json_t *args,
           const char *idem_key, json_t **out, bool *replayed)
{
    struct write_job job = {.def = def, .op = *op, .args = args, .idem_key = idem_key};
    job.op.err = &job.err;
    principal_label(op->who, job.who, sizeof job.who);
    if (idem_key != NULL) {
        /* The request's identity: the operation and its canonical JSON. */
        char *text = json_dumps(args ? args : json_null(),
                                JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        size_t n = strlen(def->name) + (text ? strlen(text) : 0) + 2;
        char *buf = malloc(n);
        if (buf != NULL) {
            snprintf(buf, n, "%s %s", def->name, text ? text : "");
            sha256_hex(buf, strlen(buf), job.hash);
        }
        free(buf);
        free(text);
    }
    if (eng->writer_running) {
        pthread_mutex_lock(&eng->queue_mu);
        if (eng->queue_tail != NULL) {
            eng->queue_tail->next = &job;
        } else {
            eng->queue_head = &job;
        }
        eng->queue_tail = &job;
        pthread_cond_signal(&eng->queue_cv);
        while (!job.done) {
            pthread_cond_wait(&eng->done_cv, &eng->queue_mu);
        }
        pthread_mutex_unlock(&eng->queue_mu);
    } else {
        pthread_mutex_lock(&eng->write_mu);
        batch_run(eng, &job);
        pthread_mutex_unlock(&eng->write_mu);
    }
    *op->err = job.err;
    op->http_status = job.op.http_status;
    *out = job.out;
    *replayed = job.replayed;
    return job.rc;
}

int
engine_advance(struct engine *eng, struct eng_error *err)
{
    struct principal system = {.role = ROLE_SUPER_ADMIN};
    snprintf(system.name, sizeof system.name, "system");
    struct op op = {.eng = eng, .who = &system, .err = err, .http_status = 200};
    pthread_mutex_lock(&eng->write_mu);
    op.store = &eng->writer;
    op.now = engine_now(eng);
    int rc = store_exec(op.store, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        rc = ledger_advance(&op);
    }
    if (rc == 0 || rc == ENG_EPOLICY) {
        /* Keep what was processed; a refused period end stays open. */
        struct eng_error commit_err = {0};
        if (store_exec(op.store, "COMMIT", &commit_err) != 0) {
            *err = commit_err;
            rc = commit_err.status;
        }
    } else {
        (void)store_exec(op.store, "ROLLBACK", NULL);
    }
    note_next_due(eng, &op);
    pthread_mutex_unlock(&eng->write_mu);
    return rc;
}

int
engine_exec(struct engine *eng, const struct principal *who, const char *name, json_t *args,
            const char *idem_key, json_t **out, int *http_status, bool *replayed,
            struct eng_error *err)
{
    const struct op_def *def = op_find(name);
    *out = NULL;
    *replayed = false;
    memset(err, 0, sizeof *err);
    if (def == NULL) {
        return eng_error_code(err, ENG_ENOTFOUND, "not_found", "no operation '%.60s'", name);
    }
    struct op op = {.eng = eng, .who = who, .err = err, .http_status = 200};
    int rc;
    if (def->write) {
        rc = exec_write(eng, def, &op, args, idem_key, out, replayed);
    } else {
        /* Reads see every boundary that is due: process it first.  Only a
         * storage failure stops the read; a refusing policy leaves its
         * period open (reads filter lots by validity anyway). */
        if (engine_now(eng) >= atomic_load(&eng->next_due) &&
            engine_advance(eng, err) != 0 && err->status != ENG_EPOLICY) {
            return err->status;
        }
        memset(err, 0, sizeof *err);
        op.store = reader_store(eng, err);
        if (op.store == NULL) {
            return err->status;
        }
        op.now = engine_now(eng);
        rc = store_exec(op.store, "BEGIN", err);
        if (rc == 0) {
            rc = def->fn(&op, args, out);
            (void)store_exec(op.store, rc == 0 ? "COMMIT" : "ROLLBACK", NULL);
        }
        if (rc != 0 && *out != NULL) {
            json_decref(*out);
            *out = NULL;
        }
    }
    *http_status = op.http_status;
    return rc;
}

/* ---------- policy sets ---------- */

/* Open addressing keyed by building_id + 1 (0 marks a never-used slot, -1 a
 * freed one that probe chains still pass through). */
static struct policy_slot *
slot_find(struct engine *eng, int64_t building_id, bool insert)
{
    int64_t key = building_id + 1;
    uint64_t h = (uint64_t)key * 11400714819323198485ull;
    struct policy_slot *tomb = NULL;
    for (int probe = 0; probe < ENGINE_POLICY_SLOTS; probe++) {
        struct policy_slot *s =
            &eng->policy_slots[(h + (uint64_t)probe) % ENGINE_POLICY_SLOTS];
        if (s->set != NULL && s->building_id == key) {
            return s;
        }
        if (s->set == NULL && s->building_id == 0) {
            return insert ? (tomb != NULL ? tomb : s) : NULL;
        }
        if (s->set == NULL && tomb == NULL) {
            tomb = s;
        }
    }
    return insert ? tomb : NULL;
}

/* The sources of a building's policy set: per kind, the active uploaded
 * version (policy_active), else a file policies/buildings/bld_<id>/<kind>.lua,
 * else the default.  `cand`, when not NULL, replaces one kind (a candidate
 * being checked, simulated or quoted under). */
struct set_sources {
    struct policy_source over[POLICY_KIND_COUNT];
    char *texts[POLICY_KIND_COUNT];
    char names[POLICY_KIND_COUNT][96];
    char labels[POLICY_KIND_COUNT][48];
};

static void
sources_free(struct set_sources *src)
{
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        free(src->texts[k]);
        src->texts[k] = NULL;
    }
}

static void
sources_from_db(struct engine *eng, int64_t building_id, struct set_sources *src)
{
    struct eng_error err = {0};
    struct store *rd = reader_store(eng, &err);
    sqlite3_stmt *st = rd ? store_prep(rd,
                                       "SELECT pv.kind, pv.version, pv.source, pv.sha256"
                                       " FROM policy_active pa JOIN policy_version pv"
                                       " ON pv.id = pa.version_id WHERE pa.building_id = ?",
                                       &err)
                          : NULL;
    if (st == NULL) {
        return;
    }
    sqlite3_bind_int64(st, 1, building_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        enum policy_kind k;
        if (policy_kind_parse((const char *)sqlite3_column_text(st, 0), &k, NULL) != 0 ||
            src->texts[k] != NULL) {
            continue;
        }
        src->texts[k] = strdup((const char *)sqlite3_column_text(st, 2));
        if (src->texts[k] == NULL) {
            continue;
        }
        snprintf(src->names[k], 96, "policies/bld_%" PRId64 "/%s.lua@v%d", building_id,
                 policy_kind_name(k), sqlite3_column_int(st, 1));
        src->over[k] = (struct policy_source){src->names[k], src->texts[k], strlen(src->texts[k])};
        snprintf(src->labels[k], 48, "v%d:%.12s", sqlite3_column_int(st, 1),
                 (const char *)sqlite3_column_text(st, 3));
    }
    sqlite3_reset(st);
}

static void
sources_load(struct engine *eng, int64_t building_id, const struct policy_candidate *cand,
             struct set_sources *src)
{
    memset(src, 0, sizeof *src);
    if (building_id != 0) {
        sources_from_db(eng, building_id, src);
    }
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        const char *kind = policy_kind_name((enum policy_kind)k);
        char hex[65];
        if (cand != NULL && cand->kind == (enum policy_kind)k) {
            free(src->texts[k]);
            src->texts[k] = NULL;
            snprintf(src->names[k], 96, "candidate/%s.lua", kind);
            src->over[k] = (struct policy_source){src->names[k], cand->source, cand->len};
            sha256_hex(cand->source, cand->len, hex);
            snprintf(src->labels[k], 48, "candidate:%.12s", hex);
            continue;
        }
        if (src->texts[k] != NULL) {
            continue;
        }
        char path[ENGINE_PATH_MAX + 96];
        size_t len = 0;
        snprintf(path, sizeof path, "%s/buildings/bld_%" PRId64 "/%s.lua",
                 eng->cfg.policies_dir, building_id, kind);
        src->texts[k] = building_id != 0
                            ? read_file(path, eng->cfg.policy.source_bytes_max, &len)
                            : NULL;
        if (src->texts[k] != NULL) {
            snprintf(src->names[k], 96, "policies/buildings/bld_%" PRId64 "/%s.lua",
                     building_id, kind);
            src->over[k] = (struct policy_source){src->names[k], src->texts[k], len};
            sha256_hex(src->texts[k], len, hex);
            snprintf(src->labels[k], 48, "file:%.12s", hex);
        } else {
            src->over[k] = (struct policy_source){0};
            snprintf(src->labels[k], 48, "default:%.12s", eng->default_sha[k]);
        }
    }
}

int
engine_policy_build(struct engine *eng, int64_t building_id, const struct policy_candidate *cand,
                    struct policy_set **set, char versions[POLICY_KIND_COUNT][48],
                    struct eng_error *err)
{
    struct set_sources src;
    sources_load(eng, building_id, cand, &src);
    int rc = policy_set_load(set, eng->defaults, src.over, &eng->cfg.policy, err);
    if (rc == 0 && versions != NULL) {
        memcpy(versions, src.labels, sizeof src.labels);
    }
    sources_free(&src);
    return rc;
}

void
engine_policy_install(struct engine *eng, int64_t building_id, struct policy_set *set,
                      char versions[POLICY_KIND_COUNT][48])
{
    pthread_mutex_lock(&eng->policy_mu);
    struct policy_slot *s = slot_find(eng, building_id, false);
    if (s == NULL) {
        s = slot_find(eng, building_id, true);
    }
    struct policy_set *old = NULL;
    if (s != NULL) {
        old = s->set;
        s->building_id = building_id + 1;
        s->set = set;
        memcpy(s->versions, versions, sizeof s->versions);
        policy_set_retain(set);
    }
    pthread_mutex_unlock(&eng->policy_mu);
    /* Requests that hold the old set finish on it; the last one frees it. */
    if (old != NULL) {
        policy_set_release(old);
    }
}

int
engine_policy(struct engine *eng, int64_t building_id, struct policy_set **set,
              char versions[POLICY_KIND_COUNT][48], struct eng_error *err)
{
    pthread_mutex_lock(&eng->policy_mu);
    struct policy_slot *s = slot_find(eng, building_id, false);
    if (s != NULL) {
        policy_set_retain(s->set);
        *set = s->set;
        if (versions != NULL) {
            memcpy(versions, s->versions, sizeof s->versions);
        }
        pthread_mutex_unlock(&eng->policy_mu);
        return 0;
    }
    pthread_mutex_unlock(&eng->policy_mu);
    char labels[POLICY_KIND_COUNT][48];
    struct policy_set *fresh = NULL;
    if (engine_policy_build(eng, building_id, NULL, &fresh, labels, err) != 0) {
        /* A broken override must not take the building down silently. */
        return eng_error_recode(err, ENG_EPOLICY, "policy_error");
    }
    pthread_mutex_lock(&eng->policy_mu);
    s = slot_find(eng, building_id, false);
    if (s == NULL) {
        s = slot_find(eng, building_id, true);
        if (s != NULL) {
            s->building_id = building_id + 1;
            s->set = fresh;
            memcpy(s->versions, labels, sizeof labels);
            policy_set_retain(fresh);
        }
    }
    if (versions != NULL) {
        memcpy(versions, s != NULL ? s->versions : labels, sizeof labels);
    }
    pthread_mutex_unlock(&eng->policy_mu);
    *set = fresh;
    return 0;
}

void
engine_policy_invalidate(struct engine *eng, int64_t building_id)
{
    if (eng->policy_slots == NULL) {
        return;
    }
    pthread_mutex_lock(&eng->policy_mu);
    for (int i = 0; i < ENGINE_POLICY_SLOTS; i++) {
        struct policy_slot *s = &eng->policy_slots[i];
        if (s->set != NULL && (building_id == 0 || s->building_id == building_id + 1)) {
            policy_set_release(s->set);
            /* Keep building_id as a tombstone so probe chains stay intact. */
            s->set = NULL;
            s->building_id = -1;
        }
    }
    pthread_mutex_unlock(&eng->policy_mu);
}

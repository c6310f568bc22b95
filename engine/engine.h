/* engine.h - the engine: one database, its policies, its clock.
 *
 * Everything that changes the ledger goes through engine_exec(), which runs
 * one operation (ops.h) as one transaction on the single writer connection,
 * with the caller's principal, an optional idempotency key, and the
 * engine's clock.  Reads run on per-thread reader connections.  The HTTP
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
#include "policy_host.h"
#include "store.h"

#define ENGINE_PATH_MAX 1024
#define ENGINE_POLICY_SLOTS 4096 /* buildings_max */
#define PRINCIPAL_BUILDINGS_MAX 32

enum role {
    ROLE_SUPER_ADMIN = 0,
    ROLE_MANAGER,
    ROLE_VIEWER,
    ROLE_TENANT_ADMIN,
    ROLE_TENANT_USER,
    ROLE_COUNT
};

/* Who is asking.  Admin roles may be limited to some buildings
 * (building_count > 0); tenant roles are bound to a tenant (and a user). */
struct principal {
    enum role role;
    int64_t key_id;    /* 0 for the console / Lua module */
    int64_t tenant_id; /* tenant roles */
    int64_t user_id;   /* tenant_user (optional for tenant_admin) */
    int building_count;
    int64_t building_ids[PRINCIPAL_BUILDINGS_MAX];
    char name[64];     /* for audit columns: "key:3", "console" */
};

struct engine_config {
    char db_path[ENGINE_PATH_MAX];
    char policies_dir[ENGINE_PATH_MAX]; /* holds default/ and buildings/<id>/ */
    bool fake_clock;                    /* the clock only moves when told */
    int64_t fake_now;                   /* its start instant (0 = the real time) */
    int sqlite_busy_timeout_ms;
    int list_rows_max;
    struct policy_limits policy;
};

/* A building's policy set with the version label of each kind. */
struct policy_slot {
    int64_t building_id;
    struct policy_set *set;
    char versions[POLICY_KIND_COUNT][48]; /* "default:1a2b3c4d" / "v3:1a2b3c4d" */
};

struct engine {
    struct engine_config cfg;
    struct store writer;
    pthread_mutex_t write_mu;
    pthread_mutex_t policy_mu;
    struct policy_slot *policy_slots; /* ENGINE_POLICY_SLOTS, open addressing */
    struct policy_source defaults[POLICY_KIND_COUNT];
    char *default_text[POLICY_KIND_COUNT];
    char default_sha[POLICY_KIND_COUNT][65];
    _Atomic int64_t fake_now;
    _Atomic int64_t next_due;    /* the earliest unprocessed boundary (reads check it) */
    pthread_key_t reader_key;    /* per-thread reader store */
    /* Group commit (engine_start_writer): writes queue here and one thread
     * runs them in batches, one transaction and one fsync per batch. */
    bool writer_running, writer_stop;
    pthread_t writer_thread;
    pthread_mutex_t queue_mu;
    pthread_cond_t queue_cv, done_cv;
    struct write_job *queue_head, *queue_tail;
};

void engine_config_default(struct engine_config *cfg);

/* Opens the database (migrating it), loads the default policies.  Returns 0
 * or an error; on failure nothing is left open. */
ENG_MUST_CHECK int engine_open(struct engine *eng, const struct engine_config *cfg,
                               struct eng_error *err);
void engine_close(struct engine *eng);

/* Starts the group-commit writer thread: from then on concurrent writes are
 * batched, each in its own savepoint, in one transaction per batch (at most
 * ENGINE_BATCH_MAX).  A write is acknowledged only after its batch commits.
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
 * caller) and *http_status the status an HTTP client gets (200/201).  When
 * `idem_key` is non-NULL and the op writes, the first successful response is
 * stored with the key in the same transaction; a retry with the same key and
 * the same args returns it again with *replayed = true and no second effect;
 * the same key with other args is ENG_ECONFLICT idempotency_conflict. */
ENG_MUST_CHECK int engine_exec(struct engine *eng, const struct principal *who, const char *op,
                               json_t *args, const char *idem_key, json_t **out,
                               int *http_status, bool *replayed, struct eng_error *err);

/* Processes every due period boundary (expiry, rollover, new periods) up to
 * now, in its own write transaction.  Cheap when nothing is due. */
ENG_MUST_CHECK int engine_advance(struct engine *eng, struct eng_error *err);

/* The policy set of a building, retained (release with
 * policy_set_release), and its version labels copied into versions (may be
 * NULL).  Loads it on first use. */
ENG_MUST_CHECK int engine_policy(struct engine *eng, int64_t building_id,
                                 struct policy_set **set,
                                 char versions[POLICY_KIND_COUNT][48], struct eng_error *err);
/* A candidate source for one kind, replacing the building's active one. */
struct policy_candidate {
    enum policy_kind kind;
    const char *source;
    size_t len;
};

/* Builds (compiles and self-checks) a fresh policy set for a building from
 * its current sources, with `cand` (may be NULL) in place of one kind.  The
 * set is returned with one reference; nothing is cached or installed. */
ENG_MUST_CHECK int engine_policy_build(struct engine *eng, int64_t building_id,
                                       const struct policy_candidate *cand,
                                       struct policy_set **set,
                                       char versions[POLICY_KIND_COUNT][48],
                                       struct eng_error *err);
/* Makes `set` the building's serving set (taking a reference); the old set
 * is released once the requests holding it finish. */
void engine_policy_install(struct engine *eng, int64_t building_id, struct policy_set *set,
                           char versions[POLICY_KIND_COUNT][48]);

/* Drops cached policy sets so the next use reloads them (all buildings when
 * building_id is 0).  In-flight calls keep the set they hold. */
void engine_policy_invalidate(struct engine *eng, int64_t building_id);

/* Role names. */
const char *role_name(enum role role);
int role_parse(const char *s, enum role *out);
bool role_is_admin(enum role role);

/* Id rendering: "bld_12" etc.  Parsing checks the prefix; returns 0 or
 * ENG_ENOTFOUND for a malformed id (so a bad id is a 404 like an unknown
 * one). */
json_t *id_json(const char *prefix, int64_t id);
void id_format(const char *prefix, int64_t id, char *buf, size_t len);
int id_parse(const char *prefix, const char *s, int64_t *out);

/* Verifies every invariant of the ledger; appends one string per problem to
 * `problems` (a JSON array).  Returns 0 (even when problems were found) or a
 * store error. */
ENG_MUST_CHECK int engine_verify(struct engine *eng, json_t *problems, struct eng_error *err);

#endif

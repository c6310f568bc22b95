/* sets.h - the policy sets each building serves, cached.
 *
 * A building's set holds its six kinds: per kind the active uploaded version
 * (read through the store handed in, so inside the caller's transaction),
 * else a file policies/buildings/bld_<id>/<kind>.lua, else the default.
 * Sets are reference counted: installing a new one swaps the pointer and
 * requests in flight finish on the set they hold. */
#ifndef ENG_POLICY_SETS_H
#define ENG_POLICY_SETS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "policy_host.h"
#include "store.h"

#define POLICY_CACHE_SLOTS 4096 /* buildings_max */
#define POLICY_LABEL_MAX 48
#define POLICY_PATH_MAX 1024

/* A building's policy set with the version label of each kind. */
struct policy_slot {
    int64_t building_id; /* + 1; 0 never used, -1 freed */
    struct policy_set *set;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX]; /* "default:1a2b" / "v3:1a2b" */
    /* How new the set is, in policy_cache_epoch terms: the count of installs
     * once it was installed, or before its sources were read when a cache
     * miss built it.  A reload compares it with its own epoch. */
    uint64_t epoch;
};

struct policy_cache {
    char dir[POLICY_PATH_MAX]; /* holds default/ and buildings/<id>/ */
    struct policy_limits limits;
    pthread_mutex_t mu;
    struct policy_slot *slots; /* POLICY_CACHE_SLOTS, open addressing */
    uint64_t installs;         /* installs and syncs of changes so far (under mu): see
                                  policy_cache_epoch */
    uint64_t dropped_epoch;    /* `installs` at the last sync of a change (under mu) */
    int64_t synced_gen;        /* the policy generation of the last sync (under mu) */
    struct policy_source defaults[POLICY_KIND_COUNT];
    char *default_text[POLICY_KIND_COUNT];
    char default_names[POLICY_KIND_COUNT][64];
    char default_sha[POLICY_KIND_COUNT][65];
};

/* Reads and compiles the defaults (a broken default fails here). */
ENG_MUST_CHECK int policy_cache_open(struct policy_cache *pc, const char *dir,
                                     const struct policy_limits *limits, struct eng_error *err);
void policy_cache_close(struct policy_cache *pc);

/* The serving set of a building, retained (release with policy_set_release),
 * its labels copied into versions (may be NULL).  A miss builds it from
 * `store` (the caller's connection and transaction). */
ENG_MUST_CHECK int policy_cache_get(struct policy_cache *pc, struct store *store,
                                    int64_t building_id, struct policy_set **set,
                                    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX],
                                    struct eng_error *err);

/* A candidate source for one kind, replacing the building's active one. */
struct policy_candidate {
    enum policy_kind kind;
    const char *source;
    size_t len;
};

/* Builds (compiles and self-checks) a fresh set for a building from its
 * sources as `store` sees them, with `cand` (may be NULL) in place of one
 * kind.  Returned with one reference; nothing is cached or installed. */
ENG_MUST_CHECK int policy_cache_build(struct policy_cache *pc, struct store *store,
                                      int64_t building_id, const struct policy_candidate *cand,
                                      struct policy_set **set,
                                      char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX],
                                      struct eng_error *err);

/* Makes `set` the building's serving set (taking a reference).  The engine
 * calls it after the transaction that changed the building's policies has
 * committed, in commit order, so the last commit's set is the one served. */
void policy_cache_install(struct policy_cache *pc, int64_t building_id, struct policy_set *set,
                          char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX]);

/* A count of the installs (and of the syncs of other processes' changes,
 * policy_cache_sync) so far.  A caller that builds sets from a read snapshot
 * (a reload) takes it before its snapshot starts and installs with
 * policy_cache_install_since: a set built from a snapshot older than a
 * committed change must not replace the set that change installed. */
uint64_t policy_cache_epoch(struct policy_cache *pc);

/* Like policy_cache_install, but only when the building's serving set is
 * not newer than `epoch` (policy_cache_epoch): no committed change (nor a
 * reload) installed one for it since, and, when it has none cached, no sync
 * followed another process's change since (that building's next use builds
 * its set from current sources instead).  Installs for other buildings, the
 * caller's own included, do not matter: a reload installs every building in
 * turn.  Returns whether it installed. */
bool policy_cache_install_since(struct policy_cache *pc, int64_t building_id,
                                struct policy_set *set,
                                char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX],
                                uint64_t epoch);

/* Drops cached sets (all buildings when building_id is 0). */
void policy_cache_invalidate(struct policy_cache *pc, int64_t building_id);

/* Follows policy changes other processes committed (engine/README.md,
 * "PostgreSQL: two drivers"): `gen` is the policy generation (store/
 * cluster.h) as `store`'s snapshot sees it; the active versions are read in
 * that snapshot and every cached set whose labels disagree is dropped, so
 * the next request builds it afresh.  Sets built from policy files or the
 * defaults are kept (files change on reload only).  From then on a set
 * built on a snapshot older than `gen` serves its request but is not
 * cached.  *dropped (may be NULL) counts the sets dropped.  0, or a store
 * error or ENG_ENOMEM with nothing dropped. */
ENG_MUST_CHECK int policy_cache_sync(struct policy_cache *pc, struct store *store, int64_t gen,
                                     int *dropped, struct eng_error *err);

#endif

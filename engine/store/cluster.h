/* cluster.h - what the nodes serving one database tell each other through
 * it (engine/README.md, "PostgreSQL: two drivers").
 *
 * Several allotd processes may serve one PostgreSQL database; each keeps
 * state in memory that another node's commit can make stale.  This module
 * holds the few rows and locks they share:
 *   - the policy generation, a number every write to policy_active moves
 *     (store_policy_activate and store_policy_deactivate call
 *     store_cluster_policy_bump in the same transaction), which a node polls
 *     to learn that its cached policy sets may be stale;
 *   - the shared fake clock (allotd --fake-clock) of a shared database;
 *   - the boundary lock, a session advisory lock taken around the
 *     processing of period boundaries, so that two nodes never do that work
 *     at once (the second waits, then finds nothing left to do).
 * The generation and the clock live in the `setting` table (keys
 * "cluster.*"), so no migration is needed.  On SQLite (one process per
 * file) the lock is always free. */
#ifndef ENG_STORE_CLUSTER_H
#define ENG_STORE_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* Whether other processes may write the database while this one runs
 * (PostgreSQL: any number of nodes).  SQLite files are served by one
 * allotd, which holds the pid file's lock. */
bool store_shared(const struct store *s);

/* What a node polls, read in one statement (so in one snapshot). */
struct cluster_state {
    int64_t policy_gen; /* 0 until the first policy change */
    bool clock_set;     /* a shared fake clock is stored */
    int64_t clock_now;  /* its instant (Unix seconds) when clock_set */
};

/* Reads the shared state; 0 or ENG_ESTORE (a damaged row is an error,
 * never a zero). */
ENG_MUST_CHECK int store_cluster_state(struct store *s, struct cluster_state *out,
                                       struct eng_error *err);

/* Moves the policy generation by one, inside the caller's write
 * transaction.  0 or an error. */
ENG_MUST_CHECK int store_cluster_policy_bump(struct store *s, struct eng_error *err);

/* The policy generation as `s` sees it (its snapshot); 0 when never moved. */
ENG_MUST_CHECK int store_cluster_policy_gen(struct store *s, int64_t *gen,
                                            struct eng_error *err);

/* Stores the shared fake clock (in the caller's write transaction).  With
 * only_if_missing, a clock already stored is kept.  0 or an error. */
ENG_MUST_CHECK int store_cluster_clock_put(struct store *s, int64_t now, bool only_if_missing,
                                           struct eng_error *err);

/* One active policy version of any building (strings borrowed for the
 * callback's duration). */
struct cluster_policy_row {
    int64_t building_id;
    const char *kind;
    int64_t version;
    const char *sha256;
};

/* Calls cb for every active policy version, ordered by building and kind.
 * A non-zero return from cb stops and is returned. */
ENG_MUST_CHECK int store_cluster_policies_each(struct store *s,
                                               int (*cb)(void *ud,
                                                         const struct cluster_policy_row *row),
                                               void *ud, struct eng_error *err);

/* The boundary lock: takes it before the caller's transaction begins, so
 * the snapshot that transaction takes sees whatever the previous holder
 * committed.  Waits up to wait_ms (0: one try) for a holder on another
 * node; *got says whether it was taken.  Must be called outside a
 * transaction; release with store_cluster_unlock after the commit or
 * rollback.  On SQLite always taken at once (the one writer of the file is
 * the lock).  0 or a store error. */
ENG_MUST_CHECK int store_cluster_lock(struct store *s, int wait_ms, bool *got,
                                      struct eng_error *err);
/* Releases it (errors are logged: a connection lost meanwhile has already
 * released it on the server). */
void store_cluster_unlock(struct store *s);

#endif

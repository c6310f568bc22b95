/* nodes.c - following the other processes that serve the same database:
 * their policy changes and, with the fake clock, their clock (see
 * engine/README.md, "PostgreSQL: two drivers"; the rows are store/cluster.h's). */
#include "engine.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster.h"

/* Attempts at storing the start clock when several nodes start at once. */
#define CLOCK_JOIN_TRIES_MAX 4

int
engine_clock_join(struct engine *eng, struct eng_error *err)
{
    struct store *s = eng->writer;
    int rc = 0;
    for (int attempt = 1; attempt <= CLOCK_JOIN_TRIES_MAX; attempt++) {
        memset(err, 0, sizeof *err);
        rc = store_tx(s, STORE_BEGIN_IMMEDIATE, err);
        if (rc == 0) {
            rc = store_cluster_clock_put(s, (int64_t)time(NULL), true, err);
        }
        if (rc == 0) {
            rc = store_tx(s, STORE_COMMIT, err);
        }
        if (rc == 0) {
            break;
        }
        bool again = store_retry_advised(s);
        (void)store_tx(s, STORE_ROLLBACK, NULL);
        if (!again) {
            return rc;
        }
    }
    if (rc != 0) {
        return rc;
    }
    struct cluster_state st;
    if (store_cluster_state(s, &st, err) != 0) {
        return err->status;
    }
    if (st.clock_set) {
        atomic_store(&eng->fake_now, st.clock_now);
    }
    return 0;
}

int
engine_clock_refresh(struct engine *eng, struct eng_error *err)
{
    struct store *s = store_pool_acquire(eng->readers, err);
    if (s == NULL) {
        return err->status;
    }
    struct cluster_state st;
    int rc = store_cluster_state(s, &st, err);
    store_pool_release(eng->readers, s);
    if (rc == 0 && st.clock_set) {
        atomic_store(&eng->fake_now, st.clock_now);
    }
    return rc;
}

int
engine_sync(struct engine *eng, struct eng_error *err)
{
    struct store *s = store_pool_acquire(eng->readers, err);
    if (s == NULL) {
        return err->status;
    }
    /* One snapshot: the generation and the versions it counts agree. */
    int rc = store_tx(s, STORE_BEGIN, err);
    struct cluster_state st = {0};
    if (rc == 0) {
        rc = store_cluster_state(s, &st, err);
    }
    if (rc == 0 && st.policy_gen != atomic_load(&eng->policy_gen_seen)) {
        int dropped = 0;
        rc = policy_cache_sync(&eng->policies, s, st.policy_gen, &dropped, err);
        if (rc == 0) {
            atomic_store(&eng->policy_gen_seen, st.policy_gen);
            if (dropped > 0) {
                fprintf(stderr, "allot: policies changed (generation %lld): %d cached "
                                "building policy sets dropped\n",
                        (long long)st.policy_gen, dropped);
            }
        }
    }
    if (rc == 0 && eng->shared && eng->cfg.fake_clock && st.clock_set) {
        atomic_store(&eng->fake_now, st.clock_now);
    }
    (void)store_tx(s, STORE_ROLLBACK, NULL);
    store_pool_release(eng->readers, s);
    return rc;
}

/* entities.h - what a quote or a booking plan reads about the portfolio,
 * kept in memory for as long as the portfolio generation
 * (store/generation.h) does not move.
 *
 * The generation is one row that SQLite (and PostgreSQL) triggers move on
 * every change to the tables the ledger's read side loads: buildings,
 * resources, tenants and their leases, users, allocations with their
 * lines and buildings, active policies.  So what a read snapshot at
 * generation g loaded is what any other snapshot at generation g would
 * load, on this node or any other: a request reads the generation once
 * (one row) and reuses what an earlier request of the same generation
 * loaded.  A newer generation empties the cache; an older one (a snapshot
 * that began before a change) neither uses nor fills it.
 *
 * This module is the container: keys of (kind, five integers), values of
 * an integer, two JSON values and one shared object, each entry tagged
 * with its generation.  What is kept, and the rule that only read-only
 * snapshots use it, is the ledger's (ledger.c, "kept entities").
 *
 * Thread-safe: one read-write lock; values handed out carry their own
 * references (json_incref, entity_obj_retain), so emptying the cache never
 * pulls anything from under a request. */
#ifndef ENG_LEDGER_ENTITIES_H
#define ENG_LEDGER_ENTITIES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

/* Entries kept at most, for the entities and (apart) for the facts derived
 * from them (verdicts, lots, windows: they grow with users x resources);
 * past that the part starts afresh (within the generation).  A user,
 * tenant or resource costs about 1 KiB, an allocation about 3.5 KiB: at
 * most ~30 MiB of entities.  Facts are ~100 bytes each (a verdict is an
 * integer): 32,768 of them hold 1,000 users x 30 resources (the issue's
 * mix) in ~3 MiB, plus the slots (96 bytes each, twice as many as
 * entries: 1.5 MiB for the entities, 6 MiB for the facts, reserved from
 * the start and touched as they fill). */
#define ENTITY_CACHE_ENTRIES_MAX 8192
#define ENTITY_CACHE_FACTS_MAX 32768

enum entity_kind {
    ENTITY_USER = 1,
    ENTITY_TENANT,
    ENTITY_RESOURCE,
    ENTITY_ALLOC,
    ENTITY_ELIG,
    ENTITY_LOT,        /* the lot of (allocation, line, period, owner, kind): n 1 when
                          there is none, else obj (ledger.c) */
    ENTITY_WINDOW,     /* an allocation period's [from, until) */
    ENTITY_TENANT_ALLOCS /* obj: a tenant's allocations with unit and span (ledger.c) */
};

struct entity_key {
    enum entity_kind kind;
    int64_t k[5];
};

/* A shared object with a reference count; `destroy` runs at the last
 * release.  Embedded first in the owner's struct. */
struct entity_obj {
    atomic_int refs;
    void (*destroy)(struct entity_obj *obj);
};
void entity_obj_init(struct entity_obj *obj, void (*destroy)(struct entity_obj *obj));
void entity_obj_retain(struct entity_obj *obj);
void entity_obj_release(struct entity_obj *obj); /* NULL is fine */

struct entity_value {
    int64_t n, n2;
    json_t *json[2];
    struct entity_obj *obj;
};
/* Drops the value's references. */
void entity_value_clear(struct entity_value *v);

struct entity_cache;

/* A new, empty cache, or NULL without memory (then nothing is kept). */
struct entity_cache *entity_cache_open(void);
/* Frees the cache and what only it holds; NULL is fine. */
void entity_cache_close(struct entity_cache *c);

/* The value kept for key at generation gen: true with *out holding new
 * references, or false. */
bool entity_cache_get(struct entity_cache *c, int64_t gen, const struct entity_key *key,
                      struct entity_value *out);
/* Keeps *in for key at generation gen, taking its references (*in is
 * emptied either way).  A generation older than the newest seen is not
 * kept; a newer one empties the cache first. */
void entity_cache_put(struct entity_cache *c, int64_t gen, const struct entity_key *key,
                      struct entity_value *in);

/* Hits, misses and empties since the cache was opened (tests, metrics). */
struct entity_cache_stats {
    long hits, misses, resets;
};
void entity_cache_stats(struct entity_cache *c, struct entity_cache_stats *st);

#endif

/* entities.c - a cache of values keyed by (kind, integers) and tagged with
 * the portfolio generation they were loaded at (see entities.h).
 *
 * Open-addressing tables (linear probing) of twice as many slots as
 * their bound of entries, so never more than half full; each entry serves only its own generation.
 * Lookups take the read lock; filling and emptying the write lock.
 * Entries are never removed one by one (a full table or a newer
 * generation starts afresh), so probing stays short and needs no
 * tombstones. */
#include "entities.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

_Static_assert((ENTITY_CACHE_ENTRIES_MAX & (ENTITY_CACHE_ENTRIES_MAX - 1)) == 0, "a power of two");
_Static_assert((ENTITY_CACHE_FACTS_MAX & (ENTITY_CACHE_FACTS_MAX - 1)) == 0, "a power of two");

struct ent {
    struct entity_key key; /* kind 0: an empty slot */
    int64_t gen;
    struct entity_value v;
};

/* Two tables: the entities themselves, and the facts derived from them
 * (eligibility verdicts, lots, period windows), which grow with
 * users x resources and so fill up first; each starts afresh on its own,
 * so a stream of new (user, resource) pairs never evicts the entities. */
struct table {
    int used;
    int max;     /* entries at most (ENTITY_CACHE_ENTRIES_MAX or _FACTS_MAX) */
    size_t mask; /* slots - 1: 2 * max slots */
    struct ent *slots;
    /* The slots filled, in order (`used` of them): a fresh start clears
     * those alone, however sparse a large table is. */
    uint32_t *filled;
};

struct entity_cache {
    pthread_rwlock_t lock;
    int64_t gen; /* the newest generation kept (entries may be older) */
    struct table t[2];
    atomic_long hits, misses, resets;
};

static struct table *
table_of(struct entity_cache *c, enum entity_kind kind)
{
    return &c->t[kind == ENTITY_ELIG || kind == ENTITY_LOT || kind == ENTITY_WINDOW];
}

void
entity_obj_init(struct entity_obj *obj, void (*destroy)(struct entity_obj *obj))
{
    atomic_init(&obj->refs, 1);
    obj->destroy = destroy;
}

void
entity_obj_retain(struct entity_obj *obj)
{
    atomic_fetch_add_explicit(&obj->refs, 1, memory_order_relaxed);
}

void
entity_obj_release(struct entity_obj *obj)
{
    /* acq_rel: every use by other holders happens before the destroy. */
    if (obj != NULL && atomic_fetch_sub_explicit(&obj->refs, 1, memory_order_acq_rel) == 1) {
        obj->destroy(obj);
    }
}

void
entity_value_clear(struct entity_value *v)
{
    json_decref(v->json[0]);
    json_decref(v->json[1]);
    entity_obj_release(v->obj);
    memset(v, 0, sizeof *v);
}

struct entity_cache *
entity_cache_open(void)
{
    struct entity_cache *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    c->t[0].max = ENTITY_CACHE_ENTRIES_MAX;
    c->t[1].max = ENTITY_CACHE_FACTS_MAX;
    for (int i = 0; i < 2; i++) {
        c->t[i].mask = 2 * (size_t)c->t[i].max - 1;
        c->t[i].slots = calloc(c->t[i].mask + 1, sizeof *c->t[i].slots);
        c->t[i].filled = calloc((size_t)c->t[i].max, sizeof *c->t[i].filled);
    }
    if (c->t[0].slots == NULL || c->t[1].slots == NULL || c->t[0].filled == NULL ||
        c->t[1].filled == NULL || pthread_rwlock_init(&c->lock, NULL) != 0) {
        for (int i = 0; i < 2; i++) {
            free(c->t[i].slots);
            free(c->t[i].filled);
        }
        free(c);
        return NULL;
    }
    return c;
}

/* Empties every slot of a table.  The caller holds the write lock (or
 * the cache alone). */
static void
table_reset(struct entity_cache *c, struct table *t)
{
    for (int k = 0; k < t->used; k++) {
        struct ent *e = &t->slots[t->filled[k]];
        entity_value_clear(&e->v);
        memset(e, 0, sizeof *e);
    }
    t->used = 0;
    atomic_fetch_add_explicit(&c->resets, 1, memory_order_relaxed);
}

void
entity_cache_close(struct entity_cache *c)
{
    if (c == NULL) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        table_reset(c, &c->t[i]);
        free(c->t[i].slots);
        free(c->t[i].filled);
    }
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

void
entity_cache_stats(struct entity_cache *c, struct entity_cache_stats *st)
{
    memset(st, 0, sizeof *st);
    if (c != NULL) {
        st->hits = atomic_load(&c->hits);
        st->misses = atomic_load(&c->misses);
        st->resets = atomic_load(&c->resets);
    }
}

static bool
key_equal(const struct entity_key *a, const struct entity_key *b)
{
    return a->kind == b->kind && memcmp(a->k, b->k, sizeof a->k) == 0;
}

static size_t
key_slot(const struct entity_key *key, size_t mask)
{
    uint64_t h = (uint64_t)key->kind * 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 5; i++) {
        h ^= (uint64_t)key->k[i];
        h *= 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    return (size_t)h & mask;
}

/* The slot holding the key, or the empty slot where it would go.  The
 * caller holds a lock; the table is at most half full. */
static struct ent *
slot_find(struct table *t, const struct entity_key *key)
{
    for (size_t i = key_slot(key, t->mask);; i = (i + 1) & t->mask) {
        struct ent *e = &t->slots[i];
        if (e->key.kind == 0 || key_equal(&e->key, key)) {
            return e;
        }
    }
}

bool
entity_cache_get(struct entity_cache *c, int64_t gen, const struct entity_key *key,
                 struct entity_value *out)
{
    bool hit = false;
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&c->lock);
    const struct ent *e = slot_find(table_of(c, key->kind), key);
    if (e->key.kind != 0 && e->gen == gen) {
        *out = e->v;
        json_incref(out->json[0]);
        json_incref(out->json[1]);
        if (out->obj != NULL) {
            entity_obj_retain(out->obj);
        }
        hit = true;
    }
    pthread_rwlock_unlock(&c->lock);
    atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1, memory_order_relaxed);
    return hit;
}

void
entity_cache_put(struct entity_cache *c, int64_t gen, const struct entity_key *key,
                 struct entity_value *in)
{
    struct table *t = table_of(c, key->kind);
    pthread_rwlock_wrlock(&c->lock);
    if (gen > c->gen) {
        table_reset(c, &c->t[0]);
        table_reset(c, &c->t[1]);
        c->gen = gen;
    }
    if (gen == c->gen && t->used >= t->max) {
        table_reset(c, t);
    }
    if (gen == c->gen) {
        struct ent *e = slot_find(t, key);
        if (e->key.kind == 0) {
            t->filled[t->used++] = (uint32_t)(e - t->slots);
        }
        /* A kept value of the same generation is the same value (another
         * request loaded it meanwhile): either one serves. */
        entity_value_clear(&e->v);
        e->key = *key;
        e->gen = gen;
        e->v = *in;
        memset(in, 0, sizeof *in);
    }
    pthread_rwlock_unlock(&c->lock);
    entity_value_clear(in);
}

/* auth.c - API key authentication (PRODUCT.md §8, security notes §4.1).
 *
 * A key is hashed once and looked up by its hash through a unique index.
 * The stored hash is then compared with the computed one in constant time:
 * the lookup itself only reveals whether some hash matched, which an
 * attacker without a valid key cannot steer, and the final comparison does
 * not leak how many leading characters agreed.
 *
 * Keys already seen are remembered (the cache below) by a SipHash tag of
 * the raw key under a random key of this process, so a known key costs a
 * few hundred instructions instead of its SHA-256 (~15,000) and a lookup;
 * the tags too are compared in constant time. */
#include "auth.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "keys.h"
#include "sha256.h"
#include "siphash.h"

void
engine_auth_thread_done(void)
{
    /* Readers are pooled by the engine now: nothing is per thread. */
}

/* Equal strings of the same length, in time independent of the content. */
static bool
hash_equal(const char *a, const char *b, size_t len)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < len; i++) {
        diff |= (unsigned char)(a[i] ^ b[i]);
    }
    return diff == 0;
}

static int
unauthorized(struct eng_error *err, const char *why)
{
    return eng_error_code(err, ENG_EUNAUTH, "unauthorized", "%s", why);
}

/* Reads the admin building scope stored as a JSON array of "bld_N" ids.
 * A scope that cannot be read refuses the key rather than widening it. */
static int
read_scope(const char *text, struct principal *out, struct eng_error *err)
{
    out->building_count = 0;
    if (text == NULL) {
        return 0;
    }
    json_t *ids = json_loads(text, 0, NULL);
    if (!json_is_array(ids) || json_array_size(ids) > PRINCIPAL_BUILDINGS_MAX) {
        json_decref(ids);
        return unauthorized(err, "this API key has an unreadable building scope");
    }
    size_t i;
    json_t *item;
    json_array_foreach(ids, i, item) {
        int64_t id;
        if (id_parse("bld", json_string_value(item), &id) != 0) {
            json_decref(ids);
            return unauthorized(err, "this API key has an unreadable building scope");
        }
        out->building_ids[out->building_count++] = id;
    }
    json_decref(ids);
    return 0;
}

/* Fills the principal from its key row. */
static int
principal_from_row(const struct key_row *row, struct principal *out, struct eng_error *err)
{
    memset(out, 0, sizeof *out);
    out->key_id = row->id;
    if (role_parse(row->role, &out->role) != 0) {
        return unauthorized(err, "this API key has an unknown role");
    }
    snprintf(out->name, sizeof out->name, "key:%" PRId64, out->key_id);
    if (out->role == ROLE_TENANT_USER) {
        /* The user's own tenant, whatever the key row says. */
        if (row->user_id == 0 || !row->user_exists) {
            return unauthorized(err, "this API key's user no longer exists");
        }
        out->user_id = row->user_id;
        out->tenant_id = row->user_tenant_id;
    } else if (out->role == ROLE_TENANT_ADMIN) {
        if (row->tenant_id == 0) {
            return unauthorized(err, "this API key has no tenant");
        }
        out->tenant_id = row->tenant_id;
        out->user_id = row->user_id; /* 0 when none */
    } else {
        return read_scope(row->has_scope ? row->scope : NULL, out, err);
    }
    return 0;
}

/* ---------- the cache ---------- */

#define AUTH_CACHE_STRIPES 16 /* locks; entry i is guarded by stripe i % 16 */

struct auth_entry {
    bool used;
    uint64_t epoch;      /* the cache epoch when the lookup that filled it began */
    uint64_t filled_ms;  /* monotonic */
    uint64_t tag[2];     /* the key's SipHash under the cache's secret */
    struct principal who;
};

struct auth_cache {
    _Atomic uint64_t epoch; /* bumped after every commit that can change a key */
    uint64_t secret[2];     /* the SipHash key, random, never leaves the process */
    pthread_mutex_t stripe[AUTH_CACHE_STRIPES];
    struct auth_entry entries[AUTH_CACHE_ENTRIES];
};

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The engine's cache, made on first use; NULL when memory is short (then
 * every request goes to the database, which is still correct). */
static struct auth_cache *
cache_of(struct engine *eng)
{
    struct auth_cache *c = atomic_load_explicit(&eng->auth_cache, memory_order_acquire);
    if (c != NULL) {
        return c;
    }
    struct auth_cache *fresh = calloc(1, sizeof *fresh);
    if (fresh == NULL) {
        return NULL;
    }
    if (getrandom(fresh->secret, sizeof fresh->secret, 0) != (ssize_t)sizeof fresh->secret) {
        /* No secret, no cache: tags anyone could compute must not stand
         * for keys. */
        free(fresh);
        return NULL;
    }
    for (int i = 0; i < AUTH_CACHE_STRIPES; i++) {
        pthread_mutex_init(&fresh->stripe[i], NULL);
    }
    if (atomic_compare_exchange_strong_explicit(&eng->auth_cache, &c, fresh,
                                                memory_order_acq_rel, memory_order_acquire)) {
        return fresh;
    }
    /* Another thread made it first: use that one. */
    for (int i = 0; i < AUTH_CACHE_STRIPES; i++) {
        pthread_mutex_destroy(&fresh->stripe[i]);
    }
    memset(fresh->secret, 0, sizeof fresh->secret);
    free(fresh);
    return c;
}

/* The slot of a tag (uniformly distributed). */
static size_t
slot_of(const uint64_t tag[2])
{
    return (size_t)(tag[0] % AUTH_CACHE_ENTRIES);
}

/* Equal tags, in time independent of the content. */
static bool
tag_equal(const uint64_t a[2], const uint64_t b[2])
{
    return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
}

static bool
cache_get(struct auth_cache *c, const uint64_t tag[2], struct principal *out)
{
    size_t i = slot_of(tag);
    struct auth_entry *e = &c->entries[i];
    uint64_t epoch = atomic_load_explicit(&c->epoch, memory_order_acquire);
    bool hit = false;
    pthread_mutex_lock(&c->stripe[i % AUTH_CACHE_STRIPES]);
    if (e->used && e->epoch == epoch && tag_equal(e->tag, tag) &&
        now_ms() - e->filled_ms < AUTH_CACHE_TTL_MS) {
        *out = e->who;
        hit = true;
    }
    pthread_mutex_unlock(&c->stripe[i % AUTH_CACHE_STRIPES]);
    return hit;
}

/* Keeps what a lookup that began at `epoch` found.  A commit since then
 * (the epoch moved) may have changed the key: then nothing is kept. */
static void
cache_put(struct auth_cache *c, const uint64_t tag[2], uint64_t epoch,
          const struct principal *who)
{
    size_t i = slot_of(tag);
    struct auth_entry *e = &c->entries[i];
    pthread_mutex_lock(&c->stripe[i % AUTH_CACHE_STRIPES]);
    if (atomic_load_explicit(&c->epoch, memory_order_acquire) == epoch) {
        e->used = true;
        e->epoch = epoch;
        e->filled_ms = now_ms();
        e->tag[0] = tag[0];
        e->tag[1] = tag[1];
        e->who = *who;
    }
    pthread_mutex_unlock(&c->stripe[i % AUTH_CACHE_STRIPES]);
}

void
engine_auth_note_commit(struct engine *eng, const char *name)
{
    if (strncmp(name, "keys.", 5) != 0 && strncmp(name, "users.", 6) != 0 &&
        strncmp(name, "tenants.", 8) != 0) {
        return;
    }
    struct auth_cache *c = atomic_load_explicit(&eng->auth_cache, memory_order_acquire);
    if (c != NULL) {
        /* Entries carry the epoch they were filled at: one increment makes
         * all of them stale, and a lookup still running when the change
         * committed cannot store its older answer (cache_put). */
        atomic_fetch_add_explicit(&c->epoch, 1, memory_order_acq_rel);
    }
}

void
engine_auth_close(struct engine *eng)
{
    struct auth_cache *c = atomic_exchange(&eng->auth_cache, NULL);
    if (c != NULL) {
        for (int i = 0; i < AUTH_CACHE_STRIPES; i++) {
            pthread_mutex_destroy(&c->stripe[i]);
        }
        /* Principals are not secrets, but the tags need not linger. */
        memset(c->entries, 0, sizeof c->entries);
        memset(c->secret, 0, sizeof c->secret);
        free(c);
    }
}

int
engine_authenticate(struct engine *eng, const char *key, struct principal *out,
                    struct eng_error *err)
{
    size_t len = key != NULL ? strlen(key) : 0;
    if (len == 0) {
        return unauthorized(err, "an API key is required: Authorization: Bearer <key>");
    }
    if (len > AUTH_KEY_BYTES_MAX) {
        return unauthorized(err, "the API key is not valid");
    }
    struct auth_cache *cache = cache_of(eng);
    uint64_t tag[2] = {0, 0};
    if (cache != NULL) {
        siphash24_128(cache->secret, key, len, tag);
        if (cache_get(cache, tag, out)) {
            return 0;
        }
    }
    char hash[65];
    sha256_hex(key, len, hash);
    /* The epoch is read before the lookup starts, so that a change
     * committed during it keeps the answer out of the cache. */
    uint64_t epoch = cache != NULL ? atomic_load_explicit(&cache->epoch, memory_order_acquire) : 0;
    struct store *store = store_pool_acquire(eng->readers, err);
    if (store == NULL) {
        return err->status;
    }
    struct key_row row;
    bool found = false;
    int rc = store_key_by_hash(store, hash, &row, &found, err);
    store_pool_release(eng->readers, store);
    if (rc != 0) {
        return rc;
    }
    if (!found || strlen(row.key_hash) != 64 || !hash_equal(row.key_hash, hash, 64)) {
        return unauthorized(err, "the API key is not valid");
    }
    if (row.revoked) {
        return unauthorized(err, "the API key has been revoked");
    }
    rc = principal_from_row(&row, out, err);
    if (rc == 0 && cache != NULL) {
        cache_put(cache, tag, epoch, out);
    }
    return rc;
}

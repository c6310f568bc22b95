/* auth.c - API key authentication (PRODUCT.md §8, security notes §4.1).
 *
 * A key is hashed once and looked up by its hash through a unique index.
 * The stored hash is then compared with the computed one in constant time:
 * the lookup itself only reveals whether some hash matched, which an
 * attacker without a valid key cannot steer, and the final comparison does
 * not leak how many leading characters agreed. */
#include "auth.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

/* One read-only connection per thread, remembered with the database it was
 * opened on so that a second engine in the same process (tests) never reads
 * another engine's file. */
struct auth_reader {
    char db_path[ENGINE_PATH_MAX];
    struct store store;
};

static pthread_key_t auth_key;
static pthread_once_t auth_once = PTHREAD_ONCE_INIT;

static void
auth_reader_free(void *p)
{
    struct auth_reader *r = p;
    if (r != NULL) {
        store_close(&r->store);
        free(r);
    }
}

static void
auth_key_init(void)
{
    (void)pthread_key_create(&auth_key, auth_reader_free);
}

static struct store *
auth_store(struct engine *eng, struct eng_error *err)
{
    pthread_once(&auth_once, auth_key_init);
    struct auth_reader *r = pthread_getspecific(auth_key);
    if (r != NULL && strcmp(r->db_path, eng->cfg.db_path) == 0) {
        return &r->store;
    }
    auth_reader_free(r);
    pthread_setspecific(auth_key, NULL);
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        eng_error_set(err, ENG_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(r->db_path, sizeof r->db_path, "%s", eng->cfg.db_path);
    if (store_open(&r->store, eng->cfg.db_path, true, eng->cfg.sqlite_busy_timeout_ms, err) !=
        0) {
        free(r);
        return NULL;
    }
    pthread_setspecific(auth_key, r);
    return &r->store;
}

void
engine_auth_thread_done(void)
{
    pthread_once(&auth_once, auth_key_init);
    auth_reader_free(pthread_getspecific(auth_key));
    pthread_setspecific(auth_key, NULL);
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

/* Fills the principal from a row of the lookup below. */
static int
principal_from_row(sqlite3_stmt *st, struct principal *out, struct eng_error *err)
{
    memset(out, 0, sizeof *out);
    out->key_id = sqlite3_column_int64(st, 0);
    if (role_parse((const char *)sqlite3_column_text(st, 1), &out->role) != 0) {
        return unauthorized(err, "this API key has an unknown role");
    }
    snprintf(out->name, sizeof out->name, "key:%" PRId64, out->key_id);
    if (out->role == ROLE_TENANT_USER) {
        /* The user's own tenant, whatever the key row says. */
        if (sqlite3_column_type(st, 3) == SQLITE_NULL ||
            sqlite3_column_type(st, 7) == SQLITE_NULL) {
            return unauthorized(err, "this API key's user no longer exists");
        }
        out->user_id = sqlite3_column_int64(st, 3);
        out->tenant_id = sqlite3_column_int64(st, 7);
    } else if (out->role == ROLE_TENANT_ADMIN) {
        if (sqlite3_column_type(st, 2) == SQLITE_NULL) {
            return unauthorized(err, "this API key has no tenant");
        }
        out->tenant_id = sqlite3_column_int64(st, 2);
        out->user_id = sqlite3_column_int64(st, 3); /* 0 when NULL */
    } else {
        return read_scope((const char *)sqlite3_column_text(st, 4), out, err);
    }
    return 0;
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
    char hash[65];
    sha256_hex(key, len, hash);
    struct store *store = auth_store(eng, err);
    if (store == NULL) {
        return err->status;
    }
    sqlite3_stmt *st = store_prep(store,
                                  "SELECT k.id, k.role, k.tenant_id, k.user_id, k.building_ids,"
                                  " k.key_hash, k.revoked_at, u.tenant_id FROM api_key k"
                                  " LEFT JOIN user u ON u.id = k.user_id WHERE k.key_hash = ?",
                                  err);
    if (st == NULL) {
        return err->status;
    }
    sqlite3_bind_text(st, 1, hash, 64, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc;
    if (step == SQLITE_ROW) {
        const char *stored = (const char *)sqlite3_column_text(st, 5);
        if (stored == NULL || strlen(stored) != 64 || !hash_equal(stored, hash, 64)) {
            rc = unauthorized(err, "the API key is not valid");
        } else if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
            rc = unauthorized(err, "the API key has been revoked");
        } else {
            rc = principal_from_row(st, out, err);
        }
    } else if (step == SQLITE_DONE) {
        rc = unauthorized(err, "the API key is not valid");
    } else {
        rc = store_fail(store, "api key lookup", err);
    }
    /* Reset at once: a statement left stepping would hold a read snapshot. */
    sqlite3_reset(st);
    return rc;
}

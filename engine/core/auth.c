/* auth.c - API key authentication (PRODUCT.md §8, security notes §4.1).
 *
 * A key is hashed once and looked up by its hash through a unique index.
 * The stored hash is then compared with the computed one in constant time:
 * the lookup itself only reveals whether some hash matched, which an
 * attacker without a valid key cannot steer, and the final comparison does
 * not leak how many leading characters agreed. */
#include "auth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "sha256.h"

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
    return principal_from_row(&row, out, err);
}

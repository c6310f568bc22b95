/* keys.h - API keys (stored as the SHA-256 of the key only). */
#ifndef ENG_STORE_KEYS_H
#define ENG_STORE_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

#define KEY_SCOPE_TEXT_MAX 2048

struct key_row {
    int64_t id;
    char role[24];
    int64_t tenant_id;      /* 0 when none */
    int64_t user_id;        /* 0 when none */
    bool user_exists;       /* the key's user row is there */
    int64_t user_tenant_id; /* that user's tenant */
    bool has_scope;
    char scope[KEY_SCOPE_TEXT_MAX]; /* JSON array of "bld_N", when has_scope */
    char key_hash[65];
    bool revoked;
};

/* The key whose hash is `hash` (64 hex digits): *found false when none. */
ENG_MUST_CHECK int store_key_by_hash(struct store *s, const char *hash, struct key_row *out,
                                     bool *found, struct eng_error *err);

/* The name key `id` was given (at most 60 bytes; the role when none was
 * given) into buf: *found false when there is no such key. */
ENG_MUST_CHECK int store_key_name(struct store *s, int64_t id, char *buf, size_t len,
                                  bool *found, struct eng_error *err);

/* A new key as stored (the key itself never is, only its hash). */
struct key_new {
    const char *name, *role;
    int64_t tenant_id, user_id; /* 0 stores NULL */
    const char *building_ids;   /* JSON array of "bld_N" ids, or NULL */
    const char *key_hash;       /* 64 hex digits */
    int64_t created_at;
};

/* Inserts k; *id is the new key's id. */
ENG_MUST_CHECK int store_key_insert(struct store *s, const struct key_new *k, int64_t *id,
                                    struct eng_error *err);

/* Marks key `id` revoked at `now` (a key already revoked keeps its first
 * instant); *found false when there is no such key. */
ENG_MUST_CHECK int store_key_revoke(struct store *s, int64_t id, int64_t now, bool *found,
                                    struct eng_error *err);

#endif

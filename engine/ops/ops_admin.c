/* ops_admin.c - API keys, the calling principal, the test clock. */
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "ops.h"
#include "portfolio.h"
#include "verify.h"
#include "sha256.h"
#include "timeutil.h"

/* 32 random bytes from the kernel, hex encoded, behind a readable prefix. */
static int
random_key(struct op *op, char key[80])
{
    unsigned char raw[32];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, raw, sizeof raw) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n != (ssize_t)sizeof raw) {
        return eng_error_set(op->err, ENG_ESTORE, "no randomness available for a key");
    }
    strcpy(key, "allot_");
    for (size_t i = 0; i < sizeof raw; i++) {
        snprintf(key + 6 + 2 * i, 3, "%02x", raw[i]);
    }
    return 0;
}

/* What a replay of keys.create answers (PRODUCT.md §8: "idempotent
 * replays of a key creation do not repeat the key"): the first response
 * without the key. */
static json_t *
key_replay(int64_t id, const char *role)
{
    return json_pack("{s:o, s:s, s:n, s:s}", "id", id_json("key", id), "role", role, "key",
                     "message", "the key is shown only once, in the first response");
}

static int
op_key_create(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"role", "user_id", "tenant_id", "building_ids", "name",
                                       NULL};
    const char *role_s, *name;
    enum role role;
    int64_t uid, tid;
    json_t *bids = NULL;
    if (op_require_super(op) || args_only(op, args, keys) ||
        args_string(op, args, "role", true, 20, &role_s) ||
        args_string(op, args, "name", false, 60, &name) ||
        args_id(op, args, "user_id", "usr", false, &uid) ||
        args_id(op, args, "tenant_id", "ten", false, &tid) ||
        args_string_array(op, args, "building_ids", 32, &bids)) {
        return op->err->status;
    }
    int rc = 0;
    if (name != NULL && !utf8_valid(name, strlen(name))) {
        rc = op_invalid(op, "name", "'name' is not valid UTF-8");
    }
    if (rc == 0 && role_parse(role_s, &role) != 0) {
        rc = op_invalid(op, "role", "'role' must be super_admin, manager, viewer, tenant_admin"
                                    " or tenant_user");
    }
    if (rc == 0 && uid != 0) {
        struct user_row u;
        bool found = false;
        rc = store_user_get(op->store, uid, &u, &found, op->err);
        store_user_clear(&u);
        if (rc == 0 && !found) {
            rc = op_invalid(op, "user_id", "unknown user");
        } else if (rc == 0 && tid != 0 && tid != u.tenant_id) {
            rc = op_invalid(op, "tenant_id", "the user belongs to another tenant");
        }
        if (rc == 0) {
            tid = u.tenant_id;
        }
    }
    if (rc == 0 && role_is_admin(role) && (uid != 0 || tid != 0)) {
        rc = op_invalid(op, uid != 0 ? "user_id" : "tenant_id",
                        "'tenant_id' and 'user_id' apply to tenant roles only");
    }
    /* PRODUCT.md §8: only a manager or viewer key is limited to buildings.
     * A super_admin limited so would still mint keys and revoke others
     * (the key routes are the whole portfolio's): refused. */
    if (rc == 0 && role != ROLE_MANAGER && role != ROLE_VIEWER && json_array_size(bids) > 0) {
        rc = op_invalid(op, "building_ids", "'building_ids' limits manager and viewer keys only");
    }
    /* An empty list would read as no limit at all (the whole portfolio):
     * a key meant for no building yet must not fail open. */
    json_t *given = json_object_get(args, "building_ids");
    if (rc == 0 && json_is_array(given) && json_array_size(given) == 0) {
        rc = op_invalid(op, "building_ids",
                        "'building_ids' must name at least one building (leave it out for a "
                        "key over the whole portfolio)");
    }
    size_t bi;
    json_t *bv;
    json_array_foreach(bids, bi, bv) {
        int64_t bid;
        bool found = false;
        if (rc != 0) {
            break;
        }
        if (id_parse("bld", json_string_value(bv), &bid) != 0) {
            rc = op_invalid(op, "building_ids", "unknown building '%.*s'",
                            text_quote_len(json_string_value(bv), 40),
                            json_string_value(bv));
        } else if ((rc = store_exists(op->store, STORE_BUILDING, bid, &found, op->err)) ==
                       0 &&
                   !found) {
            rc = op_invalid(op, "building_ids", "unknown building '%.*s'",
                            text_quote_len(json_string_value(bv), 40),
                            json_string_value(bv));
        }
    }
    if (rc == 0 && role == ROLE_TENANT_USER && uid == 0) {
        rc = op_invalid(op, "user_id", "a tenant_user key needs 'user_id'");
    }
    if (rc == 0 && role == ROLE_TENANT_ADMIN && tid == 0) {
        rc = op_invalid(op, "tenant_id", "a tenant_admin key needs 'tenant_id'");
    }
    if (rc == 0 && tid != 0) {
        bool found = false;
        rc = store_exists(op->store, STORE_TENANT, tid, &found, op->err);
        if (rc == 0 && !found) {
            rc = op_invalid(op, "tenant_id", "unknown tenant");
        }
    }
    char key[80], hash[65];
    if (rc == 0) {
        rc = random_key(op, key);
    }
    int64_t id = 0;
    if (rc == 0) {
        char *btext = json_to_text(bids);
        sha256_hex(key, strlen(key), hash);
        struct key_new k = {
            .name = name ? name : role_s,
            .role = role_s,
            .tenant_id = role_is_admin(role) ? 0 : tid,
            .user_id = role_is_admin(role) ? 0 : uid,
            .building_ids = btext,
            .key_hash = hash,
            .created_at = op->now,
        };
        rc = btext != NULL ? store_key_insert(op->store, &k, &id, op->err)
                           : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
        free(btext);
    }
    json_decref(bids);
    if (rc != 0) {
        return rc;
    }
    *out = json_pack("{s:o, s:s, s:s}", "id", id_json("key", id), "role", role_s, "key", key);
    op->idem_response = key_replay(id, role_s);
    memset(key, 0, sizeof key);
    if (*out == NULL || op->idem_response == NULL) {
        json_decref(*out);
        *out = NULL;
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    op->created = true;
    return 0;
}

/* Revokes a key (super_admin): from the next request on it is refused
 * (auth.c drops its cache after the commit).  Revoking a revoked key again
 * answers the same. */
static int
op_key_revoke(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {"id", NULL};
    int64_t id;
    if (op_require_super(op) || args_only(op, args, keys) ||
        args_id(op, args, "id", "key", true, &id)) {
        return op->err->status;
    }
    bool found = false;
    int rc = store_key_revoke(op->store, id, op->now, &found, op->err);
    if (rc != 0) {
        return rc;
    }
    if (!found) {
        return op_not_found(op, "key");
    }
    *out = json_pack("{s:o, s:b}", "id", id_json("key", id), "revoked", 1);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

static int
op_me(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {NULL};
    if (args_only(op, args, keys) != 0) {
        return op->err->status;
    }
    const struct principal *p = op->who;
    /* The name the key was given (POST /v1/keys "name"), not the actor
     * label "key:<id>" that entries record. */
    char name[128];
    bool found = false;
    snprintf(name, sizeof name, "%s", p->name);
    if (p->key_id != 0) {
        int rc = store_key_name(op->store, p->key_id, name, sizeof name, &found, op->err);
        if (rc != 0) {
            return rc;
        }
        if (!found) {
            snprintf(name, sizeof name, "%s", p->name);
        }
    }
    json_t *bids = json_array();
    for (int i = 0; bids != NULL && i < p->building_count; i++) {
        if (json_array_append_new(bids, id_json("bld", p->building_ids[i])) != 0) {
            json_decref(bids);
            bids = NULL;
        }
    }
    if (bids == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    *out = json_pack("{s:o, s:o, s:s, s:s, s:o, s:o, s:o}", "now", json_time(op->now), "id",
                     p->key_id ? id_json("key", p->key_id) : json_null(), "name", name, "role",
                     role_name(p->role), "tenant_id",
                     p->tenant_id ? id_json("ten", p->tenant_id) : json_null(), "user_id",
                     p->user_id ? id_json("usr", p->user_id) : json_null(), "building_ids", bids);
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

/* Problems listed in one verify answer; the rest are counted, never
 * dropped silently ("problems_omitted"). */
#define VERIFY_PROBLEMS_MAX 1000

struct problems {
    json_t *list;
    int64_t omitted;
    bool oom;
};

static int
add_problem(void *ud, int check, const char *what, const char *problem)
{
    (void)check;
    struct problems *p = ud;
    if (json_array_size(p->list) >= VERIFY_PROBLEMS_MAX) {
        p->omitted++;
        return 0;
    }
    if (json_array_append_new(p->list, json_sprintf("%s: %s", what, problem)) != 0) {
        p->oom = true;
        return ENG_ENOMEM;
    }
    return 0;
}

static int
op_verify(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {NULL};
    if (args_only(op, args, keys) || op_require_admin(op)) {
        return op->err->status;
    }
    struct problems p = {.list = json_array()};
    if (p.list == NULL) {
        return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
    }
    int rc = store_verify(op->store, add_problem, &p, NULL, op->err);
    if (rc != 0) {
        json_decref(p.list);
        return p.oom ? eng_error_set(op->err, ENG_ENOMEM, "out of memory") : op->err->status;
    }
    bool ok = json_array_size(p.list) == 0;
    if (p.omitted > 0) {
        *out = json_pack("{s:b, s:o, s:I}", "ok", ok, "problems", p.list, "problems_omitted",
                         (json_int_t)p.omitted);
    } else {
        *out = json_pack("{s:b, s:o}", "ok", ok, "problems", p.list);
    }
    return *out != NULL ? 0 : eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

const struct op_def ops_admin[] = {
    {"keys.create", op_key_create, true},
    {"keys.revoke", op_key_revoke, true},
    {"me", op_me, false},
    {"verify", op_verify, false},
    {NULL, NULL, false},
};

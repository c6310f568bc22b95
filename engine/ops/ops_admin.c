/* ops_admin.c - API keys, the calling principal, the test clock. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"
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
    if (role_parse(role_s, &role) != 0) {
        rc = op_invalid(op, "role", "'role' must be super_admin, manager, viewer, tenant_admin"
                                    " or tenant_user");
    }
    if (rc == 0 && uid != 0) {
        int src;
        int64_t utid = sql_scalar_int(op, "SELECT tenant_id FROM user WHERE id = ?", uid, 0, &src);
        if (utid == 0) {
            rc = op_invalid(op, "user_id", "unknown user");
        } else if (tid != 0 && tid != utid) {
            rc = op_invalid(op, "tenant_id", "the user belongs to another tenant");
        }
        tid = utid;
    }
    if (rc == 0 && role_is_admin(role) && (uid != 0 || tid != 0)) {
        rc = op_invalid(op, uid != 0 ? "user_id" : "tenant_id",
                        "'tenant_id' and 'user_id' apply to tenant roles only");
    }
    if (rc == 0 && !role_is_admin(role) && json_array_size(bids) > 0) {
        rc = op_invalid(op, "building_ids", "'building_ids' limits admin roles only");
    }
    size_t bi;
    json_t *bv;
    json_array_foreach(bids, bi, bv) {
        int64_t bid;
        int brc;
        if (rc == 0 && (id_parse("bld", json_string_value(bv), &bid) != 0 ||
                        sql_scalar_int(op, "SELECT count(*) FROM building WHERE id = ?", bid, 0,
                                       &brc) == 0)) {
            rc = op_invalid(op, "building_ids", "unknown building '%.40s'",
                            json_string_value(bv));
        }
    }
    if (rc == 0 && role == ROLE_TENANT_USER && uid == 0) {
        rc = op_invalid(op, "user_id", "a tenant_user key needs 'user_id'");
    }
    if (rc == 0 && role == ROLE_TENANT_ADMIN && tid == 0) {
        rc = op_invalid(op, "tenant_id", "a tenant_admin key needs 'tenant_id'");
    }
    int src;
    if (rc == 0 && tid != 0 &&
        sql_scalar_int(op, "SELECT count(*) FROM tenant WHERE id = ?", tid, 0, &src) == 0) {
        rc = op_invalid(op, "tenant_id", "unknown tenant");
    }
    char key[80], hash[65];
    if (rc == 0) {
        rc = random_key(op, key);
    }
    sqlite3_stmt *st = rc == 0 ? store_prep(op->store,
                                            "INSERT INTO api_key (name, role, tenant_id, user_id,"
                                            " building_ids, key_hash, created_at)"
                                            " VALUES (?,?,?,?,?,?,?)",
                                            op->err)
                               : NULL;
    if (st != NULL) {
        sha256_hex(key, strlen(key), hash);
        char *btext = json_to_text(bids);
        sqlite3_bind_text(st, 1, name ? name : role_s, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, role_s, -1, SQLITE_STATIC);
        if (tid != 0 && !role_is_admin(role)) {
            sqlite3_bind_int64(st, 3, tid);
        }
        if (uid != 0 && !role_is_admin(role)) {
            sqlite3_bind_int64(st, 4, uid);
        }
        sqlite3_bind_text(st, 5, btext, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, op->now);
        free(btext);
        rc = sql_step_done(op, st, "key insert");
    } else if (rc == 0) {
        rc = ENG_ESTORE;
    }
    json_decref(bids);
    if (rc != 0) {
        return rc;
    }
    op->created = true;
    *out = json_pack("{s:o, s:s, s:s}", "id", id_json("key", sqlite3_last_insert_rowid(op->store->db)),
                     "role", role_s, "key", key);
    return 0;
}

static int
op_me(struct op *op, json_t *args, json_t **out)
{
    static const char *const keys[] = {NULL};
    if (args_only(op, args, keys) != 0) {
        return op->err->status;
    }
    const struct principal *p = op->who;
    json_t *bids = json_array();
    for (int i = 0; i < p->building_count; i++) {
        json_array_append_new(bids, id_json("bld", p->building_ids[i]));
    }
    *out = json_pack("{s:o, s:o, s:s, s:s, s:o, s:o, s:o}", "now", json_time(op->now), "id",
                     p->key_id ? id_json("key", p->key_id) : json_null(), "name", p->name, "role",
                     role_name(p->role), "tenant_id",
                     p->tenant_id ? id_json("ten", p->tenant_id) : json_null(), "user_id",
                     p->user_id ? id_json("usr", p->user_id) : json_null(), "building_ids", bids);
    return 0;
}

static int
add_problem(void *ud, int check, const char *what, const char *problem)
{
    (void)check;
    json_t *problems = ud;
    if (json_array_size(problems) < 1000) {
        json_array_append_new(problems, json_sprintf("%s: %s", what, problem));
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
    json_t *problems = json_array();
    if (store_verify(op->store, add_problem, problems, NULL, op->err) != 0) {
        json_decref(problems);
        return op->err->status;
    }
    *out = json_pack("{s:b, s:o}", "ok", json_array_size(problems) == 0, "problems", problems);
    return 0;
}

const struct op_def ops_admin[] = {
    {"keys.create", op_key_create, true},
    {"me", op_me, false},
    {"verify", op_verify, false},
    {NULL, NULL, false},
};

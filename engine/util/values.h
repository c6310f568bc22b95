/* values.h - the small values every layer shares: roles, principals, ids and
 * the JSON helpers for times and stored JSON text.
 *
 * This is the bottom layer with error.h, amount.h and timeutil.h: it knows
 * nothing of storage, policies or operations. */
#ifndef ENG_VALUES_H
#define ENG_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define PRINCIPAL_BUILDINGS_MAX 32

enum role {
    ROLE_SUPER_ADMIN = 0,
    ROLE_MANAGER,
    ROLE_VIEWER,
    ROLE_TENANT_ADMIN,
    ROLE_TENANT_USER,
    ROLE_COUNT
};

/* Who is asking.  Admin roles may be limited to some buildings
 * (building_count > 0); tenant roles are bound to a tenant (and a user). */
struct principal {
    enum role role;
    int64_t key_id;    /* 0 for the console / Lua module */
    int64_t tenant_id; /* tenant roles */
    int64_t user_id;   /* tenant_user (optional for tenant_admin) */
    int building_count;
    int64_t building_ids[PRINCIPAL_BUILDINGS_MAX];
    char name[64];     /* for audit columns: "key:3", "console" */
};

/* Role names. */
const char *role_name(enum role role);
int role_parse(const char *s, enum role *out);
bool role_is_admin(enum role role);

/* Id rendering: "bld_12" etc.  Parsing checks the prefix; returns 0 or
 * ENG_ENOTFOUND for a malformed id (so a bad id is a 404 like an unknown
 * one). */
json_t *id_json(const char *prefix, int64_t id);
void id_format(const char *prefix, int64_t id, char *buf, size_t len);
int id_parse(const char *prefix, const char *s, int64_t *out);

/* An instant as RFC 3339 text, or JSON null for TIME_NEVER. */
json_t *json_time(int64_t t);
/* Parses stored JSON text; never NULL (JSON null when it does not parse). */
json_t *json_from_text(const char *text);
/* Compact JSON text; the caller frees it.  NULL only when out of memory. */
char *json_to_text(const json_t *v);

/* True when the n bytes at s are valid UTF-8 without NUL bytes. */
bool utf8_valid(const char *s, size_t n);

#endif

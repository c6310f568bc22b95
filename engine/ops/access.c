/* access.c - who may see and do what (PRODUCT.md §8).
 *
 * Objects outside the principal's scope are reported as not found, never as
 * forbidden, so ids cannot be probed.  Forbidden (403) is for an action the
 * role may never take, whatever the object. */
#include <string.h>

#include "allocations.h"
#include "bookings.h"
#include "entries.h"
#include "lots.h"
#include "ops.h"
#include "portfolio.h"

bool
op_is_admin(const struct op *op)
{
    return role_is_admin(op->who->role);
}

bool
op_can_assign(const struct op *op)
{
    return op->who->role == ROLE_SUPER_ADMIN || op->who->role == ROLE_MANAGER;
}

bool
op_sees_building(const struct op *op, int64_t building_id)
{
    const struct principal *p = op->who;
    /* Only admin keys carry a building scope; tenant principals are scoped
     * by their tenant and user (op_check_reaches). */
    if (!role_is_admin(p->role) || p->building_count == 0) {
        return true;
    }
    for (int i = 0; i < p->building_count; i++) {
        if (p->building_ids[i] == building_id) {
            return true;
        }
    }
    return false;
}

/* What an object belongs to (PRODUCT.md §8): a tenant, maybe one of its
 * users, and its buildings: those of an allocation (for an allocation, its
 * lots and their entries) or a single one (a booking's resource's, a
 * resource's own, a building itself).  A tenant and its users belong to the
 * tenant as a whole (whole_tenant): a scoped admin key reaches them through
 * any building the tenant leases inside its scope. */
struct owners {
    int64_t tenant_id;     /* 0: none (a building, a resource) */
    int64_t user_id;       /* 0: the whole tenant */
    int64_t allocation_id; /* buildings of this allocation, or else: */
    int64_t building_id;
    bool whole_tenant;     /* a tenant or a user: by its leases */
};

/* The tenant's and user's forms of the one decision (op_check_reaches
 * below) when the caller already holds the owners. */
static int decide(const struct op *op, const struct owners *o, bool *reaches);

int
op_check_sees_tenant(const struct op *op, int64_t tenant_id, bool *sees)
{
    struct owners o = {.tenant_id = tenant_id, .whole_tenant = true};
    return decide(op, &o, sees);
}

int
op_check_sees_user(const struct op *op, int64_t tenant_id, int64_t user_id, bool *sees)
{
    struct owners o = {.tenant_id = tenant_id, .user_id = user_id, .whole_tenant = true};
    return decide(op, &o, sees);
}

int
op_require_admin(struct op *op)
{
    return op_is_admin(op) ? 0 : op_forbidden(op, "do this");
}

int
op_require_assigner(struct op *op)
{
    return op_can_assign(op) ? 0 : op_forbidden(op, "change credits or the portfolio");
}

int
op_require_super(struct op *op)
{
    return op->who->role == ROLE_SUPER_ADMIN ? 0 : op_forbidden(op, "do this (super_admin only)");
}

int
op_check_tenant_leases(const struct op *op, int64_t tenant_id, int64_t building_id,
                       bool *leases)
{
    return store_tenant_leases(op->store, tenant_id, building_id, leases, op->err);
}

bool
op_tenant_leases(struct op *op, int64_t tenant_id, int64_t building_id)
{
    bool leases = false;
    return op_check_tenant_leases(op, tenant_id, building_id, &leases) == 0 && leases;
}

/* ---------- scope of an object through its owners ---------- */

/* Fills o from the object; *found false when there is no such object. */
static int
owners_resolve(struct op *op, enum op_object kind, int64_t id, struct owners *o, bool *found)
{
    memset(o, 0, sizeof *o);
    *found = false;
    int rc = 0;
    if (kind == OP_OBJ_ENTRY) {
        rc = store_entry_lot(op->store, id, &id, found, op->err);
        if (rc != 0 || !*found) {
            return rc;
        }
        kind = OP_OBJ_LOT;
    }
    switch (kind) {
    case OP_OBJ_ENTRY: /* resolved to its lot above */
    case OP_OBJ_LOT: {
        struct lot_row l;
        rc = store_lot_get(op->store, id, &l, found, op->err);
        if (rc == 0 && *found) {
            o->tenant_id = l.tenant_id;
            o->user_id = l.user_id;
            o->allocation_id = l.allocation_id;
        }
        return rc;
    }
    case OP_OBJ_ALLOCATION:
        o->allocation_id = id;
        return store_allocation_tenant(op->store, id, &o->tenant_id, found, op->err);
    case OP_OBJ_BOOKING: {
        struct booking_row b;
        rc = store_booking_get(op->store, id, &b, found, op->err);
        if (rc == 0 && *found) {
            o->tenant_id = b.tenant_id;
            o->user_id = b.user_id;
            o->building_id = b.building_id;
        }
        store_booking_clear(&b);
        return rc;
    }
    case OP_OBJ_RESOURCE: {
        struct resource_row r;
        rc = store_resource_get(op->store, id, &r, found, op->err);
        if (rc == 0 && *found) {
            o->building_id = r.building_id;
        }
        store_resource_clear(&r);
        return rc;
    }
    case OP_OBJ_BUILDING:
        o->building_id = id;
        return store_exists(op->store, STORE_BUILDING, id, found, op->err);
    case OP_OBJ_TENANT:
        o->tenant_id = id;
        o->whole_tenant = true;
        return store_exists(op->store, STORE_TENANT, id, found, op->err);
    case OP_OBJ_USER: {
        struct user_row u;
        rc = store_user_get(op->store, id, &u, found, op->err);
        if (rc == 0 && *found) {
            o->tenant_id = u.tenant_id;
            o->user_id = id;
            o->whole_tenant = true;
            store_user_clear(&u);
        }
        return rc;
    }
    }
    return eng_error_set(op->err, ENG_EINVAL, "unknown object kind");
}

struct scope_walk {
    const struct op *op;
    bool any, outside, inside;
};

/* Stops at the first building outside the key's scope. */
static int
building_in_scope(void *ud, int64_t building_id)
{
    struct scope_walk *w = ud;
    w->any = true;
    if (!op_sees_building(w->op, building_id)) {
        w->outside = true;
        return 1;
    }
    return 0;
}

/* Stops at the first leased building inside the key's scope. */
static int
lease_in_scope(void *ud, int64_t building_id)
{
    struct scope_walk *w = ud;
    if (op_sees_building(w->op, building_id)) {
        w->inside = true;
        return 1;
    }
    return 0;
}

/* Whether an allocation's targeting names the calling tenant user (the
 * default eligibility policy's rule: all; users listing it; roles it
 * holds at least one of).  A tenant user reaches only the allocations
 * meant for it, their lots and entries: a grant targeted at colleagues is
 * theirs (PRODUCT.md §8, "its own balance").  A building's own
 * eligibility policy may admit more people when a booking pays, and the
 * wallet follows that policy; this is who may read the grant. */
static int
targets_user(const struct op *op, int64_t allocation_id, bool *admits)
{
    *admits = false;
    struct allocation_row a;
    bool found = false;
    if (store_allocation_get(op->store, allocation_id, &a, &found, op->err) != 0) {
        return op->err->status;
    }
    const char *type = found ? json_string_value(json_object_get(a.targeting, "type")) : NULL;
    int rc = 0;
    size_t i;
    json_t *v;
    if (type != NULL && strcmp(type, "all") == 0) {
        *admits = true;
    } else if (type != NULL && strcmp(type, "users") == 0) {
        json_array_foreach(json_object_get(a.targeting, "user_ids"), i, v) {
            int64_t uid = 0;
            if (json_is_string(v) && id_parse("usr", json_string_value(v), &uid) == 0 &&
                uid == op->who->user_id) {
                *admits = true;
                break;
            }
        }
    } else if (type != NULL && strcmp(type, "roles") == 0) {
        struct user_row u;
        bool known = false;
        rc = store_user_get(op->store, op->who->user_id, &u, &known, op->err);
        json_array_foreach(json_object_get(a.targeting, "roles"), i, v) {
            size_t k;
            json_t *r;
            json_array_foreach(known ? u.roles : NULL, k, r) {
                *admits = *admits || json_equal(r, v);
            }
            if (*admits) {
                break;
            }
        }
        store_user_clear(&u); /* store_user_get cleared it first: safe either way */
    }
    store_allocation_clear(&a);
    return rc;
}

/* PRODUCT.md §8, the one decision, from an object's owners. */
static int
decide(const struct op *op, const struct owners *o, bool *reaches)
{
    *reaches = false;
    const struct principal *p = op->who;
    if (!role_is_admin(p->role)) {
        /* A tenant principal: its tenant's objects (a tenant user's, those
         * of the whole tenant or its own); a building or resource the
         * tenant leases. */
        if (p->role == ROLE_TENANT_USER && o->user_id != 0 && o->user_id != p->user_id) {
            return 0;
        }
        if (o->tenant_id == 0) {
            return op_check_tenant_leases(op, p->tenant_id, o->building_id, reaches);
        }
        if (o->tenant_id != p->tenant_id) {
            return 0;
        }
        if (p->role == ROLE_TENANT_USER && o->allocation_id != 0) {
            return targets_user(op, o->allocation_id, reaches);
        }
        *reaches = true;
        return 0;
    }
    if (p->building_count == 0) {
        *reaches = true; /* super_admin, or an admin key without a building scope */
        return 0;
    }
    struct scope_walk w = {op, false, false, false};
    int rc;
    if (o->whole_tenant) {
        /* A tenant (or its user) leasing any building inside the scope. */
        rc = store_tenant_buildings_each(op->store, o->tenant_id, lease_in_scope, &w, op->err);
        *reaches = rc >= 0 && w.inside;
        return rc < 0 ? rc : 0;
    }
    if (o->allocation_id == 0) {
        *reaches = op_sees_building(op, o->building_id);
        return 0;
    }
    /* Every building of the allocation inside the scope (and at least one). */
    rc = store_allocation_buildings_each(op->store, o->allocation_id, building_in_scope, &w,
                                         op->err);
    if (rc < 0) {
        return rc;
    }
    *reaches = w.any && !w.outside;
    return 0;
}

int
op_check_reaches(struct op *op, enum op_object kind, int64_t id, bool *reaches)
{
    *reaches = false;
    struct owners o;
    bool found = false;
    if (owners_resolve(op, kind, id, &o, &found) != 0) {
        return op->err->status;
    }
    return found ? decide(op, &o, reaches) : 0;
}

bool
op_reaches_all(const struct op *op)
{
    return role_is_admin(op->who->role) && op->who->building_count == 0;
}

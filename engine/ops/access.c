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
     * by their tenant and user (op_sees_tenant, op_sees_user). */
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

/* Stops at the first leased building inside the scope. */
static int
lease_in_scope(void *ud, int64_t building_id)
{
    return op_sees_building(ud, building_id) ? 1 : 0;
}

int
op_check_sees_tenant(const struct op *op, int64_t tenant_id, bool *sees)
{
    const struct principal *p = op->who;
    *sees = false;
    if (!op_is_admin(op)) {
        *sees = p->tenant_id == tenant_id;
        return 0;
    }
    if (p->building_count == 0) {
        *sees = true;
        return 0;
    }
    /* An admin limited to some buildings sees the tenants leasing space in
     * one of them. */
    int rc = store_tenant_buildings_each(op->store, tenant_id, lease_in_scope, (void *)op,
                                         op->err);
    if (rc < 0) {
        return rc;
    }
    *sees = rc == 1;
    return 0;
}

bool
op_sees_tenant(const struct op *op, int64_t tenant_id)
{
    bool sees = false;
    return op_check_sees_tenant(op, tenant_id, &sees) == 0 && sees;
}

int
op_check_sees_user(const struct op *op, int64_t tenant_id, int64_t user_id, bool *sees)
{
    switch (op->who->role) {
    case ROLE_TENANT_ADMIN:
        *sees = op->who->tenant_id == tenant_id;
        return 0;
    case ROLE_TENANT_USER:
        *sees = op->who->user_id == user_id;
        return 0;
    default:
        return op_check_sees_tenant(op, tenant_id, sees);
    }
}

bool
op_sees_user(const struct op *op, int64_t tenant_id, int64_t user_id)
{
    bool sees = false;
    return op_check_sees_user(op, tenant_id, user_id, &sees) == 0 && sees;
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

/* What an object belongs to (PRODUCT.md §8): a tenant, maybe one of its
 * users, and its buildings: those of an allocation (for an allocation, its
 * lots and their entries) or a single one (a booking's resource's, a
 * resource's own). */
struct owners {
    int64_t tenant_id;     /* 0: none (a resource) */
    int64_t user_id;       /* 0: the whole tenant */
    int64_t allocation_id; /* buildings of this allocation, or else: */
    int64_t building_id;
};

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
    }
    return eng_error_set(op->err, ENG_EINVAL, "unknown object kind");
}

struct scope_walk {
    const struct op *op;
    bool any, outside;
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

int
op_check_reaches(struct op *op, enum op_object kind, int64_t id, bool *reaches)
{
    *reaches = false;
    struct owners o;
    bool found = false;
    if (owners_resolve(op, kind, id, &o, &found) != 0) {
        return op->err->status;
    }
    if (!found) {
        return 0;
    }
    const struct principal *p = op->who;
    if (!role_is_admin(p->role)) {
        /* A tenant principal: its tenant's objects (a tenant user's, those
         * of the whole tenant or its own); a resource in a building the
         * tenant leases. */
        if (p->role == ROLE_TENANT_USER && o.user_id != 0 && o.user_id != p->user_id) {
            return 0;
        }
        if (o.tenant_id == 0) {
            return op_check_tenant_leases(op, p->tenant_id, o.building_id, reaches);
        }
        *reaches = o.tenant_id == p->tenant_id;
        return 0;
    }
    if (p->building_count == 0) {
        *reaches = true; /* super_admin, or an admin key without a building scope */
        return 0;
    }
    if (o.allocation_id == 0) {
        *reaches = op_sees_building(op, o.building_id);
        return 0;
    }
    /* Every building of the allocation inside the scope (and at least one). */
    struct scope_walk w = {op, false, false};
    int rc = store_allocation_buildings_each(op->store, o.allocation_id, building_in_scope, &w,
                                             op->err);
    if (rc < 0) {
        return rc;
    }
    *reaches = w.any && !w.outside;
    return 0;
}

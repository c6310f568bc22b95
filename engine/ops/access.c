/* access.c - who may see and do what (PRODUCT.md §8).
 *
 * Objects outside the principal's scope are reported as not found, never as
 * forbidden, so ids cannot be probed.  Forbidden (403) is for an action the
 * role may never take, whatever the object. */
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

/* access.c - who may see and do what (PRODUCT.md §8).
 *
 * Objects outside the principal's scope are reported as not found, never as
 * forbidden, so ids cannot be probed.  Forbidden (403) is for an action the
 * role may never take, whatever the object. */
#include "ops.h"

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

bool
op_sees_tenant(const struct op *op, int64_t tenant_id)
{
    const struct principal *p = op->who;
    if (!op_is_admin(op)) {
        return p->tenant_id == tenant_id;
    }
    if (p->building_count == 0) {
        return true;
    }
    /* An admin limited to some buildings sees the tenants leasing space in
     * one of them. */
    sqlite3_stmt *st = store_prep(op->store,
                                  "SELECT building_id FROM tenant_building WHERE tenant_id = ?",
                                  NULL);
    if (st == NULL) {
        return false;
    }
    sqlite3_bind_int64(st, 1, tenant_id);
    bool seen = false;
    while (!seen && sqlite3_step(st) == SQLITE_ROW) {
        seen = op_sees_building(op, sqlite3_column_int64(st, 0));
    }
    sqlite3_reset(st);
    return seen;
}

bool
op_sees_user(const struct op *op, int64_t tenant_id, int64_t user_id)
{
    switch (op->who->role) {
    case ROLE_TENANT_ADMIN:
        return op->who->tenant_id == tenant_id;
    case ROLE_TENANT_USER:
        return op->who->user_id == user_id;
    default:
        return op_sees_tenant(op, tenant_id);
    }
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

bool
op_tenant_leases(struct op *op, int64_t tenant_id, int64_t building_id)
{
    sqlite3_stmt *st = store_prep(op->store,
                                  "SELECT 1 FROM tenant_building WHERE tenant_id = ? AND"
                                  " building_id = ?",
                                  op->err);
    if (st == NULL) {
        return false;
    }
    sqlite3_bind_int64(st, 1, tenant_id);
    sqlite3_bind_int64(st, 2, building_id);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return found;
}

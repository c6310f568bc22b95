-- policies/default/eligibility.lua - the default targeting / eligibility policy.
--
-- eligible(ctx) -> true | false
--
-- May this user's booking of ctx.resource be paid from ctx.line of
-- ctx.allocation?  Without ctx.resource: does the allocation target this
-- user at all (tenant and targeting only)?
--
--   1. tenant: user.tenant_id == allocation.tenant_id;
--   2. targeting: "all"; "users" (user listed in user_ids); "roles" (user
--      holds at least one listed role); anything else admits nobody;
--   3. with a resource, the line's scope covers it: "all"; "resources"
--      (resource id listed); "tags" (resource has at least one listed tag);
--   4. with a resource, the building is covered: resource.building_id is one
--      of allocation.building_ids, or the tenant and the allocation both
--      allow cross-building booking and it is one of tenant.building_ids.
-- Missing lists count as empty; an unknown value fails closed (false).

local M = {}

local function contains(values, wanted)
    if type(values) ~= "table" or wanted == nil then
        return false
    end
    for _, v in ipairs(values) do
        if v == wanted then
            return true
        end
    end
    return false
end

local function intersects(a, b)
    if type(a) ~= "table" then
        return false
    end
    for _, v in ipairs(a) do
        if contains(b, v) then
            return true
        end
    end
    return false
end

local function targeted(user, allocation)
    local targeting = allocation.targeting
    if type(targeting) ~= "table" then
        return false
    end
    if targeting.type == "all" then
        return true
    elseif targeting.type == "users" then
        return contains(targeting.user_ids, user.id)
    elseif targeting.type == "roles" then
        return intersects(user.roles, targeting.roles)
    end
    return false
end

local function in_scope(line, resource)
    if type(line) ~= "table" then
        return false
    end
    if line.scope == "all" then
        return true
    elseif line.scope == "resources" then
        return contains(line.resource_ids, resource.id)
    elseif line.scope == "tags" then
        return intersects(resource.tags, line.tags)
    end
    return false
end

local function building_covered(tenant, allocation, resource)
    local building = resource.building_id
    if contains(allocation.building_ids, building) then
        return true
    end
    return type(tenant) == "table"
        and tenant.cross_building == true
        and allocation.cross_building == true
        and contains(tenant.building_ids, building)
end

function M.eligible(ctx)
    local user, allocation = ctx.user, ctx.allocation
    if type(user) ~= "table" or type(allocation) ~= "table" then
        return false
    end
    if user.tenant_id == nil or user.tenant_id ~= allocation.tenant_id then
        return false
    end
    if not targeted(user, allocation) then
        return false
    end
    local resource = ctx.resource
    if resource == nil then
        return true
    end
    if type(resource) ~= "table" then
        return false
    end
    return in_scope(ctx.line, resource)
        and building_covered(ctx.tenant, allocation, resource)
end

-- Self-checks run by the engine at load time.
local function sample(over)
    local ctx = {
        user = { id = "u1", tenant_id = "t1", roles = { "resource_reservation_reserver" } },
        tenant = { id = "t1", building_ids = { "b1", "b2" }, cross_building = true },
        allocation = {
            id = "a1", tenant_id = "t1", building_ids = { "b1" }, cross_building = false,
            targeting = { type = "all" }, pool = "shared",
        },
        line = { scope = "all" },
        resource = { id = "r1", building_id = "b1", tags = { "meeting" } },
    }
    for k, v in pairs(over) do
        ctx[k] = v
    end
    if over.resource == false then -- no resource: "is this user targeted?"
        ctx.resource = nil
    end
    return ctx
end

M.examples = {
    -- All users of the tenant, all resources, the allocation's own building.
    { ctx = sample({}), expect = true },
    -- Another tenant's user is never eligible.
    { ctx = sample({ user = { id = "u9", tenant_id = "t2", roles = {} } }), expect = false },
    -- Targeted by role; the line covers the roof deck by tag.
    { ctx = sample({
          allocation = { id = "a2", tenant_id = "t1", building_ids = { "b1" },
                         cross_building = false, pool = "per_user",
                         targeting = { type = "roles",
                                       roles = { "resource_reservation_reserver" } } },
          line = { scope = "tags", tags = { "roof" } },
          resource = { id = "r5", building_id = "b1", tags = { "outdoor", "roof" } } }),
      expect = true },
    -- A resource in b2: the allocation covers only b1 and is not cross-building.
    { ctx = sample({ resource = { id = "r2", building_id = "b2", tags = {} } }), expect = false },
    -- Without a resource only tenant and targeting count.
    { ctx = sample({ resource = false,
                     allocation = { id = "a3", tenant_id = "t1", building_ids = { "b9" },
                                    cross_building = false, pool = "shared",
                                    targeting = { type = "users", user_ids = { "u1" } } } }),
      expect = true },
}

return M

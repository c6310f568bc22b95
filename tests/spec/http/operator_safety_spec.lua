-- Validation and safety an operator relies on (issue 13): past bookings and
-- backdating (PRODUCT.md §8), why credits cannot pay in a quote, whether a
-- quoted slot is taken, refund previews, editing allocations, archived
-- resources, and cross-building allocations refused for tenants without
-- cross-building booking.  The clock starts at 2026-01-01T00:00:00Z.
local H = require "http_env"

describe("operator safety", function()
  local env, w, as = nil, nil, {}

  setup(function()
    env = H.start()
    w = env:world()
    as.manager = env:as(env:new_key("manager"))
    as.viewer = env:as(env:new_key("viewer"))
    as.tenant_admin = env:as(env:new_key("tenant_admin", { tenant_id = w.tenant.id }))
    as.tenant_user = env:as(env:new_key("tenant_user", { user_id = w.user.id }))
  end)
  teardown(function() if env then env:stop() end end)

  local function body(start, stop, extra)
    local b = { resource_id = w.room.id, user_id = w.user.id, start = start, ["end"] = stop,
                payment_method = "card" }
    for k, v in pairs(extra or {}) do b[k] = v end
    return b
  end

  local function quote(client, start, stop, who)
    return (client or env):must(200, "POST", "/v1/quotes", {
      resource_id = (who and who.room or w.room).id, user_id = (who and who.user or w.user).id,
      start = start, ["end"] = stop })
  end

  local function count_bookings()
    return #env:must(200, "GET", "/v1/bookings?limit=500&resource_id=" .. w.room.id).data
  end

  describe("bookings in the past", function()
    setup(function() env:clock("2026-02-10T12:00:00Z") end)
    teardown(function() env:clock("2026-02-10T12:00:01Z") end)

    it("are refused with 400 'start is in the past' for every role without backdate", function()
      for _, c in ipairs { env, as.manager, as.tenant_admin, as.tenant_user } do
        local before = count_bookings()
        local status, res = c:post("/v1/bookings", body("2026-02-09T09:00:00Z",
                                                         "2026-02-09T10:00:00Z"))
        assert.equal(400, status, H.encode(res))
        assert.equal("invalid_request", res.error.code)
        assert.equal("start", res.error.details.field)
        assert.truthy(res.error.message:find("start is in the past", 1, true), res.error.message)
        assert.equal(before, count_bookings())
      end
      -- A meeting already under way has started in the past too.
      local status = as.tenant_user:post("/v1/bookings", body("2026-02-10T11:30:00Z",
                                                               "2026-02-10T13:00:00Z"))
      assert.equal(400, status)
    end)

    it("are booked by a super_admin or manager sending backdate: true", function()
      local b = env:must(201, "POST", "/v1/bookings", body("2026-02-02T09:00:00Z",
        "2026-02-02T10:00:00Z", { backdate = true }))
      assert.equal("confirmed", b.status)
      b = as.manager:must(201, "POST", "/v1/bookings", body("2026-02-03T09:00:00Z",
        "2026-02-03T10:00:00Z", { backdate = true }))
      assert.equal("confirmed", b.status)
    end)

    it("refuses backdate from tenants with 403, and from a viewer", function()
      for _, c in ipairs { as.tenant_admin, as.tenant_user, as.viewer } do
        local before = count_bookings()
        local status, res = c:post("/v1/bookings", body("2026-02-04T09:00:00Z",
          "2026-02-04T10:00:00Z", { backdate = true }))
        assert.equal(403, status, H.encode(res))
        assert.equal("forbidden", res.error.code)
        -- Even for a future start: the flag itself is an operator's.
        status = c:post("/v1/bookings", body("2026-03-04T09:00:00Z", "2026-03-04T10:00:00Z",
                                             { backdate = true }))
        assert.equal(403, status)
        assert.equal(before, count_bookings())
      end
    end)

    it("refuses a backdate that is not a boolean", function()
      local status, res = env:post("/v1/bookings", body("2026-02-05T09:00:00Z",
        "2026-02-05T10:00:00Z", { backdate = "yes" }))
      assert.equal(400, status)
      assert.equal("backdate", res.error.details.field)
    end)

    it("books a future start as before, backdate or not", function()
      env:must(201, "POST", "/v1/bookings", body("2026-02-11T09:00:00Z", "2026-02-11T10:00:00Z"))
      env:must(201, "POST", "/v1/bookings", body("2026-02-12T09:00:00Z", "2026-02-12T10:00:00Z",
                                                 { backdate = true }))
    end)

    it("quotes a past slot and says so (slot.in_past)", function()
      local q = quote(as.tenant_user, "2026-02-09T14:00:00Z", "2026-02-09T15:00:00Z")
      assert.is_true(q.slot.in_past)
      q = quote(as.tenant_user, "2026-02-20T14:00:00Z", "2026-02-20T15:00:00Z")
      assert.is_false(q.slot.in_past)
    end)
  end)

  describe("cross_building on an allocation", function()
    it("is refused for a tenant without cross-building booking, nothing created", function()
      local before = #env:must(200, "GET", "/v1/allocations?tenant_id=" .. w.tenant.id).data
      local status, res = env:post("/v1/allocations", {
        tenant_id = w.tenant.id, building_ids = { w.building.id }, cross_building = true,
        unit = "hour", lines = { { scope = "all", amount = 5 } },
        schedule = { start = "2026-01-01" } })
      assert.equal(400, status, H.encode(res))
      assert.equal("invalid_request", res.error.code)
      assert.equal("cross_building", res.error.details.field)
      assert.truthy(res.error.message:find("cross-building booking", 1, true))
      assert.equal(before, #env:must(200, "GET", "/v1/allocations?tenant_id=" .. w.tenant.id).data)
    end)

    it("is accepted once the tenant has cross-building booking", function()
      local x = env:world({ tenant_name = "Cross", building_name = "X" })
      env:must(200, "PATCH", "/v1/tenants/" .. x.tenant.id, { cross_building = true })
      local a = env:grant(x, 5, { start = "2026-01-01" }, { cross_building = true })
      assert.is_true(a.cross_building)
    end)
  end)

  describe("a quote says why credits cannot pay", function()
    local x
    setup(function()
      x = env:world({ tenant_name = "Reasons", building_name = "R" })
    end)

    it("no credits at all", function()
      local q = quote(env, "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", x)
      assert.equal(H.null, q.credits)
      assert.equal("no_credits", q.credits_unavailable_reason.code)
      assert.truthy(q.credits_unavailable_reason.message:find("no hours", 1, true))
    end)

    it("no lot valid at the meeting's time, with the validity in figures", function()
      env:grant(x, 4, { start = "2026-02-01", ["end"] = "2026-02-28" })
      local q = quote(env, "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", x)
      assert.equal(H.null, q.credits)
      local r = q.credits_unavailable_reason
      assert.equal("no_lot_at_time", r.code, H.encode(r))
      assert.truthy(r.message:find("2026-03-02", 1, true), r.message)
      assert.truthy(r.message:find("end on 2026-02-28", 1, true), r.message)
      -- Inside the validity the same user can pay.
      q = quote(env, "2026-02-16T09:00:00Z", "2026-02-16T10:00:00Z", x)
      assert.equal(H.null, q.credits_unavailable_reason)
      assert.same({ "credits", "invoice", "card" }, q.payment_methods)
    end)

    it("not enough, with the price and the balance", function()
      local q = quote(env, "2026-02-16T09:00:00Z", "2026-02-16T14:00:00Z", x)
      local r = q.credits_unavailable_reason
      assert.equal("insufficient_balance", r.code)
      assert.equal(5, r.details.needed)
      assert.equal(4, r.details.available)
      assert.truthy(r.message:find("costs 5 hours", 1, true), r.message)
      assert.truthy(r.message:find("4 hours of yours can pay", 1, true), r.message)
    end)

    it("credits for other spaces only", function()
      local other = env:room(x.building, { room_name = "Other" })
      local y = env:world({ tenant_name = "Scoped", building_name = "S" })
      local other_y = env:room(y.building, { room_name = "Deck" })
      env:must(201, "POST", "/v1/allocations", {
        tenant_id = y.tenant.id, building_ids = { y.building.id }, unit = "hour",
        lines = { { scope = "resources", resource_ids = { other_y.id }, amount = 3 } },
        schedule = { start = "2026-01-01" } })
      local q = quote(env, "2026-02-16T09:00:00Z", "2026-02-16T10:00:00Z", y)
      assert.equal("not_eligible", q.credits_unavailable_reason.code, H.encode(q))
      assert.truthy(other)
    end)

    it("the building does not take credits", function()
      local z = env:world({ tenant_name = "NoCredits", building_name = "N",
                            payment = { credits = false, invoice = true, card = true } })
      local q = quote(env, "2026-02-16T09:00:00Z", "2026-02-16T10:00:00Z", z)
      assert.equal("credits_not_accepted", q.credits_unavailable_reason.code)
    end)

    it("the space has no credit price", function()
      local plain = env:room(x.building, { room_name = "Plain",
                                           pricing = { money = { per_hour = 1000 } } })
      local q = env:must(200, "POST", "/v1/quotes", {
        resource_id = plain.id, user_id = x.user.id, start = "2026-02-16T09:00:00Z",
        ["end"] = "2026-02-16T10:00:00Z" })
      assert.equal("not_priced_in_credits", q.credits_unavailable_reason.code)
    end)
  end)

  describe("a quote says whether the slot is taken", function()
    local x, mine
    setup(function()
      x = env:world({ tenant_name = "Slots", building_name = "SL" })
      mine = env:must(201, "POST", "/v1/bookings", {
        resource_id = x.room.id, user_id = x.user.id, start = "2026-04-01T09:00:00Z",
        ["end"] = "2026-04-01T10:00:00Z", payment_method = "card" })
    end)

    it("free", function()
      local q = quote(env, "2026-04-01T10:00:00Z", "2026-04-01T11:00:00Z", x)
      assert.is_true(q.slot.available)
      assert.equal(0, q.slot.conflict_count)
    end)

    it("taken, with the times of the booking in the way", function()
      local q = quote(env, "2026-04-01T09:30:00Z", "2026-04-01T10:30:00Z", x)
      assert.is_false(q.slot.available)
      assert.equal(1, q.slot.conflict_count)
      assert.equal("2026-04-01T09:00:00Z", q.slot.conflicts[1].start)
      assert.equal("2026-04-01T10:00:00Z", q.slot.conflicts[1]["end"])
      assert.equal(mine.id, q.slot.conflicts[1].booking_id)
    end)

    it("never shows another tenant's booking id", function()
      local t = env:must(201, "POST", "/v1/tenants", { name = "Neighbour",
        building_ids = { w.building.id }, cross_building = false })
      local u = env:must(201, "POST", "/v1/users", { tenant_id = t.id, name = "Nia",
        email = "nia@example.com", roles = H.array() })
      local theirs = env:must(201, "POST", "/v1/bookings", {
        resource_id = w.room.id, user_id = u.id, start = "2026-05-04T09:00:00Z",
        ["end"] = "2026-05-04T10:00:00Z", payment_method = "card" })
      local q = quote(as.tenant_user, "2026-05-04T09:00:00Z", "2026-05-04T09:30:00Z")
      assert.is_false(q.slot.available)
      assert.equal("2026-05-04T09:00:00Z", q.slot.conflicts[1].start)
      assert.is_nil(q.slot.conflicts[1].booking_id)
      -- The operator sees which booking it is.
      q = quote(env, "2026-05-04T09:00:00Z", "2026-05-04T09:30:00Z")
      assert.equal(theirs.id, q.slot.conflicts[1].booking_id)
    end)
  end)
  describe("archived resources", function()
    local x, old
    setup(function()
      x = env:world({ tenant_name = "Archive", building_name = "AR" })
      env:grant(x, 10, { start = "2026-01-01" })
      old = env:must(201, "POST", "/v1/bookings", {
        resource_id = x.room.id, user_id = x.user.id, start = "2026-06-01T09:00:00Z",
        ["end"] = "2026-06-01T10:00:00Z", payment_method = "credits" })
    end)

    local function listed(query)
      local ids = {}
      for _, r in ipairs(env:must(200, "GET", "/v1/resources?limit=500&building_id="
                                  .. x.building.id .. (query or "")).data) do
        ids[r.id] = r
      end
      return ids
    end

    it("are archived with PATCH, closed to quotes and bookings, history kept", function()
      local r = env:must(200, "PATCH", "/v1/resources/" .. x.room.id, { archived = true })
      assert.is_true(r.archived)
      assert.is_string(r.archived_at)
      for _, path in ipairs { "/v1/quotes", "/v1/bookings" } do
        local status, res = env:post(path, {
          resource_id = x.room.id, user_id = x.user.id, start = "2026-06-02T09:00:00Z",
          ["end"] = "2026-06-02T10:00:00Z", payment_method = path == "/v1/bookings" and "card" or nil })
        assert.equal(409, status, path .. ": " .. H.encode(res))
        assert.equal("resource_archived", res.error.code)
      end
      -- History: the booking is still there, and can still be cancelled.
      local b = env:must(200, "GET", "/v1/bookings/" .. old.id)
      assert.equal("confirmed", b.status)
      assert.equal(r.id, env:must(200, "GET", "/v1/resources/" .. x.room.id).id)
    end)

    it("are hidden from lists unless archived=true", function()
      assert.is_nil(listed()[x.room.id])
      assert.is_nil(listed("&archived=false")[x.room.id])
      assert.is_truthy(listed("&archived=true")[x.room.id])
      local status, res = env:get("/v1/resources?archived=maybe")
      assert.equal(400, status)
      assert.equal("archived", res.error.details.field)
    end)

    it("are restored with archived: false", function()
      local r = env:must(200, "PATCH", "/v1/resources/" .. x.room.id, { archived = false })
      assert.is_false(r.archived)
      assert.equal(H.null, r.archived_at)
      assert.is_truthy(listed()[x.room.id])
      env:must(200, "POST", "/v1/quotes", { resource_id = x.room.id, user_id = x.user.id,
        start = "2026-06-02T09:00:00Z", ["end"] = "2026-06-02T10:00:00Z" })
    end)

    it("DELETE archives (and a cancel of an old booking still refunds)", function()
      local r = env:must(200, "DELETE", "/v1/resources/" .. x.room.id)
      assert.is_true(r.archived)
      local c = env:must(200, "POST", "/v1/bookings/" .. old.id .. "/cancel", {})
      assert.equal(1, c.refund.credits)
      -- Only operators who may change resources archive them.
      local status = as.viewer:delete("/v1/resources/" .. x.room.id)
      assert.equal(403, status)
      status = as.tenant_admin:delete("/v1/resources/" .. w.room.id)
      assert.equal(403, status)
    end)

    it("cannot be created archived, and archived_at is read-only", function()
      local status, res = env:post("/v1/resources", { building_id = x.building.id, name = "N",
        kind = "room", tags = H.array(), credit_only = false, archived = true,
        pricing = { money = { per_hour = 100 } } })
      assert.equal(400, status, H.encode(res))
      status, res = env:patch("/v1/resources/" .. x.room.id, { archived_at = "2026-01-01T00:00:00Z" })
      assert.equal(400, status)
      assert.equal("archived_at", res.error.details.field)
      status, res = env:patch("/v1/resources/" .. x.room.id, { archived = "yes" })
      assert.equal(400, status)
      assert.equal("archived", res.error.details.field)
    end)
  end)
  describe("PATCH /v1/allocations/{id}", function()
    local p, a
    setup(function()
      p = env:world({ tenant_name = "Patched", building_name = "PA" })
      a = env:grant(p, 10, { start = "2026-01-01", recurrence = "monthly" })
    end)

    local function lots_by_from(alloc)
      local by = {}
      for _, l in ipairs(env:must(200, "GET", "/v1/allocations/" .. alloc.id).lots) do
        by[l.valid_from] = l
      end
      return by
    end

    it("changes the description at once and amounts from the next period", function()
      local r = env:must(200, "PATCH", "/v1/allocations/" .. a.id, {
        description = "Meeting hours (reduced)", lines = { { scope = "all", amount = 6 } } })
      assert.equal("Meeting hours (reduced)", r.description)
      assert.equal(6, r.lines[1].amount)
      assert.equal(1, #r.versions)
      assert.equal(1, r.versions[1].version)
      -- Next period: March in Paris.
      assert.equal("2026-02-28T23:00:00Z", r.versions[1].effective_at)
      assert.equal(6, r.versions[1].changes.lines[1].amount)
      -- February has begun: it keeps its 10.
      assert.equal(10, lots_by_from(a)["2026-01-31T23:00:00Z"].granted)
      env:clock("2026-03-02T00:00:00Z")
      assert.equal(6, lots_by_from(a)["2026-02-28T23:00:00Z"].granted)
    end)

    it("adjusts a lot created early for a booking ahead, or refuses with 409", function()
      env:must(201, "POST", "/v1/bookings", { resource_id = p.room.id, user_id = p.user.id,
        start = "2026-04-14T09:00:00Z", ["end"] = "2026-04-14T11:00:00Z",
        payment_method = "credits" })
      local april = lots_by_from(a)["2026-03-31T22:00:00Z"]
      assert.equal(6, april.granted)
      assert.equal(4, april.balance)
      local status, res = env:patch("/v1/allocations/" .. a.id,
                                    { lines = { { scope = "all", amount = 1 } } })
      assert.equal(409, status, H.encode(res))
      assert.equal("credits_in_use", res.error.code)
      local now = env:must(200, "GET", "/v1/allocations/" .. a.id)
      assert.equal(6, now.lines[1].amount)
      assert.equal(1, #now.versions)
      local r = env:must(200, "PATCH", "/v1/allocations/" .. a.id,
                         { lines = { { scope = "all", amount = 3 } } })
      assert.equal(2, #r.versions)
      assert.equal(1, lots_by_from(a)["2026-03-31T22:00:00Z"].balance)
      -- March has begun: untouched.
      assert.equal(6, lots_by_from(a)["2026-02-28T23:00:00Z"].balance)
      -- Edits add up from where the last one left the lot (not from its
      -- first grant): 3 -> 5 -> 2 -> 7 leaves April holding the amount of
      -- the day, less its 2 booked hours; raising it never fails.
      for _, amount in ipairs({ 5, 2, 7 }) do
        env:must(200, "PATCH", "/v1/allocations/" .. a.id,
                 { lines = { { scope = "all", amount = amount } } })
        assert.equal(amount - 2, lots_by_from(a)["2026-03-31T22:00:00Z"].balance)
      end
    end)

    it("POST .../end brings an end forward only; an ended allocation stays ended", function()
      -- Ended in January (the clock is in March by now): no end pushed back
      -- may reopen its weeks and rewrite months already reported.
      local gone = env:grant(p, 2, { start = "2026-01-05", ["end"] = "2026-01-18",
                                     recurrence = "weekly" })
      local status, res = env:post("/v1/allocations/" .. gone.id .. "/end",
                                   { ["end"] = "2026-12-31" })
      assert.equal(409, status, H.encode(res))
      assert.equal("allocation_ended", res.error.code)
      local still = env:must(200, "GET", "/v1/allocations/" .. gone.id)
      assert.equal("2026-01-18", still.schedule["end"])
      assert.equal(2, #still.lots)
      -- Active with an end: brought forward yes, pushed back no.
      local b = env:grant(p, 2, { start = "2026-01-01", ["end"] = "2026-10-31",
                                  recurrence = "monthly" })
      status, res = env:post("/v1/allocations/" .. b.id .. "/end", { ["end"] = "2026-11-30" })
      assert.equal(400, status, H.encode(res))
      assert.equal("end", res.error.details.field)
      local r = env:must(200, "POST", "/v1/allocations/" .. b.id .. "/end",
                         { ["end"] = "2026-09-30" })
      assert.equal("2026-09-30", r.schedule["end"])
      -- Kept in its history, as a PATCH of the end would be.
      assert.equal(1, #r.versions)
      assert.equal("2026-09-30", r.versions[1].changes.schedule["end"])
      -- A PATCH that changes nothing adds no version.
      r = env:must(200, "PATCH", "/v1/allocations/" .. b.id, {
        lines = { { scope = "all", amount = 2 } }, schedule = { ["end"] = "2026-09-30" } })
      assert.equal(1, #r.versions)
      r = env:must(200, "PATCH", "/v1/allocations/" .. b.id,
                   { lines = { { scope = "all", amount = 3 } } })
      assert.equal(2, #r.versions)
    end)

    it("sets or brings the end forward, never back", function()
      local r = env:must(200, "PATCH", "/v1/allocations/" .. a.id,
                         { schedule = { ["end"] = "2026-05-31" } })
      assert.equal("2026-05-31", r.schedule["end"])
      local status, res = env:patch("/v1/allocations/" .. a.id,
                                    { schedule = { ["end"] = "2026-06-30" } })
      assert.equal(400, status)
      assert.equal("schedule.end", res.error.details.field)
      status = env:patch("/v1/allocations/" .. a.id, { schedule = { ["end"] = H.null } })
      assert.equal(400, status)
      r = env:must(200, "PATCH", "/v1/allocations/" .. a.id,
                   { schedule = { ["end"] = "2026-04-30" } })
      assert.equal("2026-04-30", r.schedule["end"])
    end)

    it("changes rollover from the next period end", function()
      local r = env:must(200, "PATCH", "/v1/allocations/" .. a.id,
                         { schedule = { rollover = { enabled = true, cap = 2 } } })
      assert.is_true(r.schedule.rollover.enabled)
      assert.equal(2, r.schedule.rollover.cap)
    end)

    it("refuses what it cannot change, with the field named", function()
      for field, patch in pairs {
        targeting = { targeting = { type = "all" } },
        pool = { pool = "per_user" },
        effective = { description = "x", effective = "2026-06-01" },
        schedule = { schedule = { recurrence = "weekly" } },
        lines = { lines = { { scope = "tags", tags = { "x" }, amount = 1 } } },
        [""] = {},
      } do
        local status, res = env:patch("/v1/allocations/" .. a.id, patch)
        assert.equal(400, status, field .. ": " .. H.encode(res))
        assert.equal(field, res.error.details.field or "", field)
      end
    end)

    it("checks who may edit, and scope", function()
      local other = env:world({ tenant_name = "Far", building_name = "FA" })
      local scoped = env:as(env:new_key("manager", { building_ids = { other.building.id } }))
      local status = scoped:patch("/v1/allocations/" .. a.id, { description = "no" })
      assert.equal(404, status)
      for _, c in ipairs { as.viewer, as.tenant_admin, as.tenant_user } do
        status = c:patch("/v1/allocations/" .. a.id, { description = "no" })
        assert.equal(403, status)
      end
      local r = as.manager:must(200, "PATCH", "/v1/allocations/" .. a.id, { description = "ok" })
      assert.equal("ok", r.description)
    end)

    it("refuses new amounts for a once allocation that has begun, and any change once ended",
       function()
      local once = env:grant(p, 5, { start = "2026-01-01" })
      local status, res = env:patch("/v1/allocations/" .. once.id,
                                    { lines = { { scope = "all", amount = 7 } } })
      assert.equal(409, status)
      assert.equal("allocation_started", res.error.code)
      local gone = env:grant(p, 5, { start = "2026-01-01", ["end"] = "2026-01-31" })
      status, res = env:patch("/v1/allocations/" .. gone.id, { description = "late" })
      assert.equal(409, status)
      assert.equal("allocation_ended", res.error.code)
    end)
  end)

  -- Last: it moves the clock to August.
  describe("refund preview", function()
    local x, b1, b2, key
    setup(function()
      x = env:world({ tenant_name = "Refunds", building_name = "RF" })
      env:grant(x, 2, { start = "2026-02-01", ["end"] = "2026-07-31" })
      env:grant(x, 5, { start = "2026-02-01" })
      key = env:as(env:new_key("tenant_user", { user_id = x.user.id }))
      b1 = key:must(201, "POST", "/v1/bookings", {
        resource_id = x.room.id, start = "2026-07-20T09:00:00Z", ["end"] = "2026-07-20T10:00:00Z",
        payment_method = "credits" })
      b2 = key:must(201, "POST", "/v1/bookings", {
        resource_id = x.room.id, start = "2026-07-21T09:00:00Z", ["end"] = "2026-07-21T11:00:00Z",
        payment_method = "credits" })
    end)

    local function ledger_size()
      return #env:must(200, "GET", "/v1/entries?limit=500&tenant_id=" .. x.tenant.id).data
    end

    it("tells what a cancel now would give back, per lot, changing nothing", function()
      local entries, avail = ledger_size(), env:available(x.user)
      local p = key:must(200, "GET", "/v1/bookings/" .. b2.id .. "/refund")
      assert.equal(b2.id, p.booking_id)
      assert.equal(2, p.paid)
      assert.equal(2, p.refund.credits)
      assert.equal("hour", p.unit)
      -- b1 took 1 of the 2 ending in July (earliest expiry); b2 paid 1 there, 1 from the
      -- other; given back last paid first.
      assert.equal(2, #p.lots)
      local sum = 0
      for _, l in ipairs(p.lots) do sum = sum + l.amount; assert.is_false(l.expires_again) end
      assert.equal(2, sum)
      assert.equal(entries, ledger_size())
      assert.equal(avail, env:available(x.user))
      assert.equal("confirmed", env:must(200, "GET", "/v1/bookings/" .. b2.id).status)
    end)

    it("follows the refund policy of who asks and when, and matches the cancel", function()
      env:clock("2026-07-20T04:00:00Z") -- 5 hours before b1: half back for a tenant
      local p = key:must(200, "GET", "/v1/bookings/" .. b1.id .. "/refund")
      assert.equal(0.5, p.refund.credits)
      assert.equal(1, env:must(200, "GET", "/v1/bookings/" .. b1.id .. "/refund").refund.credits)
      local c = key:must(200, "POST", "/v1/bookings/" .. b1.id .. "/cancel", {})
      assert.equal(p.refund.credits, c.refund.credits)
      local status, res = key:get("/v1/bookings/" .. b1.id .. "/refund")
      assert.equal(409, status)
      assert.equal("already_cancelled", res.error.code)
    end)

    it("says when credits go back to a lot that has expired", function()
      env:clock("2026-08-02T00:00:00Z")
      local p = env:must(200, "GET", "/v1/bookings/" .. b2.id .. "/refund")
      assert.equal(2, p.refund.credits)
      local again = 0
      for _, l in ipairs(p.lots) do if l.expires_again then again = again + l.amount end end
      assert.equal(1, again)
      local c = env:must(200, "POST", "/v1/bookings/" .. b2.id .. "/cancel", {})
      assert.equal(2, c.refund.credits)
    end)

    it("is refused to a viewer and hidden from other tenants", function()
      local status = as.viewer:get("/v1/bookings/" .. b2.id .. "/refund")
      assert.equal(403, status)
      status = as.tenant_user:get("/v1/bookings/" .. b2.id .. "/refund")
      assert.equal(404, status)
    end)
  end)
end)

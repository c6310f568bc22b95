-- The worked examples of policies/README.md, uploaded as building
-- overrides and exercised through real quotes, bookings and cancellations.
local F = require "fixture"

local function example(name)
  local dir = (os.getenv("ALLOT_SOURCE_DIR") or ".") .. "/policies/examples/"
  local f = assert(io.open(dir .. name .. ".lua"))
  local text = f:read("a")
  f:close()
  return text
end

describe("the worked policy examples", function()
  local db, w, room
  before_each(function()
    db = F.open("2026-03-01T00:00:00Z")
    w = F.world(db, { timezone = "UTC" })
    room = F.room(db, w.building)
    F.grant(db, w, 100, { start = "2026-03-01", recurrence = "monthly" })
  end)
  after_each(function() F.verified(db); db:close() end)

  local function upload(kind, name)
    return F.ok(db:call("policies.put", { building_id = w.building.id, kind = kind,
                                          source = example(name) }))
  end

  it("per-user monthly quota: 20 credits a month from the tenant pool, then refused", function()
    upload("validate", "user_quota")
    for day = 2, 6 do   -- 5 bookings of 4 hours: 20 credits
      F.ok(F.book(db, w, room, ("2026-03-%02dT08:00:00Z"):format(day),
                  ("2026-03-%02dT12:00:00Z"):format(day)))
    end
    local r, err = F.book(db, w, room, "2026-03-09T08:00:00Z", "2026-03-09T09:00:00Z")
    assert.is_nil(r)
    assert.equal(400, err.status)
    assert.equal("invalid_request", err.code)
    -- Another user of the same tenant still can, and the card is not limited.
    local bo = F.ok(db:create_user { tenant_id = w.tenant.id, name = "Bo", email = "b@x.io" })
    F.ok(F.book(db, w, room, "2026-03-09T08:00:00Z", "2026-03-09T09:00:00Z", nil, bo))
    F.ok(F.book(db, w, room, "2026-03-10T08:00:00Z", "2026-03-10T09:00:00Z", "card"))
    -- Next month the quota starts again.
    F.ok(F.book(db, w, room, "2026-04-02T08:00:00Z", "2026-04-02T09:00:00Z"))
  end)

  it("free weekend hours: Saturday costs no credits, Monday does", function()
    upload("pricing", "free_weekend")
    local function credits(s, e)
      return F.ok(db:quote { resource_id = room.id, user_id = w.user.id, start = s,
                             ["end"] = e }).credits.amount
    end
    assert.equal(0, credits("2026-03-07T10:00:00Z", "2026-03-07T12:00:00Z"))  -- Saturday
    assert.equal(2, credits("2026-03-09T10:00:00Z", "2026-03-09T12:00:00Z"))  -- Monday
  end)

  it("peak surcharge: uploads with its own examples passing, and prices peak hours higher", function()
    upload("pricing", "peak_surcharge")
    local function credits(s, e)
      return F.ok(db:quote { resource_id = room.id, user_id = w.user.id, start = s,
                             ["end"] = e }).credits.amount
    end
    assert.truthy(credits("2026-03-09T10:00:00Z", "2026-03-09T11:00:00Z")
                  > credits("2026-03-09T20:00:00Z", "2026-03-09T21:00:00Z"))
  end)

  it("a stricter refund window for an auditorium only", function()
    upload("refund", "auditorium_refund")
    local hall = F.room(db, w.building, { name = "Hall", kind = "auditorium" })
    local b1 = F.ok(F.book(db, w, hall, "2026-03-05T10:00:00Z", "2026-03-05T14:00:00Z"))
    local b2 = F.ok(F.book(db, w, room, "2026-03-05T10:00:00Z", "2026-03-05T14:00:00Z"))
    local me = db:as { role = "tenant_user", tenant_id = w.tenant.id, user_id = w.user.id }
    assert(db:set_clock("2026-03-03T10:00:00Z"))   -- 48 hours before
    assert.equal(0, F.ok(me:cancel { id = b1.id }).refund.credits)
    assert.equal(4, F.ok(me:cancel { id = b2.id }).refund.credits)
  end)
end)

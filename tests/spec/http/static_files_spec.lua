-- Static files and hostile paths: the path is decoded once, strictly, and
-- whatever a decoded path could smuggle (a NUL cutting it short, a control
-- character, a dot segment that appears only once decoded) is refused
-- with the API's JSON error before any file is looked at.
local H = require "http_env"
local cjson = require "cjson.safe"

describe("static files", function()
  local env

  setup(function() env = H.start() end)
  teardown(function() if env then env:stop() end end)

  -- Status and body of a raw GET of `path` (sent exactly as given).
  local function get(path)
    local reply = env:raw(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                          :format(path), 3)
    local status = tonumber(reply:match("^HTTP/1%.1 (%d%d%d) "))
    local body = reply:match("\r\n\r\n(.*)$") or ""
    return status, body, reply
  end

  local function refused(path, statuses)
    local status, body, reply = get(path)
    assert.is_true(statuses[status] == true, path .. " answered " .. tostring(status))
    local e = cjson.decode(body)
    assert.is_table(e, path .. ": not JSON: " .. reply)
    assert.is_string(e.error.code)
    assert.matches("Content%-Type: application/json", reply)
    assert.is_nil(body:find("<html", 1, true), path .. " served a page")
  end

  it("serves the page, also with an escaped letter", function()
    local status, body = get("/index.html")
    assert.equal(200, status)
    assert.truthy(body:find("<html", 1, true) or body:find("<!doctype", 1, true)
                  or body:find("<!DOCTYPE", 1, true))
    assert.equal(200, (get("/%69ndex.html")))
  end)

  it("refuses a NUL or a control character in the decoded path", function()
    for _, path in ipairs { "/index.html%00.js", "/index.html%00", "/%00", "/index.html%0a",
                            "/index.html%0d%0aX:1", "/%01index.html", "/index.html%7f",
                            "/v1/health%00", "/v1/health%09" } do
      refused(path, { [400] = true })
    end
  end)

  it("refuses a malformed escape", function()
    for _, path in ipairs { "/index.html%", "/index.html%2", "/index.html%zz", "/%g0" } do
      refused(path, { [400] = true })
    end
  end)

  it("refuses dot segments that appear once decoded", function()
    for _, path in ipairs { "/%2e%2e/%2e%2e/etc/passwd", "/.%2e/.%2e/etc/passwd",
                            "/%2E%2E/etc/passwd", "/js/%2e%2e/index.html", "/%2e/index.html",
                            "/..%2f..%2fetc%2fpasswd", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                            "/v1/%2e%2e/index.html" } do
      refused(path, { [400] = true })
    end
  end)

  it("decodes once: a double-encoded path is a name, not a way up", function()
    for _, path in ipairs { "/%252e%252e/%252e%252e/etc/passwd", "/%252e%252e%252fetc%252fpasswd",
                            "/index.html%2500.js" } do
      refused(path, { [404] = true })
    end
  end)

  it("never follows a backslash or a hidden name", function()
    for _, path in ipairs { "/..%5c..%5cetc%5cpasswd", "/..\\..\\etc\\passwd", "/%5cetc%5cpasswd",
                            "/.git/config", "/%2egit/config", "/package.json",
                            "/node_modules/x.js" } do
      refused(path, { [400] = true, [404] = true })
    end
  end)
end)

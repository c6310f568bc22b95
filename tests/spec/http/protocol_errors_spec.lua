-- Requests civetweb refuses before any route runs (API.md: "Errors raised
-- before a route runs ... have the same JSON shape").  Each gets a status
-- line and the API's error object, never a bare HTML page or silence, and
-- the server keeps answering.
local H = require "http_env"
local cjson = require "cjson.safe"

-- Splits a raw response into status, lower-case headers and decoded body.
local function parse(reply)
  local head, body = reply:match("^(.-)\r\n\r\n(.*)$")
  assert(head, "no complete response: " .. ("%q"):format(reply))
  local status = tonumber(head:match("^HTTP/1%.%d (%d%d%d) "))
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do
    headers[name:lower()] = value
  end
  return status, headers, cjson.decode(body), body
end

describe("errors civetweb raises before a route runs", function()
  local env

  setup(function() env = H.start() end)
  teardown(function() if env then env:stop() end end)
  after_each(function()
    assert.equal(200, (env:as(false):get("/v1/health")))
  end)

  -- Sends `bytes` raw and checks the answer is `want_status` with the JSON
  -- error shape; returns the error object.
  local function expect(want_status, want_code, bytes, timeout)
    local reply = env:raw(bytes, timeout or 3)
    local status, headers, body, text = parse(reply)
    assert.equal(want_status, status, text)
    assert.equal("application/json", headers["content-type"], text)
    assert.equal(#text, tonumber(headers["content-length"]))
    assert.is_table(body, "not JSON: " .. text)
    assert.equal(want_code, body.error.code)
    assert.is_string(body.error.message)
    assert.is_table(body.error.details)
    assert.is_nil(text:find("<", 1, true), "HTML in " .. text)
    return body.error
  end

  local function req(line, extra)
    return line .. "\r\nHost: localhost\r\n" .. (extra or "") .. "\r\n"
  end

  it("an unknown method", function()
    expect(405, "method_not_allowed", req("FROB /v1/health HTTP/1.1"))
  end)

  it("a negative Content-Length", function()
    expect(400, "invalid_request", req("POST /v1/buildings HTTP/1.1", "Content-Length: -1\r\n"))
  end)

  it("a Content-Length that is not a number", function()
    expect(400, "invalid_request", req("POST /v1/buildings HTTP/1.1", "Content-Length: x\r\n"))
  end)

  it("two different Content-Length headers, and nothing is created", function()
    local tenants = #env:must(200, "GET", "/v1/tenants?limit=500").data
    local body = '{"name":"Smuggled"}'
    local e = expect(400, "invalid_request", req("POST /v1/tenants HTTP/1.1",
      ("Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
       .. "Content-Length: %d\r\nContent-Length: 5\r\n"):format(env.key, #body)) .. body)
    assert.matches("Content%-Length", e.message)
    assert.equal(tenants, #env:must(200, "GET", "/v1/tenants?limit=500").data)
  end)

  it("a Content-Length with trailing garbage, and one beside Transfer-Encoding", function()
    expect(400, "invalid_request", req("POST /v1/tenants HTTP/1.1", "Content-Length: 2x\r\n") .. "{}")
    expect(400, "invalid_request", req("POST /v1/tenants HTTP/1.1",
      "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n") .. "2\r\n{}\r\n0\r\n\r\n")
  end)

  it("the same Content-Length twice is one length", function()
    local reply = env:raw(req("GET /v1/health HTTP/1.1",
      "Content-Length: 0\r\nContent-Length: 0\r\nConnection: close\r\n"), 3)
    assert.matches("^HTTP/1%.1 200 ", reply)
  end)

  it("a 20 KB header", function()
    -- API.md: a limit passed is limit_exceeded, naming the limit.
    local e = expect(413, "limit_exceeded",
                     req("GET /v1/health HTTP/1.1", "X-Big: " .. ("a"):rep(20 * 1024) .. "\r\n"))
    assert.equal("request_head_bytes", e.details.limit)
    assert.matches("16384 bytes", e.message)
  end)

  it("a head just under the limit is served, one just over it is not", function()
    -- "GET /v1/health HTTP/1.1\r\n" 25, "Host: localhost\r\n" 17,
    -- "X-Big: " .. v .. "\r\n" 9 + #v, the blank line 2: 53 + #v in all.
    local ok = env:raw(req("GET /v1/health HTTP/1.1",
                           "Connection: close\r\nX-Big: " .. ("a"):rep(16384 - 53 - 19) .. "\r\n"), 3)
    assert.matches("^HTTP/1%.1 200 ", ok)
    expect(413, "limit_exceeded",
           req("GET /v1/health HTTP/1.1",
               "Connection: close\r\nX-Big: " .. ("a"):rep(16384 - 53 - 19 + 1) .. "\r\n"))
  end)

  it("a POST whose head is over the limit is refused unread, its connection closed", function()
    local reply = env:raw(req("POST /v1/buildings HTTP/1.1",
                              "X-Big: " .. ("a"):rep(20 * 1024) .. "\r\nContent-Length: 2\r\n")
                          .. "{}" .. req("GET /v1/health HTTP/1.1"), 3)
    assert.matches("^HTTP/1%.1 413 ", reply)
    assert.is_nil(reply:find("HTTP/1.1 200", 1, true), reply)
  end)

  it("a head past what the server reads at all", function()
    -- civetweb stops reading at 64 KiB and cannot tell such a head from a
    -- malformed one: 400, the message naming what it reads.
    local e = expect(400, "invalid_request",
                     req("GET /v1/health HTTP/1.1", "X-Big: " .. ("a"):rep(80 * 1024) .. "\r\n"))
    assert.matches("65536 bytes", e.message)
  end)

  it("an HTTP/0.9 request line", function()
    expect(400, "invalid_request", "GET /v1/health\r\n\r\n")
  end)

  it("an HTTP/2 connection preface", function()
    expect(505, "http_version_not_supported", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
  end)

  it("an unknown HTTP version", function()
    expect(505, "http_version_not_supported", req("GET /v1/health HTTP/3.7"))
  end)

  it("a tab in a header name", function()
    expect(400, "invalid_request", req("GET /v1/health HTTP/1.1", "X\tBad: 1\r\n"))
  end)

  it("a control character in the request target", function()
    expect(400, "invalid_request", req("GET /v1/he\1alth HTTP/1.1"))
  end)

  it("OPTIONS *", function()
    expect(400, "invalid_request", req("OPTIONS * HTTP/1.1"))
  end)

  it("OPTIONS * on a kept-alive connection, after a request that was answered", function()
    local reply = env:raw(req("GET /v1/health HTTP/1.1") .. req("OPTIONS * HTTP/1.1"), 3)
    local first, rest = reply:match("^(HTTP/1%.1 200 .-\r\n\r\n{.-})(.*)$")
    assert(first, reply)
    local status, _, body = parse(rest)
    assert.equal(400, status, rest)
    assert.equal("invalid_request", body.error.code)
  end)

  it("an absolute URI naming another server", function()
    expect(400, "invalid_request", req("GET http://example.com/v1/health HTTP/1.1"))
  end)

  it("an absolute URI naming this server", function()
    local reply = env:raw(req(("GET http://127.0.0.1:%d/v1/health HTTP/1.1"):format(env.port),
                              "Connection: close\r\n"), 3)
    assert.matches("^HTTP/1%.1 200 ", reply)
  end)

  it("a request head that stops half way and the client waits", function()
    -- Nothing complete arrives before the header deadline: the server says
    -- why it closes instead of hanging up silently.
    expect(400, "invalid_request", "GET /v1/health HTTP/1.1\r\nHost: x\r\n", 8)
  end)
end)

-- Shared by the wrk scripts: every response is checked (status and body
-- shape), per thread, and done() prints the totals the shell script checks.
-- A benchmark that counted errors as requests would report a speed of
-- refusals: bench_http.sh fails the run on any bad answer.
local M = {}

local threads = {}

-- expect_status: the only acceptable status; body_pattern: a plain string
-- every acceptable body contains.
function M.install(expect_status, body_pattern)
  function setup(thread)
    thread:set("tid", #threads)
    threads[#threads + 1] = thread
  end
  ok_count, bad_count, first_bad = 0, 0, nil
  function response(status, headers, body)
    if status == expect_status and body and body:find(body_pattern, 1, true) then
      ok_count = ok_count + 1
    else
      bad_count = bad_count + 1
      if first_bad == nil then
        first_bad = tostring(status) .. " " .. tostring(body):sub(1, 200):gsub("%s", " ")
      end
    end
  end
  function done(summary, latency, requests)
    local ok, bad, sample = 0, 0, nil
    for _, t in ipairs(threads) do
      ok = ok + (t:get("ok_count") or 0)
      bad = bad + (t:get("bad_count") or 0)
      sample = sample or t:get("first_bad")
    end
    -- Socket errors (connect, read, write, timeout) are failures too.
    local e = summary.errors
    local sock = e.connect + e.read + e.write + e.timeout
    io.write(("checked ok %d bad %d socket_errors %d\n"):format(ok, bad, sock))
    if sample then io.write("first_bad " .. sample .. "\n") end
  end
end

return M

-- wrk script: the same quote, over and over (a read: no transaction).  Each
-- answer must be 200 with a quote body (see check.lua).
package.path = "scripts/bench/?.lua;" .. package.path
require("check").install(200, '"payment_methods"')
wrk.method = "POST"
wrk.path = "/v1/quotes"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
wrk.headers["Content-Type"] = "application/json"
wrk.body = ('{"resource_id":"%s","user_id":"%s","start":"2027-03-01T09:00:00Z",'
  .. '"end":"2027-03-01T10:30:00Z"}'):format(os.getenv("ROOM"), os.getenv("USER_ID"))

-- wrk script: GET /v1/health, the server's floor (no auth, no database), run
-- beside the other loads so figures from noisy machines compare as ratios.
package.path = "scripts/bench/?.lua;" .. package.path
require("check").install(200, '"ok"')
wrk.method = "GET"
wrk.path = "/v1/health"

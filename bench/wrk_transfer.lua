-- wrk script: one transfer per request, unique ids, random accounts.
-- Env: ACCOUNTS (default 100000), RUN (a number unique to this run, so
-- ids never collide with an earlier run on the same data directory).
local accounts = tonumber(os.getenv("ACCOUNTS") or "100000")
local run = os.getenv("RUN") or "1"
-- The administrator's bearer token (docs/authz.md): TPWALLET_TOKEN.
local token = os.getenv("TPWALLET_TOKEN")
-- CLIENT_VERSION: send it as X-Client-Version, with an X-Client-User of
-- 1,000 per thread, so the client-version gate decides each request.
local client_version = os.getenv("CLIENT_VERSION")
local threads = 0

function setup(thread)
	threads = threads + 1
	thread:set("tid", threads)
end

function init(args)
	counter = 0
	math.randomseed(tid * 7919 + tonumber(run) % 100000)
end

function request()
	counter = counter + 1
	local d = math.random(1, accounts)
	local c = d % accounts + 1
	local body = string.format(
		'{"id":"%s%03d%010d","debit_account_id":"%d","credit_account_id":"%d","amount":"1","ledger":1,"code":1}',
		run, tid, counter, d, c)
	local headers = { ["Content-Type"] = "application/json" }
	if token then
		headers["Authorization"] = "Bearer " .. token
	end
	if client_version then
		headers["X-Client-Version"] = client_version
		headers["X-Client-User"] = string.format("u-%d-%d", tid, counter % 1000)
	end
	return wrk.format("POST", "/v1/transfers", headers, body)
end

function done(summary, latency, requests)
	io.write(string.format(
		"wrk-summary requests=%d duration_s=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f errors_status=%d\n",
		summary.requests, summary.duration / 1e6,
		summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		summary.errors.status))
end

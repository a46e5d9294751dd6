-- wrk script for the session comparison:
-- `wrk -tTHREADS ... -s sessions.lua -- MODE COOKIE-FILE COOKIE-NAME THREADS`.
-- MODE: read (warm sessions, read-only), mix (90% read / 8% write / 2% login), bots (no
-- cookie), unknown (a random, never-issued id in the cookie), write (every request a counter
-- increment on a warm session: saves alone). COOKIE-FILE holds one
-- "name=value" per line: the warm sessions, created by run.py before the run. Each wrk
-- thread has its own Lua state, so each takes its own share of the sessions: a login then
-- renews the only copy of that session's cookie, as a browser would.
local mode, cookie_name
local cookies = {}
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

local next_thread = 0

function setup(thread)
    thread:set("thread_index", next_thread)
    next_thread = next_thread + 1
end

function init(args)
    mode = args[1]
    cookie_name = args[3]
    local threads = tonumber(args[4])
    local index = 0
    for line in io.lines(args[2]) do
        if index % threads == thread_index then
            cookies[#cookies + 1] = line
        end
        index = index + 1
    end
    -- Each thread seeds its own generator.
    math.randomseed(os.time() * 1000 + tonumber(tostring(cookies):match("0x(%x+)") or "1", 16) % 100000)
    if mode ~= "mix" then
        response = nil -- only the mix follows cookies renewed by login
    end
end

local function random_id()
    local chars = {}
    for i = 1, 22 do
        local n = math.random(1, 64)
        chars[i] = alphabet:sub(n, n)
    end
    return table.concat(chars)
end

function request()
    if mode == "bots" then
        return wrk.format("GET", "/read")
    elseif mode == "unknown" then
        return wrk.format("GET", "/read", { Cookie = cookie_name .. "=" .. random_id() })
    end
    local slot = math.random(1, #cookies)
    local headers = { Cookie = cookies[slot] }
    if mode == "write" then
        return wrk.format("POST", "/write", headers)
    end
    if mode == "mix" then
        local roll = math.random(1, 100)
        if roll > 98 then
            headers["X-Slot"] = tostring(slot)
            return wrk.format("POST", "/login", headers)
        elseif roll > 90 then
            return wrk.format("POST", "/write", headers)
        end
    end
    return wrk.format("GET", "/read", headers)
end

function response(status, headers, body)
    -- A login renews the id: the slot it was sent for (echoed in the body) takes the new cookie.
    local slot = body:match("^login:(%d+)$")
    if slot then
        local set_cookie = headers["Set-Cookie"] or headers["set-cookie"]
        if set_cookie then
            cookies[tonumber(slot)] = set_cookie:match("^([^;]+)")
        end
    end
end

function done(summary, latency, requests)
    local errors = summary.errors
    io.write(string.format(
        'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d, "non2xx": %d}\n',
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end

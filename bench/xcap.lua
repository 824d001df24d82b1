-- SPDX-License-Identifier: MIT
--
-- wrk (4.x, LuaJIT) script for bench/xcap-http. One file, four modes chosen
-- by the XB_MODE environment variable (read at load time, so the main state
-- and every thread state agree on whether request() exists, which decides
-- whether wrk sends one static request or calls request() each time):
--
--   get     static GET of XB_PATH, with X-3GPP-Asserted-Identity: XB_IDENTITY
--           when set (sent to nginx too, which ignores it, so that both
--           servers get byte-identical requests); XB_CLOSE=1 adds
--           "Connection: close" (a new connection for every request)
--   getu    GET of user N's resource-lists index, N stepping over 0..XB_USERS-1
--           (bench/large-store)
--   put     PUT of the body in XB_BODY_FILE (Content-Type XB_CTYPE) to
--           XB_ROOT/resource-lists/users/sip:userN@XB_DOMAIN/XB_DOC (default
--           index), N rotating over 0..XB_USERS-1, each asserting its own
--           owner; the requests are built once in init() and request() only
--           picks one, unless they would take more than 16 MiB (1 MiB
--           bodies): then request() builds each one
--   elput   element PUT (Content-Type application/xcap-el+xml) replacing one
--           <entry> of XB_DOC of sip:userN@XB_DOMAIN: XB_ELEMENTS is a file
--           of "NNNNN<TAB>element" lines, the element replacing the entry
--           with uri sip:contactNNNNN@XB_DOMAIN in <list name="XB_LIST">.
--           Request i goes to user i mod XB_USERS and to element
--           (i div XB_USERS) mod #lines, so consecutive requests write
--           different documents and each document sees different entries
--   digest  GET of XB_PATH with RFC 7616 Digest (qop=auth, XB_DIGEST_ALGO
--           MD5 or SHA-256). Each wrk thread reuses one nonce (XB_NONCES,
--           comma-separated, one per thread) with nc counting up from
--           XB_NC_START; the driver has already used nc=1 on each nonce, so
--           the server has the nonce's replay slot before the load starts and
--           the few requests a thread's connections have in flight at once
--           arrive well inside the server's 64-count window. The response
--           hash is computed per request with OpenSSL's MD5()/SHA256()
--           through the LuaJIT FFI (wrk links libcrypto already).
--
-- Every mode counts response statuses per thread; done() sums them and prints
-- one machine-readable line:
--   XBENCH label=... requests=... rps=... p50_us=... p99_us=... non2xx=... ...
-- and, if any response was not 2xx, the first such status and body:
--   XBENCH_FIRST_BAD label=... <status> <body, first 300 bytes>

local mode = os.getenv("XB_MODE") or "get"
local label = os.getenv("XB_LABEL") or mode

-- ---- per-thread counters (each wrk thread has its own Lua state) ----------
ok_count = 0
bad_count = 0
first_bad = ""
status_counts = {}

function response(status, headers, body)
   status_counts[status] = (status_counts[status] or 0) + 1
   if status >= 200 and status < 300 then
      ok_count = ok_count + 1
   else
      bad_count = bad_count + 1
      if first_bad == "" then
         local b = (body or ""):sub(1, 300):gsub("%s+", " ")
         local challenge = headers["WWW-Authenticate"]
         first_bad = tostring(status) .. " " .. b ..
            (challenge and (" [WWW-Authenticate: " .. challenge .. "]") or "")
      end
   end
end

-- ---- main state: hand each thread its id (and nonce) ----------------------
local threads = {}

local function split_commas(s)
   local out = {}
   for item in (s or ""):gmatch("[^,]+") do
      out[#out + 1] = item
   end
   return out
end

function setup(thread)
   threads[#threads + 1] = thread
   thread:set("thread_id", #threads)
   if mode == "digest" then
      local nonces = split_commas(os.getenv("XB_NONCES"))
      local nonce = nonces[#threads]
      if not nonce then
         error("XB_NONCES has fewer nonces than wrk has threads")
      end
      thread:set("thread_nonce", nonce)
   end
end

-- ---- modes -------------------------------------------------------------------
if mode == "get" then
   wrk.method = "GET"
   wrk.path = assert(os.getenv("XB_PATH"), "XB_PATH")
   local ident = os.getenv("XB_IDENTITY")
   if ident and ident ~= "" then
      wrk.headers["X-3GPP-Asserted-Identity"] = '"' .. ident .. '"'
   end
   -- XB_CLOSE=1: one request per connection (the server closes it, wrk
   -- opens a new one: over HTTPS, a full TLS handshake per request).
   if os.getenv("XB_CLOSE") == "1" then
      wrk.headers["Connection"] = "close"
   end

elseif mode == "getu" then
   -- GET of XB_ROOT/resource-lists/users/sip:userN@XB_DOMAIN/index, N
   -- rotating over 0..XB_USERS-1 from a different start in each thread.
   local users = tonumber(os.getenv("XB_USERS") or "1000")
   local nthreads = tonumber(os.getenv("XB_THREADS") or "1")
   local root = os.getenv("XB_ROOT") or "/xcap-root"
   local domain = os.getenv("XB_DOMAIN") or "example.com"
   local idx = 0
   local host

   function init(args)
      host = wrk.headers["Host"]
      idx = ((thread_id - 1) * math.floor(users / nthreads)) % users
   end

   function request()
      idx = (idx + 7919) % users -- a prime step: scattered over the store
      local xui = "sip:user" .. idx .. "@" .. domain
      return wrk.format("GET", root .. "/resource-lists/users/" .. xui .. "/index", {
         ["Host"] = host,
         ["X-3GPP-Asserted-Identity"] = '"' .. xui .. '"',
      })
   end

elseif mode == "put" then
   local reqs = {}
   local users = tonumber(os.getenv("XB_USERS") or "1000")
   local nthreads = tonumber(os.getenv("XB_THREADS") or "1")
   local root = os.getenv("XB_ROOT") or "/xcap-root"
   local domain = os.getenv("XB_DOMAIN") or "example.com"
   local ctype = os.getenv("XB_CTYPE") or "application/resource-lists+xml"
   local doc = os.getenv("XB_DOC") or "index"
   local idx = 0
   local body, prebuilt

   local function build(i)
      local xui = "sip:user" .. i .. "@" .. domain
      return wrk.format("PUT", root .. "/resource-lists/users/" .. xui .. "/" .. doc, {
         ["Host"] = wrk.headers["Host"],
         ["Content-Type"] = ctype,
         ["X-3GPP-Asserted-Identity"] = '"' .. xui .. '"',
      }, body)
   end

   function init(args)
      local f = assert(io.open(assert(os.getenv("XB_BODY_FILE"), "XB_BODY_FILE"), "rb"))
      body = f:read("*a")
      f:close()
      prebuilt = #body * users <= 16 * 1024 * 1024
      if prebuilt then
         for i = 0, users - 1 do
            reqs[i + 1] = build(i)
         end
      end
      -- Threads start at different users so they do not write the same
      -- document at the same moment.
      idx = ((thread_id - 1) * math.floor(users / nthreads)) % users
   end

   function request()
      idx = idx % users + 1
      return prebuilt and reqs[idx] or build(idx - 1)
   end

elseif mode == "elput" then
   local users = tonumber(os.getenv("XB_USERS") or "100")
   local nthreads = tonumber(os.getenv("XB_THREADS") or "1")
   local root = os.getenv("XB_ROOT") or "/xcap-root"
   local domain = os.getenv("XB_DOMAIN") or "example.com"
   local doc = os.getenv("XB_DOC") or "index"
   local list = os.getenv("XB_LIST") or "big"
   local nums, elements = {}, {}
   local host
   local idx = 0

   function init(args)
      for line in io.lines((assert(os.getenv("XB_ELEMENTS"), "XB_ELEMENTS"))) do
         local num, el = line:match("^(%d+)\t(.+)$")
         if num then
            nums[#nums + 1] = num
            elements[#elements + 1] = el
         end
      end
      assert(#elements > 0, "XB_ELEMENTS has no elements")
      host = wrk.headers["Host"]
      -- As in put: threads start at different users.
      idx = ((thread_id - 1) * math.floor(users / nthreads)) % users
   end

   function request()
      local u = idx % users
      local e = math.floor(idx / users) % #elements + 1
      idx = idx + 1
      local xui = "sip:user" .. u .. "@" .. domain
      local path = root .. "/resource-lists/users/" .. xui .. "/" .. doc ..
         "/~~/resource-lists/list%5B@name=%22" .. list .. "%22%5D/entry%5B@uri=%22sip:contact" ..
         nums[e] .. "@" .. domain .. "%22%5D"
      return wrk.format("PUT", path, {
         ["Host"] = host,
         ["Content-Type"] = "application/xcap-el+xml",
         ["X-3GPP-Asserted-Identity"] = '"' .. xui .. '"',
      }, elements[e])
   end

elseif mode == "digest" then
   local ffi = require("ffi")
   ffi.cdef [[
      unsigned char *MD5(const char *d, size_t n, unsigned char *md);
      unsigned char *SHA256(const char *d, size_t n, unsigned char *md);
   ]]
   local algo = os.getenv("XB_DIGEST_ALGO") or "SHA-256"
   local crypto = ffi.C
   if not pcall(function() return crypto.MD5 and crypto.SHA256 end) then
      crypto = ffi.load("crypto")
   end
   local hashfn, hashlen
   if algo == "MD5" then
      hashfn, hashlen = crypto.MD5, 16
   elseif algo == "SHA-256" then
      hashfn, hashlen = crypto.SHA256, 32
   else
      error("XB_DIGEST_ALGO must be MD5 or SHA-256")
   end
   local hex = {}
   for i = 0, 255 do
      hex[i] = string.format("%02x", i)
   end
   local md = ffi.new("unsigned char[32]")
   local parts = {}
   local function H(s)
      hashfn(s, #s, md)
      for i = 0, hashlen - 1 do
         parts[i + 1] = hex[md[i]]
      end
      return table.concat(parts, "", 1, hashlen)
   end

   local path = assert(os.getenv("XB_PATH"), "XB_PATH")
   local user = assert(os.getenv("XB_DIGEST_USER"), "XB_DIGEST_USER")
   local pass = assert(os.getenv("XB_DIGEST_PASS"), "XB_DIGEST_PASS")
   local realm = assert(os.getenv("XB_DIGEST_REALM"), "XB_DIGEST_REALM")
   local nc = tonumber(os.getenv("XB_NC_START") or "2") - 1
   local host, auth_prefix, kd_prefix, kd_suffix

   function init(args)
      local nonce = thread_nonce
      local cnonce = string.format("xcapbench%08x", thread_id)
      local ha1 = H(user .. ":" .. realm .. ":" .. pass)
      local ha2 = H("GET:" .. path)
      host = wrk.headers["Host"]
      auth_prefix = 'Digest username="' .. user .. '", realm="' .. realm .. '", nonce="' .. nonce ..
         '", uri="' .. path .. '", algorithm=' .. algo .. ', qop=auth, cnonce="' .. cnonce .. '", nc='
      kd_prefix = ha1 .. ":" .. nonce .. ":"
      kd_suffix = ":" .. cnonce .. ":auth:" .. ha2
   end

   function request()
      nc = nc + 1
      local ncs = string.format("%08x", nc)
      local resp = H(kd_prefix .. ncs .. kd_suffix)
      return wrk.format("GET", path, {
         ["Host"] = host,
         ["Authorization"] = auth_prefix .. ncs .. ', response="' .. resp .. '"',
      })
   end

else
   error("unknown XB_MODE " .. mode)
end

-- ---- main state: one result line --------------------------------------------
function done(summary, latency, requests)
   local ok, bad, first = 0, 0, ""
   local counts = {}
   for _, t in ipairs(threads) do
      ok = ok + (t:get("ok_count") or 0)
      bad = bad + (t:get("bad_count") or 0)
      local fb = t:get("first_bad") or ""
      if first == "" and fb ~= "" then
         first = fb
      end
      local sc = t:get("status_counts") or {}
      for status, n in pairs(sc) do
         counts[status] = (counts[status] or 0) + n
      end
   end
   local keys = {}
   for status in pairs(counts) do
      keys[#keys + 1] = status
   end
   table.sort(keys)
   local st = {}
   for _, status in ipairs(keys) do
      st[#st + 1] = status .. ":" .. counts[status]
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "XBENCH label=%s requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d mean_us=%.0f " ..
      "max_us=%d bytes_per_resp=%.0f ok=%d non2xx=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d statuses=%s\n",
      label, summary.requests, summary.duration, summary.requests / secs,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
      summary.requests > 0 and summary.bytes / summary.requests or 0, ok, bad, e.connect, e.read, e.write, e.timeout, #st > 0 and table.concat(st, ",") or "none"))
   if first ~= "" then
      io.write("XBENCH_FIRST_BAD label=" .. label .. " " .. first .. "\n")
   end
end

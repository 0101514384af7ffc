-- introspectd forward authentication for HAProxy >= 2.5 (core.httpclient).
--
-- Load it with `lua-load /etc/haproxy/introspectd-authz.lua` in global and
-- call it in a frontend:
--
--   http-request lua.introspectd_authz http://127.0.0.1:8080/authz
--
-- It asks introspectd's /authz about the request (Authorization, method,
-- path and query) and leaves the answer in variables for the rules after it:
--
--   txn.authz_status     status of /authz; 0 when introspectd gave no answer
--   txn.authz_challenge  its WWW-Authenticate (401, 403)
--   txn.authz_subject, txn.authz_client_id, txn.authz_scope
--                        its X-Auth-Subject, X-Auth-Client-Id, X-Auth-Scope
--
-- It decides nothing itself: the rules MUST refuse every request whose
-- txn.authz_status is not 200.

-- first returns the first value of header name (lower case) in headers, the
-- table core.httpclient returns: name -> values (HAProxy counts from 0).
local function first(headers, name)
	if headers == nil then
		return nil
	end
	for k, v in pairs(headers) do
		if string.lower(k) == name then
			if type(v) == "table" then
				return v[0] or v[1]
			end
			return v
		end
	end
	return nil
end

local function set(txn, var, value)
	if value ~= nil and value ~= "" then
		txn:set_var(var, value)
	end
end

core.register_action("introspectd_authz", { "http-req" }, function(txn, url)
	txn:set_var("txn.authz_status", 0)
	local headers = {
		["X-Original-Method"] = { txn.sf:method() },
		["X-Original-URI"] = { txn.sf:pathq() },
	}
	local auth = txn.sf:req_fhdr("authorization")
	if auth ~= nil and auth ~= "" then
		headers["Authorization"] = { auth }
	end
	local ok, res = pcall(function()
		return core.httpclient():get({ url = url, headers = headers, timeout = 5000 })
	end)
	if not ok or res == nil or type(res.status) ~= "number" then
		return
	end
	txn:set_var("txn.authz_status", res.status)
	set(txn, "txn.authz_challenge", first(res.headers, "www-authenticate"))
	if res.status == 200 then
		set(txn, "txn.authz_subject", first(res.headers, "x-auth-subject"))
		set(txn, "txn.authz_client_id", first(res.headers, "x-auth-client-id"))
		set(txn, "txn.authz_scope", first(res.headers, "x-auth-scope"))
	end
end, 1)

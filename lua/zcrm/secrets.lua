--- The secrets of one client (tokens, the client secret, a proxy password)
-- and their redaction from every string that leaves zcrm: messages, details,
-- log lines. A client keeps its set in its private record (`zcrm.client`);
-- nothing else holds the secrets, so no field of a client shows them.
-- @module zcrm.secrets

local core = require "zcrm.core"

local M = {}

--- A set of secrets (`zcrm.secrets`).
-- @type Secrets
local Secrets = {}
Secrets.__index = Secrets
Secrets.__name = "zcrm.secrets"

function Secrets.__tostring()
  return "zcrm.secrets"
end

--- An empty set.
-- @treturn Secrets
function M.new()
  return setmetatable({ list = {}, patterns = {}, forms = {} }, Secrets)
end

-- The forms a secret may take in text a server echoes: as it is, and
-- percent-encoded (only what must be, or every byte; upper- and lower-case
-- hex), as Lua patterns and as plain text.
local function secret_patterns(s)
  local forms, seen, out, plain = { s }, {}, {}, {}
  local min = core.url_escape(s)
  local all = s:gsub(".", function(c) return string.format("%%%02X", c:byte()) end)
  for _, f in ipairs { min, min:lower(), all, all:lower() } do forms[#forms + 1] = f end
  for _, f in ipairs(forms) do
    if not seen[f] then
      seen[f] = true
      out[#out + 1] = f:gsub("%p", "%%%0")
      plain[#plain + 1] = f
    end
  end
  return out, plain
end

--- Adds `s` (a string of 4 bytes or more; anything else is ignored).
-- @tparam string s
-- @treturn nil
function Secrets:add(s)
  if type(s) ~= "string" or #s < 4 then return end
  for _, known in ipairs(self.list) do
    if known == s then return end
  end
  local list = self.list
  list[#list + 1] = s
  -- Longest first, so a secret containing another is redacted whole.
  table.sort(list, function(a, b) return #a > #b end)
  -- forms: every form as plain text, for core.read_update_answer, which
  -- leaves an answer holding one to the Lua path (and its redaction).
  self.patterns, self.forms = {}, {}
  for i, secret in ipairs(list) do
    local pats, plain = secret_patterns(secret)
    self.patterns[i] = pats
    for _, f in ipairs(plain) do self.forms[#self.forms + 1] = f end
  end
end

--- `s` as a string with every known secret (raw or percent-encoded)
-- replaced by "[REDACTED]".
-- @param s anything; it is passed through `tostring`
-- @treturn string
function Secrets:redact(s)
  s = tostring(s)
  for _, pats in ipairs(self.patterns) do
    for _, pat in ipairs(pats) do s = s:gsub(pat, "[REDACTED]") end
  end
  return s
end

--- True when the text `raw` (a body as it arrived) may hold a secret once
-- decoded: it holds one of the secrets' forms, or a JSON escape (through
-- which any character, and so any secret, can be spelt).
-- @tparam string raw
-- @treturn boolean
function Secrets:may_hold(raw)
  if raw:find("\\", 1, true) then return true end
  for _, f in ipairs(self.forms) do
    if raw:find(f, 1, true) then return true end
  end
  return false
end

--- A copy of `v` with every string in it, keys included, redacted; tables
-- copied recursively (a cycle or a depth over 32 becomes "[...]").
-- @param v any value
-- @tparam[opt] table seen the tables being copied (a cycle)
-- @tparam[opt] integer depth how deep the copy is
-- @return the copy
function Secrets:redact_value(v, seen, depth)
  if type(v) == "string" then return self:redact(v) end
  if type(v) ~= "table" then return v end
  seen, depth = seen or {}, depth or 0
  if seen[v] or depth > 32 then return "[...]" end
  seen[v] = true
  local c = {}
  for k, x in next, v do c[self:redact_value(k, seen, depth + 1)] = self:redact_value(x, seen, depth + 1) end
  seen[v] = nil
  return c
end

M.Secrets = Secrets

return M

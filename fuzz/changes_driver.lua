-- Driver of fuzz_changes: change-set files (`zcrm plan --out`, `zcrm apply
-- CHANGES.json`) as the offline part of `zcrm apply --dry-run` reads them.
--
-- Input: the file's text, as it is (the seeds are change sets zcrm plan would
-- write, fuzz/make_seeds.lua). The only choice not drawn from the text is the
-- name the fake org changes: the text's length picks it.
--
-- Raises (a finding) when
-- - changeset.decode raises, or refuses without a zcrm.error INVALID_CHANGES
--   (a body's own error is kept in details.error);
-- and for an accepted set, when
-- - a list of the format (changes, args, profiles) is a JSON object (read as
--   an empty list, its entries would be neither checked nor shown: F6);
-- - a change's effect (what apply shows, drawn from the body it sends),
--   applied to `before`, is not exactly `after` (labels, profile ids), or a
--   module at its `before` values would not be sent (apply's drift check);
-- - core.prepare_update refuses a body, or sends a profile by name or with a
--   `_delete` other than null;
-- - encode(t) does not decode back to an accepted set equal to t (so nothing
--   in the file goes unshown: what is not encoded back was not checked);
-- - policy.select with --only NAME / --exclude NAME (each module name and id
--   in the set) keeps other than exactly the changes with / without that name;
-- - the header `zcrm apply` prints, and the changes it shows, hold a control
--   byte (C0, DEL, so ESC too) other than the newline ending each line;
-- - the org check of apply (changes.check_against_org) refuses an org built
--   from the set itself, or accepts one where a module's API name, or a name
--   the set gives a profile, is another.

local core = require "zcrm.core"
local cjson = require "cjson.safe"
local changeset = require "zcrm.plan.changeset"
local changes = require "zcrm.plan.changeset_apply"
local policy = require "zcrm.plan.policy"
local cli = require "zcrm.cli.changes"

local function check(cond, ...)
  if not cond then error(string.format(...), 2) end
end

local function same(a, b, path)
  if type(a) ~= type(b) then error(path .. ": " .. type(a) .. " became " .. type(b), 0) end
  if type(a) ~= "table" then
    if a ~= b then error(path .. ": " .. tostring(a) .. " became " .. tostring(b), 0) end
    return
  end
  for k, v in pairs(a) do same(v, b[k], path .. "." .. tostring(k)) end
  for k in pairs(b) do
    if a[k] == nil then error(path .. "." .. tostring(k) .. ": appeared", 0) end
  end
end

local function id_set(profiles)
  local ids = {}
  for _, p in ipairs(profiles) do ids[#ids + 1] = p.id end
  table.sort(ids)
  return table.concat(ids, ",")
end

-- What `c`'s shown effect does to its `before` values.
local function shown_result(c)
  local d = changeset.effect(c)
  check(d.module == c.module and d.id == c.id, "%s: effect names another module", c.id)
  local has = {}
  for _, p in ipairs(c.before.profiles) do has[p.id] = true end
  for _, p in ipairs(d.granted) do
    check(not has[p.id], "%s: shown granting profile %s it has", c.id, p.id)
    has[p.id] = true
  end
  for _, p in ipairs(d.revoked) do
    check(has[p.id], "%s: shown revoking profile %s it lacks", c.id, p.id)
    has[p.id] = nil
  end
  local ids = {}
  for id in pairs(has) do ids[#ids + 1] = { id = id } end
  return {
    plural_label = d.plural_label and d.plural_label.new or c.before.plural_label,
    singular_label = d.singular_label and d.singular_label.new or c.before.singular_label,
    profiles = ids,
  }
end

-- Everything term.out writes while fn runs (io.stdout swapped for a buffer).
local function captured(fn, ...)
  local buf = {}
  local real = io.stdout
  io.stdout = { write = function(self, ...) -- luacheck: ignore 122 (term.out writes to io.stdout)
    for _, s in ipairs { ... } do buf[#buf + 1] = s end
    return self
  end, flush = function(self) return self end }
  local ok, err = pcall(fn, ...)
  io.stdout = real -- luacheck: ignore 122
  if not ok then error(err, 0) end
  return table.concat(buf)
end

local function plain_lines(text, what)
  check(text:sub(-1) == "\n", "%s does not end a line", what)
  local bad = text:sub(1, -2):find("[%z\1-\31\127]")
  check(not bad, "%s holds control byte %d: %q", what, bad and text:byte(bad) or 0, text)
end

local function printed(t)
  local head = captured(cli.header, t, "changes.json")
  local _, lines = head:gsub("\n", "")
  check(lines == 2, "the header is %d lines, not 2", lines)
  for line in head:gmatch("[^\n]*\n") do plain_lines(line, "the header") end
  local shown = captured(cli.show_changes, t.changes)
  for line in shown:gmatch("[^\n]*\n") do plain_lines(line, "the changes shown") end
end

-- Every list of the format (changes, args, profiles) is a list: an object in
-- its place would be read as an empty list, its entries neither checked nor shown.
local LISTS = { changes = true, args = true, profiles = true }
local function lists_are_lists(v, path)
  if type(v) ~= "table" then return end
  for k, x in pairs(v) do
    local p = path .. "." .. tostring(k)
    if LISTS[k] and type(x) == "table" then
      local n = 0
      for _ in pairs(x) do n = n + 1 end
      check(n == #x, "%s is an object, accepted as a list", p)
    end
    lists_are_lists(x, p)
  end
end

local function change_names(c) return { c.module, c.id } end

local function selection(t)
  local names = {}
  for _, c in ipairs(t.changes) do
    names[c.module], names[c.id] = true, true
  end
  for name in pairs(names) do
    local kept, err = policy.select(t.changes, { name }, nil, change_names)
    check(kept, "--only %q refused: %s", name, tostring(err))
    local left = assert(policy.select(t.changes, nil, { name }, change_names))
    local i, j = 1, 1
    for _, c in ipairs(t.changes) do
      if c.module == name or c.id == name then
        check(kept[i] == c, "--only %q left out %s", name, c.id)
        i = i + 1
      else
        check(left[j] == c, "--exclude %q left out %s", name, c.id)
        j = j + 1
      end
    end
    check(kept[i] == nil and left[j] == nil, "--only/--exclude %q kept more", name)
  end
  local none, err = policy.select(t.changes, { "No_Such_Module_zq7x" }, nil, change_names)
  check(none == nil and core.is_error(err) and err.code == "INVALID_ARGUMENT", "--only of an unknown name")
end

-- The org as the set describes it: each module by id with its API name, each
-- profile with the first name the set gives it (or a made-up one). Returns
-- mods, profiles, and whether the set names every profile consistently.
local function org_of(t)
  local mods, by_id, profiles, name_of, order, consistent = {}, {}, {}, {}, {}, true
  for _, c in ipairs(t.changes) do
    if not by_id[c.id] then
      by_id[c.id] = { id = c.id, api_name = c.module }
      mods[#mods + 1] = by_id[c.id]
    end
    for _, part in ipairs { "before", "after", "body" } do
      for _, p in ipairs(c[part].profiles or {}) do
        if not order[p.id] then order[p.id] = true; profiles[#profiles + 1] = { id = p.id } end
        if p.name ~= nil then
          if name_of[p.id] == nil then name_of[p.id] = p.name
          elseif name_of[p.id] ~= p.name then consistent = false end
        end
      end
    end
  end
  for _, p in ipairs(profiles) do p.name = name_of[p.id] or ("Profile " .. p.id) end
  return mods, profiles, consistent, name_of
end

local function org_check(t, size)
  local mods, profiles, consistent, named = org_of(t)
  local ok, err = changes.check_against_org(t.changes, mods, profiles)
  if consistent then
    check(ok, "refused by the org it describes: %s", tostring(err))
  else
    check(not ok and err.code == "INVALID_CHANGES", "one profile id under two names accepted")
    return
  end
  -- one name changed: a module's API name, or a profile's name
  local n = #mods + #profiles
  local k = size % n + 1
  local must_refuse
  if k <= #mods then
    mods[k].api_name = mods[k].api_name .. "_"
    must_refuse = true
  else
    local p = profiles[k - #mods]
    p.name = p.name .. "_"
    must_refuse = named[p.id] ~= nil
  end
  ok, err = changes.check_against_org(t.changes, mods, profiles)
  if must_refuse then
    check(not ok and core.is_error(err) and err.code == "INVALID_CHANGES", "a renamed %s accepted",
      k <= #mods and "module" or "profile")
  else
    check(ok, "a profile the set never names by name, renamed, refused: %s", tostring(err))
  end
end

return function(data)
  local ok, t, err = pcall(changeset.decode, data)
  check(ok, "decode raised: %s", tostring(t))
  if not t then
    check(core.is_error(err) and err.code == "INVALID_CHANGES" and err.kind == "validation",
      "refused without INVALID_CHANGES: %s", tostring(err))
    check(type(err.message) == "string" and not tostring(err):find("\n"), "a refusal not on one line")
    return
  end

  lists_are_lists(t, "set")
  for _, c in ipairs(t.changes) do
    same({ labels = { c.after.plural_label, c.after.singular_label }, ids = id_set(c.after.profiles) },
      (function(r) return { labels = { r.plural_label, r.singular_label }, ids = id_set(r.profiles) } end)(shown_result(c)),
      "shown " .. c.id)
    -- a module at its before values is sent its body (apply's drift check)
    local now = changeset.current_values { api_name = c.module, plural_label = c.before.plural_label,
      singular_label = c.before.singular_label, profiles = c.before.profiles }
    check(not changeset.difference(c.before, now), "%s: at its before values, yet drifted", c.id)
    local clean, perr = core.prepare_update(c.body)
    check(clean, "%s: prepare_update refused an accepted body: %s", c.id, tostring(perr))
    for _, p in ipairs(clean.profiles or {}) do
      check(p.name == nil and type(p.id) == "string", "%s: a profile sent by name", c.id)
      check(p._delete == nil or p._delete == cjson.null, "%s: _delete sent as %s", c.id, tostring(p._delete))
    end
  end

  local text = changeset.encode(t)
  local back, berr = changeset.decode(text)
  check(back, "encode wrote a set decode refuses: %s", tostring(berr))
  same(t, back, "encoded")

  selection(t)
  printed(t)
  if #t.changes > 0 then org_check(t, #data) end
end

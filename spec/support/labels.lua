-- spec/fixtures/labels.json: module labels and the verdict of the one label
-- rule the client (csrc/validate.c) and the emulator (emulator/text.c) share.
-- Each entry: label (or hex, for bytes that are not UTF-8), ok, why ("ok",
-- "char", "empty", "length" or "utf8"), note.
local cjson = require "cjson"
local files = require "spec.support.files"

local M = {}

--- The entries, each with `text`: the label's bytes.
function M.load()
  local list = cjson.decode(assert(files.read("spec/fixtures/labels.json")))
  for _, e in ipairs(list) do
    e.text = e.label or e.hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  end
  return list
end

--- A readable name for a busted description: the note, and the label
--- with characters outside printable ASCII as U+XXXX.
function M.name(e)
  local shown = e.label and e.label:gsub(utf8.charpattern, function(ch)
    local cp = utf8.codepoint(ch)
    return (cp >= 0x20 and cp < 0x7f) and ch or string.format("<U+%04X>", cp)
  end) or ("bytes " .. e.hex)
  return string.format("%s: %q (%s)", e.why, shown, e.note)
end

return M

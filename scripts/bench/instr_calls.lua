-- Counts the calls to one function in callgrind profiles (instr.sh):
--   lua5.4 instr_calls.lua FUNCTION FILE...
-- Callgrind compresses names: "cfn=(12) malloc" names id 12 once, later
-- lines say "cfn=(12)"; the "calls=N ..." line after a cfn line counts the
-- calls made from the current function.
local want, total = arg[1], 0
for i = 2, #arg do
  local names, current = {}, nil
  for line in io.lines(arg[i]) do
    local id, name = line:match("^cfn=%((%d+)%)%s*(.*)$")
    if id then
      if name ~= "" then names[id] = name end
      current = names[id]
    else
      local n = line:match("^calls=(%d+)")
      if n and current == want then total = total + tonumber(n) end
      -- fn= lines also define names shared with cfn= ones.
      local fid, fname = line:match("^fn=%((%d+)%)%s*(.*)$")
      if fid and fname ~= "" then names[fid] = fname end
    end
  end
end
print(total)

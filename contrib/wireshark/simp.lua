-- Wireshark / tshark dissector for SIMP, the Simple IMC Messaging Protocol
-- (one-to-one chat over UDP; see docs/PROTOCOL.md of simp, SPEC §2).
--
-- Install: copy this file into Wireshark's personal Lua plugins folder
-- (Help → About Wireshark → Folders → "Personal Lua Plugins"; on Linux and
-- macOS ~/.local/lib/wireshark/plugins/), then restart Wireshark or press
-- Ctrl+Shift+L. With tshark: tshark -X lua_script:simp.lua -r chat.pcap -V
--
-- It decodes UDP port 7777 (the SIMP port, §1.1), any other UDP datagram that
-- looks like SIMP (a heuristic: Type 1 or 2 and a Length that matches), and
-- whatever "Decode As… → SIMP" points at it. Fields (for display filters):
--   simp.type, simp.op, simp.op_name, simp.seq, simp.user, simp.length,
--   simp.payload
-- Expert infos flag every decoding rule of SPEC §2 a datagram breaks
-- (simp.malformed.*) and a payload on SYN, ACK, FIN or SYN+ACK
-- (simp.payload_ignored). The Info column reads like simp's wire trace:
--   SYN+ACK seq=0 user=bob
--   CHAT seq=1 user=alice "hello"

local simp = Proto("simp", "Simple IMC Messaging Protocol")

local HEADER_SIZE = 39
local USER_SIZE = 32
local SIMP_PORT = 7777

local TYPE_CONTROL = 0x01
local TYPE_CHAT = 0x02

local TYPE_NAMES = { [TYPE_CONTROL] = "Control", [TYPE_CHAT] = "Chat" }
local CONTROL_OPS = {
  [0x01] = "ERR",
  [0x02] = "SYN",
  [0x04] = "ACK",
  [0x06] = "SYN+ACK",
  [0x08] = "FIN",
}
local CHAT_OPS = { [0x01] = "CHAT" }

local f = {
  type = ProtoField.uint8("simp.type", "Type", base.HEX, TYPE_NAMES),
  op = ProtoField.uint8("simp.op", "Operation", base.HEX),
  op_name = ProtoField.string("simp.op_name", "Operation name"),
  seq = ProtoField.uint8("simp.seq", "Sequence", base.DEC),
  user = ProtoField.string("simp.user", "User"),
  length = ProtoField.uint32("simp.length", "Length", base.DEC),
  payload = ProtoField.string("simp.payload", "Payload"),
}
simp.fields = { f.type, f.op, f.op_name, f.seq, f.user, f.length, f.payload }

local e = {
  too_short = ProtoExpert.new("simp.malformed.too_short",
    "Datagram shorter than the 39-byte header (SPEC §2.1)",
    expert.group.MALFORMED, expert.severity.ERROR),
  length = ProtoExpert.new("simp.malformed.length",
    "Length does not match the bytes after the header (SPEC §2.1)",
    expert.group.MALFORMED, expert.severity.ERROR),
  type = ProtoExpert.new("simp.malformed.type",
    "Unknown Type (SPEC §2.1)",
    expert.group.MALFORMED, expert.severity.ERROR),
  op = ProtoExpert.new("simp.malformed.op",
    "Operation not defined for this Type (SPEC §2.1)",
    expert.group.MALFORMED, expert.severity.ERROR),
  seq = ProtoExpert.new("simp.malformed.seq",
    "Sequence other than 0 or 1 (SPEC §2.1)",
    expert.group.MALFORMED, expert.severity.ERROR),
  user = ProtoExpert.new("simp.malformed.user",
    "Chat datagram without a user name (SPEC §2.2)",
    expert.group.MALFORMED, expert.severity.ERROR),
  payload_ignored = ProtoExpert.new("simp.payload_ignored",
    "Payload on SYN, ACK, FIN or SYN+ACK: the receiver ignores it (SPEC §2.4)",
    expert.group.PROTOCOL, expert.severity.WARN),
}
simp.experts = {
  e.too_short, e.length, e.type, e.op, e.seq, e.user, e.payload_ignored,
}

-- The text of `range` as simp's trace shows it: a JSON string literal.
local function quote(range)
  local out = { '"' }
  for i = 0, range:len() - 1 do
    local b = range:range(i, 1):uint()
    if b == 0x22 then
      out[#out + 1] = '\\"'
    elseif b == 0x5c then
      out[#out + 1] = "\\\\"
    elseif b == 0x0a then
      out[#out + 1] = "\\n"
    elseif b == 0x0d then
      out[#out + 1] = "\\r"
    elseif b == 0x09 then
      out[#out + 1] = "\\t"
    elseif b == 0x08 then
      out[#out + 1] = "\\b"
    elseif b == 0x0c then
      out[#out + 1] = "\\f"
    elseif b < 0x20 or b == 0x7f then
      out[#out + 1] = string.format("\\u%04x", b)
    elseif b >= 0x80 then
      out[#out + 1] = "\xef\xbf\xbd" -- U+FFFD, as simp shows it (§2.3)
    else
      out[#out + 1] = string.char(b)
    end
  end
  out[#out + 1] = '"'
  return table.concat(out)
end

-- The user name of §2.2: bytes before the first 0x00, trailing spaces trimmed.
-- Returns the name and how many bytes of the field it covers.
local function user_name(range)
  local bytes = range:bytes()
  local n = 0
  while n < bytes:len() and bytes:get_index(n) ~= 0 do n = n + 1 end
  while n > 0 and bytes:get_index(n - 1) == 0x20 do n = n - 1 end
  local chars = {}
  for i = 0, n - 1 do
    local b = bytes:get_index(i)
    chars[#chars + 1] = (b >= 0x80) and "\xef\xbf\xbd" or string.char(b)
  end
  return table.concat(chars), n
end

function simp.dissector(tvb, pinfo, tree)
  local size = tvb:len()
  pinfo.cols.protocol = simp.name
  local root = tree:add(simp, tvb())

  if size < HEADER_SIZE then
    root:add_proto_expert_info(e.too_short, string.format(
      "Datagram of %d bytes, shorter than the %d-byte header (SPEC §2.1)",
      size, HEADER_SIZE))
    pinfo.cols.info = string.format("Malformed: %d bytes, too short", size)
    if size > 0 then root:add(tvb(), "Data") end
    return size
  end

  local problems = {}
  local type_value = tvb(0, 1):uint()
  local op_value = tvb(1, 1):uint()
  local seq_value = tvb(2, 1):uint()
  local length_value = tvb(35, 4):uint()
  local after = size - HEADER_SIZE

  local type_item = root:add(f.type, tvb(0, 1))
  local ops = (type_value == TYPE_CONTROL and CONTROL_OPS)
    or (type_value == TYPE_CHAT and CHAT_OPS) or nil
  if ops == nil then
    type_item:append_text(" (unknown)")
    type_item:add_proto_expert_info(e.type, string.format(
      "Unknown Type 0x%02x: 0x01 (control) or 0x02 (chat) (SPEC §2.1)",
      type_value))
    problems[#problems + 1] = "unknown Type"
  end

  local op_name = ops and ops[op_value]
  local op_item = root:add(f.op, tvb(1, 1))
  if op_name then
    op_item:append_text(" (" .. op_name .. ")")
    root:add(f.op_name, tvb(1, 1), op_name):set_generated()
  elseif ops then
    op_item:append_text(" (unknown)")
    op_item:add_proto_expert_info(e.op, string.format(
      "Operation 0x%02x is not defined for Type 0x%02x (SPEC §2.1)",
      op_value, type_value))
    problems[#problems + 1] = "unknown Operation"
  end

  local seq_item = root:add(f.seq, tvb(2, 1))
  if seq_value > 1 then
    seq_item:add_proto_expert_info(e.seq, string.format(
      "Sequence %d: it is 0 or 1 (SPEC §2.1)", seq_value))
    problems[#problems + 1] = "bad Sequence"
  end

  local name, name_len = user_name(tvb(3, USER_SIZE))
  local user_item = root:add(f.user, tvb(3, math.max(name_len, 1)), name)
  if name == "" and type_value == TYPE_CHAT then
    user_item:add_proto_expert_info(e.user)
    problems[#problems + 1] = "no user"
  end

  local length_item = root:add(f.length, tvb(35, 4))
  if length_value ~= after then
    length_item:add_proto_expert_info(e.length, string.format(
      "Length says %d, but %d bytes follow the header (SPEC §2.1)",
      length_value, after))
    problems[#problems + 1] = "Length mismatch"
  end

  -- Chat and ERR show their text, even empty, like the wire trace.
  local has_text = type_value == TYPE_CHAT
    or (type_value == TYPE_CONTROL and op_value == 0x01)
  local text = has_text and ' ""' or ""
  if after > 0 then
    local payload = tvb(HEADER_SIZE, after)
    local payload_item = root:add(f.payload, payload)
    if has_text then
      text = " " .. quote(payload)
    elseif op_name then
      payload_item:add_proto_expert_info(e.payload_ignored, string.format(
        "%s carries a payload of %d bytes: it is ignored (SPEC §2.4)",
        op_name, after))
      problems[#problems + 1] = "payload ignored"
    end
  end

  local summary = string.format("%s seq=%d user=%s%s",
    op_name or string.format("type=0x%02x op=0x%02x", type_value, op_value),
    seq_value, name, text)
  root:append_text(", " .. summary)
  if #problems > 0 then
    summary = summary .. " [" .. table.concat(problems, ", ") .. "]"
  end
  pinfo.cols.info = summary
  return size
end

-- Heuristic for other ports: a whole header, a known Type and a Length that
-- matches the datagram.
local function heuristic(tvb, pinfo, tree)
  local size = tvb:len()
  if size < HEADER_SIZE then return false end
  local type_value = tvb(0, 1):uint()
  if type_value ~= TYPE_CONTROL and type_value ~= TYPE_CHAT then
    return false
  end
  if tvb(35, 4):uint() ~= size - HEADER_SIZE then return false end
  simp.dissector(tvb, pinfo, tree)
  return true
end

DissectorTable.get("udp.port"):add(SIMP_PORT, simp)
simp:register_heuristic("udp", heuristic)

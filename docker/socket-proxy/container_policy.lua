-- The body of POST /containers/create, parsed as JSON and checked against an allowlist:
-- a container passes only if it is a flow-run container as the Docker work pool's
-- template makes it (deploy/work_pool.py). Whoever drives the worker (a rewritten pool
-- template, a modified worker) gets the same answer: 403, naming the refused setting.
--
-- What passes:
--   Image       a tag of the bundle's repository (MLTOY_IMAGE's), by name
--   User        "uid:gid", both numeric and not 0 (a name could be root in some image)
--   Cmd         absent, or the worker's `prefect flow-run execute`; Entrypoint absent
--   Env, Labels, Tty/Attach*/OpenStdin/StdinOnce, NetworkDisabled
--   HostConfig  NetworkMode = the compose network (MLTOY_NETWORK);
--               Binds = only "<MLTOY_SETTINGS_VOLUME>:/run/mltoy:ro";
--               Mounts = only an anonymous volume on the scratch dir (MLTOY_FLOW_SCRATCH:
--               /tmp, where the run clones its commit);
--               Tmpfs = only on MLTOY_FLOW_TMPFS paths, with nosuid, nodev and a size;
--               ReadonlyRootfs true; CapDrop has ALL; SecurityOpt = no-new-privileges;
--               Memory <= MLTOY_FLOW_MEMORY_MAX with MemorySwap = Memory;
--               NanoCpus <= MLTOY_FLOW_CPUS; PidsLimit <= MLTOY_FLOW_PIDS_MAX;
--               LogConfig json-file/local with max-size; AutoRemove, Init; no restart
--   NetworkingConfig: only the compose network, with no endpoint settings
-- Any other key is refused unless its value is the engine's zero value (null, false, 0,
-- "", [], {}), which is what the engine uses when the key is absent.
--
-- Parsing differences with the engine (Go's encoding/json) that matter here:
--  * Go matches keys case-insensitively (and folds a few non-ASCII letters, such as the
--    Kelvin sign, to ASCII ones): keys are compared lower-cased, a key with non-ASCII
--    bytes is refused, and two keys that differ only in case are refused.
--  * For a repeated key both keep the last value (cjson builds a table in order).
--  * The engine also reads HostConfig fields at the top level of the body when the
--    "HostConfig" key is absent (a deprecated form): HostConfig is required here, and no
--    HostConfig field is allowed at the top level.
--  * Numbers must be plain JSON numbers (no NaN, Infinity or hex, which Go refuses too).

local cjson = require("cjson")
cjson.decode_invalid_numbers(false)
cjson.decode_max_depth(20)

local NULL = cjson.null

local function required_env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error("docker-proxy: " .. name .. " is required (compose.yaml sets it)")
  end
  return value
end

local function size_bytes(text)
  local digits, unit = string.match(string.lower(text), "^(%d+)([bkmg]?)$")
  if not digits then
    error("docker-proxy: " .. text .. " is not a size such as 512m or 2g")
  end
  local factor = ({ [""] = 1, b = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3 })[unit]
  return tonumber(digits) * factor
end

local function split(text, separator)
  local parts = {}
  for part in string.gmatch(text, "[^" .. separator .. "]+") do
    parts[#parts + 1] = part
  end
  return parts
end

-- The policy's values, from the proxy's environment (compose.yaml, x-flow-containers).
local IMAGE = required_env("MLTOY_IMAGE")
local REPOSITORY = string.match(IMAGE, "^(.*):[^:/]+$") or error("MLTOY_IMAGE needs a tag")
local NETWORK = required_env("MLTOY_NETWORK")
local SETTINGS_BIND = required_env("MLTOY_SETTINGS_VOLUME") .. ":/run/mltoy:ro"
local SCRATCH = os.getenv("MLTOY_FLOW_SCRATCH") or "/tmp"
local TMPFS_PATHS = os.getenv("MLTOY_FLOW_TMPFS") or "/var/tmp,/home/mltoy"
local TMPFS = {}
for _, path in ipairs(split(TMPFS_PATHS, ",")) do
  TMPFS[path] = true
end
local MEMORY_MAX = size_bytes(os.getenv("MLTOY_FLOW_MEMORY_MAX") or "2g")
local NANO_CPUS_MAX = math.floor((tonumber(os.getenv("MLTOY_FLOW_CPUS") or "1") * 1e9) + 0.5)
local PIDS_MAX = tonumber(os.getenv("MLTOY_FLOW_PIDS_MAX") or "512")
local COMMAND = { "prefect", "flow-run", "execute" }

-- A refusal: raised as a table so that a Lua error (a bug) is told apart.
local Refused = {}
Refused.__index = Refused

local function refuse(path, reason)
  error(setmetatable({ message = path .. ": " .. reason }, Refused), 0)
end

local function show(value)
  local ok, text = pcall(cjson.encode, value)
  text = ok and text or tostring(value)
  if #text > 120 then
    text = string.sub(text, 1, 117) .. "..."
  end
  return text
end

local function is_zero(value)
  if value == nil or value == NULL or value == false or value == 0 or value == "" then
    return true
  end
  return type(value) == "table" and next(value) == nil
end

local function is_array(value)
  if type(value) ~= "table" then
    return false
  end
  local n = 0
  for _ in pairs(value) do
    n = n + 1
  end
  return n == #value
end

-- {lower-cased key = {name = original key, value = value}}; refuses ambiguous keys.
local function fold_keys(path, object)
  if type(object) ~= "table" or is_array(object) and next(object) ~= nil then
    refuse(path, "must be a JSON object")
  end
  local folded = {}
  for key, value in pairs(object) do
    if type(key) ~= "string" or string.find(key, "[^\32-\126]") then
      refuse(path, "key " .. show(key) .. " has non-ASCII characters")
    end
    local lower = string.lower(key)
    if folded[lower] then
      refuse(path, "keys " .. folded[lower].name .. " and " .. key .. " differ only in case")
    end
    folded[lower] = { name = key, value = value }
  end
  return folded
end

local function expect_string(path, value)
  if type(value) ~= "string" then
    refuse(path, "must be a string, not " .. show(value))
  end
  return value
end

local function expect_number(path, value, low, high)
  if type(value) ~= "number" or value ~= math.floor(value) or value < low or value > high then
    refuse(path, show(value) .. " is not a whole number from " .. low .. " to " .. high)
  end
  return value
end

local function expect_bool(path, value)
  if value ~= NULL and type(value) ~= "boolean" then
    refuse(path, "must be true or false")
  end
end

local function expect_strings(path, value)
  if value == NULL then
    return {}
  end
  if not is_array(value) then
    refuse(path, "must be a list of strings")
  end
  for i, item in ipairs(value) do
    expect_string(path .. "[" .. (i - 1) .. "]", item)
  end
  return value
end

local function expect_map(path, value)
  if value == NULL then
    return {}
  end
  if type(value) ~= "table" or (is_array(value) and next(value) ~= nil) then
    refuse(path, "must be a JSON object")
  end
  return value
end

local function expect_string_map(path, value)
  local map = expect_map(path, value)
  for key, item in pairs(map) do
    expect_string(path .. "." .. tostring(key), item)
  end
  return map
end

-- Checks each key of `object` with checks[lower-cased key]; a key without a check must
-- hold a zero value. `required` lists keys that must be present (and checked).
local function check_object(path, object, checks, required)
  local folded = fold_keys(path, object)
  for _, name in ipairs(required or {}) do
    if folded[name] == nil or folded[name].value == NULL then
      refuse(path, name .. " must be set (the work pool's template sets it)")
    end
  end
  for lower, entry in pairs(folded) do
    local where = path == "" and entry.name or path .. "." .. entry.name
    local check = checks[lower]
    if check then
      check(where, entry.value, folded)
    elseif not is_zero(entry.value) then
      refuse(where, show(entry.value) .. " is not allowed for a flow-run container")
    end
  end
  return folded
end

local function is_bundle_image(image)
  local repository, tag = string.match(image, "^(.*):([%w_][%w_.%-]*)$")
  return repository == REPOSITORY and #tag <= 128
end

local HOST_CONFIG = {
  networkmode = function(path, value)
    if value ~= NETWORK then
      refuse(path, show(value) .. ": only the stack's network " .. NETWORK .. " is allowed")
    end
  end,
  binds = function(path, value)
    for i, bind in ipairs(expect_strings(path, value)) do
      if bind ~= SETTINGS_BIND then
        refuse(path .. "[" .. (i - 1) .. "]", show(bind) .. ": only " .. SETTINGS_BIND
          .. " may be mounted")
      end
    end
  end,
  mounts = function(path, value)
    if value == NULL then
      return
    end
    if not is_array(value) then
      refuse(path, "must be a list")
    end
    for i, mount in ipairs(value) do
      local where = path .. "[" .. (i - 1) .. "]"
      check_object(where, mount, {
        type = function(p, v)
          if v ~= "volume" then
            refuse(p, show(v) .. ": only an anonymous volume on " .. SCRATCH .. " is allowed")
          end
        end,
        target = function(p, v)
          if v ~= SCRATCH then
            refuse(p, show(v) .. ": only an anonymous volume on " .. SCRATCH .. " is allowed")
          end
        end,
        readonly = expect_bool,
      }, { "type", "target" })
    end
  end,
  tmpfs = function(path, value)
    for target, options in pairs(expect_string_map(path, value)) do
      local where = path .. "." .. target
      if not TMPFS[target] then
        refuse(where, "a tmpfs is allowed only on " .. TMPFS_PATHS)
      end
      local flags = {}
      for _, option in ipairs(split(options, ",")) do
        flags[string.match(option, "^[^=]*")] = true
      end
      if not (flags.nosuid and flags.nodev and flags.size) or flags.exec or flags.suid
        or flags.dev then
        refuse(where, show(options) .. ": needs nosuid, nodev and a size")
      end
    end
  end,
  readonlyrootfs = function(path, value)
    if value ~= true then
      refuse(path, "must be true: a read-only root filesystem")
    end
  end,
  capdrop = function(path, value)
    for _, cap in ipairs(expect_strings(path, value)) do
      if string.upper(cap) == "ALL" then
        return
      end
    end
    refuse(path, show(value) .. ": must drop ALL capabilities")
  end,
  securityopt = function(path, value)
    local options = expect_strings(path, value)
    local allowed = {
      ["no-new-privileges"] = true,
      ["no-new-privileges:true"] = true,
      ["no-new-privileges=true"] = true,
    }
    if #options ~= 1 or not allowed[options[1]] then
      refuse(path, show(value) .. ": only no-new-privileges is allowed")
    end
  end,
  memory = function(path, value)
    expect_number(path, value, 1, MEMORY_MAX)
  end,
  memoryswap = function(path, value, folded)
    if value ~= folded.memory.value then
      refuse(path, show(value) .. ": must equal Memory (no swap on top of the limit)")
    end
  end,
  nanocpus = function(path, value)
    expect_number(path, value, 1, NANO_CPUS_MAX)
  end,
  pidslimit = function(path, value)
    expect_number(path, value, 1, PIDS_MAX)
  end,
  logconfig = function(path, value)
    check_object(path, value, {
      type = function(p, v)
        if v ~= "json-file" and v ~= "local" then
          refuse(p, show(v) .. ": only json-file or local logs (rotated) are allowed")
        end
      end,
      config = function(p, v)
        local config = expect_string_map(p, v)
        for key in pairs(config) do
          if key ~= "max-size" and key ~= "max-file" and key ~= "compress" then
            refuse(p .. "." .. key, "only max-size, max-file and compress are allowed")
          end
        end
        if config["max-size"] == nil then
          refuse(p, "max-size must be set (log rotation)")
        end
      end,
    }, { "type", "config" })
  end,
  autoremove = expect_bool,
  init = expect_bool,
  restartpolicy = function(path, value)
    check_object(path, value, {
      name = function(p, v)
        if v ~= "" and v ~= "no" then
          refuse(p, show(v) .. ": flow-run containers are never restarted")
        end
      end,
    })
  end,
}

local HOST_CONFIG_REQUIRED = {
  "networkmode", "readonlyrootfs", "capdrop", "securityopt", "memory", "memoryswap",
  "nanocpus", "pidslimit", "logconfig",
}

local NETWORKING_CONFIG = {
  endpointsconfig = function(path, value)
    for name, endpoint in pairs(expect_map(path, value)) do
      if name ~= NETWORK then
        refuse(path .. "." .. tostring(name), "only the stack's network " .. NETWORK
          .. " is allowed")
      end
      check_object(path .. "." .. name, endpoint == NULL and {} or endpoint, {})
    end
  end,
}

local CONFIG = {
  image = function(path, value)
    if not is_bundle_image(expect_string(path, value)) then
      refuse(path, show(value) .. ": only tags of " .. REPOSITORY .. " are allowed")
    end
  end,
  user = function(path, value)
    local uid, gid = string.match(expect_string(path, value), "^(%d+):(%d+)$")
    if not uid or tonumber(uid) == 0 or tonumber(gid) == 0 then
      refuse(path, show(value) .. ": must be a numeric uid:gid, neither of them 0 (root)")
    end
  end,
  cmd = function(path, value)
    local command = expect_strings(path, value)
    if #command == 0 then
      return
    end
    local same = #command == #COMMAND
    for i, word in ipairs(COMMAND) do
      same = same and command[i] == word
    end
    if not same then
      refuse(path, show(value) .. ": only the worker's " .. table.concat(COMMAND, " ")
        .. " is allowed")
    end
  end,
  env = expect_strings,
  labels = expect_string_map,
  volumes = function(path, value)
    for target in pairs(expect_map(path, value)) do
      if target ~= "/run/mltoy" and target ~= SCRATCH then
        refuse(path .. "." .. tostring(target), "only /run/mltoy and " .. SCRATCH
          .. " may be volumes")
      end
    end
  end,
  tty = expect_bool,
  openstdin = expect_bool,
  stdinonce = expect_bool,
  attachstdin = expect_bool,
  attachstdout = expect_bool,
  attachstderr = expect_bool,
  networkdisabled = expect_bool,
  hostconfig = function(path, value)
    check_object(path, value, HOST_CONFIG, HOST_CONFIG_REQUIRED)
  end,
  networkingconfig = function(path, value)
    check_object(path, value, NETWORKING_CONFIG)
  end,
}

local M = {}

-- nil if the body is an allowed flow-run container, else the reason. Never raises: an
-- error in this code refuses the container too.
function M.refusal(body)
  local ok, document = pcall(cjson.decode, body)
  if not ok then
    return "the body is not valid JSON (" .. tostring(document) .. ")"
  end
  local checked, err = pcall(check_object, "", document, CONFIG, { "image", "user", "hostconfig" })
  if checked then
    return nil
  end
  if getmetatable(err) == Refused then
    return err.message
  end
  return "internal error in the proxy's check: " .. tostring(err)
end

-- HAProxy (haproxy.cfg): txn.refused is set before this action runs; the action clears
-- it for an allowed container, so a container is refused unless this check passed.
if core then
  core.register_action("check_container_create", { "http-req" }, function(txn)
    local reason = M.refusal(txn.sf:req_body() or "")
    if reason == nil then
      txn:unset_var("txn.refused")
      return
    end
    txn:set_var("txn.refused", cjson.encode({
      message = "docker-proxy refused the container: " .. reason,
    }))
    txn:Warning("refused POST /containers/create: " .. reason)
  end, 0)
end

return M

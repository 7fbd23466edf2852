-- Argo CD health of a GemmaDeployment (serving.gemma.dev), following kstatus, as Flux does.
-- Argo CD runs it with `obj` set to the live object and expects a table {status, message}.
--
-- 1. being deleted                                   -> Progressing
-- 2. status.observedGeneration differs from generation -> Progressing (the operator has not
--    looked at the latest spec yet)
-- 3. Reconciling=True -> Progressing;  Stalled=True -> Degraded (the spec cannot be served)
-- 4. Ready=True -> Healthy;  Ready False or Unknown -> Progressing
-- One deliberate difference from kstatus: kstatus calls an object without any status Current,
-- but a GemmaDeployment always gets a status from the operator, so none yet means the operator
-- has not seen it (or is not running): Progressing, not a premature Healthy.
local hs = {}

local function condition(conditions, kind)
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason .. ": " .. c.message
    end
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted"
  return hs
end

local status = obj.status
if status == nil or (status.observedGeneration == nil and status.conditions == nil) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if status.observedGeneration ~= nil and generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    .. " (status describes " .. tostring(status.observedGeneration) .. ")"
  return hs
end

local conditions = status.conditions or {}
local reconciling = condition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = text(reconciling, "Reconciling")
  return hs
end

local stalled = condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled, "Stalled")
  return hs
end

local ready = condition(conditions, "Ready")
if ready ~= nil and ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = text(ready, "Not ready")
  return hs
end

hs.status = "Healthy"
hs.message = text(ready, "Ready")
return hs

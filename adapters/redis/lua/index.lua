-- The per-state indexes and the history of a queue's jobs, kept by every script that moves a job
-- between states (submit, claim, finish, retry, cancel, forget). Defined here and prepended to them.
-- "<tag>:job:<id>" is a record; "<tag>:jobs:<state>" a sorted set of its queue's job ids by the time
-- they entered that state (read, and repaired, by adapters/redis/job_lists.py), for every state but
-- active, whose list is the lease set itself (one message per active job, by lease deadline), so a
-- claim and a completion cost no index write of their own; "<tag>:history:<hour>" a hash of counts
-- "<minute>:<event>" (accepted, completed, failed, retried), kept 8 days.
-- A script that moves many jobs (a claim: its outcomes and its messages) calls index_batch() first and
-- index_flush() before it returns: its index and history writes are then gathered and made once per
-- key (one ZREM, one ZADD, one HINCRBY per history field), not once per job; the last move of a job
-- within the script wins, as if each had been written at once.
local batch = nil
local function index_batch() batch = {indexes = {}, history = {}} end
local function index_write(key, id, score)  -- score false: remove
  if not batch then
    if score then redis.call('ZADD', key, score, id) else redis.call('ZREM', key, id) end
    return
  end
  batch.indexes[key] = batch.indexes[key] or {}
  batch.indexes[key][id] = score
end
local function index_move(job_key, from, to, at)
  local tag, id = string.match(job_key, '^(.*:)job:(.*)$')
  if from and from ~= '' and from ~= to and from ~= 'active' then index_write(tag .. 'jobs:' .. from, id, false) end
  if to and to ~= 'active' then index_write(tag .. 'jobs:' .. to, id, at) end
end
local function errors_add(job_key, error, at)  -- the record's `errors`: a JSON list, oldest first
  local raw = redis.call('HGET', job_key, 'errors')
  local errors = raw and cjson.decode(raw) or {}
  table.insert(errors, {attempt = tonumber(redis.call('HGET', job_key, 'attempts')) or 0, error = error,
                        at = tonumber(at)})
  redis.call('HSET', job_key, 'errors', cjson.encode(errors))
end
local function history_incr(key, field, by)
  if redis.call('HINCRBY', key, field, by) == by then
    redis.call('EXPIRE', key, 691200)  -- 8 days: the hourly history reaches 7 days back
  end
end
local function history_add(job_key, event, at)
  local key = string.match(job_key, '^(.*:)job:') .. 'history:' .. math.floor(at / 3600)
  local field = math.floor(at / 60) .. ':' .. event
  if not batch then return history_incr(key, field, 1) end
  batch.history[key] = batch.history[key] or {}
  batch.history[key][field] = (batch.history[key][field] or 0) + 1
end
local function index_flush()
  if not batch then return end
  for key, members in pairs(batch.indexes) do
    local removed, added = {}, {}
    for id, score in pairs(members) do
      if score then
        table.insert(added, score)
        table.insert(added, id)
      else
        table.insert(removed, id)
      end
    end
    for i = 1, #removed, 1000 do  -- unpack() fails past Lua's stack limit (~8,000 values)
      redis.call('ZREM', key, unpack(removed, i, math.min(i + 999, #removed)))
    end
    for i = 1, #added, 1000 do  -- score, member pairs
      redis.call('ZADD', key, unpack(added, i, math.min(i + 999, #added)))
    end
  end
  for key, fields in pairs(batch.history) do
    for field, by in pairs(fields) do history_incr(key, field, by) end
  end
  batch = nil
end

-- The per-state indexes and the history of a queue's jobs, kept by every script that moves a job
-- between states (submit, claim, finish, retry, cancel, forget). Defined here and prepended to them.
-- "<tag>:job:<id>" is a record; "<tag>:jobs:<state>" a sorted set of its queue's job ids by the time
-- they entered that state (read, and repaired, by adapters/redis/job_lists.py), for every state but
-- active, whose list is the lease set itself (one message per active job, by lease deadline), so a
-- claim and a completion cost no index write of their own; "<tag>:history:<hour>" a hash of counts
-- "<minute>:<event>" (accepted, completed, failed, retried), kept 8 days.
local function index_move(job_key, from, to, at)
  local tag, id = string.match(job_key, '^(.*:)job:(.*)$')
  if from and from ~= '' and from ~= to and from ~= 'active' then redis.call('ZREM', tag .. 'jobs:' .. from, id) end
  if to and to ~= 'active' then redis.call('ZADD', tag .. 'jobs:' .. to, at, id) end
end
local function errors_add(job_key, error, at)  -- the record's `errors`: a JSON list, oldest first
  local raw = redis.call('HGET', job_key, 'errors')
  local errors = raw and cjson.decode(raw) or {}
  table.insert(errors, {attempt = tonumber(redis.call('HGET', job_key, 'attempts')) or 0, error = error,
                        at = tonumber(at)})
  redis.call('HSET', job_key, 'errors', cjson.encode(errors))
end
local function history_add(job_key, event, at)
  local key = string.match(job_key, '^(.*:)job:') .. 'history:' .. math.floor(at / 3600)
  if redis.call('HINCRBY', key, math.floor(at / 60) .. ':' .. event, 1) == 1 then
    redis.call('EXPIRE', key, 691200)  -- 8 days: the hourly history reaches 7 days back
  end
end

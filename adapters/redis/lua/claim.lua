-- KEYS: queue, leases, stats, paused flag, priorities in use, schedule. ARGV: now, lease seconds,
-- job key prefix, how many to claim, retention, seconds of waiting worth one priority level, the
-- schedule's now (now as the schedule scores it), then (job id, result, message) for each job
-- completed since the last call: their outcomes are recorded in the same round trip (as BullMQ's
-- moveToFinished fetches the next job). Due retries, delayed jobs and expired leases are moved
-- first (move_due.lua), so a retry is claimable at its time, not at a scheduler tick.
-- Returns {message, attempts, max attempts, priority, ready at, trace} per claimed message (ready at:
-- when it became claimable, the latest of updatedAt, runAt and nextAttemptAt before this claim, as
-- JobRecord.ready_at says, '0' for a message without a record; trace: the record's traceparent and
-- tracestate, "<traceparent>\n<tracestate>", '' without); copies of jobs that already finished, and
-- cancelled jobs, are dropped.
-- Returns 0 (after recording the completions) while the queue is paused.
-- A message is framed "<job id>[ <format>]\n<huey message>" (adapters/redis/framing.py).
local now = tonumber(ARGV[1])
index_batch()
for i = 8, #ARGV, 3 do
  finish(ARGV[3] .. ARGV[i], KEYS[3], KEYS[2], 'completed', 'result', ARGV[i + 1], ARGV[1], 'completed',
         ARGV[5], ARGV[i + 2])
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  index_flush()
  return 0
end
move_due(KEYS[1], KEYS[2], KEYS[6], KEYS[5], ARGV[3], ARGV[1], ARGV[7], 100)
-- Priorities: the queue list holds priority 5 (the default), "<queue>:p<n>" the others, and
-- KEYS[5] which of those may hold messages. The next message is the oldest of the list whose
-- oldest message ranks highest: priority + seconds waited / ARGV[6] (aging: none starves).
local prios, aging = redis.call('SMEMBERS', KEYS[5]), tonumber(ARGV[6])
local function next_list()
  if #prios == 0 then return KEYS[1] end
  local best, best_rank, kept = KEYS[1], nil, {}
  local function rank_of(list, priority)
    local oldest = redis.call('LINDEX', list, -1)
    if not oldest then return nil end
    local created = redis.call('HGET', ARGV[3] .. string.match(oldest, '^[^ \n]*'), 'createdAt')
    return priority + (now - (tonumber(created) or now)) / aging
  end
  best_rank = rank_of(KEYS[1], 5)
  for _, p in ipairs(prios) do
    local list = KEYS[1] .. ':p' .. p
    local rank = rank_of(list, tonumber(p))
    if rank then
      table.insert(kept, p)
      if not best_rank or rank > best_rank then best, best_rank = list, rank end
    else
      redis.call('SREM', KEYS[5], p)
    end
  end
  prios = kept
  return best
end
local claimed, wanted, popped = {}, tonumber(ARGV[4]), 0
while #claimed < wanted * 6 and popped < wanted * 4 do
  local data = redis.call('RPOP', next_list())
  if not data then break end
  popped = popped + 1
  local job = ARGV[3] .. string.match(data, '^[^ \n]*')
  local state = redis.call('HGET', job, 'state')
  if state ~= 'completed' and state ~= 'dead' and state ~= 'cancelled' then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), data)
    local attempts, max_attempts, priority, ready, trace = 1, 0, 5, '0', ''
    if state then
      local f = redis.call('HMGET', job, 'maxAttempts', 'priority', 'updatedAt', 'runAt', 'nextAttemptAt',
                          'traceparent', 'tracestate')
      max_attempts, priority = tonumber(f[1]) or 0, tonumber(f[2]) or 5
      ready = tostring(math.max(tonumber(f[3]) or 0, tonumber(f[4]) or 0, tonumber(f[5]) or 0))
      if f[6] then trace = f[6] .. '\n' .. (f[7] or '') end
      attempts = redis.call('HINCRBY', job, 'attempts', 1)
      redis.call('HSET', job, 'state', 'active', 'updatedAt', ARGV[1], 'nextAttemptAt', '')
      index_move(job, state, 'active', now)
    end
    table.insert(claimed, data)
    table.insert(claimed, attempts)
    table.insert(claimed, max_attempts)
    table.insert(claimed, priority)
    table.insert(claimed, ready)
    table.insert(claimed, trace)
  end
end
index_flush()
return claimed

-- KEYS: queue, leases, stats, paused flag. ARGV: now, lease seconds, job key prefix, how many
-- to claim, retention, then (job id, result, message) for each job completed since
-- the last call: their outcomes are recorded in the same round trip (as BullMQ's
-- moveToFinished fetches the next job). Returns {message, attempts, max attempts}
-- per claimed message; copies of jobs that already finished, and cancelled jobs, are dropped.
-- Returns 0 (after recording the completions) while the queue is paused.
-- A message is framed "<job id>[ <format>]\n<huey message>" (adapters/redis/scripts.py: frame_message).
local now = tonumber(ARGV[1])
for i = 6, #ARGV, 3 do
  finish(ARGV[3] .. ARGV[i], KEYS[3], KEYS[2], 'completed', 'result', ARGV[i + 1], ARGV[1], 'completed',
         ARGV[5], ARGV[i + 2])
end
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local claimed, wanted, popped = {}, tonumber(ARGV[4]), 0
while #claimed < wanted * 3 and popped < wanted * 4 do
  local data = redis.call('RPOP', KEYS[1])
  if not data then break end
  popped = popped + 1
  local job = ARGV[3] .. string.match(data, '^[^ \n]*')
  local state = redis.call('HGET', job, 'state')
  if state ~= 'completed' and state ~= 'dead' and state ~= 'cancelled' then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), data)
    local attempts, max_attempts = 1, 0
    if state then
      attempts = redis.call('HINCRBY', job, 'attempts', 1)
      redis.call('HSET', job, 'state', 'active', 'updatedAt', ARGV[1], 'nextAttemptAt', '')
      max_attempts = tonumber(redis.call('HGET', job, 'maxAttempts') or 0)
    end
    table.insert(claimed, data)
    table.insert(claimed, attempts)
    table.insert(claimed, max_attempts)
  end
end
return claimed

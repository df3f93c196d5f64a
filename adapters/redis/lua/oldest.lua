-- When the queue's oldest waiting job became claimable (JobRecord.ready_at: the latest of its
-- updatedAt, runAt and nextAttemptAt), for forkline_queue_oldest_waiting_seconds. Read-only.
-- KEYS: queue list, priorities in use, schedule. ARGV: job key prefix, the schedule's now.
-- Looked at: the next message of each priority's list (the one waiting longest in it) and the
-- schedule's first due entry (due, but not moved yet: nothing claims). A cancelled job's message,
-- dropped at its next claim, is not counted. Returns the time as a string, or false for none.
local oldest = nil
local function consider(data)
  if not data then return end
  local f = redis.call('HMGET', ARGV[1] .. string.match(data, '^[^ \n]*'), 'state', 'updatedAt', 'runAt',
                      'nextAttemptAt')
  if not f[1] or f[1] == 'cancelled' or f[1] == 'completed' or f[1] == 'dead' then return end
  local ready = math.max(tonumber(f[2]) or 0, tonumber(f[3]) or 0, tonumber(f[4]) or 0)
  if not oldest or ready < oldest then oldest = ready end
end
consider(redis.call('LINDEX', KEYS[1], -1))
for _, p in ipairs(redis.call('SMEMBERS', KEYS[2])) do consider(redis.call('LINDEX', KEYS[1] .. ':p' .. p, -1)) end
consider(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2], 'LIMIT', 0, 1)[1])
if oldest then return tostring(oldest) end
return false

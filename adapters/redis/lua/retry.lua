-- KEYS: job record, leases, schedule. ARGV: message, its schedule score, error, next attempt at,
-- now. A failed attempt with retries left, in one step: the record says when the next attempt is
-- due, the message leaves its lease for the schedule, where the claim (move_due.lua) finds it on
-- time and puts it back on its priority's list (or promote.lua, sooner).
local before = redis.call('HGET', KEYS[1], 'state')
redis.call('HSET', KEYS[1], 'state', 'retrying', 'lastError', ARGV[3], 'nextAttemptAt', ARGV[4], 'updatedAt', ARGV[5],
           'scheduleScore', ARGV[2])  -- how promote.lua finds the entry
index_move(KEYS[1], before, 'retrying', tonumber(ARGV[5]))
history_add(KEYS[1], 'retried', tonumber(ARGV[5]))
errors_add(KEYS[1], ARGV[3], ARGV[5])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1

-- KEYS: job record, leases, schedule. ARGV: message, its schedule score, error, next attempt at,
-- now. A failed attempt with retries left, in one step: the record says when the next attempt is
-- due, the message leaves its lease for the schedule, where the claim (move_due.lua) finds it on
-- time and puts it back on its priority's list.
redis.call('HSET', KEYS[1], 'state', 'retrying', 'lastError', ARGV[3], 'nextAttemptAt', ARGV[4], 'updatedAt', ARGV[5])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1

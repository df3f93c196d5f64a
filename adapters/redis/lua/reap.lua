-- KEYS: queue, leases, schedule. ARGV: now, schedule timestamp.
-- Expired leases go back to the consuming end of the queue; due retries follow.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, data in ipairs(expired) do
  redis.call('ZREM', KEYS[2], data)
  redis.call('RPUSH', KEYS[1], data)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2], 'LIMIT', 0, 1000)
for _, data in ipairs(due) do
  redis.call('ZREM', KEYS[3], data)
  redis.call('LPUSH', KEYS[1], data)
end
return {#expired, #due}

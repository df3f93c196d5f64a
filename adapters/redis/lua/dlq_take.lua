-- KEYS: DLQ entries (hash), DLQ order (sorted set). ARGV: job id.
-- Remove one entry and return it, so that a replay happens once.
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return nil end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return entry

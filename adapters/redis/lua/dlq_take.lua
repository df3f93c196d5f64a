-- KEYS: DLQ entries (hash), DLQ order (sorted set). ARGV: job ids.
-- Remove the entries still there and return them (in the order asked), so that each is
-- replayed, deleted or purged once however many callers race.
local taken = {}
for _, id in ipairs(ARGV) do
  local entry = redis.call('HGET', KEYS[1], id)
  if entry then
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    table.insert(taken, entry)
  end
end
return taken

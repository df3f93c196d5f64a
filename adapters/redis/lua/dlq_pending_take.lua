-- KEYS: pending DLQ entries. ARGV: now, hold seconds, how many, job key prefix.
-- Take the DLQ entries due for a put and hold them for `hold` seconds, so that another
-- consumer does not put the same entry meanwhile. Ids whose record lost its entry are dropped.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local entries = {}
for _, id in ipairs(ids) do
  local entry = redis.call('HGET', ARGV[4] .. id, 'dlqEntry')
  if entry then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
    table.insert(entries, entry)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return entries

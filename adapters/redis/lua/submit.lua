-- Store a job record and enqueue its message in one atomic step (one round trip).
-- KEYS: job record, queue list of its priority (or, for a scheduled job, the schedule), the set of
-- priorities in use[, idempotency key]. ARGV: message, replace ('1'/'0'), "<jobId> <fingerprint>",
-- key lifetime (s), the schedule score ('' for a job that may run at once), its priority ('' for
-- the default, 5), then the record's fields and values.
-- With an idempotency key only the first request writes; a repeat gets the holder's
-- "<jobId> <fingerprint>" back. A new job counts as accepted in the history; a replaced one (a replay)
-- leaves the index of its old state.
if KEYS[4] then
  local held = redis.call('GET', KEYS[4])
  if held then return held end
  redis.call('SET', KEYS[4], ARGV[3], 'EX', ARGV[4])
end
local at = 0
for i = 7, #ARGV, 2 do
  if ARGV[i] == 'updatedAt' then at = tonumber(ARGV[i + 1]) end
end
local before = false
if ARGV[2] == '1' then
  before = redis.call('HGET', KEYS[1], 'state')
  redis.call('DEL', KEYS[1])
else
  history_add(KEYS[1], 'accepted', at)
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
index_move(KEYS[1], before, ARGV[5] == '' and 'queued' or 'scheduled', at)
if ARGV[5] == '' then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  if ARGV[6] ~= '' then redis.call('SADD', KEYS[3], ARGV[6]) end
else
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
  redis.call('HSET', KEYS[1], 'scheduleScore', ARGV[5])  -- how promote.lua finds the entry
end
return 1

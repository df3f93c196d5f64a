-- Start a scheduled or retrying job now. KEYS: job record, schedule, queue list, priorities in use.
-- ARGV: now. Its message is found in the schedule by the score the record keeps (`scheduleScore`,
-- written with the entry by submit.lua and retry.lua: no scan), moved to the tail of its priority's
-- list (requeue.lua) and the record made queued. A message no longer in the schedule was moved to
-- its list already (due): the job is claimable as it is. Returns {state found ('' for an unknown
-- job), 1 when promoted}; 0 for a record with no `scheduleScore` (scheduled by an older forkline:
-- it starts at its time).
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'', 0} end
if state ~= 'scheduled' and state ~= 'retrying' then return {state, 0} end
local score = redis.call('HGET', KEYS[1], 'scheduleScore')
if not score then return {state, 0} end
local prefix, id = string.match(KEYS[1], '^(.*:job:)(.*)$')
for _, data in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], score, score)) do
  if string.match(data, '^[^ \n]*') == id then
    redis.call('ZREM', KEYS[2], data)
    requeue(KEYS[3], KEYS[4], prefix, data, false)
  end
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'updatedAt', ARGV[1], 'nextAttemptAt', '')
redis.call('HDEL', KEYS[1], 'runAt', 'scheduleScore')
redis.call('HINCRBY', KEYS[1], 'promotions', 1)
index_move(KEYS[1], state, 'queued', tonumber(ARGV[1]))
return {state, 1}

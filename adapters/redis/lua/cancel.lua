-- Cancel a job that has not started: queued, scheduled or retrying -> cancelled. Its message stays
-- where it is (the queue list, or the schedule for a scheduled job or a retry) and is dropped when a consumer claims it
-- (claim.lua). KEYS: job record. ARGV: now, retention (s). Returns the state found ('' for an
-- unknown job); the job was cancelled only when that state was queued or retrying.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state == 'queued' or state == 'scheduled' or state == 'retrying' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'updatedAt', ARGV[1], 'finishedAt', ARGV[1], 'nextAttemptAt', '')
  index_move(KEYS[1], state, 'cancelled', tonumber(ARGV[1]))
  if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], redis.call('HGET', KEYS[1], 'retention') or ARGV[2]) end
end
return state

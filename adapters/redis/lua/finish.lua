-- finish(): mark a job finished once (a job that ran twice is counted once) and drop its lease.
-- Defined here and prepended to the scripts that call it (bury.lua, claim.lua), after index.lua.
local function finish(job, stats, leases, state, field, value, now, counter, ttl, lease)
  if lease ~= '' then redis.call('ZREM', leases, lease) end
  local current = redis.call('HGET', job, 'state')
  if current == 'completed' or current == 'dead' or current == 'cancelled' then return 0 end
  redis.call('HSET', job, 'state', state, field, value, 'updatedAt', now, 'finishedAt', now, 'nextAttemptAt', '')
  redis.call('HINCRBY', stats, counter, 1)
  index_move(job, current, state, tonumber(now))
  history_add(job, counter, tonumber(now))
  -- A job type's own retention (the record's `retention` field) before JOB_RETENTION; 0 keeps it (dead).
  if tonumber(ttl) > 0 then redis.call('EXPIRE', job, redis.call('HGET', job, 'retention') or ttl) end
  return 1
end

-- requeue(): put a message back where its job waits: the list of its record's priority (the queue
-- list for 5, the default; "<queue list>:p<n>" for the others, noted in the set of priorities in
-- use), first in line (a job given back) or at the tail (a retry or delayed job whose time came).
-- A message given back also makes its job's record queued again (and lists it as queued: index.lua).
-- Defined here and prepended to the scripts that move messages (reap, release, claim).
local function requeue(queue_list, priorities, job_prefix, data, first_in_line)
  local priority = tonumber(redis.call('HGET', job_prefix .. string.match(data, '^[^ \n]*'), 'priority')) or 5
  local list = queue_list
  if priority ~= 5 then
    list = queue_list .. ':p' .. priority
    redis.call('SADD', priorities, priority)
  end
  if first_in_line then
    redis.call('RPUSH', list, data)
    -- Given back (its lease lapsed, or its consumer stopped): its job waits again, as its record says.
    local job = job_prefix .. string.match(data, '^[^ \n]*')
    if redis.call('HGET', job, 'state') == 'active' then
      local t = redis.call('TIME')
      local at = tonumber(t[1]) + tonumber(t[2]) / 1e6
      redis.call('HSET', job, 'state', 'queued', 'updatedAt', at)
      redis.call('ZADD', string.match(job_prefix, '^(.*:)job:$') .. 'jobs:queued', at, string.match(data, '^[^ \n]*'))
    end
  else
    redis.call('LPUSH', list, data)
  end
end

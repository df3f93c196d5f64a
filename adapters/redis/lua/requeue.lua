-- requeue(): put a message back where its job waits: the list of its record's priority (the queue
-- list for 5, the default; "<queue list>:p<n>" for the others, noted in the set of priorities in
-- use), first in line (a job given back) or at the tail (a retry or delayed job whose time came).
-- Defined here and prepended to the scripts that move messages (reap, release, claim).
local function requeue(queue_list, priorities, job_prefix, data, first_in_line)
  local priority = tonumber(redis.call('HGET', job_prefix .. string.match(data, '^[^ \n]*'), 'priority')) or 5
  local list = queue_list
  if priority ~= 5 then
    list = queue_list .. ':p' .. priority
    redis.call('SADD', priorities, priority)
  end
  if first_in_line then redis.call('RPUSH', list, data) else redis.call('LPUSH', list, data) end
end

-- move_due(): what is due goes back to its queue: messages whose lease expired (their consumer is
-- gone: first in line) and scheduled ones whose time has come (retries and delayed jobs: at the
-- tail), each onto its priority's list. `now`: Redis's clock for leases; `schedule_now`: the same
-- moment as the schedule scores it. At most `limit` of each. Returns {expired, due}.
local function move_due(queue_list, leases, schedule, priorities, job_prefix, now, schedule_now, limit)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)
  for _, data in ipairs(expired) do
    redis.call('ZREM', leases, data)
    requeue(queue_list, priorities, job_prefix, data, true)
  end
  local due = redis.call('ZRANGEBYSCORE', schedule, '-inf', schedule_now, 'LIMIT', 0, limit)
  for _, data in ipairs(due) do
    redis.call('ZREM', schedule, data)
    requeue(queue_list, priorities, job_prefix, data, false)
  end
  return {#expired, #due}
end

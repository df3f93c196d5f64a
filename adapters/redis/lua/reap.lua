-- KEYS: queue, leases, schedule, priorities in use. ARGV: now, the schedule's now, job key prefix,
-- retention (s). Run at the scheduler's tick (the claim runs the same moves before it pops): see
-- move_due.lua. Finished jobs also leave their index (lua/index.lua) here as their records expire after
-- JOB_RETENTION, once a tick rather than once a job (a shorter own retention is repaired when read).
for _, state in ipairs({'completed', 'cancelled'}) do
  redis.call('ZREMRANGEBYSCORE', string.match(ARGV[3], '^(.*:)job:$') .. 'jobs:' .. state, '-inf',
             tonumber(ARGV[1]) - tonumber(ARGV[4] or 86400))
end
return move_due(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[1], ARGV[2], 1000)

-- KEYS: queue, leases, schedule, priorities in use. ARGV: now, the schedule's now, job key prefix.
-- Run at the scheduler's tick (the claim runs the same moves before it pops): see move_due.lua.
return move_due(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[1], ARGV[2], 1000)

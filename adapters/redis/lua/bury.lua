-- KEYS: job record, stats, leases, pending DLQ entries (sorted set of job ids by next try).
-- ARGV: job id, error, now, the DLQ entry (JSON), the lease's message, when another
-- consumer may try the put (the caller tries it first).
-- Mark the job dead once (finish()), drop its lease, and keep its DLQ entry in the record
-- (dlqEntry, dlqPending) until the put into the DLQ is confirmed (dlq_delivered).
-- Returns 0 when the job had already finished (a copy that ran twice): nothing to put.
local done = finish(KEYS[1], KEYS[2], KEYS[3], 'dead', 'lastError', ARGV[2], ARGV[3], 'failed', 0, ARGV[5])
if done == 1 then
  redis.call('HSET', KEYS[1], 'dlqPending', '1', 'dlqEntry', ARGV[4])
  errors_add(KEYS[1], ARGV[2], ARGV[3])
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
end
return done

-- A running job's progress, stored with its record while it is active (a report that arrives after
-- its outcome, or for a record that is gone, writes nothing). KEYS: job record. ARGV: fraction, note.
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1], 'progressNote', ARGV[2])
return 1

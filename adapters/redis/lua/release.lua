-- KEYS: leases, queue, priorities in use. ARGV: message, job key prefix.
-- Give a held message back, first in line on its priority's list.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  requeue(KEYS[2], KEYS[3], ARGV[2], ARGV[1], true)
  return 1
end
return 0

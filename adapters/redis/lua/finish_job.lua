-- KEYS: job record, stats, leases. ARGV: the arguments of finish() after its keys.
return finish(KEYS[1], KEYS[2], KEYS[3], unpack(ARGV))

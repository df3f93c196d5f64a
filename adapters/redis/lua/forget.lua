-- Remove a finished job's record (completed or cancelled) at once, before its retention ends
-- (`forkline check --cleanup`). A dead record stays: its DLQ entry holds it. KEYS: job record.
-- Returns the state found ('' for an unknown job); the record was removed only when finished.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state == 'completed' or state == 'cancelled' then
  redis.call('DEL', KEYS[1])
  index_move(KEYS[1], state, nil, 0)
end
return state

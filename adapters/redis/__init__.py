"""Everything that talks to Redis: the client handle and outage log, key names, the Lua
scripts and the message framing, the job store, the Redis DLQ and the health probe."""

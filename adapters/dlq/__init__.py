"""Dead-letter queue backends. The protocol is `functions.ports.DeadLetterQueue`:

put(job), list(offset, limit), get(job_id), take(job_id), count().
`take` removes and returns an entry in one step, so a replay happens once.
"""

from functions.ports import DeadLetterQueue

__all__ = ["DeadLetterQueue"]

"""A Jepsen-style loss test of a Sentinel failover: a primary, a replica and three sentinels on loopback,
`forkline serve` through the sentinels, 8 clients posting. The replica is frozen (SIGSTOP) while the
burst goes on, the primary SIGKILLed while it is still frozen, the replica resumed and promoted; then every
job acknowledged with 202 is looked up on the new primary.

Without REDIS_REPLICA_ACKS, what the primary acknowledged while the replica was frozen and had not sent
it is lost (replication is asynchronous): the count is reported, and must be above 0 (the test sees a
loss when there is one). With REDIS_REPLICA_ACKS=1 nothing acknowledged is lost, and the posts answered
while the replica was frozen are 503s. Afterwards the old primary is started again and the sentinels make
it a replica of the new one, and posts are acknowledged again. FAILOVER_RUNS=5 runs each way five times
(the guarantees page's figures: bench/results/failover-loss-2026-12-06.txt)."""

import os
import signal
import time

import pytest
import redis

from adapters.redis import keys
from harness.processes import Forkline, wait_until
from tests.bursts import PostBurst
from tests.figures import report
from tests.redis_setups import SentinelGroup

RUNS = int(os.environ.get("FAILOVER_RUNS", "1"))
# Long messages: the stream a frozen replica has not read outgrows the sockets' buffers (tens of MB on
# loopback), which would otherwise hand it everything once it resumes.
PADDING = "x" * 8000
SENDERS = 8
ENV = {"WEB_CONCURRENCY": "3", "WEB_TIMEOUT": "10", "GRACEFUL_TIMEOUT": "5", "METRICS_PORT": "0"}


@pytest.mark.slow
@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("acks", [0, 1], ids=["no-replica-acks", "replica-acks-1"])
def test_a_failover_with_a_frozen_replica_loses_only_what_was_not_acknowledged_by_it(tmp_path, acks, run):
    group = SentinelGroup(tmp_path / "sentinel").start()
    env = {**ENV, "REDIS_SENTINELS": group.addresses, "REDIS_SENTINEL_MASTER": group.master_name,
           "REDIS_REPLICA_ACKS": str(acks), "REDIS_REPLICA_ACK_TIMEOUT_MS": "100"}
    api = Forkline("serve", tmp_path, env)
    burst = PostBurst(api, SENDERS, lambda n: {"message": f"{n} {PADDING}"}, timeout=15)
    answers = burst.answers
    replica_pid = group.replica.proc.pid if group.replica.proc else 0
    frozen = False
    try:
        api.start()
        burst.start()
        wait_until(lambda: burst.count(202) >= 200, 30, 0.01, "the burst under way")
        os.kill(replica_pid, signal.SIGSTOP)
        frozen, frozen_at = True, time.monotonic()
        if acks:
            time.sleep(2.0)
        else:  # ~30 MB of stream: more than the sockets' buffers keep for the frozen replica
            wait_until(lambda: burst.count(202, sent_after=frozen_at) >= 2000, 15, 0.01,
                       "posts acknowledged while the replica is frozen")
        old_port = group.master.port
        group.master.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        os.kill(replica_pid, signal.SIGCONT)
        frozen = False
        failover = group.wait_failover(old_port)
        promoted_at = killed_at + failover
        # The old primary back: the sentinels make it the new one's replica. With REDIS_REPLICA_ACKS=1 the
        # new primary has no replica until then, and every submit answers 503 (so keep N + 1 replicas).
        group.master.start()
        wait_until(lambda: burst.count(202, sent_after=promoted_at) >= 100, 60, 0.05,
                   "posts acknowledged by the new primary")
        burst.stop()
        new_primary = redis.Redis(port=group.master_port(), socket_timeout=5)
        acknowledged = burst.accepted()
        pipe = new_primary.pipeline(transaction=False)
        for job_id in acknowledged:
            pipe.exists(keys.keys_of(job_id).job(job_id))
        missing = [job_id for job_id, found in zip(acknowledged, pipe.execute(), strict=True) if not found]
        new_primary.close()
    finally:
        burst.stop()
        if frozen:
            os.kill(replica_pid, signal.SIGCONT)
        api_status = api.stop(signal.SIGTERM, timeout=30)
        group.stop()
    assert api_status == 0, api.output()[-3000:]
    assert {a.status for a in answers} <= {202, 200, 503}, {a.status: a.body for a in answers
                                                             if a.status not in (202, 503)}
    while_frozen = [a for a in answers if frozen_at + 0.3 < a.sent and a.answered < killed_at]
    acked_while_frozen = sum(a.status == 202 for a in while_frozen)
    report(f"failover, REDIS_REPLICA_ACKS={acks}, run {run + 1}: {len(acknowledged)} acknowledged, "
           f"{len(missing)} missing on the new primary; while the replica was frozen: {acked_while_frozen} "
           f"acknowledged, {sum(a.status == 503 for a in while_frozen)} answered 503; failover {failover:.1f} s")
    if acks:
        assert missing == []
        assert while_frozen and acked_while_frozen == 0  # every post answered while it was frozen: 503
    else:
        assert missing, "the test saw no loss: the replica did not fall behind"
        assert set(missing) <= {a.body["jobId"] for a in answers if a.status == 202 and a.sent > frozen_at - 0.5}

"""Two hosts on one Redis, simulated on this machine: each is a `forkline serve` and a `forkline worker`
with its own ports, directories and process groups; host B's clock is two minutes
ahead. While both run, nothing is re-queued early and delays and retries keep their times (leases,
schedules and heartbeats are on Redis's clock); then host A's whole process groups are SIGKILLed in the
middle of a burst, and host B completes every accepted job with exact counters and drops A from
GET /workers within the heartbeat expiry."""

import datetime
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import redis

from adapters.redis import keys
from adapters.redis.framing import framed_job_id
from harness.processes import ROOT, Forkline, children_of, wait_until

# Host B's processes read a wall clock two minutes ahead (tests/skewed_clock/sitecustomize.py).
SKEWED = {"SKEWED_CLOCK_SECONDS": "120", "PYTHONPATH": f"{ROOT / 'tests' / 'skewed_clock'}:{ROOT}"}
HEARTBEAT = 0.5
ENV = {"WEB_CONCURRENCY": "1", "WORKER_CONCURRENCY": "4", "QUEUE_CONCURRENCY": "slow=4", "JOB_LEASE": "3",
       "WORKER_HEARTBEAT": str(HEARTBEAT), "JOB_BACKOFF_BASE": "0.3", "GRACEFUL_TIMEOUT": "5", "METRICS_PORT": "0"}


class Host:
    def __init__(self, name: str, tmp: Path, redis_url: str, clock: dict[str, str] | None = None):
        folder = tmp / name
        folder.mkdir()
        env = {**ENV, "REDIS_URL": redis_url, **(clock or {})}
        self.api = Forkline("serve", folder, env, own_group=True)
        self.worker = Forkline("worker", folder, env, own_group=True)

    def start(self) -> "Host":
        self.api.start(timeout=40)
        self.worker.start(wait_http=False)
        return self

    def consumer_id(self) -> str:
        """`host:pid` of the worker's consumer process."""
        [pid] = wait_until(lambda: children_of(self.worker.pid) or None, 20, 0.05, "the consumer process")
        return f"{socket.gethostname()}:{pid}"

    def post(self, body: dict) -> str | None:
        """The job id when the API accepted the job (202), else None (the host is gone)."""
        try:
            status, _, reply = self.api.request("POST", "/jobs", body, timeout=5)
        except OSError:
            return None
        return reply["jobId"] if status == 202 else None

    def stop(self) -> None:
        for proc in (self.worker, self.api):
            proc.stop(timeout=30)


def watch_attempts(api: Forkline, job_id: str, stop: threading.Event, seen: list) -> None:
    """Sample the job's (monotonic time, attempts, state) every 20 ms until `stop`."""
    while not stop.is_set():
        record = api.request("GET", f"/jobs/{job_id}")[2]
        seen.append((time.monotonic(), record["attempts"], record["state"]))
        time.sleep(0.02)


def retry_gaps(seen: list) -> list[float]:
    """For each retry: from the first sample of attempt n retrying to the first sample of attempt n + 1."""
    failed = {}
    started = {}
    for at, attempts, state in seen:
        if state == "retrying":
            failed.setdefault(attempts, at)
        started.setdefault(attempts, at)
    return [started[n + 1] - failed[n] for n in sorted(failed) if n + 1 in started]


def records(client: redis.Redis) -> dict[str, dict[str, str]]:
    found = {}
    for name in ("default", "slow"):
        prefix = keys.queue_keys(name).job_prefix
        for key in client.scan_iter(match=prefix.replace("{", "\\{").replace("}", "\\}") + "*", count=1000):
            found[key.decode().removeprefix(prefix)] = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
    return found


@pytest.mark.slow
def test_two_hosts_one_with_a_skewed_clock_and_one_killed_mid_burst(tmp_path, redis_url):
    client = redis.Redis.from_url(redis_url)
    a, b = Host("a", tmp_path, redis_url), Host("b", tmp_path, redis_url, clock=SKEWED)
    try:
        a.start()
        b.start()
        assert b.api.request("GET", "/health")[2]["uptime"] >= 0
        first_line = json.loads(b.api.output().splitlines()[0])  # B's own clock stamps its log lines
        ahead = datetime.datetime.fromisoformat(first_line["time"]).timestamp() - time.time()
        assert 100 < ahead < 140, ahead
        a_consumer, b_consumer = a.consumer_id(), b.consumer_id()
        wait_until(lambda: {w["id"] for w in b.api.request("GET", "/workers")[2]["items"]} == {a_consumer, b_consumer},
                   15, 0.1, "both consumers in GET /workers")

        # Phase 1: both hosts up, B two minutes ahead. Jobs of 0.2 s leased by A's consumer would look
        # two minutes overdue to B's reaper if leases were on the hosts' clocks.
        first = [host.post({"type": "sleep", "seconds": 0.2}) for _ in range(20) for host in (a, b)]
        first += [host.post({"message": f"m{n}"}) for n in range(40) for host in (a, b)]
        submitted = time.time()
        delayed = [a.post({"message": "later", "delay": 2}), b.post({"message": "later", "delay": 2})]
        failing = b.post({"message": "dead", "shouldFail": True})
        assert None not in first + delayed + [failing]
        samples: list = []
        stop_watching = threading.Event()
        watcher = threading.Thread(target=watch_attempts, args=(b.api, failing, stop_watching, samples))
        watcher.start()
        wait_until(lambda: all(b.api.request("GET", f"/jobs/{i}")[2]["state"] == "completed"
                               for i in first + delayed), 60, 0.2, "phase 1's jobs to complete")
        finished = [b.api.request("GET", f"/jobs/{i}")[2]["finishedAt"] for i in delayed]
        # Due 2 s after submission on Redis's clock: neither early nor two minutes late.
        assert all(submitted + 1.5 <= at <= submitted + 10 for at in finished), (submitted, finished)
        dead = wait_until(lambda: (lambda r: r if r["state"] == "dead" else None)(
            b.api.request("GET", f"/jobs/{failing}")[2]), 30, 0.2,
            f"the failing job's retries: {b.api.request('GET', f'/jobs/{failing}')[2]}")
        stop_watching.set()
        watcher.join(10)
        assert dead["attempts"] == 4
        # 0.3, 0.6, 1.2 s (JOB_BACKOFF_BASE=0.3), due on Redis's clock: not early (B's clock is 120 s
        # ahead), not 120 s late; plus up to the 1 s scheduler tick, and 1.5 s for a busy machine.
        gaps = retry_gaps(samples)
        print(f"\nretry gaps with one host 120 s ahead: {[round(g, 2) for g in gaps]} s")
        assert len(gaps) == 3, samples
        assert all(0.3 * 2 ** n - 0.1 <= gap <= 0.3 * 2 ** n + 2.5 for n, gap in enumerate(gaps)), gaps
        attempts = {i: int(r["attempts"]) for i, r in records(client).items() if i in first}
        assert attempts == {i: 1 for i in first}  # none re-queued by the other host's reaper

        # Phase 2: a burst to both hosts; host A's whole process groups die in the middle of it.
        accepted: list[str] = []
        stop_a = threading.Event()

        def burst() -> None:
            for n in range(300):
                host = a if n % 2 and not stop_a.is_set() else b
                job = host.post({"type": "sleep", "seconds": 0.1} if n % 3 == 0 else {"message": f"burst {n}"})
                if job is None and host is a:
                    job = b.post({"message": f"burst {n} again"})
                if job is not None:
                    accepted.append(job)

        sender = threading.Thread(target=burst)
        sender.start()
        wait_until(lambda: len(accepted) >= 100, 30, 0.01, "the burst under way")
        killed_at = time.monotonic()
        stop_a.set()
        a.worker.kill_group()
        a.api.kill_group()
        # What A held when it died (and what B holds at this moment, which B finishes as usual).
        leased = {framed_job_id(m) for name in ("default", "slow")
                  for m in client.zrange(keys.queue_keys(name).leases, 0, -1)}
        sender.join(60)
        assert not sender.is_alive()

        gone = wait_until(lambda: a_consumer not in {w["id"] for w in b.api.request("GET", "/workers")[2]["items"]},
                          10, 0.05, "A's consumer to leave GET /workers")
        assert gone and time.monotonic() - killed_at <= 3 * HEARTBEAT + 2.0  # 3 beats, and a busy machine
        wait_until(lambda: all(b.api.request("GET", f"/jobs/{i}")[2]["state"] == "completed" for i in accepted),
                   90, 0.5, "every accepted job to complete on host B")
    finally:
        a.stop()
        b.stop()
    # Counters exact: each figure equals the records in that state (no job counted twice, none lost).
    found = records(client)
    stats = {name: {k.decode(): int(v) for k, v in client.hgetall(keys.queue_keys(name).stats).items()}
             for name in ("default", "slow")}
    states = [r["state"] for r in found.values()]
    assert sum(s.get("completed", 0) for s in stats.values()) == states.count("completed")
    assert sum(s.get("failed", 0) for s in stats.values()) == states.count("dead") == 1
    assert client.llen(keys.queue_keys("default").list) == client.llen(keys.queue_keys("slow").list) == 0
    assert client.zcard(keys.queue_keys("default").leases) == client.zcard(keys.queue_keys("slow").leases) == 0
    assert set(accepted) <= {i for i, r in found.items() if r["state"] == "completed"}
    # A's leases expired and were re-queued: those jobs ran a second time, on B.
    requeued = [i for i in leased if int(found[i]["attempts"]) >= 2]
    assert requeued, (leased, {i: found[i]["attempts"] for i in leased})
    print(f"\ntwo hosts: {len(accepted)} accepted in the burst, {len(leased)} leases held at A's death, "
          f"{len(requeued)} re-queued and run again on B; every one completed")
    client.close()

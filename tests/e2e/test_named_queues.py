"""Named queues in running processes: a queue busy with slow jobs does not hold up another; pause and
resume over HTTP and the CLI; a consumer that serves only the queues it is given."""

import json
import os
import signal
import subprocess
import sys
import time

from harness.processes import ROOT, Forkline, wait_until

KEY = "queues-key-1"


def post(api, body, key=KEY):
    status, _, answer = api.request("POST", "/jobs", body, headers={"X-API-Key": key})
    assert status == 202, answer
    return answer["jobId"]


def state(api, job_id):
    return api.request("GET", f"/jobs/{job_id}", headers={"X-API-Key": KEY})[2]["state"]


def queue_figures(api, name):
    return api.request("GET", "/queue/stats")[2]["queues"][name]


def forkline(api, *args):
    env = {**os.environ, "FORKLINE_URL": f"http://127.0.0.1:{api.port}", "FORKLINE_API_KEY": KEY,
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "local.commands.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def start(tmp_path, redis_url, worker_env=None, args=()):
    api = Forkline("serve", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1", "API_KEYS": KEY}).start()
    worker = Forkline("worker", tmp_path, {"REDIS_URL": redis_url, "WORKER_CONCURRENCY": "2",
                                           "GRACEFUL_TIMEOUT": "10", **(worker_env or {})}, args=args)
    return api, worker.start(wait_http=False)


def stop(*processes):
    for process in processes:
        assert process.stop(signal.SIGTERM, timeout=30) == 0, process.output()[-3000:]


def test_a_queue_busy_with_slow_jobs_does_not_hold_up_another(tmp_path, redis_url):
    api, worker = start(tmp_path, redis_url)
    try:
        # 2 threads: 16 s of work, so the 20 quick jobs have a wide window even on a busy machine.
        slow = [post(api, {"type": "sleep", "seconds": 4}) for _ in range(8)]
        wait_until(lambda: queue_figures(api, "slow")["active"] == 2, 15, 0.05, "the slow queue's threads busy")
        quick = [post(api, {"message": f"m{n}"}) for n in range(20)]
        for job_id in quick:
            wait_until(lambda job_id=job_id: state(api, job_id) == "completed", 12, 0.05, f"{job_id} completed")
        busy = queue_figures(api, "slow")
        assert busy["active"] == 2 and busy["waiting"] >= 2, busy  # the slow queue is still working through its jobs
        assert all(state(api, job_id) != "completed" for job_id in slow[-2:])
    finally:
        stop(worker, api)


def test_pause_and_resume_a_queue_over_http_and_the_cli(tmp_path, redis_url):
    api, worker = start(tmp_path, redis_url)
    try:
        assert api.request("POST", "/queues/default/pause")[0] == 401  # protected
        paused = forkline(api, "queues", "pause", "default")
        assert paused.returncode == 0 and paused.stdout.strip() == "default paused", paused.stderr
        held = [post(api, {"message": f"held {n}"}) for n in range(5)]  # still accepted
        other = post(api, {"type": "sleep", "seconds": 0.1})
        wait_until(lambda: state(api, other) == "completed", 10, 0.05, "the other queue's job")
        time.sleep(2.5)  # longer than a paused worker's longest poll interval (2 s)
        assert {state(api, job_id) for job_id in held} == {"queued"}
        listed = json.loads(forkline(api, "queues", "--json").stdout)
        assert (listed["default"]["paused"], listed["default"]["waiting"], listed["slow"]["paused"]) == (True, 5, False)
        resumed = api.request("POST", "/queues/default/resume", headers={"X-API-Key": KEY})
        assert resumed[0] == 200 and resumed[2] == {"queue": "default", "paused": False}
        for job_id in held:
            wait_until(lambda job_id=job_id: state(api, job_id) == "completed", 12, 0.05, f"{job_id} completed")
        unknown = api.request("POST", "/queues/nope/pause", headers={"X-API-Key": KEY})
        assert unknown[0] == 404 and unknown[2]["details"] == {"declared": ["default", "slow"]}
    finally:
        stop(worker, api)


def test_a_worker_serves_only_the_queues_it_is_given(tmp_path, redis_url):
    api, worker = start(tmp_path, redis_url, args=("--queues", "slow"))
    try:
        waits = post(api, {"message": "nobody serves default"})
        runs = post(api, {"type": "sleep", "seconds": 0.1})
        wait_until(lambda: state(api, runs) == "completed", 15, 0.05, "the slow queue's job")
        workers = wait_until(lambda: api.request("GET", "/workers", headers={"X-API-Key": KEY})[2]["items"], 10,
                             0.1, "a heartbeat")
        assert [(w["queues"], w["concurrency"]) for w in workers] == [(["slow"], 2)]
        time.sleep(1.0)
        assert state(api, waits) == "queued"
    finally:
        stop(worker, api)
    refused = Forkline("worker", tmp_path, {"REDIS_URL": redis_url, "CONSUMER_QUEUES": "nope"}).start(wait_http=False)
    assert refused.proc.wait(20) == 2 and refused.stop() == 2
    assert "invalid setting CONSUMER_QUEUES='nope': Value error, unknown queue 'nope' (declared: default, slow)" in \
        refused.output(), refused.output()


def test_a_periodic_job_runs_once_per_tick_across_two_consumers_and_after_one_is_killed(tmp_path, redis_url):
    """PERIODIC_JOBS=tick=noop@2 on two `forkline worker` processes: each tick submitted by both makes
    one job; SIGKILL one worker (supervisor and consumer) and the other keeps every tick coming."""
    import os

    import redis

    from adapters.redis import keys
    from harness.processes import children_of

    # JOB_LEASE 2 s: a tick's job held by the killed consumer runs again soon on the other.
    env = {"REDIS_URL": redis_url, "PERIODIC_JOBS": "tick=noop@2", "JOB_LEASE": "2"}
    (tmp_path / "a").mkdir()
    first = Forkline("worker", tmp_path / "a", env).start(wait_http=False)
    second = Forkline("worker", tmp_path, env).start(wait_http=False)
    client = redis.Redis.from_url(redis_url)
    prefix = keys.queue_keys("default").job("default.periodic:tick:")

    def ticks() -> list[int]:
        return sorted(int(k.decode().rsplit(":", 1)[1]) for k in client.scan_iter(prefix + "*", count=1000))

    try:
        wait_until(lambda: len(ticks()) >= 2, 15, 0.1, "two ticks")
        consumer = wait_until(lambda: (children_of(first.pid) or [None])[0], 5, 0.05, "the first worker's consumer")
        os.kill(first.pid, signal.SIGKILL)
        os.kill(consumer, signal.SIGKILL)
        killed_at = time.time()
        assert first.proc.wait(10) == -signal.SIGKILL
        wait_until(lambda: ticks() and ticks()[-1] >= killed_at + 4, 15, 0.1, "ticks after the kill")
        last = ticks()[-1]
        wait_until(lambda: client.hget(prefix + str(last), "state") == b"completed", 10, 0.1, "the last tick run")
    finally:
        first.stop(signal.SIGKILL, timeout=10)
        stop(second)
    seen = ticks()
    assert seen == list(range(seen[0], seen[-1] + 2, 2)), seen  # none skipped, none doubled
    assert seen[0] < killed_at < seen[-1] - 2
    seen = [t for t in seen if t <= last]  # a tick submitted after the wait may not have run before the stop
    assert {client.hget(prefix + str(t), "state") for t in seen} == {b"completed"}
    finished = sum(client.hget(prefix + str(t), "state") == b"completed" for t in ticks())
    assert int(client.hget(keys.queue_keys("default").stats, "completed")) == finished  # each counted once

"""45 s of mixed traffic through a real nginx (keep-alive to the upstream) into `forkline run`
while workers retire (WEB_MAX_REQUESTS), reload twice (SIGHUP), scale up and down
(SIGTTIN, SIGTTOU) and one is SIGKILLed."""

import http.client
import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass

import pytest
import redis

from adapters.redis import keys
from harness.processes import Forkline, children_of, wait_until
from tests.e2e.nginx import NGINX, Nginx

GRACE = 8.0  # GRACEFUL_TIMEOUT; the nginx config closes idle upstream connections after 4 s
ENV = {"WEB_CONCURRENCY": "2", "WEB_MAX_REQUESTS": "6000", "WEB_MAX_REQUESTS_JITTER": "2000",
       "GRACEFUL_TIMEOUT": str(GRACE), "JOB_LEASE": "5", "LOG_LEVEL": "info"}
DURATION = 45.0
# Seconds into the run: what the supervisor (or a worker) is sent.
EVENTS = [(5.0, "hup"), (12.0, "ttin"), (19.0, "kill"), (27.0, "hup"), (34.0, "ttou")]

pytestmark = pytest.mark.slow


@dataclass
class Answer:
    at: float
    method: str
    status: int  # 0: no answer (connection error)
    job_id: str = ""
    error: str = ""


def client(port: int, stop: threading.Event, answers: list[Answer], seed: int) -> None:
    """One keep-alive client to nginx: GET /, GET /health and POST /jobs, mixed."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    n = 0
    while not stop.is_set():
        n += 1
        roll = rng.random()
        method, path, body = ("POST", "/jobs", json.dumps({"message": f"c{seed}-{n}", "shouldFail": False})) \
            if roll < 0.3 else ("GET", "/" if roll < 0.8 else "/health", None)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
            resp = conn.getresponse()
            data = resp.read()
            job_id = json.loads(data).get("jobId", "") if resp.status == 202 else ""
            answers.append(Answer(time.monotonic(), method, resp.status, job_id, "" if resp.status < 300 else
                                  data.decode(errors="replace")[:200]))
        except (OSError, http.client.HTTPException) as exc:
            answers.append(Answer(time.monotonic(), method, 0, error=repr(exc)))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    conn.close()


def log_lines(fl: Forkline, event: str) -> list[dict]:
    return [json.loads(line) for line in fl.output().splitlines() if f'"event": "{event}"' in line]


def serving_web_workers(fl: Forkline) -> list[int]:
    """HTTP workers alive and not draining, from the supervisor's own log lines."""
    born = {d["child"] for d in log_lines(fl, "worker_born") if d["worker_role"] == "web"}
    draining = {d["child"] for d in log_lines(fl, "drain_started")}
    return sorted((born - draining) & set(children_of(fl.pid)))


def test_mixed_traffic_through_nginx_while_workers_retire_reload_scale_and_die(tmp_path, redis_url):
    assert os.path.exists(NGINX), "nginx is missing: `make test` installs it (apt-get install -y nginx)"
    stack = Forkline("run", tmp_path, {**ENV, "REDIS_URL": redis_url}).start(timeout=30)
    nginx = Nginx(stack.port).start()
    answers: list[Answer] = []
    stop = threading.Event()
    clients = [threading.Thread(target=client, args=(nginx.port, stop, answers, seed)) for seed in range(6)]
    killed_at, victim = 0.0, 0
    try:
        started = time.monotonic()
        for thread in clients:
            thread.start()
        for at, event in EVENTS:
            time.sleep(max(0.0, started + at - time.monotonic()))
            if event == "kill":
                victim = serving_web_workers(stack)[0]
                os.kill(victim, signal.SIGKILL)
                killed_at = time.monotonic()
            else:
                os.kill(stack.pid, getattr(signal, "SIG" + event.upper()))
        time.sleep(max(0.0, started + DURATION - time.monotonic()))
    finally:
        stop.set()
        for thread in clients:
            thread.join(20)
    try:
        accepted = [a.job_id for a in answers if a.status == 202]

        def all_completed() -> bool:
            return stack.request("GET", "/queue/stats")[2]["completed"] >= len(accepted)

        wait_until(all_completed, 60, 0.5, f"{len(accepted)} accepted jobs completed")
        pipe = redis.Redis.from_url(redis_url).pipeline(transaction=False)
        for job_id in accepted:
            pipe.hget(keys.job_key(job_id), "state")
        states = {state.decode() for state in pipe.execute()}
        # The pool: 2 + SIGTTIN - SIGTTOU, once every drain has ended.
        wait_until(lambda: len(serving_web_workers(stack)) == 2 and len(children_of(stack.pid)) == 3, 2 * GRACE,
                   0.1, "2 HTTP workers and the consumer, nothing draining")
        output = stack.output()
    finally:
        nginx_errors = nginx.errors()
        nginx.stop()
        assert stack.stop(signal.SIGTERM, timeout=40) == 0
    gets = [a for a in answers if a.method == "GET"]
    posts = [a for a in answers if a.method == "POST"]
    failed_gets = [a for a in gets if a.status != 200]
    failed_posts = [a for a in posts if a.status != 202]
    web_drains = [d for d in log_lines(stack, "worker_died") if d.get("drain") and d["worker_role"] == "web"]
    retirements = output.count('"event": "worker_recycled"')
    longest = max((d["drained_in"] for d in web_drains), default=0.0)
    print(f"\nbehind nginx: {len(gets)} GETs, {len(posts)} POSTs ({len(accepted)} accepted) in {DURATION:.0f} s; "
          f"{retirements} retirements, {len(web_drains)} drains ended, longest {longest:.2f} s; failed POSTs: "
          f"{len(failed_posts)} {[(round(a.at - killed_at, 2), a.status) for a in failed_posts]}")
    assert failed_gets == [], failed_gets[:5]
    assert states == {"completed"}
    # Only requests the SIGKILLed worker had in hand may fail: nginx answers 502 for them, right at the kill.
    assert all(a.status == 502 and -0.5 < a.at - killed_at < 2.0 for a in failed_posts), failed_posts
    assert len(failed_posts) <= len(clients), failed_posts
    assert retirements >= 4, retirements
    # Every drain (retirements, two reloads, the scale-down) ended by itself, inside its deadline:
    # nginx closed the idle pooled connections (keepalive_timeout 4 s) and obeyed Connection: close.
    assert len(web_drains) >= retirements + 2 + 1
    assert all(d["cause"] in ("exited with status 0", "exited with status 4") for d in web_drains), web_drains
    assert all(d["drained_in"] < GRACE for d in web_drains)
    assert not log_lines(stack, "drain_deadline")
    assert victim and f'"child": {victim}, "cause": "killed by SIGKILL"' in output
    assert "[alert]" not in nginx_errors and "[emerg]" not in nginx_errors, nginx_errors[-2000:]

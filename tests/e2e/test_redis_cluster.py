"""forkline on a real Redis Cluster (three masters from `redis-server --cluster-enabled yes`, joined by
`redis-cli --cluster create` on loopback ports): the README's walkthrough, two queues on different
masters both draining, consumer SIGKILLs, and a `redis-cli --cluster reshard` of a queue's slot to
another master while jobs flow. Each queue's keys share one hash slot; nothing is lost."""

import os
import random
import signal
import threading
import time

import pytest

from adapters.redis import keys
from harness.processes import Forkline, children_of, wait_until
from tests.redis_setups import RedisClusterGroup
from tests.serving import serving
from tests.stats import template_figures

ENV = {"WEB_CONCURRENCY": "2", "JOB_BACKOFF_BASE": "0.2", "GRACEFUL_TIMEOUT": "5", "JOB_LEASE": "2",
       "METRICS_PORT": "0", "REDIS_CLUSTER": "true"}
QUEUES = ("default", "slow")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    group = RedisClusterGroup(tmp_path_factory.mktemp("cluster")).start()
    # redis-cli gives each master a third of the slots: `default` (slot 6722) and `slow` (8170) both
    # fall to the second. Hand `slow`'s (still empty) slot to the third master.
    group.give_empty_slot(group.slot_of("{forkline:slow}:queue"), group.ports[2])
    yield group
    group.stop()


@pytest.fixture
def stack(cluster, tmp_path):
    cluster.flush()
    with serving(tmp_path, {**ENV, "REDIS_URL": cluster.url}) as pair:
        yield pair


def owner_port(cluster: RedisClusterGroup, queue: str) -> int:
    return cluster.owners()[cluster.slot_of(keys.queue_keys(queue).list)][1]


def every_key_of(cluster: RedisClusterGroup) -> dict[int, list[str]]:
    found = {}
    for port in cluster.ports:
        node = cluster.node(port)
        found[port] = [k.decode() for k in node.keys("*")]
        node.close()
    return found


def settled(api: Forkline, total: int) -> dict | None:
    stats = api.request("GET", "/queue/stats")[2]
    done = stats["completed"] + stats["failed"]
    return stats if done >= total and not stats["waiting"] + stats["active"] + stats["delayed"] else None


def test_the_walkthrough_on_a_cluster(stack, cluster):
    api, worker = stack
    status, _, added = api.request("POST", "/jobs", {"message": "Hello from queue!", "shouldFail": False})
    assert status == 202
    failing = api.request("POST", "/jobs", {"message": "This will fail", "shouldFail": True})[2]
    stats = wait_until(lambda: (lambda s: s if s["completed"] == 1 and s["dlq"] == 1 and not s["dlqPending"]
                                else None)(api.request("GET", "/queue/stats")[2]), 30, 0.2, "the walkthrough")
    assert template_figures(stats) == {"waiting": 0, "active": 0, "completed": 1, "failed": 1, "delayed": 0,
                                       "dlq": 1, "dlqPending": 0}
    assert api.request("GET", f"/jobs/{added['jobId']}")[2]["result"] == {"processed": "Hello from queue!"}
    assert api.request("GET", f"/jobs/{failing['jobId']}")[2]["attempts"] == 4
    assert [e["jobId"] for e in api.request("GET", "/dlq")[2]["items"]] == [failing["jobId"]]
    assert len(api.request("GET", "/workers")[2]["items"]) == 1
    status, _, metrics = api.request("GET", "/metrics")
    assert status == 200 and 'forkline_queue_jobs{queue="default",state="dlq"} 1.0' in metrics  # read per node
    # Every key forkline wrote sits in its queue's slot (or the heartbeats'), on that slot's master.
    owners = cluster.owners()
    for port, names in every_key_of(cluster).items():
        for name in names:
            assert owners[cluster.slot_of(name)][1] == port, name
            assert name.startswith(("{forkline:default}", "{forkline:slow}", "{forkline:workers}")), name


def test_two_queues_on_different_masters_both_drain(stack, cluster):
    api, _ = stack
    assert owner_port(cluster, "default") != owner_port(cluster, "slow")
    ids = [api.request("POST", "/jobs", {"message": f"m{n}"})[2]["jobId"] for n in range(200)]
    ids += [api.request("POST", "/jobs", {"type": "sleep", "seconds": 0.05})[2]["jobId"] for _ in range(40)]
    stats = wait_until(lambda: settled(api, len(ids)), 60, 0.2, "both queues drained")
    assert (stats["queues"]["default"]["completed"], stats["queues"]["slow"]["completed"]) == (200, 40)
    placed = every_key_of(cluster)
    assert any(k.startswith("{forkline:default}") for k in placed[owner_port(cluster, "default")])
    assert any(k.startswith("{forkline:slow}") for k in placed[owner_port(cluster, "slow")])
    # GET /jobs merges the two queues' indexes, on two masters, newest first under one cursor.
    listed, cursor = [], None
    while True:
        page = api.request("GET", "/jobs?state=completed&limit=37" + (f"&cursor={cursor}" if cursor else ""))[2]
        listed += page["items"]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert sorted(item["id"] for item in listed) == sorted(ids)
    assert [item["updatedAt"] for item in listed] == sorted((item["updatedAt"] for item in listed), reverse=True)
    assert {item["queue"] for item in listed[:40]} | {item["queue"] for item in listed[-40:]} >= {"default"}
    history = api.request("GET", "/queue/history")[2]
    assert sum(b["completed"] for b in history["buckets"]) == 240
    assert sum(b["accepted"] for b in api.request("GET", "/queue/history?queue=slow")[2]["buckets"]) == 40


@pytest.mark.slow
def test_consumer_sigkills_on_a_cluster_lose_nothing(stack, cluster):
    api, worker = stack
    rng = random.Random(20261201)
    ids = [api.request("POST", "/jobs", {"type": "sleep", "seconds": 0.03} if n % 2 else
                       {"message": f"k{n}", "shouldFail": n % 25 == 0})[2]["jobId"] for n in range(500)]
    for _ in range(3):
        pid = wait_until(lambda: (lambda c: c[0] if len(c) == 1 else None)(children_of(worker.pid)), 15, 0.05,
                         "a consumer")
        time.sleep(rng.uniform(0.3, 1.0))
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda pid=pid: children_of(worker.pid) not in ([], [pid]), 15, 0.05, "a new consumer")
    stats = wait_until(lambda: (lambda s: s if s and not s["dlqPending"] else None)(settled(api, len(ids))), 90, 0.3,
                       "every job completed or dead")
    failing = sum(1 for n in range(500) if n % 2 == 0 and n % 25 == 0)
    assert (stats["completed"], stats["failed"], stats["dlq"]) == (len(ids) - failing, failing, failing)
    assert all(api.request("GET", f"/jobs/{i}")[2]["state"] in ("completed", "dead") for i in ids[::10])


@pytest.mark.slow
def test_resharding_a_queues_slot_while_jobs_flow_loses_nothing(stack, cluster):
    api, _ = stack
    slot = cluster.slot_of(keys.queue_keys("default").list)
    source = owner_port(cluster, "default")
    target = next(p for p in cluster.ports if p != source)
    accepted: list[str] = []
    stop = threading.Event()

    def burst() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            status, _, body = api.request("POST", "/jobs", {"message": f"r{n}"}, timeout=10)
            if status == 202:
                accepted.append(body["jobId"])

    sender = threading.Thread(target=burst)
    sender.start()
    try:
        wait_until(lambda: len(accepted) >= 300, 30, 0.01, "jobs flowing")
        # redis-cli moves the source's first slots: enough of them to take `default`'s along.
        first = min(s for s, (_, port) in cluster.owners().items() if port == source)
        moved = cluster.reshard(source, target, slot - first + 1)
        assert moved.returncode == 0, moved.stdout[-2000:] + moved.stderr[-2000:]
        wait_until(lambda: owner_port(cluster, "default") == target, 30, 0.1, "the slot on its new master")
        after = len(accepted)
        wait_until(lambda: len(accepted) >= after + 200, 30, 0.01, "jobs accepted after the move")
    finally:
        stop.set()
        sender.join(20)
    stats = wait_until(lambda: settled(api, len(accepted)), 90, 0.3, "every accepted job completed")
    assert stats["completed"] == len(accepted) and stats["failed"] == 0
    target_node = cluster.node(target)
    assert target_node.exists(keys.queue_keys("default").stats)  # the queue's keys live on the new master
    target_node.close()
    assert all(api.request("GET", f"/jobs/{i}")[2]["state"] == "completed" for i in accepted[::7])
    print(f"\nreshard: slot {slot} moved :{source} -> :{target} with {len(accepted)} jobs accepted around it")

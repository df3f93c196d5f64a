"""GET /workers over an in-memory registry: live workers oldest start first, gone 3 beats after their
last one or at once when they leave; none where no heartbeats are kept."""

from functions import routes
from functions.models import WorkerInfo
from tests.fakes import MemoryWorkers


def worker(pid: int, started: float) -> WorkerInfo:
    return WorkerInfo(id=f"host:{pid}", host="host", pid=pid, startedAt=started, queues=["default"], concurrency=5,
                      running=[], done=0, lastBeat=started)


def test_the_list_is_oldest_start_first_and_drops_workers_past_their_beats_or_gone():
    now = [100.0]
    registry = MemoryWorkers(lambda: now[0])
    beat = 2.0
    registry.beat(worker(2, 50.0), ttl=3 * beat)
    registry.beat(worker(1, 10.0), ttl=3 * beat)
    registry.beat(worker(3, 50.0), ttl=3 * beat)
    listed = routes.list_workers(registry, beat)
    assert [w.pid for w in listed.items] == [1, 2, 3] and listed.beatSeconds == beat  # ties by id
    now[0] = 105.9
    registry.beat(worker(1, 10.0), ttl=3 * beat)  # 1 beats again; 2 and 3 do not
    registry.leave("host:3")
    assert [w.pid for w in routes.list_workers(registry, beat).items] == [1, 2]
    now[0] = 106.0  # 3 beats after 2's last one
    assert [w.pid for w in routes.list_workers(registry, beat).items] == [1]


def test_no_registry_means_an_empty_list():
    assert routes.list_workers(None, 2.0).items == []

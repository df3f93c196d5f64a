"""The DLQ operations over in-memory ports (exact values): listing with filters and pages, the filter
parser, replaying many with the replay cap, purging with its confirmation, replaying one."""

import pytest

from functions import dead_letters, routes
from functions.errors import InvalidInput, NotAcknowledged, NotFound
from functions.models import DeadJob, JobState
from tests.fakes import MemoryDLQ, MemoryQueue

NOW = 1_700_000_000.0


def dead(job_id: str, failed_at: float, type_: str = "message", error: str = "JobFailed: boom", replays: int = 0,
         queue: str = "default") -> DeadJob:
    return DeadJob(jobId=f"{queue}.{job_id}", type=type_, payload={"message": job_id}, error=error, attempts=4,
                   failedAt=failed_at, replays=replays)


@pytest.fixture
def dlq() -> MemoryDLQ:
    return MemoryDLQ([
        dead("a", 100.0), dead("b", 200.0, error="Timeout: slow"), dead("c", 300.0, type_="sleep", queue="slow"),
        dead("d", 400.0, error="Timeout: again", replays=3), dead("e", 500.0, type_="noop"),
    ])


def ids(entries) -> list[str]:
    return [e.jobId.split(".")[1] for e in entries]


def test_the_filter_parser_takes_query_strings_drops_empty_values_and_names_a_bad_field():
    where = dead_letters.parse_filter({"type": "message", "failedAfter": "150", "queue": "", "errorContains": None})
    assert (where.type, where.failedAfter, where.queue, where.errorContains) == ("message", 150.0, None, None)
    assert dead_letters.parse_filter({}).is_empty()
    with pytest.raises(InvalidInput) as err:
        dead_letters.parse_filter({"failedAfter": "yesterday"})
    assert err.value.status == 422 and [d["field"] for d in err.value.details] == ["failedAfter"]
    with pytest.raises(InvalidInput):
        dead_letters.parse_filter({"color": "red"})  # an unknown filter is refused, not ignored


def test_a_page_is_oldest_failure_first_and_total_counts_every_match(dlq):
    page = routes.list_dlq(dlq, "1", "2", {})
    assert ids(page.items) == ["b", "c"] and (page.total, page.offset, page.limit) == (5, 1, 2)
    timeouts = routes.list_dlq(dlq, None, None, {"errorContains": "Timeout"})
    assert ids(timeouts.items) == ["b", "d"] and timeouts.total == 2
    combined = routes.list_dlq(dlq, None, None, {"type": "message", "failedAfter": "150", "failedBefore": "400"})
    assert ids(combined.items) == ["b"] and combined.total == 1  # failedBefore is exclusive, failedAfter not
    assert ids(routes.list_dlq(dlq, None, None, {"queue": "slow"}).items) == ["c"]
    empty = routes.list_dlq(MemoryDLQ(), None, None, {})
    assert (empty.items, empty.total) == ([], 0)
    with pytest.raises(InvalidInput):
        routes.list_dlq(dlq, None, "101", {})  # limit 1-100


def test_replay_matching_replays_oldest_first_up_to_the_limit_and_skips_jobs_at_the_cap(dlq):
    queue = MemoryQueue()
    report = dead_letters.replay_matching({"errorContains": "Timeout"}, dlq, queue, NOW, 4, max_replays=3)
    assert (report.matched, report.replayed, report.skipped) == (2, 1, 1)
    assert ids_of(report.jobIds) == ["b"] and ids_of(report.skippedIds) == ["d"] and report.remaining == 0
    assert "default.d" in dlq.entries and "default.b" not in dlq.entries  # the capped one stays
    requeued = queue.get("default.b")
    assert (requeued.state, requeued.replays, requeued.attempts, requeued.createdAt) == (JobState.queued, 1, 0, NOW)

    limited = dead_letters.replay_matching({"limit": 2}, dlq, queue, NOW, 4, max_replays=3)
    assert ids_of(limited.jobIds) == ["a", "c"] and limited.remaining == 1 and limited.skipped == 1
    assert sorted(dlq.entries) == ["default.d", "default.e"]


def test_a_dry_run_replays_nothing_and_says_what_it_would(dlq):
    queue = MemoryQueue()
    report = dead_letters.replay_matching({"dryRun": True, "limit": 1}, dlq, queue, NOW, 4, max_replays=3)
    assert (report.replayed, ids_of(report.jobIds), report.remaining, report.matched) == (0, ["a"], 4, 5)
    assert len(dlq.entries) == 5 and queue.records == {}


def test_a_replay_the_queue_refuses_puts_every_entry_back(dlq):
    queue = MemoryQueue()
    queue.fail_next = True
    with pytest.raises(RuntimeError):
        dead_letters.replay_matching({}, dlq, queue, NOW, 4, max_replays=3)
    assert len(dlq.entries) == 5 and queue.records == {}  # nothing lost
    with pytest.raises(RuntimeError):
        dead_letters.replay_one("default.a", dlq, queue, NOW, 4)
    assert "default.a" in dlq.entries


def test_a_replay_written_but_not_acknowledged_is_not_put_back(dlq):
    """Queued on the primary, its DLQ take not replicated either: putting it back would make two."""
    queue = MemoryQueue()
    queue.unacknowledged = True
    with pytest.raises(NotAcknowledged):
        dead_letters.replay_one("default.a", dlq, queue, NOW, 4)
    assert "default.a" not in dlq.entries and "default.a" in queue.records
    with pytest.raises(NotAcknowledged):
        dead_letters.replay_matching({"limit": 3}, dlq, queue, NOW, 4, max_replays=3)
    replayed = [job_id for job_id in queue.records if job_id != "default.a"]
    assert len(replayed) == 1 and replayed[0] not in dlq.entries  # the first one queued; the others back
    assert len(dlq.entries) == 3


def test_replay_one_ignores_the_cap_and_an_absent_job_is_404(dlq):
    queue = MemoryQueue()
    assert dead_letters.replay_one("default.d", dlq, queue, NOW, 4).jobId == "default.d"  # replays=3: allowed
    assert queue.get("default.d").replays == 4 and "default.d" not in dlq.entries
    with pytest.raises(NotFound):
        dead_letters.replay_one("default.d", dlq, queue, NOW, 4)


@pytest.mark.parametrize("body", [None, {}, {"confirm": False}])
def test_a_purge_without_confirm_is_refused_and_removes_nothing(dlq, body):
    with pytest.raises(InvalidInput) as err:
        dead_letters.purge_matching(body, dlq)
    assert err.value.status == 422 and len(dlq.entries) == 5


def test_a_purge_removes_the_matches_only_and_at_most_purge_max(dlq, monkeypatch):
    report = dead_letters.purge_matching({"confirm": True, "errorContains": "Timeout"}, dlq)
    assert (report.purged, report.remaining, report.complete) == (2, 0, True)
    assert sorted(dlq.entries) == ["default.a", "default.e", "slow.c"]
    monkeypatch.setattr(dead_letters, "PURGE_MAX", 2)
    capped = dead_letters.purge_matching({"confirm": True}, dlq)
    assert (capped.purged, capped.remaining) == (2, 1) and sorted(dlq.entries) == ["default.e"]


@pytest.mark.parametrize("body", [[], "confirm", 3])
def test_a_body_that_is_not_an_object_is_refused(dlq, body):
    with pytest.raises(InvalidInput):
        dead_letters.replay_matching(body, dlq, MemoryQueue(), NOW, 4, max_replays=3)
    with pytest.raises(InvalidInput):
        dead_letters.purge_matching(body, dlq)
    assert len(dlq.entries) == 5


def ids_of(job_ids: list[str]) -> list[str]:
    return [i.split(".")[1] for i in job_ids]

"""The parts of Huey forkline relies on beyond its public API (see ForklineHuey's docstring).

Huey is pinned to 3.5.x; these fail, naming the hook, if an upgrade moves one.
"""

import inspect
import signal

import huey as huey_package
from huey import RedisHuey
from huey.api import Task
from huey.consumer import Consumer, Scheduler
from huey.storage import RedisStorage

from adapters.huey.forkline_huey import ForklineHuey, queue_huey
from adapters.redis.framing import unframe_message
from adapters.redis.keys import queue_keys
from tests.adapters.huey.steps import huey


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_huey_is_the_tested_minor_version():
    assert huey_package.__version__.startswith("3.5."), huey_package.__version__


def test_the_overridden_methods_still_exist_with_the_same_parameters():
    expected = {
        "serialize_task": ["self", "task"],
        "deserialize_task": ["self", "data"],
        "dequeue": ["self"],
        "execute": ["self", "task", "timestamp"],
        "is_revoked": ["self", "task", "timestamp", "peek"],
        "delete": ["self", "key"],
        "_get_timestamp": ["self"],
    }
    for name, params in expected.items():
        assert parameters(getattr(RedisHuey, name)) == params, name
        assert getattr(ForklineHuey, name) is not getattr(RedisHuey, name), f"{name} is not overridden"
    assert "storage_class" in vars(RedisHuey) and ForklineHuey.storage_class is not RedisHuey.storage_class


def test_execute_runs_the_hooks_and_requeues_only_through_the_retries_forkline_sets_to_zero():
    """forkline decides retries itself (functions.attempts.after_failure, scheduled by the storage):
    dequeue sets task.retries = 0, and Huey requeues a failed task only while it has retries."""
    source = inspect.getsource(RedisHuey._execute)
    for used in ("_run_pre_execute", "_run_post_execute", "task.retries", "_requeue_task"):
        assert used in source, used
    assert "final = not task.retries" in source and "if final:" in source
    # The due checks read Huey's "now" from _get_timestamp (forkline: Redis's clock).
    assert "self._get_timestamp()" in inspect.getsource(RedisHuey.execute)
    # ... and only compare it with an eta or an expiry, which a claimed task has not: ForklineHuey.execute
    # passes an unread timestamp for such a task (the clock read per job is skipped).
    execute = inspect.getsource(RedisHuey.execute)
    assert execute.count("timestamp") == 8 and "self.ready_to_run(task, timestamp)" in execute  # is_revoked: ours
    assert "task.expires_resolved and task.expires_resolved < timestamp" in execute
    assert "return task.eta is None or" in inspect.getsource(RedisHuey.ready_to_run)
    assert source.count("timestamp") == 2 and "self._get_timestamp(), retry_eta" in source  # a requeue reads it anew
    assert {"retries", "id", "args"} <= set(vars(Task(args=(1, 2))))


def test_an_idle_worker_calls_dequeue_again_at_once_on_a_blocking_storage():
    """The storage's claim waits itself (until a message comes or a retry is due): Huey's worker must
    not add its own sleep after an empty dequeue, which it skips for a blocking storage."""
    from huey.consumer import Worker

    assert "elif not self.huey.storage.blocking:" in inspect.getsource(Worker.loop)
    assert queue_huey(queue_keys("default")).storage.blocking is True


def test_the_scheduler_reads_the_schedule_through_the_storage():
    assert "read_schedule" in inspect.getsource(Scheduler.loop)
    assert "timestamp = self._get_timestamp()" in inspect.getsource(RedisHuey.read_schedule)
    assert parameters(RedisStorage.read_schedule) == ["self", "ts"]
    assert "def convert_ts" in inspect.getsource(RedisStorage)
    for attribute in ("queue_key", "schedule_key", "result_key", "conn"):
        assert attribute in inspect.getsource(RedisStorage), attribute


def test_the_consumer_signal_table_forkline_edits():
    consumer = Consumer(huey, workers=1, worker_type="thread", periodic=False, scheduler_interval=1,
                        check_worker_health=True, health_check_interval=1, shutdown_timeout=1,
                        graceful_signal="INT", backoff=1.5, max_delay=2.0)
    assert consumer._signal_actions[signal.SIGINT] == (False, True)  # graceful
    assert consumer._signal_actions[signal.SIGTERM] == (False, False)  # forkline makes this graceful too
    assert consumer._signal_actions[signal.SIGHUP] == (True, True)  # forkline removes this (no re-exec)
    assert "_signal_actions" in inspect.getsource(Consumer._set_signal_handlers)



def test_the_consumer_internals_run_all_drives():
    """local/runtime/consumer.py: run_all starts each queue's consumer, routes the signals through the first one's
    handler and stops them all within one grace period, through these."""
    consumer = Consumer(huey, workers=1, worker_type="thread", periodic=False, scheduler_interval=1,
                        check_worker_health=True, health_check_interval=1, shutdown_timeout=1,
                        graceful_signal="INT", backoff=1.5, max_delay=2.0)
    assert consumer._signum is None and consumer._graceful is True and not consumer.stop_flag.is_set()
    for method in ("start", "stop", "check_worker_health", "_set_signal_handlers"):
        assert callable(getattr(consumer, method)), method
    handler = inspect.getsource(Consumer._handle_signal)
    assert "self._signum = signum" in handler and "self._graceful" in handler
    assert "self.shutdown_timeout" in inspect.getsource(Consumer._join_workers)


def test_every_queued_message_names_the_task_as_the_first_version_did():
    """The registry name is part of the message format: messages written by any earlier version (the
    task lived in adapters/huey/tasks.py) must still find the task after a rename."""
    instance = queue_huey(queue_keys("default"))
    framed = instance.serialize_task(instance.run_job_task.s("noop", {}, "", 0, id="default.x"))
    assert instance.serializer.deserialize(unframe_message(framed)).name == "adapters.huey.tasks.forkline.run_job"
    assert instance.deserialize_task(framed).name == "forkline.run_job"

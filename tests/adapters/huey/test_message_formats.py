"""Queue message formats on a real Redis (adapters/redis/framing.py): web workers write the compact
format 3 by default and Huey's format 2 with QUEUE_MESSAGE_FORMAT=2; a consumer runs both alike.
Across versions (an older consumer beside a newer web worker): tests/e2e/test_rolling_deploy.py."""

from adapters.redis import keys
from adapters.redis.framing import message_format, unframe_message
from adapters.wiring import build_ports, configure_consumer
from functions import dead_letters, routes
from tests.adapters.huey.steps import huey, submit, work_one

DEFAULT = keys.queue_keys("default")


def waiting_messages(ports):
    return ports.redis.client.lrange(DEFAULT.list, 0, -1)


def test_both_formats_run_alike_and_format_2_stays_readable_by_huey_itself(settings):
    configure_consumer(settings)
    compact = build_ports(settings)
    pickled = build_ports(settings.model_copy(update={"queue_message_format": 2}))
    body = {"message": "héllo ✓ \"quoted\"", "shouldFail": False}
    first = submit(compact, body)
    [written] = waiting_messages(compact)
    assert message_format(written) == 3 and written.split(b"\n", 1)[1].startswith(b'{"type":"message"')
    second = submit(pickled, body)
    assert [message_format(m) for m in waiting_messages(compact)] == [2, 3]
    old_reader = huey.serializer.deserialize(unframe_message(waiting_messages(compact)[0]))  # as format-2 code reads it
    assert old_reader.name == "adapters.huey.tasks.forkline.run_job" and old_reader.id == second
    assert old_reader.args == ("message", body, "", 0)
    tasks = [work_one(), work_one()]
    assert [task.id for task in tasks] == [first, second]
    assert [task.args for task in tasks] == [("message", body, "", 0)] * 2
    for job_id in (first, second):
        record = compact.jobs.get(job_id)
        assert (record.state, record.result) == ("completed", {"processed": body["message"]})


def test_a_replayed_job_keeps_its_request_id_and_replay_count_in_the_compact_format(settings):
    configure_consumer(settings)
    ports = build_ports(settings)
    accepted, _ = routes.submit_job({"message": "boom", "shouldFail": True}, ports.jobs, lambda: "default.r1", 0.0, 1,
                                    request_id="req-7")
    work_one()  # its one attempt fails: dead
    assert ports.jobs.get(accepted.jobId).state == "dead"
    dead_letters.replay_one(accepted.jobId, ports.dlq, ports.jobs, 1.0, 3, request_id="req-8")
    [message] = waiting_messages(ports)
    assert message_format(message) == 3
    task = work_one()
    record = ports.jobs.get(accepted.jobId)
    assert record.replays == 1 and record.requestId in ("req-7", "req-8")
    assert task.args == ("message", {"message": "boom", "shouldFail": True}, record.requestId, 1)

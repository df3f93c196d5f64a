"""Job records, idempotency keys and counters in one DynamoDB table (JOB_STORE=dynamodb, JOBS_TABLE).

One item per job (`pk` = "job#<id>", the fields of a job record), one per idempotency key
("key#<key>": the holder's job id and request fingerprint), COUNTER_SHARDS counter items per named
queue ("counter#<n>" for `default`, as before named queues; "counter#<queue>#<n>" for the others)
and one item per paused queue ("queue#<name>", `paused`). Invariants:
- a record's state moves pending -> queued -> active -> (retrying -> active)* -> completed | dead,
  or, before it starts (pending, queued, retrying), -> cancelled; each move conditional on the state
  it leaves, so a repeated delivery cannot finish a job twice;
- a counter changes only in the same transaction as the state move it counts, so the counts are exact;
  a job's counter shard is fixed by its id (crc32), which spreads the writes of 1,000 jobs/s over
  COUNTER_SHARDS items; reads sum the shards;
- every item carries `expiresAt` (the table's TTL attribute): finished jobs JOB_RETENTION (or their
  type's own retention) after they finish (dead ones DEAD_RETENTION, as long as the SQS DLQ keeps their
  entry), keys as long after the submit; an item past it reads as absent before DynamoDB deletes it.
"""

import json
import time
from typing import Any

from adapters.aws.client import AWS_ERRORS, AWSHandle, aws_unavailable, error_code, error_response
from adapters.aws.job_items import (
    COUNTER_SHARDS,
    TTL_ATTRIBUTE,
    attempt_error,
    counter_key,
    decode_item,
    encode_item,
    expires_at,
    job_key,
    number,
    queue_flag,
    shard_of,
)
from functions.models import CANCELLABLE, PROMOTABLE, DeadJob, JobRecord, JobState

DEAD_RETENTION = 14 * 86400  # the SQS DLQ's longest retention
UNFINISHED_RETENTION = 14 * 86400  # beyond JOB_RETENTION: a job may wait that long on its queue
_COUNTED = ("completed", "failed", "retrying")
FINISHED = (JobState.completed, JobState.dead, JobState.cancelled)  # a delivery of these is dropped


def stale(job: JobRecord, record: JobRecord) -> bool:
    """A message from before the job was promoted (`job`: its copy, whose promotions is the message's
    generation): dropped, as the promotion's own message runs the job. While the record is pending
    the promotion's message may not be sent (a failed send): the older one may then run it."""
    return job.promotions < record.promotions and record.state != JobState.pending


class ConditionFailed(Exception):
    """A transaction or a conditional write found the item in another state."""

    def __init__(self, reasons: list[dict[str, Any]]):
        super().__init__("condition failed")
        self.reasons = reasons


class JobTable:
    def __init__(self, table: str, retention: int, dynamodb: AWSHandle | None = None):
        self.table = table
        self.retention = retention
        self.db = dynamodb or AWSHandle("dynamodb")

    def call(self, action: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.db.client, action)(**kwargs)
        except AWS_ERRORS as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                found = error_response(exc).get("Item")
                raise ConditionFailed([{"Code": "ConditionalCheckFailed", "Item": found}]) from None
            if code == "TransactionCanceledException":
                raise ConditionFailed(list(error_response(exc).get("CancellationReasons", []))) from None
            raise aws_unavailable(exc, action, "dynamodb") from None

    def _transact(self, *writes: dict[str, Any]) -> None:
        self.call("transact_write_items", TransactItems=[
            {"Put" if "Item" in write else "Update": {"TableName": self.table, **write}} for write in writes])

    def _pending_item(self, job: JobRecord, now: float) -> dict[str, Any]:
        return {**encode_item(job.model_copy(update={"state": JobState.pending})), **job_key(job.id),
                TTL_ATTRIBUTE: expires_at(now, self.retention + UNFINISHED_RETENTION)}

    def put_pending(self, job: JobRecord, key: tuple[str, str] | None, now: float) -> None:
        """Write the record as pending (and the key's holder), only where none exists; ConditionFailed
        names which item was there (reason 0: the job, 1: the key, with its item)."""
        item = self._pending_item(job, now)
        absent = "attribute_not_exists(pk)"
        if key is None:
            self.call("put_item", TableName=self.table, Item=item, ConditionExpression=absent)
            return
        held = {"pk": {"S": f"key#{key[0]}"}, "jobId": {"S": job.id}, "fingerprint": {"S": key[1]},
                TTL_ATTRIBUTE: expires_at(now, job.retention or self.retention)}
        self._transact(
            {"Item": item, "ConditionExpression": absent},
            {"Item": held, "ConditionExpression": f"{absent} OR {TTL_ATTRIBUTE} < :now",
             "ExpressionAttributeValues": {":now": number(now)}, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})

    def replace_pending(self, job: JobRecord, now: float) -> JobRecord:
        """Write the record as pending whatever was there (a replay: attempts start again), keeping its
        generation (promotions): a delayed message from before a promotion stays stale. Returns what was written."""
        old = self.get(job.id)
        if old is not None and old.promotions:
            job = job.model_copy(update={"promotions": old.promotions})
        self.call("put_item", TableName=self.table, Item=self._pending_item(job, now))
        return job

    def mark_queued(self, job_id: str, state: JobState = JobState.queued) -> None:
        """pending -> queued (or scheduled, for a delayed message) once its message is on the queue (a
        runner may have started it already)."""
        try:
            self.call("update_item", TableName=self.table, Key=job_key(job_id),
                       UpdateExpression="SET #s = :queued", ConditionExpression="#s = :pending",
                       ExpressionAttributeNames={"#s": "state"},
                       ExpressionAttributeValues={":queued": {"S": state.value}, ":pending": {"S": "pending"}})
        except ConditionFailed:
            pass

    def get(self, job_id: str) -> JobRecord | None:
        item = self.call("get_item", TableName=self.table, Key=job_key(job_id), ConsistentRead=True).get("Item")
        if item is None or int(item.get(TTL_ATTRIBUTE, {"N": "0"})["N"]) < time.time():
            return None
        return decode_item(item)

    def holder(self, key: str) -> tuple[str, str] | None:
        item = self.call("get_item", TableName=self.table, Key={"pk": {"S": f"key#{key}"}},
                          ConsistentRead=True).get("Item")
        return (item["jobId"]["S"], item["fingerprint"]["S"]) if item else None

    def _move(self, job_id: str, leaving: str, sets: dict[str, Any], counter: str | None = None,
              by: int = 1, removes: tuple[str, ...] = (), appends: dict[str, Any] | None = None) -> None:
        """One state move of a job, conditional on the state it leaves, with its counter change;
        `appends`: lists whose items are added at the end (made when absent)."""
        appends = appends or {}
        names = {f"#{n}": n for n in (*sets, *appends)} | {"#state": "state"}
        values = {f":{n}": v for n, v in (*sets.items(), *appends.items())} | {":leaving": {"S": leaving}}
        if appends:
            values[":none"] = {"L": []}
        update = "SET " + ", ".join([*(f"#{n} = :{n}" for n in sets),
                                     *(f"#{n} = list_append(if_not_exists(#{n}, :none), :{n})" for n in appends)])
        update += f" REMOVE {', '.join(removes)}" if removes else ""
        move = {"Key": job_key(job_id), "UpdateExpression": update, "ConditionExpression": "#state = :leaving",
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
        if counter is None:
            self.call("update_item", TableName=self.table, **move)
            return
        count = {"Key": shard_of(job_id), "UpdateExpression": "ADD #c :by",
                 "ExpressionAttributeNames": {"#c": counter}, "ExpressionAttributeValues": {":by": number(by)}}
        self._transact(move, count)

    def _leave_waiting(self, job_id: str, leaving: str, sets: dict[str, Any]) -> None:
        """Move a job out of a state before it runs (pending, queued, retrying): to active or cancelled.
        Leaving `retrying` gives its count back in the same transaction."""
        self._move(job_id, leaving, sets, "retrying" if leaving == JobState.retrying else None, -1,
                   removes=("nextAttemptAt",))

    def start(self, job: JobRecord, attempt: int, now: float) -> JobRecord | None:
        """Mark the job active for `attempt`; None when it has finished (a repeated delivery). A
        record missing (expired, or never written) is written from the message's copy."""
        for _ in range(3):  # another delivery of the same job may move it between read and write
            record = self.get(job.id)
            if record is None:
                try:
                    self.put_pending(job, None, now)
                except ConditionFailed:
                    continue
                record = job.model_copy(update={"state": JobState.pending})
            if record.state in FINISHED or stale(job, record):
                return None
            sets = {"state": {"S": "active"}, "attempts": number(attempt), "updatedAt": number(now)}
            try:
                self._leave_waiting(job.id, record.state, sets)
            except ConditionFailed:
                continue
            # Its timestamps as they were: when it became ready to run (JobRecord.ready_at) is read from them.
            return record.model_copy(update={"state": JobState.active, "attempts": attempt})
        raise aws_unavailable(RuntimeError("the job's state kept changing"), "start", "dynamodb")

    def cancel(self, job_id: str, now: float) -> JobState | None:
        """A job not started -> cancelled (kept JOB_RETENTION); the state found, None if unknown."""
        for _ in range(3):  # a runner may start it between the read and the write
            record = self.get(job_id)
            if record is None or record.state not in CANCELLABLE:
                return record.state if record else None
            sets = {"state": {"S": JobState.cancelled.value}, "updatedAt": number(now), "finishedAt": number(now),
                    TTL_ATTRIBUTE: expires_at(now, record.retention or self.retention)}
            try:
                self._leave_waiting(job_id, record.state, sets)
            except ConditionFailed:
                continue
            return record.state
        raise aws_unavailable(RuntimeError("the job's state kept changing"), "cancel", "dynamodb")

    def promote(self, job_id: str, now: float) -> tuple[JobState | None, JobRecord | None]:
        """A scheduled or retrying job -> pending, one promotion more (its message's generation: the
        delayed message, of the generation before, is dropped when it arrives; stale()). The state
        found, and the record as promoted (None when it was not)."""
        for _ in range(3):  # a runner may start it between the read and the write
            record = self.get(job_id)
            if record is None or record.state not in PROMOTABLE:
                return (record.state if record else None), None
            sets = {"state": {"S": JobState.pending.value}, "updatedAt": number(now),
                    "promotions": number(record.promotions + 1)}
            try:
                self._move(job_id, record.state, sets, "retrying" if record.state == JobState.retrying else None, -1,
                           removes=("nextAttemptAt", "runAt"))
            except ConditionFailed:
                continue
            return record.state, record.model_copy(update={"state": JobState.pending, "updatedAt": now, "runAt": None,
                                                           "nextAttemptAt": None, "promotions": record.promotions + 1})
        raise aws_unavailable(RuntimeError("the job's state kept changing"), "promote", "dynamodb")

    def progress(self, job_id: str, fraction: float, note: str) -> None:
        """The job's progress, in one conditional update: written only while it is active."""
        try:
            self.call("update_item", TableName=self.table, Key=job_key(job_id),
                      UpdateExpression="SET progress = :p, progressNote = :n", ConditionExpression="#s = :active",
                      ExpressionAttributeNames={"#s": "state"},
                      ExpressionAttributeValues={":p": number(fraction), ":n": {"S": note},
                                                 ":active": {"S": "active"}})
        except ConditionFailed:
            pass  # finished (or gone) before the report was written

    def forget(self, job_id: str) -> JobState | None:
        """Delete a completed or cancelled record (one conditional delete); the state found, None if unknown."""
        try:
            old = self.call("delete_item", TableName=self.table, Key=job_key(job_id), ReturnValues="ALL_OLD",
                            ConditionExpression="#s IN (:c, :x)", ExpressionAttributeNames={"#s": "state"},
                            ExpressionAttributeValues={":c": {"S": "completed"}, ":x": {"S": "cancelled"}},
                            ReturnValuesOnConditionCheckFailure="ALL_OLD")["Attributes"]
        except ConditionFailed as exc:
            old = exc.reasons[0].get("Item") if exc.reasons else None
            if not old or int(old.get(TTL_ATTRIBUTE, {"N": "0"})["N"]) < time.time():
                return None
        return JobState(old["state"]["S"])

    def completed(self, job_id: str, result: Any, now: float, retention: int | None = None) -> None:
        try:
            self._move(job_id, "active", {"state": {"S": "completed"}, "result": {"S": json.dumps(result, default=str)},
                                          "finishedAt": number(now), "updatedAt": number(now),
                                          TTL_ATTRIBUTE: expires_at(now, retention or self.retention)}, "completed")
        except ConditionFailed:
            pass  # finished by another delivery: counted once

    def retrying(self, job_id: str, error: str, next_attempt_at: float, now: float, attempt: int) -> None:
        try:
            self._move(job_id, "active", {"state": {"S": "retrying"}, "lastError": {"S": error},
                                          "nextAttemptAt": number(next_attempt_at), "updatedAt": number(now)},
                       "retrying", appends={"errors": attempt_error(attempt, error, now)})
        except ConditionFailed:
            pass

    def dead(self, entry: DeadJob, delivered: bool) -> None:
        sets = {"state": {"S": "dead"}, "lastError": {"S": entry.error}, "finishedAt": number(entry.failedAt),
                "updatedAt": number(entry.failedAt), "attempts": number(entry.attempts),
                "dlqPending": {"BOOL": not delivered}, TTL_ATTRIBUTE: expires_at(entry.failedAt, DEAD_RETENTION)}
        try:
            self._move(entry.jobId, "active", sets, "failed",
                       appends={"errors": attempt_error(entry.attempts, entry.error, entry.failedAt)})
        except ConditionFailed:
            pass

    def totals(self, queues: list[str]) -> dict[str, dict[str, int]]:
        """Per queue: completed, failed and retrying (the sums over its counter shards) and paused
        (1 or 0), in one BatchGetItem per 100 items."""
        wanted = {counter_key(q, n)["pk"]["S"]: q for q in queues for n in range(COUNTER_SHARDS)}
        wanted |= {queue_flag(q)["pk"]["S"]: q for q in queues}
        totals = {q: dict.fromkeys((*_COUNTED, "paused"), 0) for q in queues}
        pending, throttled = list(wanted), 0
        while pending:
            batch, pending = pending[:100], pending[100:]
            asked: dict[str, Any] = {self.table: {"Keys": [{"pk": {"S": pk}} for pk in batch], "ConsistentRead": True}}
            found = self.call("batch_get_item", RequestItems=asked)
            for item in found.get("Responses", {}).get(self.table, []):
                pk, counts = item["pk"]["S"], totals[wanted[item["pk"]["S"]]]
                if pk.startswith("queue#"):
                    counts["paused"] = int(item.get("paused", {"BOOL": False})["BOOL"])
                    continue
                for name in _COUNTED:
                    counts[name] += int(item.get(name, {"N": "0"})["N"])
            left = (found.get("UnprocessedKeys") or {}).get(self.table, {}).get("Keys", [])
            if left:  # BatchGetItem leaves keys unprocessed when throttled
                throttled += 1
                if throttled > 5:
                    raise aws_unavailable(RuntimeError("counters unread"), "totals", "dynamodb")
                pending += [key["pk"]["S"] for key in left]
                time.sleep(0.05)
        return totals

    def set_paused(self, queue: str, paused: bool) -> None:
        self.call("put_item", TableName=self.table, Item={**queue_flag(queue), "paused": {"BOOL": paused}})

    def paused(self, queue: str) -> bool:
        item = self.call("get_item", TableName=self.table, Key=queue_flag(queue), ConsistentRead=True).get("Item")
        return bool(item and item["paused"]["BOOL"])

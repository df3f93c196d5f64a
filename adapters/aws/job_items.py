"""A job record as a DynamoDB item, and the keys of the table's items (adapters/aws/job_table.py
says what each item is for)."""

import json
import math
import zlib
from enum import Enum
from typing import Any

from functions.jobs import DEFAULT_QUEUE
from functions.models import AttemptError, JobRecord, job_queue

COUNTER_SHARDS = 16
TTL_ATTRIBUTE = "expiresAt"  # the table's TimeToLiveSpecification in template.yaml
_JSON_FIELDS = {"payload", "result"}


def encode_item(job: JobRecord) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for name in JobRecord.model_fields:
        value = getattr(job, name)
        if name in _JSON_FIELDS:
            item[name] = {"S": json.dumps(value)}
        elif name == "errors":
            if value:
                item[name] = {"L": [{"S": e.model_dump_json()} for e in value]}
        elif value is None:
            continue
        elif isinstance(value, bool):
            item[name] = {"BOOL": value}
        elif isinstance(value, int | float):
            item[name] = {"N": repr(value)}
        else:
            item[name] = {"S": value.value if isinstance(value, Enum) else str(value)}
    return item


def attempt_error(attempt: int, error: str, at: float) -> dict[str, Any]:
    """One entry for a record's `errors` (a list of JSON strings), as a list to append."""
    return {"L": [{"S": AttemptError(attempt=attempt, error=error, at=at).model_dump_json()}]}


def decode_item(item: dict[str, Any]) -> JobRecord:
    data: dict[str, Any] = {}
    for name, typed in item.items():
        if name not in JobRecord.model_fields:
            continue
        kind, value = next(iter(typed.items()))
        if name in _JSON_FIELDS:
            data[name] = json.loads(value)
        elif kind == "L":
            data[name] = [json.loads(entry["S"]) for entry in value]
        elif kind == "N":
            data[name] = float(value) if "." in value or "e" in value.lower() else int(value)
        else:
            data[name] = value
    return JobRecord.model_validate(data)


def counter_key(queue: str, shard: int) -> dict[str, Any]:
    return {"pk": {"S": f"counter#{shard}" if queue == DEFAULT_QUEUE else f"counter#{queue}#{shard}"}}


def shard_of(job_id: str) -> dict[str, Any]:
    """The counter item a job's moves are counted on: its queue's, the shard fixed by its id."""
    return counter_key(job_queue(job_id), zlib.crc32(job_id.encode()) % COUNTER_SHARDS)


def queue_flag(queue: str) -> dict[str, Any]:
    return {"pk": {"S": f"queue#{queue}"}}


def job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"job#{job_id}"}}


def number(value: float) -> dict[str, str]:
    return {"N": repr(value)}


def expires_at(now: float, seconds: float) -> dict[str, str]:
    """The TTL attribute `seconds` after `now`, rounded up: TTLs are whole seconds, and rounding down
    would let an item read as absent up to a second before its retention ends."""
    return number(math.ceil(now + seconds))

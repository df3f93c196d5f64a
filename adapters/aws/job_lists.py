"""Jobs by state and the history, in the DynamoDB job table (GET /jobs, GET /queue/history on the
cloud pairing).

Lists read the table's sparse global secondary index `ByState` (partition: `state`, sort: `updatedAt`;
template.yaml), which holds job records only (no other item has a `state`): one query per state asked,
newest first, merged. History items, one per queue and minute ("history#<queue>#m#<minute>") and per
queue and hour ("history#<queue>#h#<hour>"), are counted up as jobs are accepted, retried, completed and
dead, and expire with the TTL after 8 days. They are written after the state move, not in its
transaction: a delivery SQS repeats may be counted twice, and a throttled history write is dropped (logged),
never the job. Each item takes every event of its queue in its minute: past ~1,000 events a second on
one queue DynamoDB throttles it (the lists' index partitions, one per state, have the same ceiling).
"""

import logging
import math
import time
from typing import Any

from adapters.aws.job_items import TTL_ATTRIBUTE, decode_item, expires_at, number
from adapters.aws.job_table import JobTable
from functions.jobs import declared_queues
from functions.listing import decode_cursor, encode_cursor
from functions.models import JobRecord

INDEX = "ByState"
OLDEST_PAGES = 5
HISTORY_TTL = 8 * 86400
log = logging.getLogger("forkline.history")


def history_key(queue: str, step: str, bucket: int) -> dict[str, Any]:
    return {"pk": {"S": f"history#{queue}#{step}#{bucket}"}}


class DynamoJobLists:
    def __init__(self, table: JobTable):
        self.table = table

    def list_jobs(self, states: list[str], queues: list[str], job_type: str | None, limit: int,
                  cursor: str | None) -> tuple[list[JobRecord], str | None]:
        bound = decode_cursor(cursor) if cursor else (math.inf, "")
        found, more = [], False
        for state in states:
            items, state_more = self._query(state, queues, job_type, bound, limit + 1)
            found += items
            more = more or state_more
        now = time.time()
        live = [i for i in found if int(i.get(TTL_ATTRIBUTE, {"N": "0"})["N"]) >= now]
        ordered = sorted(((float(i["updatedAt"]["N"]), i["pk"]["S"], i) for i in live),
                         key=lambda entry: (entry[0], entry[1]), reverse=True)
        page = ordered[:limit]
        more = more or len(ordered) > limit
        records = [decode_item(item) for _, _, item in page]
        return records, encode_cursor(page[-1][0], page[-1][1]) if page and more else None

    def _query(self, state: str, queues: list[str], job_type: str | None, bound: tuple[float, str],
               wanted: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to `wanted` items in `state` after `bound`, newest first; and whether there are more."""
        names, values = {"#s": "state"}, {":s": {"S": state}}
        condition, filters = "#s = :s", []
        if bound[0] != math.inf:
            condition += " AND #u <= :u"
            names["#u"], values[":u"] = "updatedAt", number(bound[0])
        if sorted(queues) != sorted(declared_queues()):
            filters.append("(" + " OR ".join(f"begins_with(pk, :q{n})" for n in range(len(queues))) + ")")
            values.update({f":q{n}": {"S": f"job#{queue}."} for n, queue in enumerate(queues)})
        if job_type is not None:
            filters.append("#t = :t")
            names["#t"], values[":t"] = "type", {"S": job_type}
        query: dict[str, Any] = {"TableName": self.table.table, "IndexName": INDEX, "ScanIndexForward": False,
                                 "KeyConditionExpression": condition, "ExpressionAttributeNames": names,
                                 "ExpressionAttributeValues": values, "Limit": wanted}
        if filters:
            query["FilterExpression"] = " AND ".join(filters)
        items: list[dict[str, Any]] = []
        for _ in range(20):  # pages of a sparse filter: bounded, then reported as "more"
            answer = self.table.call("query", **query)
            for item in answer.get("Items", []):
                updated, pk = float(item["updatedAt"]["N"]), item["pk"]["S"]
                if updated < bound[0] or (updated == bound[0] and pk < bound[1]):
                    items.append(item)
            if len(items) >= wanted or "LastEvaluatedKey" not in answer:
                return items[:wanted], len(items) >= wanted or "LastEvaluatedKey" in answer
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return items, True

    def oldest_waiting(self, now: float) -> dict[str, float]:
        """Per queue, when its oldest waiting job became claimable (JobRecord.ready_at), from the ByState
        index read oldest first: queued and pending jobs until each queue is found (at most OLDEST_PAGES
        pages of 100 per state), retrying and scheduled ones whose due time has passed (their first page:
        the index is ordered by when they entered the state, which is near enough the order they come due)."""
        found: dict[str, float] = {}
        for state in ("queued", "pending", "retrying", "scheduled"):
            query: dict[str, Any] = {"TableName": self.table.table, "IndexName": INDEX, "ScanIndexForward": True,
                                     "KeyConditionExpression": "#s = :s", "ExpressionAttributeNames": {"#s": "state"},
                                     "ExpressionAttributeValues": {":s": {"S": state}}, "Limit": 100}
            for _ in range(OLDEST_PAGES if state in ("queued", "pending") else 1):
                answer = self.table.call("query", **query)
                for item in answer.get("Items", []):
                    if int(item.get(TTL_ATTRIBUTE, {"N": "0"})["N"]) < now:
                        continue
                    record = decode_item(item)
                    ready = record.ready_at()
                    if ready <= now and ready < found.get(record.queue, math.inf):
                        found[record.queue] = ready
                if "LastEvaluatedKey" not in answer or set(declared_queues()) <= set(found):
                    break
                query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return found

    def add(self, queue: str, event: str, now: float) -> None:
        """Count one event in its minute's and its hour's items."""
        for step, size in (("m", 60), ("h", 3600)):
            try:
                key = history_key(queue, step, int(now // size))
                self.table.call("update_item", TableName=self.table.table, Key=key,
                                UpdateExpression="ADD #e :one SET #x = if_not_exists(#x, :x)",
                                ExpressionAttributeNames={"#e": event, "#x": TTL_ATTRIBUTE},
                                ExpressionAttributeValues={":one": number(1), ":x": expires_at(now, HISTORY_TTL)})
            except Exception:  # the job's own write is done: a history count is not worth failing it
                log.warning("history count of %s %s not written", queue, event, exc_info=True)

    def history(self, queues: list[str], since: int, until: int, step: int) -> dict[int, dict[str, int]]:
        kind, size = ("m", 60) if step == 60 else ("h", 3600)
        wanted = [(queue, bucket) for queue in queues for bucket in range(since // size, (until - 1) // size + 1)]
        buckets: dict[int, dict[str, int]] = {}
        for first in range(0, len(wanted), 100):  # BatchGetItem takes 100 keys
            keys = [history_key(queue, kind, bucket) for queue, bucket in wanted[first:first + 100]]
            request = {self.table.table: {"Keys": keys}}
            for _ in range(5):  # unprocessed keys (throttling) are asked again
                answer = self.table.call("batch_get_item", RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table.table, []):
                    at = int(item["pk"]["S"].rsplit("#", 1)[1]) * size // step * step
                    bucket = buckets.setdefault(at, {})
                    for event in ("accepted", "completed", "failed", "retried"):
                        if event in item:
                            bucket[event] = bucket.get(event, 0) + int(item[event]["N"])
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
        return buckets

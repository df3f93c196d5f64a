"""Heartbeats of the SQS workers in the DynamoDB job table (the WorkerRegistry port, cloud pairing).

One item, "workers", maps each worker id to its last beat (a WorkerInfo as JSON
plus the moment it expires). A beat writes its own entry and removes the entries
expired for longer than an hour (workers killed without leaving), so the item
stays small; a listing skips the expired ones.
"""

import json
import time
from typing import Any

from adapters.aws.job_table import ConditionFailed, JobTable
from functions.models import WorkerInfo

ITEM = {"pk": {"S": "workers"}}
FORGET_AFTER = 3600.0  # seconds an expired entry stays before a beat removes it


class DynamoWorkerRegistry:
    def __init__(self, table: JobTable):
        self.table = table

    def _entries(self) -> dict[str, dict[str, Any]]:
        item = self.table.call("get_item", TableName=self.table.table, Key=ITEM, ConsistentRead=True).get("Item")
        entries = (item or {}).get("w", {"M": {}})["M"]
        return {worker_id: json.loads(value["S"]) for worker_id, value in entries.items()}

    def beat(self, worker: WorkerInfo, ttl: float) -> None:
        now = time.time()
        stale = [wid for wid, entry in self._entries().items()
                 if entry["expiresAt"] < now - FORGET_AFTER and wid != worker.id]
        entry = {"S": json.dumps({**worker.model_dump(), "expiresAt": now + ttl})}
        names = {"#me": worker.id} | {f"#s{n}": wid for n, wid in enumerate(stale)}
        removes = "".join(f" REMOVE w.#s{n}" if n == 0 else f", w.#s{n}" for n in range(len(stale)))
        try:
            self.table.call("update_item", TableName=self.table.table, Key=ITEM, UpdateExpression=f"SET w.#me = :e"
                            f"{removes}", ExpressionAttributeNames=names, ExpressionAttributeValues={":e": entry},
                            ConditionExpression="attribute_exists(w)")
        except ConditionFailed:  # the first beat ever: make the map
            self.table.call("update_item", TableName=self.table.table, Key=ITEM,
                            UpdateExpression="SET w = if_not_exists(w, :m)",
                            ExpressionAttributeValues={":m": {"M": {}}})
            self.beat(worker, ttl)

    def leave(self, worker_id: str) -> None:
        self.table.call("update_item", TableName=self.table.table, Key=ITEM, UpdateExpression="REMOVE w.#me",
                        ExpressionAttributeNames={"#me": worker_id})

    def list(self) -> list[WorkerInfo]:
        now = time.time()
        live = [WorkerInfo.model_validate(entry) for entry in self._entries().values() if entry["expiresAt"] >= now]
        return sorted(live, key=lambda w: w.startedAt)

"""GET /jobs and GET /queue/history on the cloud pairing (moto): the table's ByState index lists the
records of each state as they move (pending, queued, scheduled, active, retrying, completed, dead,
cancelled, a replay, an expired record), pages follow one another, and the history counts what ran."""

import json
import time

from adapters.aws.job_items import TTL_ATTRIBUTE, job_key
from tests.adapters.aws.lambda_events import Context, call, post, run_jobs, v2

STATES = ("pending", "queued", "scheduled", "active", "retrying", "completed", "dead", "cancelled")


def listed(**params) -> list[str]:
    ids, cursor = [], None
    for _ in range(50):
        asked = {**params, "limit": 3, **({"cursor": cursor} if cursor else {})}
        query = "&".join(f"{k}={v}" for k, v in asked.items())
        status, page, _ = call(v2("GET", "/jobs", query=query))
        assert status == 200, page
        ids += [item["id"] for item in page["items"]]
        cursor = page["cursor"]
        if cursor is None:
            return ids
    raise AssertionError("no last page")


def truth(cloud) -> dict[str, set[str]]:
    found = {state: set() for state in STATES}
    for item in cloud.dynamodb.scan(TableName=cloud.table)["Items"]:
        if item["pk"]["S"].startswith("job#") and int(item[TTL_ATTRIBUTE]["N"]) >= time.time():
            found[item["state"]["S"]].add(item["pk"]["S"].removeprefix("job#"))
    return found


def assert_lists_match(cloud) -> None:
    records = truth(cloud)
    for state in STATES:
        assert sorted(listed(state=state)) == sorted(records[state]), state
    assert sorted(listed()) == sorted(i for ids in records.values() for i in ids)


def test_the_lists_follow_the_records_and_the_history_counts_what_ran(cloud, monkeypatch):
    monkeypatch.setenv("JOB_BACKOFF_BASE", "0")  # over the template's, which the cloud fixture set
    ok = post({"message": "fine"})[1]["jobId"]
    bad = post({"message": "boom", "shouldFail": True})[1]["jobId"]
    later = post({"message": "later", "delay": 60})[1]["jobId"]
    dropped = post({"message": "never", "delay": 60})[1]["jobId"]
    assert_lists_match(cloud)
    assert listed(state="scheduled") == [dropped, later]
    assert call(v2("DELETE", f"/jobs/{dropped}"))[0] == 200
    for _ in range(5):  # ok completes; bad retries (no delay here) until it is dead
        run_jobs(cloud, Context())
        assert_lists_match(cloud)
    assert listed(state="completed") == [ok] and listed(state="dead") == [bad]
    assert call(v2("POST", f"/dlq/{bad}/replay"))[0] == 202
    assert listed(state="queued") == [bad] and listed(state="dead") == []
    cloud.dynamodb.update_item(TableName=cloud.table, Key=job_key(ok), UpdateExpression="SET #x = :past",
                               ExpressionAttributeNames={"#x": TTL_ATTRIBUTE},
                               ExpressionAttributeValues={":past": {"N": "1"}})  # expired, not yet swept
    assert ok not in listed()
    assert listed(type="noop") == [] and listed(queue="slow") == []
    history = call(v2("GET", "/queue/history"))[1]
    totals = {e: sum(b[e] for b in history["buckets"]) for e in ("accepted", "completed", "failed", "retried")}
    assert totals == {"accepted": 4, "completed": 1, "failed": 1, "retried": 3}
    hourly = call(v2("GET", "/queue/history", query="step=hour"))[1]
    assert sum(b["retried"] for b in hourly["buckets"]) == 3 and hourly["step"] == "hour"
    status, refused, _ = call(v2("GET", "/jobs", query="state=waiting"))
    assert status == 422 and refused["details"][0]["field"] == "state"
    assert json.loads(json.dumps(call(v2("GET", "/jobs", query="cursor=zz"))[1]))["details"][0]["field"] == "cursor"

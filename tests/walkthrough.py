"""The template's walkthrough, as the README gives it, against any running forkline: `forkline run`,
the server image, the compose file."""

from harness.processes import request, wait_until
from tests.stats import template_figures


class Published:
    """An API published on a loopback port (a container's, say), with Forkline's `request`."""

    def __init__(self, port: int):
        self.port = port

    def request(self, method, path, body=None, headers=None, timeout: float = 5.0):
        return request(self.port, method, path, body, headers, timeout)


def job_state(fl, job_id):
    return fl.request("GET", f"/jobs/{job_id}")[2]["state"]


def post(fl, body):
    status, headers, data = fl.request("POST", "/jobs", body)
    assert status == 202, data
    return data["jobId"]


def stats_of(fl):
    return fl.request("GET", "/queue/stats")[2]


def buried(fl, job_id):
    """Dead and its DLQ entry written (the record is marked dead just before the put)."""
    record = fl.request("GET", f"/jobs/{job_id}")[2]
    return record["state"] == "dead" and not record["dlqPending"]


def walkthrough(stack, dead_within: float = 20, replay: bool = True):
    """The README's walkthrough ("A first request"): the template's requests, a job completed, a
    failing job reaching the DLQ (within `dead_within` seconds: 14 s of retries at the default
    backoff), a replay. `stack` has `request(method, path, body=None)` as harness.processes.Forkline."""
    status, _, welcome = stack.request("GET", "/")
    assert status == 200 and welcome["message"] and isinstance(welcome["workerPID"], int)
    status, _, health = stack.request("GET", "/health")
    assert status == 200 and health["status"] == "ok" and set(health["dependencies"].values()) == {"up"}
    ok = post(stack, {"message": "Hello from queue!", "shouldFail": False})
    bad = post(stack, {"message": "nope", "shouldFail": True})
    wait_until(lambda: job_state(stack, ok) == "completed", 10, 0.1, "job completed")
    assert stack.request("GET", f"/jobs/{ok}")[2]["result"] == {"processed": "Hello from queue!"}
    wait_until(lambda: buried(stack, bad), dead_within, 0.1, "job dead and in the DLQ")
    record = stack.request("GET", f"/jobs/{bad}")[2]
    assert record["attempts"] == 4 and "failed on purpose" in record["lastError"]
    stats = stack.request("GET", "/queue/stats")[2]
    assert template_figures(stats) == {"waiting": 0, "active": 0, "completed": 1, "failed": 1, "delayed": 0,
                                       "dlq": 1, "dlqPending": 0}
    listed = stack.request("GET", "/dlq")[2]
    assert [e["jobId"] for e in listed["items"]] == [bad]
    if not replay:
        return
    assert stack.request("POST", f"/dlq/{bad}/replay")[0] == 202
    wait_until(lambda: buried(stack, bad) and stats_of(stack)["dlq"] == 1, dead_within, 0.1, "replayed job dead again")
    assert stack.request("GET", "/queue/stats")[2]["failed"] == 2

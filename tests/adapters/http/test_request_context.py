"""The request-id middleware: which ids are kept, the header on every answer, bounded metric labels."""

import falcon.testing
import pytest

from adapters.http.app import create_app
from tests.fakes import fake_deps


class RecordingMetrics:
    """The Metrics port, remembering what it was told."""

    def __init__(self):
        self.requests = []

    def observe_request(self, route, method, status, seconds):
        self.requests.append((route, method, status))

    def job_enqueued(self, job_type):
        pass

    def render(self):
        return "text/plain", b""


@pytest.fixture
def app():
    deps = fake_deps()
    deps.metrics = RecordingMetrics()
    return falcon.testing.TestClient(create_app(deps)), deps.metrics


@pytest.mark.parametrize("sent, kept", [("a" * 128, True), ("a" * 129, False), ("with space ok", True),
                                        ("tab\there", False), ("é", False)])
def test_a_client_request_id_is_kept_only_when_valid(app, sent, kept):
    client, _ = app
    answered = client.simulate_get("/", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
    assert (answered == sent) is kept
    if not kept:
        assert len(answered) == 16 and int(answered, 16) >= 0


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")  # the odd method is the point
def test_every_answer_has_an_id_and_is_counted_with_bounded_labels(app):
    client, metrics = app
    results = [client.simulate_get("/"), client.simulate_get("/nowhere"), client.simulate_post("/jobs", body="{"),
               client.simulate_request("FROBNICATE", "/")]
    ids = [r.headers.get("X-Request-ID") for r in results]
    assert all(ids) and len(set(ids)) == 4
    assert metrics.requests[:3] == [("/", "GET", 200), ("unmatched", "GET", 404), ("/jobs", "POST", 400)]
    assert metrics.requests[3][1] == "OTHER"

"""Methods through the manual's nginx (deploy/nginx/forkline.conf): the ones bjoern's parser does not
know are answered by nginx as JSON; the others reach forkline, which answers them itself."""

import http.client
import json
import os
import signal

import pytest

from harness.processes import ROOT, Forkline
from tests.e2e.nginx import NGINX, SITE, Nginx


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, redis_proc):
    assert os.path.exists(NGINX), "nginx is missing: `make test` installs it (apt-get install -y nginx)"
    fl = Forkline("serve", tmp_path_factory.mktemp("nginx-methods"), {"REDIS_URL": redis_proc.url,
                                                                      "WEB_CONCURRENCY": "1"}).start()
    nginx = Nginx(fl.port).start()
    yield nginx
    nginx.stop()
    assert fl.stop(signal.SIGTERM, timeout=30) == 0


def ask(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["QUERY", "FROB"])
def test_a_method_bjoern_cannot_parse_gets_a_json_501_from_nginx(proxied, redis_proc, method):
    before = redis_proc.client().dbsize()
    status, headers, body = ask(proxied.port, method, "/jobs", b'{"message": "x"}')
    assert status == 501 and headers["content-type"] == "application/json", (status, headers, body)
    assert json.loads(body) == {"code": "not_implemented", "message": "Method not implemented"}
    assert redis_proc.client().dbsize() == before


def test_a_known_method_without_a_route_reaches_forkline(proxied):
    status, headers, body = ask(proxied.port, "PUT", "/jobs", b"{}")
    assert status == 405 and "x-request-id" in headers  # forkline's own answer, not nginx's
    assert json.loads(body)["code"] == "method_not_allowed" and "POST" in headers["allow"]
    status, _, body = ask(proxied.port, "POST", "/jobs", b'{"message": "through nginx"}')
    assert status == 202 and json.loads(body)["jobId"]
    assert ask(proxied.port, "GET", "/health")[0] == 200


def test_the_manual_includes_the_configuration_the_tests_run():
    """Included from the file (mkdocs' snippets, checked by tests/test_docs.py), not a copy."""
    page = (ROOT / "docs" / "limits-and-proxies.md").read_text()
    assert f'--8<-- "{SITE.relative_to(ROOT)}"' in page

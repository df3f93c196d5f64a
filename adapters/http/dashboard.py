"""GET /dashboard: one page and its two assets, shipped in the package (adapters/http/dashboard_files/).

Served with a Content-Security-Policy that allows scripts, styles and requests from this
origin only (no inline script, no other origin, no framing): job payloads and errors are
untrusted, and the page renders them as text, never as HTML.
"""

from importlib.resources import files

import falcon

from functions.errors import NotFound

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
ASSETS = {
    "index.html": falcon.MEDIA_HTML,
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_FILES = files(__package__) / "dashboard_files"


class DashboardResource:
    """GET /dashboard: the page."""

    def __init__(self) -> None:
        self.assets = {name: (_FILES / name).read_bytes() for name in ASSETS}

    def send(self, resp: falcon.Response, name: str) -> None:
        resp.content_type = ASSETS[name]
        resp.data = self.assets[name]
        resp.set_header("Content-Security-Policy", CSP)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Cache-Control", "no-cache")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.send(resp, "index.html")


class DashboardAssetResource(DashboardResource):
    """GET /dashboard/{asset}: its script and its style sheet."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, asset: str) -> None:  # type: ignore[override]
        if asset not in ASSETS or asset == "index.html":
            raise NotFound(f"No dashboard asset {asset[:64]!r}")
        self.send(resp, asset)

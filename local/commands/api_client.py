"""The HTTP API as the operator commands use it: FORKLINE_URL (default http://127.0.0.1:$PORT)
and FORKLINE_API_KEY, so the same commands work against a deployed API Gateway.

Every failure is an `ApiError` with one line to print: unreachable, key refused, or the
API's own `{code, message}`.
"""

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ApiError(Exception):
    def __init__(self, line: str, status: int = 0):
        super().__init__(line)
        self.status = status


class ApiClient:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, timeout: float = 30.0):
        port = os.environ.get("PORT", "3000")
        self.base_url = (base_url or os.environ.get("FORKLINE_URL") or f"http://127.0.0.1:{port}").rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("FORKLINE_API_KEY", "")
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
        """The parsed JSON answer (None for 204); ApiError for anything but a 2xx."""
        params = {k: v for k, v in (query or {}).items() if v is not None}
        url = self.base_url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        if self.api_key:
            sent["X-API-Key"] = self.api_key
        request = urllib.request.Request(url, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(self._refusal(exc), exc.code) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot reach the forkline API at {self.base_url} ({reason}); "
                           "set FORKLINE_URL") from None
        return json.loads(raw) if raw else None

    def _refusal(self, exc: urllib.error.HTTPError) -> str:
        try:
            body = json.loads(exc.read())
            message = f"{body.get('message', '')}"
            details = body.get("details")
        except ValueError:
            message, details = exc.reason, None
        if exc.code in (401, 403):
            return f"the API refused the key ({exc.code}: {message}); set FORKLINE_API_KEY"
        if isinstance(details, list) and details:
            message += ": " + "; ".join(f"{d.get('field')} {d.get('error')}" for d in details if isinstance(d, dict))
        return f"{exc.code}: {message}"

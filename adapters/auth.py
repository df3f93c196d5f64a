"""API keys for the routes that read or change jobs (API_KEYS, comma-separated)."""

import hmac

import falcon


def presented_key(req: falcon.Request) -> str | None:
    auth = req.get_header("Authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return req.get_header("X-API-Key") or None


class ApiKeyAuth:
    """Middleware: resources with `protected = True` need one of the configured keys.

    401 without a key, 403 with a wrong one. Every configured key is compared in
    constant time, so timing does not reveal which key or prefix matched.
    With no key configured every route is open (local development).
    """

    def __init__(self, keys: tuple[str, ...]):
        self.keys = [key.encode() for key in keys if key]

    def allows(self, key: str) -> bool:
        candidate = key.encode()
        matched = False
        for known in self.keys:
            matched |= hmac.compare_digest(candidate, known)
        return matched

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if not self.keys or not getattr(resource, "protected", False):
            return
        key = presented_key(req)
        if key is None:
            raise falcon.HTTPUnauthorized(description="An API key is required (Authorization: Bearer or X-API-Key)",
                                          challenges=["Bearer"])
        if not self.allows(key):
            raise falcon.HTTPForbidden(description="The API key is not valid")


def parse_keys(raw: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in raw.split(",") if key.strip())

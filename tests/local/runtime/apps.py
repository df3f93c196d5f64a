"""WSGI app factories for supervisor tests (selected with APP_FACTORY)."""

import time

from adapters.wiring import build_app

LEAKED: list[bytearray] = []


def with_slow_route(settings):
    """The real app plus GET /slow?s=<seconds>, to hold a request in flight, and GET /leak?mb=<n>."""
    app = build_app(settings)

    def wsgi(environ, start_response):
        if environ["PATH_INFO"] == "/leak":
            megabytes = int(environ.get("QUERY_STRING", "mb=1").partition("=")[2] or 1)
            LEAKED.append(bytearray(b"x" * (megabytes * 2**20)))  # touched, so resident
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"leaked": true}']
        if environ["PATH_INFO"] == "/slow":
            seconds = float(environ.get("QUERY_STRING", "s=1").partition("=")[2] or 1)
            time.sleep(seconds)
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"slept": true}']
        return app(environ, start_response)

    return wsgi


def broken(settings):
    raise RuntimeError("this app cannot start")

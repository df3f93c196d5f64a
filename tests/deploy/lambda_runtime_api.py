"""The Lambda Runtime API, as AWS documents it (version 2018-06-01), enough for a runtime client to
run functions: the next invocation (a long poll), its response, its error, an init error. A test
hands it events with `invoke` and gets back what the function answered."""

import json
import queue
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/2018-06-01/runtime"
RESULT = re.compile(rf"^{PATH}/invocation/([^/]+)/(response|error)$")
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:forkline"


class RuntimeAPI:
    """Serves on 127.0.0.1 (a container on the host's network reaches it as AWS_LAMBDA_RUNTIME_API)."""

    def __init__(self, deadline_seconds: float = 60.0):
        self.deadline_seconds = deadline_seconds
        self.pending: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.answers: dict[str, queue.Queue[tuple[str, Any]]] = {}
        self.first_poll: float | None = None  # time.monotonic() of the runtime's first `next`: init done
        self.init_errors: list[Any] = []
        self.closed = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="runtime-api", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "RuntimeAPI":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def invoke(self, event: dict[str, Any], timeout: float = 60.0) -> tuple[str, Any]:
        """("response", the function's result) or ("error", the error document it posted)."""
        request_id = str(uuid.uuid4())
        self.answers[request_id] = queue.Queue(maxsize=1)
        self.pending.put((request_id, event))
        return self.answers[request_id].get(timeout=timeout)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # the runtime client keeps its connection

            def log_message(self, *args: object) -> None:
                pass

            def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path != f"{PATH}/invocation/next":
                    return self.reply(404, {"errorType": "NotFound"})
                if api.first_poll is None:
                    api.first_poll = time.monotonic()
                while not api.closed.is_set():
                    try:
                        request_id, event = api.pending.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    deadline = int((time.time() + api.deadline_seconds) * 1000)
                    return self.reply(200, event, {
                        "Lambda-Runtime-Aws-Request-Id": request_id, "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                document = json.loads(body) if body else None
                if self.path == f"{PATH}/init/error":
                    api.init_errors.append(document)
                    return self.reply(202, {"status": "OK"})
                match = RESULT.match(self.path)
                if match is None or match.group(1) not in api.answers:
                    return self.reply(404, {"errorType": "InvalidRequestID"})
                api.answers[match.group(1)].put((match.group(2), document))
                return self.reply(202, {"status": "OK"})

        return Handler

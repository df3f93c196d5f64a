"""Limits and patterns of the API, defined once: the HTTP layer, the OpenAPI document and the
pure functions all import them from here."""

import re

# Job ids are what the server makes (`<queue>.<uuid4 hex>`, `<queue>.periodic:<name>:<tick>`, or a uuid4
# hex from before named queues) or what a replay brings back; anything else is unknown.
JOB_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,100}$"
JOB_ID = re.compile(JOB_ID_PATTERN)

# Printable ASCII without spaces, as header values and Redis keys both allow.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)

# A client's X-Request-ID is kept when it is 1-128 printable ASCII characters; else a new one is made.
REQUEST_ID_PATTERN = r"^[\x20-\x7e]{1,128}$"
REQUEST_ID = re.compile(REQUEST_ID_PATTERN)

PAGE_DEFAULT = 20
PAGE_MAX = 100

# Request bodies over this many bytes are refused: from their Content-Length before they are read,
# chunked ones as they are read.
MAX_BODY_BYTES = 1024 * 1024

MESSAGE_MAX_CHARS = 10_000

# POST /jobs `delay` / `runAt`: at most this far ahead; a `runAt` at most this far in the past.
MAX_DELAY_SECONDS = 30 * 86400
RUN_AT_PAST_SECONDS = 60
SQS_MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds limit
TRACEBACK_MAX_CHARS = 4000

"""`forkline serve` and `forkline worker` as two processes on one Redis, as the containers run them."""

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

from harness.processes import Forkline


@contextlib.contextmanager
def serving(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[Forkline, Forkline]]:
    """Both started with `env`; both stopped whatever happens, and both must exit 0 when the body
    did not fail."""
    api, worker = Forkline("serve", tmp_path, env), Forkline("worker", tmp_path, env)
    try:
        api.start()
        worker.start(wait_http=False)
        yield api, worker
    finally:
        codes = [worker.stop(signal.SIGTERM, timeout=30), api.stop(signal.SIGTERM, timeout=30)]
    assert codes == [0, 0], worker.output()[-3000:] + api.output()[-3000:]

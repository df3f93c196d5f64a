"""The embedded AWS emulator of `forkline run --cloud`: moto's server on a loopback port, ending with
its supervisor (a supervisor SIGKILLed cannot stop it, so it watches for that itself)."""

import os
import signal
import sys
import threading
import time


def main(port: str) -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    from moto.server import main as serve

    serve(["-H", "127.0.0.1", "-p", port])


if __name__ == "__main__":
    main(sys.argv[1])

"""Sample the memory of a running stack found by command line, e.g. the Node peer during peer-seed.sh.

    EXPECT=5 .venv/bin/python bench/stack_memory.py 240 src/server.js src/queue/worker.js redis-server

Every 0.5 s for up to N seconds: the RSS and PSS totals of every process whose
command line contains one of the patterns. Prints an idle sample (taken 1 s
after EXPECT processes are up, before load starts) and the highest totals seen. Read-only: it never signals a process.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from local.bench import smaps_mb  # noqa: E402


def sample(patterns: list[str]) -> dict[int, tuple[float, float, str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), os.getppid()):
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "stack_memory" in cmd or not any(p in cmd for p in patterns):
                continue
            rss, pss = smaps_mb(int(entry.name))
        except OSError:
            continue
        found[int(entry.name)] = (rss, pss, cmd[:60])
    return found


def main(seconds: float, patterns: list[str]) -> None:
    first, peak_rss, peak_pss, up_at = None, 0.0, 0.0, None
    expect = int(os.environ.get("EXPECT", "3"))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        procs = sample(patterns)
        if procs:
            rss, pss = sum(v[0] for v in procs.values()), sum(v[1] for v in procs.values())
            if up_at is None and len(procs) >= expect:
                up_at = time.monotonic()
            if first is None and up_at is not None and time.monotonic() - up_at >= 1:
                first = {"rss_mb": round(rss, 1), "pss_mb": round(pss, 1),
                         "processes": {pid: v[2] for pid, v in procs.items()}}
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        elif first is not None:
            break  # the stack has stopped
        time.sleep(0.5)
    print(json.dumps({"idle": first, "peak_rss_mb": round(peak_rss, 1), "peak_pss_mb": round(peak_pss, 1)}))


if __name__ == "__main__":
    main(float(sys.argv[1]), sys.argv[2:])

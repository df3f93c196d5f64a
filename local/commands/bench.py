"""`forkline bench`: start the whole stack on loopback, load it with wrk, print figures.

Scenarios: GET /health, GET /, POST /jobs (wrk, 1 thread, CONNECTIONS, DURATION s),
the consumer's drain rate of the backlog POST /jobs left, end-to-end jobs/s for
N jobs posted from 8 threads, and the peak resident memory of every process.
Prints a table and one JSON line. Stops everything it started, by pid.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from local.commands.local_stack import children
from local.runtime.redis_server import free_port

REPORT_LUA = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"requests":%d,"non2xx":%d,"errors":%d}\\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
"""
POST_LUA = """
wrk.method = "POST"
wrk.body = '{"message":"Hello","shouldFail":false}'
wrk.headers["Content-Type"] = "application/json"
""" + REPORT_LUA


def get(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children(current)
    return found


def memory(pid: int) -> dict[str, dict]:
    out = {}
    for p in descendants(pid):
        try:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{p}/status").read_text().splitlines())
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
            pss = smaps_mb(p)[1]
        except OSError:
            continue
        out[str(p)] = {"cmd": cmd, "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
                       "peak_mb": int(status["VmHWM"].split()[0]) / 1024, "pss_mb": pss}
    return out


def smaps_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB. PSS counts the pages forked workers share (the preloaded code) once overall."""
    rss = pss = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
    return rss, pss


def wrk(url: str, script: Path, duration: int, connections: int, warmup: int) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", "--timeout", "2s", "-s", str(script)]
    if warmup:
        subprocess.run(command + [f"-d{warmup}s", url], capture_output=True, timeout=warmup + 30)
    out = subprocess.run(command + [f"-d{duration}s", url], capture_output=True, text=True, timeout=duration + 30)
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_idle(port: int, timeout: float) -> tuple[int, float]:
    """Wait for nothing waiting, active or delayed; return (jobs drained, seconds) from the first look.
    Reads `GET /queue/stats`, which forkline and the Node template both serve (`delayed` optional)."""
    first = get(port, "/queue/stats")
    backlog, start = first["waiting"] + first["active"], time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        stats = get(port, "/queue/stats")
        if stats["waiting"] + stats["active"] + stats.get("delayed", 0) == 0:
            return backlog, time.monotonic() - start
        time.sleep(0.05)
    raise RuntimeError("the queue did not drain in time")


def post_jobs(port: int, count: int, body: dict, threads: int = 8) -> int:
    """POST `count` jobs (rounded down to a multiple of `threads`), each thread on its keep-alive connection."""
    data = json.dumps(body).encode()
    per = count // threads

    def post_many() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(per):
            conn.request("POST", "/jobs", data, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status >= 300:
                raise RuntimeError(f"POST /jobs answered {response.status}")
        conn.close()

    workers = [threading.Thread(target=post_many) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(600)
    return per * threads


def end_to_end(port: int, jobs: int) -> dict:
    base = get(port, "/queue/stats")["completed"]
    start = time.monotonic()
    posted = post_jobs(port, jobs, {"message": "Hello", "shouldFail": False})
    enqueued = time.monotonic() - start
    while get(port, "/queue/stats")["completed"] - base < posted:
        if time.monotonic() - start > 300:
            raise RuntimeError("jobs did not complete in time")
        time.sleep(0.02)
    total = time.monotonic() - start
    return {"jobs": posted, "enqueue_rps": round(posted / enqueued, 1),
            "jobs_per_s": round(posted / total, 1), "total_s": round(total, 2)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up per scenario (default 2)")
    parser.add_argument("--jobs", type=int, default=5000, help="jobs for the end-to-end run (default 5000)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="forkline bench")
    add_arguments(parser)
    return run_bench(parser.parse_args(argv))


def run_bench(args: argparse.Namespace) -> int:
    if not shutil.which("wrk"):
        print("forkline bench needs wrk: apt-get install wrk", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="forkline-bench-"))
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "DATA_DIR": str(tmp / "data"),
           "LOG_DIR": str(tmp / "logs"), "LOG_LEVEL": os.environ.get("LOG_LEVEL", "info")}  # the default
    env.pop("REDIS_URL", None)
    (tmp / "get.lua").write_text(REPORT_LUA)
    (tmp / "post.lua").write_text(POST_LUA)
    stack = subprocess.Popen([sys.executable, "-m", "local.commands.cli", "run"], env=env, cwd=tmp,
                             stdout=subprocess.DEVNULL, stderr=open(tmp / "stack.err", "wb"))
    results: dict = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                     "web_concurrency": env.get("WEB_CONCURRENCY", str((os.cpu_count() or 1) + 1)),
                     "consumer_processes": env.get("CONSUMER_PROCESSES", str(os.cpu_count() or 1)),
                     "duration_s": args.duration, "connections": args.connections}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if get(port, "/health")["status"] == "ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or stack.poll() is not None:
                raise RuntimeError("the stack did not start: " + (tmp / "stack.err").read_text()[-2000:])
            time.sleep(0.1)
        time.sleep(1)
        results["idle_memory"] = memory(stack.pid)
        base = f"http://127.0.0.1:{port}"
        for name, path, script in (("GET /health", "/health", "get.lua"), ("GET /", "/", "get.lua"),
                                   ("POST /jobs", "/jobs", "post.lua")):
            results[name] = wrk(base + path, tmp / script, args.duration, args.connections, args.warmup)
        drained, seconds = wait_idle(port, 600)
        results["backlog_drain"] = {"jobs": drained, "seconds": round(seconds, 2),
                                    "jobs_per_s": round(drained / seconds, 1) if seconds else None}
        results["end_to_end"] = end_to_end(port, args.jobs)
        results["load_memory"] = memory(stack.pid)
    finally:
        stack.send_signal(signal.SIGTERM)
        try:
            stack.wait(60)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait(10)
    print(f"{'scenario':<14}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name in ("GET /health", "GET /", "POST /jobs"):
        r = results[name]
        print(f"{name:<14}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors'] + r['non2xx']:>8}")
    print(f"backlog drain: {results['backlog_drain']['jobs_per_s']} jobs/s "
          f"({results['backlog_drain']['jobs']} jobs); end to end: {results['end_to_end']['jobs_per_s']} jobs/s")
    total_idle = sum(p["rss_mb"] for p in results["idle_memory"].values())
    total_peak = sum(p["peak_mb"] for p in results["load_memory"].values())
    pss_idle = sum(p["pss_mb"] for p in results["idle_memory"].values())
    pss_load = sum(p["pss_mb"] for p in results["load_memory"].values())
    print(f"memory: {total_idle:.0f} MB resident at idle, {total_peak:.0f} MB sum of per-process peaks; "
          f"PSS {pss_idle:.0f} MB at idle, {pss_load:.0f} MB after load")
    results["memory_idle_total_mb"], results["memory_peak_total_mb"] = round(total_idle, 1), round(total_peak, 1)
    results["pss_idle_total_mb"], results["pss_load_total_mb"] = round(pss_idle, 1), round(pss_load, 1)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

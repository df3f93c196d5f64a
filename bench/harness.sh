#!/usr/bin/env bash
# forkline under the shared harness, as peer-seed.sh runs the Node template:
#   bench/harness.sh [BENCH_DIR=../shared/bench]
# Starts `forkline run` (embedded Redis, default settings) on 127.0.0.1:$PORT, runs
# http.sh (wrk: GET /health, GET /, POST /jobs) and drain.py, prints their JSON
# lines, and stops the stack by its pid (SIGTERM, then SIGKILL after 40 s).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${1:-$here/../shared/bench}
port=${PORT:-3200}
run_dir=$(mktemp -d /tmp/forkline-harness.XXXXXX)
cd "$run_dir"
env -u REDIS_URL HOST=127.0.0.1 PORT="$port" LOG_LEVEL=warning LOG_DIR="$run_dir/logs" \
  DATA_DIR="$run_dir/data" "$here/.venv/bin/forkline" run >"$run_dir/stack.out" 2>&1 &
stack=$!
stop() {
  kill -TERM "$stack" 2>/dev/null || true
  for _ in $(seq 400); do kill -0 "$stack" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$stack" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "{\"server\":\"forkline\",\"loadavg_before\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
"$bench/http.sh" "http://127.0.0.1:$port" "${DURATION:-10}" "${CONNECTIONS:-64}"
python3 "$bench/drain.py" "http://127.0.0.1:$port" "${JOBS:-5000}"
echo "{\"loadavg_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"

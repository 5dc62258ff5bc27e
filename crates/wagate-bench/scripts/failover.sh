#!/usr/bin/env bash
# Failover time of a real cluster: two `wagate serve` processes on one PostgreSQL database,
# N linked sim sessions, SIGKILL the node that runs some of them, and time until every
# session is connected again on the other. Uses the configured heartbeat and lease TTL
# (defaults 5 s / 15 s unless WAGATE_NODE__* says otherwise).
#
#   WAGATE_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 crates/wagate-bench/scripts/failover.sh [sessions]
set -euo pipefail
cd "$(dirname "$0")/../../.."
SESSIONS=${1:-6}
source crates/wagate-bench/scripts/cluster.sh
export WAGATE_CONNECTORS__SIM__QR_INTERVAL_MS=60000
start() { # id port
    WAGATE_NODE_ID=$1 WAGATE_LISTEN=127.0.0.1:$2 WAGATE_DATA_DIR=$WORK/$1 target/release/wagate serve &
    PIDS+=($!)
    until curl -sf "http://127.0.0.1:$2/healthz" >/dev/null; do sleep 0.1; done
}
api() { curl -sf -H "Authorization: Bearer bench" -H 'Content-Type: application/json' "$@"; }
status() { api "http://127.0.0.1:$1/v1/sessions/$2" | sed -E 's/.*"status":"([a-z_]+)".*/\1/'; }

start node-a 18081
for i in $(seq 1 "$SESSIONS"); do
    api -X POST http://127.0.0.1:18081/v1/sessions -d "{\"id\":\"s$i\",\"connector\":\"sim\"}" >/dev/null
    api -X POST "http://127.0.0.1:18081/v1/sessions/s$i/connect" >/dev/null
    until code=$(api "http://127.0.0.1:18081/v1/sessions/s$i/qr" | sed -nE 's/.*"code":"([^"]+)".*/\1/p') && [ -n "$code" ]; do sleep 0.05; done
    api -X POST http://127.0.0.1:18081/v1/sim/scan -d "{\"code\":\"$code\",\"phone\":\"1555000$((1000 + i))\"}" >/dev/null
done
start node-b 18082
# Wait until node-b holds its share.
until api http://127.0.0.1:18081/v1/cluster/nodes | grep -q "\"id\":\"node-b\"[^}]*\"sessions\":$((SESSIONS / 2))"; do sleep 0.2; done
for i in $(seq 1 "$SESSIONS"); do until [ "$(status 18081 "s$i")" = connected ]; do sleep 0.1; done; done

# The last event before the kill: what comes after it is the failover.
last_event() {
    local after="" page
    while page=$(api "http://127.0.0.1:18081/v1/events?limit=1000$after") && ! echo "$page" | grep -q '"data":\[\]'; do
        after="&after=$(echo "$page" | sed -E 's/.*"next_after":"([^"]+)".*/\1/')"
    done
    echo "${after#&after=}"
}
LAST=$(last_event)
echo "killing node-b (SIGKILL), which runs $((SESSIONS / 2)) of $SESSIONS sessions"
START=$(date +%s%N)
kill -9 "${PIDS[1]}"
# Done when node-b's sessions have each reported `connected` from node-a since the kill.
moved() {
    api "http://127.0.0.1:18081/v1/events?after=$LAST&types=session.status&limit=1000" | python3 -c '
import json, sys
events = json.load(sys.stdin)["data"]
print(len({e["session_id"] for e in events if e["data"].get("node_id") == "node-a" and e["data"].get("status") == "connected"}))'
}
until [ "$(moved)" -ge $((SESSIONS / 2)) ]; do
    sleep 0.05
done
echo "failover: $(( ($(date +%s%N) - START) / 1000000 )) ms until every session of node-b is connected on node-a"

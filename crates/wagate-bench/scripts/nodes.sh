#!/usr/bin/env bash
# Send throughput of a real cluster: N `wagate serve` processes on one fresh PostgreSQL
# database, and `wagate-bench send` driving node 1 (6 sim sessions unless told, spread over
# the nodes), so one node and three can be compared in the same minutes. Prints the bench's
# report (with the database's rows and transactions per run) and the CPU seconds each process
# used during it.
#
#   WAGATE_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 crates/wagate-bench/scripts/nodes.sh [nodes] [messages] [sessions]
set -euo pipefail
cd "$(dirname "$0")/../../.."
NODES=${1:-3}
MESSAGES=${2:-10000}
SESSIONS=${3:-6}
source crates/wagate-bench/scripts/cluster.sh
export WAGATE_CONNECTORS__SIM__DELIVERY_DELAY_MS=0 WAGATE_CONNECTORS__SIM__READ_DELAY_MS=0
# Limits no run reaches: the figure is the gateway's, not the rate limiter's.
export WAGATE_RATE_LIMITS__KEY_PER_SECOND=1000000 WAGATE_RATE_LIMITS__KEY_BURST=1000000
export WAGATE_RATE_LIMITS__ORG_PER_SECOND=1000000 WAGATE_RATE_LIMITS__ORG_BURST=1000000
for i in $(seq 1 "$NODES"); do
    WAGATE_NODE_ID=node-$i WAGATE_LISTEN=127.0.0.1:1830$i WAGATE_DATA_DIR=$WORK/node-$i target/release/wagate serve &
    PIDS+=($!)
    until curl -sf "http://127.0.0.1:1830$i/readyz" >/dev/null; do sleep 0.1; done
done
# CPU seconds (user + system) of each process of interest, from /proc.
cpu() {
    for pid in "${PIDS[@]}" $(pgrep -x postgres); do
        awk -v pid="$pid" '{ sub(/.*\) /, ""); split($0, f, " "); print pid, f[12] + f[13] }' "/proc/$pid/stat" 2>/dev/null
    done
}
BEFORE=$(cpu)
target/release/wagate-bench send --url http://127.0.0.1:18301 --key bench --sessions "$SESSIONS" --messages "$MESSAGES"
AFTER=$(cpu)
TICKS=$(getconf CLK_TCK)
awk -v nodes="${PIDS[*]}" -v ticks="$TICKS" '
    BEGIN { n = split(nodes, list, " "); for (i = 1; i <= n; i++) node[list[i]] = i }
    NR == FNR { before[$1] = $2; next }
    { used = ($2 - before[$1]) / ticks; if ($1 in node) printf "node-%d: %.1f CPU s\n", node[$1], used; else pg += used }
    END { printf "postgres: %.1f CPU s\n", pg }' <(echo "$BEFORE") <(echo "$AFTER")

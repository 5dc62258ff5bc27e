# Sourced by the scripts that run `wagate serve` nodes on one PostgreSQL server: a fresh database
# named after the script ($DB, dropped on exit), a work dir ($WORK, removed on exit), the
# release binaries built, and the environment every node shares. Each node started is added
# to PIDS, and stopped on exit.
SERVER=${WAGATE_BENCH_POSTGRES:?set WAGATE_BENCH_POSTGRES to a PostgreSQL server URL (no database)}
DB=wagate_$(basename "$0" .sh)_$$
psql "$SERVER/postgres" -qc "CREATE DATABASE $DB"
WORK=$(mktemp -d)
cleanup() {
    kill "${PIDS[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    psql "$SERVER/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
    rm -rf "$WORK"
}
PIDS=()
trap cleanup EXIT
cargo build -q --release -p wagate-server -p wagate-bench
export WAGATE_DATABASE_URL="$SERVER/$DB" WAGATE_ADMIN_KEY=bench RUST_LOG=warn
# Nodes sharing a database must share the key that seals its secrets.
export WAGATE_MASTER_KEY=$(head -c 32 /dev/urandom | base64)

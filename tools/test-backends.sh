#!/usr/bin/env bash
# The whole suite on SQLite and on PostgreSQL (`make test`). The two runs go side by side — each is one
# Python thread and the machines this runs on have two cores — and each run's output is printed whole
# once both are done. TEST_SERIAL=1 runs them one after the other, printing as they go.
# Arguments are passed to both pytest runs (a path, -k, -x ...).
set -uo pipefail
cd "$(dirname "$0")/.."
pytest=${PYTEST:-.venv/bin/pytest}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run() {  # run BACKEND [ARGS...]: the suite on one backend, its output in $logs/BACKEND.log
    local db=$1
    shift
    "$pytest" --db "$db" -p no:cacheprovider "$@" >"$logs/$db.log" 2>&1
    echo $? >"$logs/$db.rc"
}

started=$(date +%s)
if [ "${TEST_SERIAL:-}" = 1 ]; then
    for db in sqlite postgres; do
        echo "== pytest on $db =="
        "$pytest" --db "$db" -p no:cacheprovider "$@" 2>&1 | tee "$logs/$db.log"
        echo "${PIPESTATUS[0]}" >"$logs/$db.rc"
    done
else
    echo "== pytest on SQLite and on PostgreSQL (${LOANFUND_TEST_POSTGRES_URL:-the local default}), side by side =="
    run sqlite "$@" &
    run postgres "$@" &
    wait
    for db in sqlite postgres; do
        echo
        echo "== pytest on $db =="
        cat "$logs/$db.log"
    done
fi

rc_sqlite=$(cat "$logs/sqlite.rc")
rc_postgres=$(cat "$logs/postgres.rc")
if grep -q "postgres backend NOT run" "$logs/postgres.log"; then
    ran="sqlite (postgres unreachable, skipped)"
else
    ran="sqlite, postgres"
fi
echo
echo "== sqlite: exit $rc_sqlite; postgres: exit $rc_postgres; $(($(date +%s) - started)) s =="
[ "$rc_sqlite" -eq 0 ] && [ "$rc_postgres" -eq 0 ] || exit 1
echo "== backends tested: $ran =="

#!/usr/bin/env bash
# `make test` stages with their wall time: deploy/stage.sh NAME COMMAND... runs COMMAND and
# prints "== stage NAME: 12.3 s (ok)"; with STAGE_LOG set, the line is also appended there, and
# `deploy/stage.sh --summary` prints that log as a table at the end.
set -uo pipefail
if [ "${1:-}" = "--summary" ]; then
    if [ -n "${STAGE_LOG:-}" ] && [ -s "$STAGE_LOG" ]; then
        echo "== make test stage times"
        cat "$STAGE_LOG"
    fi
    exit 0
fi
name="$1"
shift
start=$(date +%s%N)
"$@"
status=$?
tenths=$(( ($(date +%s%N) - start) / 100000000 ))
result=$([ "$status" -eq 0 ] && echo ok || echo "FAILED, exit $status")
line=$(printf '%-14s %6d.%d s  (%s)' "$name" $((tenths / 10)) $((tenths % 10)) "$result")
echo "== stage $line"
if [ -n "${STAGE_LOG:-}" ]; then echo "   $line" >> "$STAGE_LOG"; fi
exit "$status"

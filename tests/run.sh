#!/usr/bin/env bash
# make check: the Check unit runner, then every integration script. Ends with
# one summary line, "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=0 skipped=0

echo "== unit tests"
out=$("$CHECK_UNIT" 2>&1)
rc=$?
echo "$out"
line=$(echo "$out" | grep -E '^[0-9]+%: Checks:' | tail -n1)
if [ -n "$line" ]; then
        checks=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
        bad=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2/' | awk '{print $1+$2}')
        passed=$((passed + checks - bad))
        failed=$((failed + bad))
fi
# A crash or a missing suite fails the run even when no check failed.
if [ "$rc" != 0 ] && [ "${bad:-0}" = 0 ]; then failed=$((failed + 1)); fi

for t in tests/integration/*.sh tests/systemd/*.sh tests/fault/*.sh; do
        [ -f "$t" ] || continue
        echo "== $t"
        log=$(mktemp)
        bash "$t" 2>&1 | tee "$log" | grep -v '^RESULT '
        res=$(grep '^RESULT ' "$log" | tail -n1)
        rm -f "$log"
        if [ -z "$res" ]; then
                echo "  $t did not finish"
                failed=$((failed + 1))
                continue
        fi
        set -- $res
        passed=$((passed + $2)) failed=$((failed + $3)) skipped=$((skipped + $4))
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]

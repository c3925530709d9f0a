#!/usr/bin/env bash
# Runs the shell tests in sequence (`make test-e2e` calls it after the release build): every
# scripts/test-*.sh (the e2e ones, scripts/test-e2e-*.sh, build network namespaces and need
# root), each under a time limit, then prints a summary and exits non-zero if any failed or
# left a namespace or scratch dir behind.
#
# Usage: scripts/run-e2e.sh [NAME...]   (only the tests whose file name contains a NAME)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIMIT_S=${E2E_TIMEOUT:-240}
shopt -s nullglob
all=("$ROOT"/scripts/test-*.sh)
tests=()
for t in "${all[@]}"; do
    if [ $# -eq 0 ]; then tests+=("$t"); continue; fi
    for want in "$@"; do
        case $(basename "$t") in *"$want"*) tests+=("$t"); break ;; esac
    done
done
[ ${#tests[@]} -gt 0 ] || { echo "run-e2e: no test matches: $*" >&2; exit 1; }

leftovers() {
    { ip netns list 2>/dev/null | awk '{ print $1 }' | grep '^e2e-' || true
      find /tmp -maxdepth 1 -name 'director-e2e-*' 2>/dev/null || true; } | sort
}
before=$(leftovers)
results=()
failed=0
start_all=$(date +%s)
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    printf '\033[1m=== %s\033[0m\n' "$name"
    t0=$(date +%s)
    timeout -k 20 "$LIMIT_S" bash "$t"
    rc=$?
    secs=$(($(date +%s) - t0))
    if [ "$rc" = 0 ]; then
        results+=("$(printf 'PASS  %-24s %4ds' "$name" "$secs")")
    else
        [ "$rc" = 124 ] && why="timed out after ${LIMIT_S}s" || why="exit $rc"
        results+=("$(printf 'FAIL  %-24s %4ds  (%s)' "$name" "$secs" "$why")")
        failed=$((failed + 1))
    fi
done
after=$(leftovers)
echo
printf '\033[1m=== summary (%d tests, %ds)\033[0m\n' "${#tests[@]}" "$(($(date +%s) - start_all))"
printf '%s\n' "${results[@]}"
if [ "$after" != "$before" ]; then
    echo "FAIL  left behind: $(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')"
    failed=$((failed + 1))
fi
if [ "$failed" -gt 0 ]; then
    echo "run-e2e: $failed failure(s)"
    exit 1
fi
echo "run-e2e: all passed"

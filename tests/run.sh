#!/bin/bash
# make test: every unit test, then the integration suite against a stack of
# its own (nginx + pyexec-fcgi + pyexec-sessiond on PYEXEC_TEST_PORT, default
# 18700, so it runs beside `make run`).  Counts TAP lines; the last line is
# "N passed, N failed, N skipped".
set -uo pipefail

build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
port=${PYEXEC_TEST_PORT:-18700}
out=$(mktemp -d /tmp/pyexec-run.XXXXXX)
trap 'rm -rf "$out"' EXIT
pass=0 fail=0 skipn=0

# run_tap NAME TIMEOUT COMMAND...: runs one TAP producer and counts its lines.
run_tap() {
	local name=$1 limit=$2; shift 2
	local log=$out/$(echo "$name" | tr '/ ' '__').tap rc p f s
	echo "== $name"
	timeout --kill-after=10 "$limit" "$@" > "$log" 2>"$log.err"
	rc=$?
	cat "$log"
	p=$(grep -cE '^ok [0-9]+' "$log" | head -1)
	s=$(grep -cE '^ok [0-9]+.*# SKIP' "$log")
	f=$(grep -cE '^not ok [0-9]+' "$log")
	p=$((p - s))
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		# A script that died (or timed out) without saying why still fails.
		echo "not ok - $name exited with status $rc"
		tail -n 20 "$log.err" | sed 's/^/# /'
		f=1
	elif [ "$f" != 0 ]; then
		tail -n 20 "$log.err" | sed 's/^/# /'
	fi
	pass=$((pass + p)) fail=$((fail + f)) skipn=$((skipn + s))
}

for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	run_tap "unit/$(basename "$t")" 300 "$t"
done

export PYEXEC_TOP=$top PYEXEC_PORT=$port PYEXEC_URL=http://127.0.0.1:$port
export PYEXEC_BUILD=$top/$build
if "$top/deploy/stack.sh" start "$port" > "$out/stack.log" 2>&1; then
	for t in "$top"/tests/integration/[0-9]*.sh; do
		[ -f "$t" ] || continue
		run_tap "integration/$(basename "$t" .sh)" 600 bash "$t"
	done
	"$top/deploy/stack.sh" stop "$port" >/dev/null 2>&1
else
	echo "not ok - the test stack did not start"
	sed 's/^/# /' "$out/stack.log"
	fail=$((fail + 1))
fi

echo "$pass passed, $fail failed, $skipn skipped"
[ "$fail" = 0 ]

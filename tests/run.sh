#!/bin/bash
# make test: every unit test, then the integration suite against each web
# server pyexec is deployed behind (deploy/stack.sh, PYEXEC_SERVER), each on a
# stack of its own on PYEXEC_TEST_PORT (default 18700, so it runs beside
# `make run`).  Counts TAP lines; the last line is
# "N passed, N failed, N skipped".
#
#   tests/run.sh [BUILD]
#   PYEXEC_SERVERS="nginx apache lighttpd lighttpd-spawn"   the servers, in order
#
# A script runs against every server unless a line of its header says
#   # servers: one
# (it tests what does not depend on the web server: limits, escapes, the
# daemon): then it runs against the first server of the list only.
# A server that is not installed is reported as skipped, never as passed.
set -uo pipefail

build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
port=${PYEXEC_TEST_PORT:-18700}
servers=${PYEXEC_SERVERS:-nginx apache lighttpd lighttpd-spawn}
out=$(mktemp -d /tmp/pyexec-run.XXXXXX)
trap 'rm -rf "$out"' EXIT
pass=0 fail=0 skipn=0
t_start=$(date +%s)
summary=""

# run_tap NAME TIMEOUT COMMAND...: runs one TAP producer and counts its lines.
run_tap() {
	local name=$1 limit=$2; shift 2
	local log=$out/$(echo "$name" | tr '/ ' '__').tap rc p f s t0
	t0=$(date +%s)
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
	echo "# $name: $p passed, $f failed, $s skipped, $(($(date +%s) - t0)) s"
	pass=$((pass + p)) fail=$((fail + f)) skipn=$((skipn + s))
	RUN_P=$p RUN_F=$f RUN_S=$s
}

# servers_of SCRIPT: "one" or "all", from its "# servers:" header line.
servers_of() {
	local v
	v=$(sed -n '1,15{s/^#[[:space:]]*servers:[[:space:]]*\([a-z]*\).*/\1/p}' "$1" | head -n 1)
	[ "$v" = one ] && echo one || echo all
}

for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	run_tap "unit/$(basename "$t")" 300 "$t"
done
# The fuzz targets: their corpus and regressions, then a few seconds each.
run_tap "fuzz/smoke" 300 "$top/tests/fuzz/smoke.sh"

export PYEXEC_TOP=$top PYEXEC_PORT=$port PYEXEC_URL=http://127.0.0.1:$port
export PYEXEC_BUILD=$top/$build
first=""
for srv in $servers; do
	t0=$(date +%s)
	sp=$pass sf=$fail ss=$skipn
	echo "=== server: $srv"
	export PYEXEC_SERVER=$srv
	# Every status and error string the suite sees, for 99-openapi.sh.
	export PYEXEC_OBSERVED=$out/observed-$srv.tsv
	: > "$PYEXEC_OBSERVED"
	"$top/deploy/stack.sh" start "$port" > "$out/stack.log" 2>&1
	rc=$?
	if [ "$rc" = 3 ]; then
		# Not installed (deploy/install-deps.sh test installs every server).
		echo "ok - integration[$srv] # SKIP $srv is not installed: $(sed -n 's/.*needs: //p' "$out/stack.log")"
		skipn=$((skipn + 1))
		summary="$summary
# $srv: skipped (not installed)"
		continue
	elif [ "$rc" != 0 ]; then
		echo "not ok - integration[$srv]: the test stack did not start"
		sed 's/^/# /' "$out/stack.log"
		fail=$((fail + 1))
		"$top/deploy/stack.sh" stop "$port" >/dev/null 2>&1
	else
		[ -z "$first" ] && first=$srv
		for t in "$top"/tests/integration/[0-9]*.sh; do
			[ -f "$t" ] || continue
			if [ "$(servers_of "$t")" = one ] && [ "$srv" != "$first" ]; then
				continue
			fi
			run_tap "integration[$srv]/$(basename "$t" .sh)" 600 bash "$t"
		done
		"$top/deploy/stack.sh" stop "$port" >/dev/null 2>&1
	fi
	summary="$summary
# $srv: $((pass - sp)) passed, $((fail - sf)) failed, $((skipn - ss)) skipped, $(($(date +%s) - t0)) s"
done
unset PYEXEC_SERVER PYEXEC_OBSERVED

echo "# per server:$summary"
echo "# total time: $(($(date +%s) - t_start)) s"
echo "$pass passed, $fail failed, $skipn skipped"
[ "$fail" = 0 ]

#!/bin/bash
# make bench: the benchmark of issue 5.  Starts a stack of its own (nginx,
# pyexec-fcgi, pyexec-sessiond, full sandbox) on PORT, runs every scenario of
# tests/bench/pxbench.c against it through nginx, prints one table, writes
# tests/bench/results/latest.json, and stops the stack.  Root only (the stack
# needs it, and the memory scenarios read /proc/PID/smaps_rollup of sessions).
#
#   tests/bench/run.sh [BUILD_DIR] [scenario ...]      (default: build, all)
#
# Environment:
#   PXBENCH_PORT=18770     the stack's port (18770-18779 are the benchmark's)
#   PXBENCH_POOL=8         pool_size of the stack
#   PXBENCH_OUT=FILE       results file (default tests/bench/results/latest.json)
#   PXBENCH_DIRECT=1       also time the same requests straight on the daemon's
#                          Unix socket (tests/bench/pxdirect.c), to split the
#                          cost of the HTTP front from the daemon's
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build=${1:-build}
[ $# -gt 0 ] && shift
case "$build" in /*) ;; *) build=$top/$build;; esac
port=${PXBENCH_PORT:-18770}
pool=${PXBENCH_POOL:-8}
out=${PXBENCH_OUT:-$top/tests/bench/results/latest.json}

[ "$(id -u)" = 0 ] || { echo "bench: run as root (the stack and /proc/PID/smaps_rollup need it)" >&2; exit 1; }
# The clients are built by the Makefile (make bench, make unit): pxbench is
# libc only, pxdirect links the project's own client of the daemon.
for b in pyexec-sessiond pyexec-fcgi bench/pxbench bench/pxdirect; do
	[ -x "$build/$b" ] || { echo "bench: $build/$b is missing: run make bench" >&2; exit 1; }
done
[ -x /usr/bin/python3.11 ] || { echo "bench: /usr/bin/python3.11 (Debian's) is missing" >&2; exit 1; }
mkdir -p "$(dirname "$out")"

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- 2>/dev/null || rev="$rev+dirty"

# max_sessions=250: the scaling scenario keeps 200 sessions alive.  Every
# other key is the shipped default (time limit, memory, sandbox all on).
PYEXEC_BUILD=$build deploy/stack.sh start "$port" pool_size="$pool" max_sessions=250
trap 'deploy/stack.sh stop "$port"' EXIT

echo "bench: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), rev $rev" >&2
status=0
"$build/bench/pxbench" -p "$port" -P "$pool" -r "$rev" -o "$out" "$@" || status=$?
if [ "${PXBENCH_DIRECT:-0}" = 1 ]; then
	echo >&2
	echo "bench: the same requests straight on the daemon's socket (no nginx, no FastCGI):" >&2
	"$build/bench/pxdirect" -s "/run/pyexec-dev/$port/sessiond.sock" -P "$pool" \
	    exec new pandas churn output || status=$?
fi
echo "bench: results in ${out#$top/}" >&2
exit $status

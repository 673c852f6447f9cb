#!/bin/bash
# servers: one
# The scheduling policy (common/proc.c): the daemon, the zygote, every
# session and every thread of the FastCGI workers run SCHED_BATCH, which
# they set themselves at start (a policy the operator chose is kept: the
# unit test test_proc checks that part).
. "$(dirname "$0")/../lib.sh"

dir=/run/pyexec-dev/${PYEXEC_PORT:-18700}
need_stack_files "the stack's pid files are not in $dir (not started by deploy/stack.sh)" \
    "$dir/sessiond.pid" "$dir/fcgi.pid"
SCHED_BATCH=3

# policies PID: the policy of each of its threads, one per line.
policies() {
	local t
	for t in /proc/"$1"/task/*; do
		awk '$1 == "policy" {print $3}' "$t/sched" 2>/dev/null
	done
}
# check_batch NAME PID...: every thread of every PID runs SCHED_BATCH.
check_batch() {
	local name=$1 p got
	shift
	got=$(for p in "$@"; do policies "$p"; done | sort | uniq -c | awk '{print $2 " x" $1}' | tr '\n' ' ')
	assert_match "$name: SCHED_BATCH ($got)" "$got" "^$SCHED_BATCH x[0-9]+ $"
}

dpid=$(cat "$dir/sessiond.pid")
z=$(pgrep -P "$dpid" -x pyexec-sessiond | head -n 1)
fpid=$(cat "$dir/fcgi.pid")
workers=$(pgrep -P "$fpid" -x pyexec-fcgi | tr '\n' ' ')
check_batch "the daemon" "$dpid"
check_batch "the zygote" "$z"
check_batch "the FastCGI workers, every thread" "$fpid" $workers

run 'import os; print(os.sched_getscheduler(0))'
assert_eq "a session's own process" "$STATUS $(jget .stdout)" "200 $SCHED_BATCH"
run $'import os, threading\nr = []\nt = threading.Thread(target=lambda: r.append(os.sched_getscheduler(0)))\nt.start(); t.join()\nprint(r[0])'
assert_eq "a thread the code starts" "$STATUS $(jget .stdout)" "200 $SCHED_BATCH"

if [ -f "$dir/sessiond.log" ] && [ -f "$dir/fcgi.log" ]; then
	assert_match "the daemon's start line names it" \
	    "$(grep 'event=started' "$dir/sessiond.log" | tail -n 1)" " sched=batch$"
	assert_match "the workers' start lines name it" \
	    "$(grep 'event=started' "$dir/fcgi.log" | tail -n 1)" " sched=batch$"
else
	skip "no logs in $dir: start lines not checked"
fi
forget_all
t_done

#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# Failures inside the daemon's own paths, made with signals and strace on a
# stack of its own (port 18716):
# - A request for a session whose child died while idle, read by the daemon
#   before it notices the death: the RUN cannot be sent, the request is
#   answered "session terminated", and no duration is invented for a run
#   that never started (the latency histogram, GET /metrics).  The daemon is
#   held with SIGSTOP while the request reaches its socket and the child is
#   killed, so that it reads the request first.
# - No random bytes for a new session's id (getrandom fails): that request
#   answers 500 and nothing is counted or taken from the pool for it.
# - A zygote slow to start (held with SIGSTOP for 35 s, longer than a fork
#   order may wait once it runs) is not taken for a stuck one: a fork order
#   sent meanwhile waits for it, and is answered once it is ready.
# - A frozen session that cannot be thawed for its next run (pwrite64 of
#   the freezer fails): 500 at once, and the session ends.
. "$(dirname "$0")/../lib.sh"

port=18716
dir=/run/pyexec-dev/$port

metric() { curl -s "$PYEXEC_URL/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

if ! t_stack_start $port pool_size=1; then
	not_ok "a stack with pool_size=1 starts"
	sed 's/^/# /' "$T_TMP/stack-$port.log"
	t_done
	exit 1
fi
PYEXEC_URL=http://127.0.0.1:$port
dpid=$(cat $dir/sessiond.pid)
z=$(pgrep -P "$dpid" -x pyexec-sessiond | head -n 1)

# A few times: a worker thread's first request opens its connection, which
# the daemon reads one turn later, after the death; then the id is gone (404)
# and nothing is checked.
hit=0
for k in 1 2 3 4 5; do
	exec_code 'import os; print(os.getuid())'
	s=$(jget .id)
	u=$(jget .stdout)
	# The last run ended long enough ago to show in a false duration.
	sleep 1
	c0=$(metric pyexec_execution_seconds_count)
	t0=$(metric 'pyexec_executions_total{outcome="terminated"}')
	kill -STOP "$dpid"
	curl -s -o "$T_TMP/run" -w '%{http_code}' --max-time 60 -X POST \
	    -H 'Content-Type: application/json' \
	    --data-binary "{\"code\": \"print(2)\", \"id\": \"$s\"}" \
	    "$PYEXEC_URL/execute" > "$T_TMP/run.status" &
	cpid=$!
	sleep 0.5
	pkill -KILL -U "$u" -P "$z"
	sleep 0.2
	kill -CONT "$dpid"
	wait "$cpid"
	grep -q "event=child_unreachable" $dir/sessiond.log || continue
	hit=1
	assert_eq "RUN not sent: the request is answered session terminated" \
	    "$(cat "$T_TMP/run.status") $(cat "$T_TMP/run")" \
	    "200 {\"id\": \"$s\", \"error\": \"session terminated\"}"
	assert_eq "RUN not sent: counted as terminated" \
	    "$(metric 'pyexec_executions_total{outcome="terminated"}')" "$((t0 + 1))"
	assert_eq "RUN not sent: no duration recorded" \
	    "$(metric pyexec_execution_seconds_count)" "$c0"
	break
done
[ $hit = 1 ] || skip "the daemon never read the request before the child's death"
exec_code 'print("still")'
assert_eq "the daemon still starts sessions" "$(jget .stdout)" still

# --- no random bytes for a session id ----------------------------------------
# strace makes each getrandom(2) of the daemon fail with EIO (in the daemon
# only proto_id_new calls it, for session ids).
if ! need_cmd strace; then
	skip "strace(1) missing: no failing getrandom"
else
	# Sessions above were ended by their kill or are idle; count from here.
	live0=$(metric pyexec_sessions_live)
	for i in $(seq 50); do
		[ "$(metric pyexec_pool_ready)" = 1 ] && break
		sleep 0.1
	done
	strace_attach "$dpid" -e trace=getrandom -e inject=getrandom:error=EIO || true
	exec_code 'print(1)'
	assert_eq "no random bytes: a new session answers 500" "$STATUS $BODY" \
	    '500 {"error": "Internal server error"}'
	exec_code 'print(1)'
	assert_eq "no random bytes: again 500" "$STATUS" 500
	exec_json '{"script": "def main():\n    return 3"}'
	assert_eq "no random bytes: script mode needs no id" "$STATUS $BODY" '200 {"result": 3}'
	kill "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	assert_match "no random bytes: the daemon says so" "$(cat $dir/sessiond.log)" \
	    "no random bytes for a session id"
	sleep 1
	assert_eq "no random bytes: no session left counted" \
	    "$(metric pyexec_sessions_live)" "$live0"
	assert_eq "no random bytes: the pool keeps its size" "$(metric pyexec_pool_ready)" 1
	exec_code 'print("ids again")'
	assert_eq "no random bytes: then sessions start again" "$(jget .stdout)" "ids again"
fi

# A session frozen between runs (a thread left behind) that cannot be thawed
# for its next run: that run would only meet its time limit; it answers 500
# at once, and the session ends.  The daemon's only pwrite64 is the freezer's.
if ! need_cmd strace; then
	skip "strace(1) missing: no failing thaw"
elif ! grep -Eq 'cgroups=v2|event=cgroup_subtree path=[^ ]*/freezer/' $dir/sessiond.log; then
	skip "no freezer here: sessions are not frozen between runs"
else
	exec_code $'import os, threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()\nprint(os.getuid())'
	s=$(jget .id)
	u=$(jget .stdout)
	assert_eq "failing thaw: the session starts" "$STATUS" 200
	strace_attach "$dpid" -e trace=pwrite64 -e inject=pwrite64:error=EIO || true
	t0=$(date +%s%N)
	exec_code 'print("again")' "$s"
	t1=$(date +%s%N)
	kill "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	assert_eq "failing thaw: the run answers 500" "$STATUS $BODY" \
	    '500 {"error": "Internal server error"}'
	check "failing thaw: at once, not at the time limit ($(( (t1 - t0) / 1000000 )) ms)" \
	    test $(( (t1 - t0) / 1000000 )) -lt 1500
	assert_match "failing thaw: the daemon says so" "$(cat $dir/sessiond.log)" \
	    "event=thaw_failed"
	exec_code 'print(1)' "$s"
	assert_eq "failing thaw: the session is gone" "$STATUS $BODY" \
	    "404 {\"error\": \"session not found\"}"
	for i in $(seq 50); do pgrep -U "$u" >/dev/null || break; sleep 0.1; done
	check "failing thaw: its processes are gone" sh -c "! pgrep -U '$u'"
fi

# A zygote that takes its time to start: restarted, then held before ready.
z=$(pgrep -P "$dpid" -x pyexec-sessiond | head -n 1)
kill -9 "$z"
nz=""
for i in $(seq 500); do
	nz=$(pgrep -P "$dpid" -x pyexec-sessiond | head -n 1)
	[ -n "$nz" ] && [ "$nz" != "$z" ] && break
	sleep 0.01
done
if [ -n "$nz" ] && [ "$nz" != "$z" ] && kill -STOP "$nz" &&
    ! grep -q "event=zygote_ready pid=$nz" $dir/sessiond.log; then
	exec_code 'print("from the pool")'	# takes the pool's child: a fork order goes out
	assert_eq "slow zygote: the pool's child serves meanwhile" "$(jget .stdout)" "from the pool"
	sleep 35
	kill -CONT "$nz"
	for i in $(seq 100); do
		grep -q "event=zygote_ready pid=$nz" $dir/sessiond.log && break
		sleep 0.1
	done
	check "slow zygote: not killed as stuck" \
	    sh -c "! grep -q 'event=zygote_stuck' $dir/sessiond.log"
	check "slow zygote: it becomes ready" grep -q "event=zygote_ready pid=$nz" $dir/sessiond.log
	for i in $(seq 50); do [ "$(metric pyexec_pool_ready)" = 1 ] && break; sleep 0.1; done
	assert_eq "slow zygote: the order sent meanwhile refilled the pool" \
	    "$(metric pyexec_pool_ready)" 1
	exec_code 'print("after")'
	assert_eq "slow zygote: new sessions run" "$(jget .stdout)" "after"
else
	kill -CONT "$nz" 2>/dev/null
	skip "slow zygote: the new zygote was ready before it could be held"
fi
t_stack_stop $port
t_done

#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# A session child's start-up, between the fork order and its first run: a
# child that cannot enter the sandbox, a child that says ready before the
# zygote has named its pid, a session ended before its pid was known and
# then left without a zygote; and a zygote dropped while it lives.  On a
# stack of its own (port 18714), restarted with another configuration for
# each part.  strace(1) delays chosen system calls to make each order of
# events certain.
. "$(dirname "$0")/../lib.sh"

port=18714
dir=/run/pyexec-dev/$port
SAVED_URL=$PYEXEC_URL

metric() { curl -s "$PYEXEC_URL/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
script() { exec_json "$(jq -cn --arg s "$1" '{script: $s}')"; }

# The zygote: the daemon's child of the same name (sessions are named pyexec-session).
zygote_pid() { pgrep -P "$(cat $dir/sessiond.pid)" -x pyexec-sessiond | head -n 1; }
# strace_zygote USECONDS: holds the zygote's answers that long; sets SPID.
strace_zygote() {
	local z
	z=$(zygote_pid)
	SPID=""
	[ -n "$z" ] || return 1
	strace_attach "$z" -e trace=sendmsg -e inject=sendmsg:delay_enter="$1" && return 0
	kill "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	SPID=""
	return 1
}
strace_stop() {
	[ -n "${SPID:-}" ] || return 0
	kill "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	SPID=""
}
violations() { grep -c 'event=child_protocol_violation' $dir/sessiond.log 2>/dev/null; }

# --- a child that cannot enter the sandbox: 500, not 404 -------------------
# Without CAP_SETPCAP in the daemon's bounding set (so in the zygote's and
# its children's), a child cannot empty its own bounding set: it reports
# CHILD_FAIL and the daemon kills it.  The request that was waiting for it
# could not be served: that is the server's fault (500), not a session the
# client named and that has gone (404).
if ! need_cmd setpriv; then
	skip "setpriv(1) missing: no child that fails to start"
elif ! PYEXEC_SESSIOND_WRAP="setpriv --bounding-set -setpcap" t_stack_start $port pool_size=0; then
	not_ok "a stack without CAP_SETPCAP starts"
	sed 's/^/# /' "$T_TMP/stack-$port.log"
else
	PYEXEC_URL=http://127.0.0.1:$port
	exec_code 'print(1)'
	assert_eq "child fails to start: new session answers 500" "$STATUS $BODY" \
	    '500 {"error": "Internal server error"}'
	script $'def main():\n    return 1'
	assert_eq "child fails to start: script mode answers 500" "$STATUS $BODY" \
	    '500 {"error": "Internal server error"}'
	assert_match "child fails to start: the daemon says why" \
	    "$(cat $dir/sessiond.log)" "event=sandbox_failed .*bounding cap"
	assert_eq "child fails to start: nothing counted as a live session" \
	    "$(metric pyexec_sessions_live)" 0
	req GET /health
	assert_eq "child fails to start: the daemon stays healthy" "$STATUS" 200
	# The same failure reported before FORKED (see the next part).
	if need_cmd strace && strace_zygote 500000; then
		exec_code 'print(1)'
		strace_stop
		assert_eq "child fails before FORKED: 500" "$STATUS $BODY" \
		    '500 {"error": "Internal server error"}'
		assert_eq "child fails before FORKED: ended as a set-up failure" \
		    "$(grep -c 'event=child_lost .*reason=setup_failed' $dir/sessiond.log) $(violations)" "3 0"
	else
		skip "strace cannot hold the zygote's answers: no failure before FORKED"
	fi
	PYEXEC_URL=$SAVED_URL
	t_stack_stop $port
fi

# --- a child that says ready before the zygote names its pid --------------
# The zygote writes a child's go byte before it sends FORKED (its pid), so a
# quick child's CHILD_READY can reach the daemon first.  strace makes that
# certain: it holds each of the zygote's sendmsg calls (its FORKED answers)
# for half a second while the child starts.  The child must be used, not
# killed as a protocol violation.
if ! need_cmd strace; then
	skip "strace(1) missing: no child ready before its pid"
elif ! t_stack_start $port pool_size=0; then
	not_ok "a stack with pool_size=0 starts"
	sed 's/^/# /' "$T_TMP/stack-$port.log"
elif ! strace_zygote 500000; then
	skip "strace cannot attach to the zygote: no child ready before its pid"
	t_stack_stop $port
else
	PYEXEC_URL=http://127.0.0.1:$port
	exec_code 'print("early")'
	assert_eq "ready before FORKED: the new session runs" "$STATUS $(jget .stdout)" "200 early"
	pids=""
	for i in 1 2 3; do
		curl -s -o "$T_TMP/early.$i" --max-time 60 -X POST \
		    -H 'Content-Type: application/json' --data-binary "{\"code\": \"print($i)\"}" \
		    "$PYEXEC_URL/execute" &
		pids="$pids $!"
	done
	wait $pids
	strace_stop
	good=0
	for i in 1 2 3; do
		[ "$(jq -r .stdout "$T_TMP/early.$i" 2>/dev/null)" = "$i" ] && good=$((good + 1))
	done
	assert_eq "ready before FORKED: three at once all run" "$good" 3
	assert_eq "ready before FORKED: no child killed as a protocol violation" "$(violations)" 0
	assert_eq "ready before FORKED: no child lost" \
	    "$(grep -c 'event=child_lost' $dir/sessiond.log)" 0
	exec_code 'print("after")'
	assert_eq "ready before FORKED: sessions still start" "$(jget .stdout)" after
	PYEXEC_URL=$SAVED_URL
	t_stack_stop $port
fi

# A burst of new sessions with the pool at its default size: more fork
# orders queued than the pool holds, their answers and their children's
# CHILD_READY in any order.
if ! t_stack_start $port; then
	not_ok "a stack with the default configuration starts"
	sed 's/^/# /' "$T_TMP/stack-$port.log"
else
	PYEXEC_URL=http://127.0.0.1:$port
	for i in $(seq 20); do
		curl -s -o "$T_TMP/burst.$i" -w '%{http_code}\n' --max-time 60 -X POST \
		    -H 'Content-Type: application/json' --data-binary "{\"code\": \"print($i)\"}" \
		    "$PYEXEC_URL/execute" > "$T_TMP/burst.$i.status" &
	done
	wait
	good=0
	for i in $(seq 20); do
		[ "$(cat "$T_TMP/burst.$i.status")" = 200 ] &&
		    [ "$(jq -r .stdout "$T_TMP/burst.$i" 2>/dev/null)" = "$i" ] && good=$((good + 1))
	done
	assert_eq "burst of 20 new sessions: all answered with their output" "$good" 20
	assert_eq "burst of 20 new sessions: no child killed as a protocol violation" \
	    "$(violations)" 0
	PYEXEC_URL=$SAVED_URL
	t_stack_stop $port
fi

# --- a session ended before its pid was known, then the zygote dies --------
# DELETE of a new session whose FORKED is held back (strace, 1.5 s) kills it
# before its pid is known: S_DYING without a pidfd, whose exit nothing
# watches.  Then the zygote dies before it answers.  The daemon must end that
# session with the zygote: answer the request that made it (500: its code
# never ran), give back its count, uid and cgroup.
cg_dirs() {
	find /sys/fs/cgroup/memory/pyexec-$port /sys/fs/cgroup/pyexec-$port \
	    -mindepth 1 -maxdepth 1 -type d -name 's[0-9]*' 2>/dev/null | wc -l
}
if ! need_cmd strace; then
	skip "strace(1) missing: no session killed before its pid"
elif ! t_stack_start $port pool_size=0; then
	not_ok "a stack with pool_size=0 starts"
	sed 's/^/# /' "$T_TMP/stack-$port.log"
elif ! strace_zygote 1500000; then
	skip "strace cannot attach to the zygote: no session killed before its pid"
	t_stack_stop $port
else
	PYEXEC_URL=http://127.0.0.1:$port
	z=$(zygote_pid)
	curl -s -o "$T_TMP/orphan" -w '%{http_code}' --max-time 60 -X POST \
	    -H 'Content-Type: application/json' --data-binary '{"code": "print(1)"}' \
	    "$PYEXEC_URL/execute" > "$T_TMP/orphan.status" &
	cpid=$!
	sid=""
	for i in $(seq 100); do
		sid=$(sed -n 's/.*event=session_start sid=\([0-9a-f-]*\).*/\1/p' $dir/sessiond.log | head -n 1)
		[ -n "$sid" ] && break
		sleep 0.02
	done
	req DELETE "/sessions/$sid"
	assert_eq "killed before its pid: DELETE of the starting session" "$STATUS" 204
	t0=$(date +%s%3N)
	kill -KILL "$z"
	wait "$cpid"
	t1=$(date +%s%3N)
	strace_stop
	assert_eq "then the zygote dies: the request is answered 500" \
	    "$(cat "$T_TMP/orphan.status") $(cat "$T_TMP/orphan")" '500 {"error": "Internal server error"}'
	check "then the zygote dies: answered in $((t1 - t0)) ms (< 8000)" [ $((t1 - t0)) -lt 8000 ]
	for i in $(seq 50); do
		[ "$(cg_dirs)" = 0 ] && break
		sleep 0.1
	done
	assert_eq "then the zygote dies: its cgroup is removed" "$(cg_dirs)" 0
	for i in $(seq 100); do
		req GET /health
		[ "$STATUS" = 200 ] && break
		sleep 0.1
	done
	assert_eq "then the zygote dies: not counted as a live session" \
	    "$(metric pyexec_sessions_live)" 0
	exec_code 'print("again")'
	assert_eq "then the zygote dies: a new zygote starts sessions" "$(jget .stdout)" again
	PYEXEC_URL=$SAVED_URL
	t_stack_stop $port
fi

# --- the zygote link broken while the zygote lives: sessions survive -------
# A zygote that reads the end of its link kills every child it forked
# (zygote_orphaned), so the daemon must kill it before it closes the link.
# A malformed frame sent on the zygote's end of the link (a copy taken with
# pidfd_getfd) makes the daemon drop the zygote; strace holds the daemon's
# kill(2) calls for half a second, so a zygote left running with its link
# closed would have the time to take the sessions with it.
if ! need_cmd strace python3; then
	skip "strace(1) or python3 missing: no broken zygote link"
elif ! t_stack_start $port pool_size=1; then
	not_ok "a stack with pool_size=1 starts"
	sed 's/^/# /' "$T_TMP/stack-$port.log"
else
	PYEXEC_URL=http://127.0.0.1:$port
	dpid=$(cat $dir/sessiond.pid)
	z=$(zygote_pid)
	exec_code 'keep = 42'
	keep=$(jget .id)
	strace_attach "$dpid" -e trace=kill -e inject=kill:delay_enter=500000 || true
	if python3 - "$z" <<'EOF_PY'
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(438, os.pidfd_open(int(sys.argv[1])), 3, 0)	# pidfd_getfd; 3: SESS_ZYGOTE_FD
if fd < 0:
    sys.exit(1)
socket.socket(fileno=fd).send(b"bad")	# shorter than a frame header
EOF_PY
	then
		for i in $(seq 50); do
			grep -q 'event=zygote_exit' $dir/sessiond.log && break
			sleep 0.1
		done
		strace_stop
		assert_match "broken zygote link: the daemon drops the zygote" \
		    "$(cat $dir/sessiond.log)" "event=zygote_down pid=$z why=protocol"
		exec_code 'print(keep)' "$keep"
		assert_eq "broken zygote link: a running session survives" "$STATUS $(jget .stdout)" "200 42"
		assert_eq "broken zygote link: the zygote killed no session" \
		    "$(grep -c 'event=zygote_orphaned' $dir/sessiond.log)" 0
	else
		strace_stop
		skip "pidfd_getfd(2) refused: no broken zygote link"
	fi
	PYEXEC_URL=$SAVED_URL
	t_stack_stop $port
fi

t_done

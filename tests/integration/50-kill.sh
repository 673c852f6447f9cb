#!/bin/bash
# servers: one
# Faults (issue 9): kill -9 of the zygote, of a session child mid-execution,
# of a FastCGI worker mid-request and of the daemon; each must hurt only what
# it killed (the daemon's sessions die with it, even those running code), and
# the service must come back.
. "$(dirname "$0")/../lib.sh"

port=18732
t_stack_start $port pool_size=1 || { not_ok "stack on $port starts"; t_done; exit 1; }
PYEXEC_URL=http://127.0.0.1:$port
dir=/run/pyexec-dev/$port
dpid=$(cat $dir/sessiond.pid)

# The daemon is a subreaper: sessions of a killed zygote become its children
# too, but they are named pyexec-session.
zygote_pid() { pgrep -P "$dpid" -x pyexec-sessiond | head -n 1; }
# Running (a zombie is dead: our pid 1 may be slow to reap, or never reap).
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null); [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }
metric() { curl -s "$PYEXEC_URL/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

# A session that must survive every fault below but the daemon's death.
exec_code 'keep = 42'
keep=$(jget .id)

# --- the zygote ---------------------------------------------------------
z=$(zygote_pid)
restarts=$(metric pyexec_zygote_restarts_total)
kill -9 "$z"
ok=0
for i in $(seq 100); do
	z2=$(zygote_pid)
	if [ -n "$z2" ] && [ "$z2" != "$z" ]; then
		req GET /health
		[ "$STATUS" = 200 ] && { ok=1; break; }
	fi
	sleep 0.1
done
assert_eq "zygote killed: the daemon starts a new one and is healthy" "$ok" 1
assert_eq "zygote killed: counted in pyexec_zygote_restarts_total" \
    "$(metric pyexec_zygote_restarts_total)" "$((restarts + 1))"
exec_code 'print("after zygote")'
assert_eq "zygote killed: new sessions work" "$(jget .stdout)" "after zygote"
exec_code 'print(keep)' "$keep"
assert_eq "zygote killed: existing sessions untouched" "$(jget .stdout)" 42

# --- a session child mid-execution -----------------------------------------
exec_code 'x = 1'
victim=$(jget .id)
exec_code 'import os; print(os.getuid())' "$victim"
vuid=$(jget .stdout)
# The session child itself: the one of that uid whose parent is our zygote.
( sleep 0.7; pkill -9 -U "$vuid" -P "$(zygote_pid)" ) &
exec_code 'import time; time.sleep(5)' "$victim"
wait
assert_eq "child killed mid-execution: session terminated" "$STATUS $(jget .error)" "200 session terminated"
exec_code 'print(x)' "$victim"
assert_eq "child killed: its id is gone" "$STATUS $BODY" '404 {"error": "session not found"}'
exec_code 'print(keep)' "$keep"
assert_eq "child killed: other sessions untouched" "$(jget .stdout)" 42

# --- the daemon ------------------------------------------------------------
# Sessions busy in user code when the daemon dies: nothing would hold them
# to their time limit any more, so they must go with it.
z=$(zygote_pid)
busy_pids=""
for code in 'while True: pass' 'import time; time.sleep(600)'; do
	exec_code 'import os; print(os.getuid())'
	bid=$(jget .id) buid=$(jget .stdout)
	curl -s -o /dev/null --max-time 20 -X POST -H 'Content-Type: application/json' \
	    --data-binary "{\"id\": \"$bid\", \"code\": \"$code\"}" "$PYEXEC_URL/execute" &
	sleep 0.3
	busy_pids="$busy_pids $(pgrep -U "$buid" -P "$z")"
done
check "two sessions busy in user code before the daemon dies ($busy_pids)" \
    test "$(echo $busy_pids | wc -w)" -eq 2
kill -9 "$dpid"
t0=$(date +%s%N)
req POST /execute -H 'Content-Type: application/json' --data-binary '{"code": "print(1)"}'
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_eq "daemon killed: workers answer 500 JSON" "$STATUS $BODY" '500 {"error": "Internal server error"}'
check "daemon killed: answered at once (${ms} ms)" test "$ms" -lt 2000
for i in $(seq 50); do
	left="" zalive=no
	for p in $busy_pids; do alive "$p" && left="$left $p"; done
	alive "$z" && zalive=yes
	[ -z "$left" ] && [ $zalive = no ] && break
	sleep 0.1
done
assert_eq "daemon killed: the busy sessions went with it (spinning, sleeping)" "$left" ""
assert_eq "daemon killed: its zygote went too" "$zalive" no
wait
req GET /health
assert_eq "daemon killed: unhealthy" "$STATUS $(jget .status)" "503 unhealthy"
# Restart it as a supervisor would; the workers reconnect by themselves.
setsid "$dir/bin/pyexec-sessiond" -c "$dir/pyexec.conf" </dev/null >>"$dir/sessiond.log" 2>&1 &
dpid=$!
echo $dpid > "$dir/sessiond.pid"
for i in $(seq 100); do req GET /health; [ "$STATUS" = 200 ] && break; sleep 0.1; done
assert_eq "daemon restarted: healthy" "$STATUS" 200
exec_code 'print("reborn")'
assert_eq "daemon restarted: new sessions work" "$(jget .stdout)" reborn
exec_code 'print(keep)' "$keep"
assert_eq "daemon restarted: old ids answer session not found" "$STATUS $BODY" '404 {"error": "session not found"}'

# --- a FastCGI worker mid-request -------------------------------------------
if [ "${PYEXEC_SERVER:-nginx}" = nginx ]; then
	# fcgi.pid names the supervising pyexec-fcgi; its children are the workers.
	master=$(cat $dir/fcgi.pid)
	workers() { pgrep -P "$master" | sort | tr '\n' ' '; }
	before=$(workers)
	assert_eq "two workers under the supervisor" "$(echo $before | wc -w)" 2
	exec_code 'y = 7'
	sid=$(jget .id)
	curl -s -o "$T_TMP/slow" -w '%{http_code}' --max-time 20 -X POST \
	    -H 'Content-Type: application/json' \
	    --data-binary "{\"id\": \"$sid\", \"code\": \"import time; time.sleep(1.5)\"}" \
	    "$PYEXEC_URL/execute" > "$T_TMP/slow.st" &
	cpid=$!
	sleep 0.5
	# One of the two holds the request: kill both.
	for w in $before; do kill -9 "$w" 2>/dev/null; done
	wait $cpid
	assert_eq "worker killed mid-request: the client gets JSON 500" \
	    "$(cat "$T_TMP/slow.st") $(cat "$T_TMP/slow")" '500 {"error": "Internal server error"}'
	for i in $(seq 50); do [ "$(workers | wc -w)" = 2 ] && break; sleep 0.1; done
	after=$(workers)
	check "killed workers are replaced by the supervisor ($before -> $after)" \
	    bash -c "[ \"$(echo $after | wc -w)\" = 2 ] && [ \"$after\" != \"$before\" ]"
	exec_code 'print(y)' "$sid"
	assert_eq "after the workers' death: the session is untouched" "$(jget .stdout)" 7
else
	skip "worker kill tested with nginx + spawn-fcgi only"
	skip "worker replacement"
fi

t_stack_stop $port
t_done

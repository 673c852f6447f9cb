#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# Faults (api.md, execution errors and 500): a dying interpreter, limits that
# end a session, a dead daemon, dead FastCGI workers, a client that leaves.
. "$(dirname "$0")/../lib.sh"

DEFAULT_URL=$PYEXEC_URL

now_ms() { date +%s%3N; }

# --- own stack: uninterruptible timeout, then the daemon and the workers die ----------------
if t_stack_start 18713 time_limit_ms=300; then
	PYEXEC_URL=http://127.0.0.1:18713
	run 'k = 1'
	s=$id
	run $'import time\nwhile True:\n    try:\n        time.sleep(5)\n    except KeyboardInterrupt:\n        pass' "$s"
	assert_eq "timeout that ignores the interrupt: execution timeout" "$BODY" "{\"id\": \"$s\", \"error\": \"execution timeout\"}"
	run 'print(k)' "$s"
	assert_eq "timeout that ignores the interrupt: the session was killed (404)" "$STATUS $BODY" '404 {"error": "session not found"}'
	run 'k = 2'
	s=$id
	run 'while True: pass' "$s"
	assert_eq "busy loop: execution timeout" "$BODY" "{\"id\": \"$s\", \"error\": \"execution timeout\"}"
	run 'print(k)' "$s"
	assert_eq "busy loop interrupted in time: state kept" "$BODY" "{\"id\": \"$s\", \"stdout\": \"2\\n\"}"

	dpid=$(cat /run/pyexec-dev/18713/sessiond.pid 2>/dev/null)
	check "daemon pid file read" [ -n "$dpid" ]
	kill -KILL "$dpid" 2>/dev/null
	for i in $(seq 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
	t0=$(now_ms)
	exec_code 'print(1)'
	t1=$(now_ms)
	assert_eq "daemon down: POST /execute 500" "$STATUS" 500
	assert_eq "daemon down: exact body" "$BODY" '{"error": "Internal server error"}'
	assert_eq "daemon down: content type" "$(header content-type)" "application/json"
	check "daemon down: answered in $((t1 - t0)) ms (< 2000)" [ $((t1 - t0)) -lt 2000 ]
	exec_code 'print(1)' "$s"
	assert_eq "daemon down: with a session id, 500 too" "$STATUS $BODY" '500 {"error": "Internal server error"}'
	req GET /health
	assert_eq "daemon down: health 503" "$STATUS" 503
	assert_eq "daemon down: health body unhealthy with an error string" \
	    "$(jget '[.status, (.error | type), (keys | length)] | @json')" '["unhealthy","string",2]'
	assert_eq "daemon down: health content type" "$(header content-type)" "application/json"

	for p in $(cat /run/pyexec-dev/18713/fcgi.pid 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	sleep 0.3
	exec_code 'print(1)'
	assert_eq "workers down: POST /execute 500" "$STATUS" 500
	assert_eq "workers down: exact JSON body, not HTML" "$BODY" '{"error": "Internal server error"}'
	assert_eq "workers down: content type" "$(header content-type)" "application/json"
	req GET /health
	assert_eq "workers down: health is the web server's JSON 500" "$STATUS $(header content-type)" "500 application/json"
	PYEXEC_URL=$DEFAULT_URL
	bg_stop 18713
else
	not_ok "stack with time_limit_ms=300 did not start"
	sed 's/^/# /' "$T_TMP/stack-18713.log"
fi

# An onlooker session whose state must survive every fault of the others.
run 'watch = "unharmed"'
w=$id

# --- the interpreter dies -----------------------------------------------------------------
run 'x = 1'
s=$id
run $'import os\nprint("lost")\nos._exit(1)' "$s"
assert_eq "os._exit(1): status 200" "$STATUS" 200
assert_eq "os._exit(1): session terminated, same id, no output" "$BODY" "{\"id\": \"$s\", \"error\": \"session terminated\"}"
assert_eq "os._exit(1): Pyexec-Session header" "$(header pyexec-session)" "$s"
run 'print(x)' "$s"
assert_eq "after os._exit: the id answers 404" "$STATUS $BODY" '404 {"error": "session not found"}'
run 'print(watch)' "$w"
assert_eq "after os._exit: another session is unaffected" "$BODY" "{\"id\": \"$w\", \"stdout\": \"unharmed\\n\"}"

run 'import os; os._exit(0)'
s=$id
assert_eq "os._exit(0) in a new session: session terminated" "$BODY" "{\"id\": \"$s\", \"error\": \"session terminated\"}"

run 'y = 2'
s=$id
run 'import ctypes; ctypes.string_at(0)' "$s"
assert_eq "segfault (ctypes.string_at(0)): session terminated" "$STATUS $BODY" "200 {\"id\": \"$s\", \"error\": \"session terminated\"}"
run 'print(y)' "$s"
assert_eq "after a segfault: the id answers 404" "$STATUS $BODY" '404 {"error": "session not found"}'
run 'import os; os.abort()'
assert_eq "os.abort(): session terminated" "$BODY" "{\"id\": \"$id\", \"error\": \"session terminated\"}"
run 'print(watch)' "$w"
assert_eq "after the crashes: another session is unaffected" "$BODY" "{\"id\": \"$w\", \"stdout\": \"unharmed\\n\"}"

# --- memory limit (default 100 MB) ----------------------------------------------------------------
run 'z = 3'
s=$id
run 'big = b"x" * (200 * 1024 * 1024)' "$s"
assert_eq "200 MB allocation: memory limit exceeded" "$STATUS $BODY" "200 {\"id\": \"$s\", \"error\": \"memory limit exceeded\"}"
run 'print(z)' "$s"
assert_eq "after the memory limit: the id answers 404" "$STATUS $BODY" '404 {"error": "session not found"}'
run 'print(watch)' "$w"
assert_eq "after the memory limit: another session is unaffected" "$BODY" "{\"id\": \"$w\", \"stdout\": \"unharmed\\n\"}"

# --- a client that disconnects mid-request --------------------------------------------------------
run 'n = 0'
s=$id
curl -s -o /dev/null --max-time 0.5 -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"id\": \"$s\", \"code\": \"import time\\nn += 1\\ntime.sleep(1.5)\"}" \
    "$PYEXEC_URL/execute"
rc=$?
assert_eq "disconnecting client: curl gave up (timeout 28)" "$rc" 28
curl -s -o /dev/null --max-time 0.5 -X POST -H 'Content-Type: application/json' \
    --data-binary '{"code": "import time; time.sleep(1.5)"}' "$PYEXEC_URL/execute"
req GET /health
assert_eq "after disconnects: health 200" "$STATUS $BODY" '200 {"status": "healthy"}'
t0=$(now_ms)
run 'print(n)' "$s"
t1=$(now_ms)
assert_eq "after a disconnect: the same session answers (after its sleep)" "$BODY" "{\"id\": \"$s\", \"stdout\": \"1\\n\"}"
check "after a disconnect: answered in $((t1 - t0)) ms (< 3000)" [ $((t1 - t0)) -lt 3000 ]
run 'print(watch)' "$w"
assert_eq "after a disconnect: another session answers" "$BODY" "{\"id\": \"$w\", \"stdout\": \"unharmed\\n\"}"
run 'print("new")'
assert_eq "after a disconnect: a new session works" "$BODY" "{\"id\": \"$id\", \"stdout\": \"new\\n\"}"

forget_all

wait
t_done

#!/bin/bash
# The other endpoints (api.md, "Other endpoints"): /health, DELETE /sessions/{id},
# /metrics with the daemon's real counters, the pages.
. "$(dirname "$0")/../lib.sh"

DEFAULT_URL=$PYEXEC_URL

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# metric NAME: the value of one sample of GET /metrics ("" when absent);
# NAME is written as in the exposition, labels included.
metric() {
	curl -s --max-time 10 "$PYEXEC_URL/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'
}

# Exact deltas of the daemon's counters under known traffic, then health at
# the session limit (a stack of its own: 7 sessions at most).
if t_stack_start 18715 time_limit_ms=300 max_sessions=7 pool_size=1; then
	PYEXEC_URL=http://127.0.0.1:18715
	c0=$(metric pyexec_sessions_created_total)
	l0=$(metric pyexec_sessions_live)
	ok0=$(metric 'pyexec_executions_total{outcome="ok"}')
	er0=$(metric 'pyexec_executions_total{outcome="stderr"}')
	to0=$(metric 'pyexec_executions_total{outcome="timeout"}')
	nf0=$(metric 'pyexec_executions_total{outcome="not_found"}')
	ms0=$(metric 'pyexec_executions_total{outcome="max_sessions"}')
	check "counters read before the traffic" [ -n "$c0" -a -n "$l0" -a -n "$ok0" -a -n "$er0" -a -n "$to0" -a -n "$nf0" -a -n "$ms0" ]
	got=""
	for i in 1 2 3; do exec_code "print($i)"; got="$got $STATUS:$(jget .stdout)"; done
	for i in 1 2; do exec_code '1 / 0'; got="$got $STATUS:$(jget 'has("stderr")')"; done
	exec_code 'import time; time.sleep(5)'
	got="$got $STATUS:$(jget .error)"
	last=$(jget .id)
	exec_code 'print(1)' "$(cat /proc/sys/kernel/random/uuid)"
	got="$got $STATUS"
	assert_eq "the known traffic ran as planned" "$got" " 200:1 200:2 200:3 200:true 200:true 200:execution timeout 404"
	assert_eq "sessions_created_total: +6" "$(( $(metric pyexec_sessions_created_total) - c0 ))" 6
	assert_eq "sessions_live: +6" "$(( $(metric pyexec_sessions_live) - l0 ))" 6
	assert_eq "executions ok: +3" "$(( $(metric 'pyexec_executions_total{outcome="ok"}') - ok0 ))" 3
	assert_eq "executions stderr: +2" "$(( $(metric 'pyexec_executions_total{outcome="stderr"}') - er0 ))" 2
	assert_eq "executions timeout: +1" "$(( $(metric 'pyexec_executions_total{outcome="timeout"}') - to0 ))" 1
	assert_eq "executions not_found: +1" "$(( $(metric 'pyexec_executions_total{outcome="not_found"}') - nf0 ))" 1
	req DELETE "/sessions/$last"
	assert_eq "sessions_live after one DELETE: +5" "$(( $(metric pyexec_sessions_live) - l0 ))" 5
	assert_eq "sessions_created_total unchanged by DELETE and /metrics" "$(( $(metric pyexec_sessions_created_total) - c0 ))" 6

	# Fill up to the limit: 5 live + 2 = 7.
	exec_code ''
	exec_code ''
	full=$(jget .id)
	assert_eq "sessions_live at the limit: 7" "$(metric pyexec_sessions_live)" 7
	exec_code 'x = 1'
	assert_eq "at the limit (7 of 7): a new session is 503" "$STATUS $BODY" '503 {"error": "max sessions reached"}'
	req GET /health
	assert_eq "at the session limit: health still 200" "$STATUS $BODY" '200 {"status": "healthy"}'
	assert_eq "max_sessions counter: +1" "$(( $(metric 'pyexec_executions_total{outcome="max_sessions"}') - ms0 ))" 1
	assert_eq "sessions_created_total: +8 (the refused one not counted)" "$(( $(metric pyexec_sessions_created_total) - c0 ))" 8
	req DELETE "/sessions/$full"
	exec_code 'print(1)'
	assert_eq "after a DELETE at the limit: a new session is made" "$STATUS $(jget .stdout)" "200 1"
	PYEXEC_URL=$DEFAULT_URL
	bg_stop 18715
else
	not_ok "stack with time_limit_ms=300 max_sessions=7 did not start"
	sed 's/^/# /' "$T_TMP/stack-18715.log"
fi

# --- /health ----------------------------------------------------------------------------
req GET /health
assert_eq "GET /health: status 200" "$STATUS" 200
assert_eq "GET /health: exact body" "$BODY" '{"status": "healthy"}'
assert_eq "GET /health: content type" "$(header content-type)" "application/json"
req POST /health -H 'Content-Type: application/json' --data-binary '{}'
assert_eq "POST /health: 405" "$STATUS $BODY" '405 {"error": "method not allowed"}'
assert_match "POST /health: Allow names GET" "$(header allow)" '(^|[ ,])get($|[ ,])'
req DELETE /health
assert_eq "DELETE /health: 405" "$STATUS $BODY" '405 {"error": "method not allowed"}'

# --- DELETE /sessions/{id} ------------------------------------------------------------------
exec_code 'v = 1'
sid=$(jget .id)
assert_match "a session to delete" "$sid" "$UUID_RE"
req DELETE "/sessions/$sid"
assert_eq "DELETE /sessions/{id}: 204" "$STATUS" 204
assert_eq "DELETE /sessions/{id}: empty body" "$BODY" ""
exec_code 'print(v)' "$sid"
assert_eq "deleted session: /execute answers 404" "$STATUS $BODY" '404 {"error": "session not found"}'
req DELETE "/sessions/$sid"
assert_eq "DELETE again: 404 exact body" "$STATUS $BODY" '404 {"error": "session not found"}'
assert_eq "DELETE again: content type" "$(header content-type)" "application/json"
req DELETE /sessions/not-a-uuid
assert_eq "DELETE /sessions/not-a-uuid: 404" "$STATUS $BODY" '404 {"error": "session not found"}'
req DELETE "/sessions/$(cat /proc/sys/kernel/random/uuid)"
assert_eq "DELETE a random UUID: 404" "$STATUS $BODY" '404 {"error": "session not found"}'
exec_code 'w = 2'
sid2=$(jget .id)
req GET "/sessions/$sid2"
assert_eq "GET /sessions/{id}: 405" "$STATUS $BODY" '405 {"error": "method not allowed"}'
assert_match "GET /sessions/{id}: Allow names DELETE" "$(header allow)" '(^|[ ,])delete($|[ ,])'
req POST "/sessions/$sid2" -H 'Content-Type: application/json' --data-binary '{}'
assert_eq "POST /sessions/{id}: 405" "$STATUS" 405
exec_code 'print(w)' "$sid2"
assert_eq "GET/POST /sessions/{id} did not end it" "$BODY" "{\"id\": \"$sid2\", \"stdout\": \"2\\n\"}"
# DELETE of a session that is running code: the run ends, the session is gone.
curl -s -o "$T_TMP/busy.body" -w '%{http_code}' --max-time 30 -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"id\": \"$sid2\", \"code\": \"import time; time.sleep(1.5)\"}" \
    "$PYEXEC_URL/execute" > "$T_TMP/busy.status" &
busy_pid=$!
sleep 0.4
req DELETE "/sessions/$sid2"
assert_eq "DELETE of a running session: 204" "$STATUS" 204
wait "$busy_pid"
exec_code 'print(w)' "$sid2"
assert_eq "DELETE of a running session: then 404" "$STATUS $BODY" '404 {"error": "session not found"}'
# What the interrupted request gets is not in the contract; it must still be
# a 200 JSON reply for that session that keeps the error-XOR-output rule.
assert_eq "DELETE of a running session: the running request got a JSON reply for it" \
    "$(cat "$T_TMP/busy.status") $(jq -r '.id + " " + ((has("error") and (has("stdout") or has("stderr"))) | not | tostring)' "$T_TMP/busy.body" 2>/dev/null)" "200 $sid2 true"

# --- /metrics ------------------------------------------------------------------------
req GET /metrics
assert_eq "GET /metrics: 200" "$STATUS" 200
assert_match "GET /metrics: text/plain" "$(header content-type)" '^text/plain'
assert_match "GET /metrics: pyexec_sessions_live" "$BODY" $'(^|\n)pyexec_sessions_live [0-9]+'
assert_match "GET /metrics: pyexec_executions_total{outcome=\"ok\"}" "$BODY" $'(^|\n)pyexec_executions_total\\{outcome="ok"\\} [0-9]+'
assert_match "GET /metrics: pyexec_sessions_created_total" "$BODY" $'(^|\n)pyexec_sessions_created_total [0-9]+'
req POST /metrics -H 'Content-Type: application/json' --data-binary '{}'
assert_eq "POST /metrics: 405" "$STATUS $BODY" '405 {"error": "method not allowed"}'

# --- the pages (api.md: GET /, /openapi.json, /docs) -------------------------------------------
req GET /openapi.json
assert_eq "GET /openapi.json: 200" "$STATUS" 200
assert_match "GET /openapi.json: OpenAPI 3.1 document" "$(jget .openapi)" '^3\.1(\.[0-9]+)?$'
check "GET /openapi.json: describes POST /execute" \
    bash -c 'jq -e ".paths[\"/execute\"].post" <<<"$1" >/dev/null' _ "$BODY"
req GET /docs
assert_eq "GET /docs: 200" "$STATUS" 200
assert_match "GET /docs: an HTML page" "$(header content-type)" '^text/html'
req GET /
assert_eq "GET /: 200" "$STATUS" 200
assert_match "GET /: an HTML page" "$(header content-type)" '^text/html'

wait
t_done

#!/bin/bash
# servers: one  (the workers' client of the daemon: the same behind every web server)
# A daemon that is alive but does not answer (SIGSTOP: stopped, or stuck)
# must not hold the FastCGI workers: /health answers 503 within its own 5 s
# bound, not the executions' bound; an execution, its code waiting in the
# socket or too long to fit in it, answers 500 within the executions' bound
# (queue_max=1 and time_limit_ms=500 make it 12.4 s) instead of waiting for
# the daemon for ever. After SIGCONT the daemon serves again as before,
# sessions and all.
. "$(dirname "$0")/../lib.sh"

now_ms() { date +%s%3N; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
prompt_503() { [ "$1" = 503 ] && lt "$2" 6.5; }

port=18717
dir=/run/pyexec-dev/$port
bound_ms=12400	# cfg_reply_bound_ms: (queue_max + 1) * (500 + 200 + 500) + 10000
if ! t_stack_start $port queue_max=1 time_limit_ms=500; then
	not_ok "stack on $port starts"
	sed 's/^/# /' "$T_TMP/stack-$port.log"
	t_done
	exit 1
fi
PYEXEC_URL=http://127.0.0.1:$port
dpid=$(cat $dir/sessiond.pid 2>/dev/null)
# The daemon itself, not its zygote (its child, also named pyexec-sessiond).
check "the daemon's pid ($dpid) runs this stack's pyexec-sessiond" \
    [ "$(readlink /proc/$dpid/exe 2>/dev/null)" = "$dir/bin/pyexec-sessiond" ]
check "  and its zygote is its child" [ -n "$(pgrep -P "$dpid" -x pyexec-sessiond)" ]
# Never leave a stopped daemon behind: stack.sh could not stop it.
trap 'kill -CONT "$dpid" 2>/dev/null; t_cleanup' EXIT

exec_code 'kept = 7'
s=$(jget .id)
req GET /health
assert_eq "before: health 200" "$STATUS $BODY" '200 {"status": "healthy"}'

# Code longer than a socket's send buffer (208 KiB): it cannot all be sent.
{ printf "x = '"; head -c 600000 /dev/zero | tr '\0' a; printf "'"; } |
    jq -Rs '{code: .}' > "$T_TMP/big.json"
# exec_in_bg NAME CURL-ARGS...: POST /execute in the background, "status ms" in $T_TMP/NAME.
exec_in_bg() {
	local name=$1; shift
	curl -s -o "$T_TMP/$name.body" -w '%{http_code} %{time_total}' --max-time 60 \
	    -X POST -H 'Content-Type: application/json' "$@" "$PYEXEC_URL/execute" \
	    > "$T_TMP/$name" || true &
}

kill -STOP "$dpid"
check "daemon stopped (SIGSTOP)" [ "$(ps -o stat= -p "$dpid" | cut -c1)" = T ]
exec_in_bg small --data-binary '{"code": "print(1)"}'
exec_in_bg big --data-binary @"$T_TMP/big.json"
for i in 1 2 3; do
	curl -s -o "$T_TMP/h$i.body" -w '%{http_code} %{time_total}' --max-time 60 \
	    "$PYEXEC_URL/health" > "$T_TMP/h$i" &
done
t0=$(now_ms)
req GET /health
t1=$(now_ms)
assert_eq "stopped: health 503, daemon unreachable" "$STATUS $BODY" \
    '503 {"status": "unhealthy", "error": "session daemon unreachable"}'
check "stopped: health answered in $((t1 - t0)) ms (its bound 5 s; < 6500)" \
    [ $((t1 - t0)) -lt 6500 ]
sleep 1
for i in 1 2 3; do
	read -r st t < "$T_TMP/h$i"
	check "stopped: concurrent health $i: $st in $t s (< 6.5)" \
	    prompt_503 "$st" "$t"
done
wait
for name in small big; do
	read -r st t < "$T_TMP/$name"
	assert_eq "stopped: $name execution: 500 Internal server error" \
	    "$st $(cat "$T_TMP/$name.body")" '500 {"error": "Internal server error"}'
	check "stopped: $name execution answered in $t s (bound $((bound_ms / 1000)).$((bound_ms % 1000 / 100)) s; < 15)" \
	    lt "$t" 15
done
check "stopped: the workers logged the send that timed out" \
    grep -q 'event=daemon_timeout phase=send' "$dir/fcgi.log"
check "stopped: and the replies that did not come" \
    grep -q 'event=daemon_timeout phase=reply' "$dir/fcgi.log"

kill -CONT "$dpid"
for i in $(seq 50); do
	req GET /health
	[ "$STATUS" = 200 ] && break
	sleep 0.1
done
assert_eq "continued (SIGCONT): health 200" "$STATUS $BODY" '200 {"status": "healthy"}'
exec_code 'print(kept)' "$s"
assert_eq "continued: the session kept its state" "$BODY" "{\"id\": \"$s\", \"stdout\": \"7\\n\"}"
exec_code 'print(2)'
assert_eq "continued: a new session works" "$STATUS $(jget .stdout)" "200 2"

t_stack_stop $port
t_done

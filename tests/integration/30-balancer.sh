#!/bin/bash
# Issue 6, point 4: several complete stacks behind one load balancer
# (deploy/balancer/pyexec-haproxy.cfg: HAProxy learns "session id -> stack"
# from the replies' Pyexec-Session header and routes requests that carry it).
# Sessions persist through the balancer, new sessions spread over the stacks,
# and losing one stack affects only its own sessions (404 session not found).
# servers: one
. "$(dirname "$0")/../lib.sh"

need_cmd haproxy || { skip "haproxy missing (deploy/install-deps.sh test installs it)"; t_done; exit; }
STACKS="18746 18747 18748"
BPORT=18749
BURL=http://127.0.0.1:$BPORT

started=""
for p in $STACKS; do
	if t_stack_start "$p" pool_size=1; then
		started="$started $p"
	else
		diag "stack $p did not start:"; sed 's/^/# /' "$T_TMP/stack-$p.log"
	fi
done
assert_eq "three stacks started" "$started" " $STACKS"

# The balancer: deploy/balancer's configuration with these ports and its
# error files, run in the foreground-less master-worker mode with a pid file.
b=$T_TMP/balancer
mkdir -p "$b"
servers=""
n=0
for p in $STACKS; do
	n=$((n + 1))
	servers="$servers    server stack$n 127.0.0.1:$p check inter 1s fall 1 rise 1\n"
done
sed -e "s|bind 127.0.0.1:8000|bind 127.0.0.1:$BPORT|" \
    -e "s|/etc/haproxy/errors/pyexec|$PYEXEC_TOP/deploy/balancer/errors|" \
    -e '/^    server stack[0-9]/d' \
    -e "s|^    stick store-response .*|&\n$servers|" \
    "$PYEXEC_TOP/deploy/balancer/pyexec-haproxy.cfg" > "$b/haproxy.cfg"
b_stop() {
	[ -f "$b/haproxy.pid" ] && kill -TERM $(cat "$b/haproxy.pid") 2>/dev/null
	rm -f "$b/haproxy.pid"
}
trap 'b_stop; t_cleanup' EXIT
if ! haproxy -c -q -f "$b/haproxy.cfg" >"$b/start.err" 2>&1 ||
   ! haproxy -D -p "$b/haproxy.pid" -f "$b/haproxy.cfg" >>"$b/start.err" 2>&1; then
	not_ok "the balancer starts"
	sed 's/^/# /' "$b/start.err"
	t_done
	exit
fi
ok "the balancer starts"
for ((i = 0; i < 50; i++)); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$BURL/health")" = 200 ] && break
	sleep 0.1
done
PYEXEC_URL=$BURL

# owner ID: the port of the stack that holds session ID ("" if none).
owner() {
	local p
	for p in $STACKS; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 \
		    -H 'Content-Type: application/json' \
		    -d "{\"id\": \"$1\", \"code\": \"\"}" "http://127.0.0.1:$p/execute")" = 200 ] &&
		    { echo "$p"; return; }
	done
}

# --- new sessions through the balancer: spread over the stacks --------------
N=12
ids=() bad=0
for ((i = 0; i < N; i++)); do
	exec_code "x = $i"
	id=$(jget .id)
	[ "$STATUS" = 200 ] && [ -n "$id" ] && [ "$(header pyexec-session)" = "$id" ] || bad=$((bad + 1))
	ids+=("$id")
done
assert_eq "$N new sessions through the balancer, each with its Pyexec-Session header" "$bad" 0
declare -A own count
for p in $STACKS; do count[$p]=0; done
for ((i = 0; i < N; i++)); do
	o=$(owner "${ids[$i]}")
	own[$i]=$o
	[ -n "$o" ] && count[$o]=$((count[$o] + 1))
done
used=0
for p in $STACKS; do [ "${count[$p]}" -gt 0 ] && used=$((used + 1)); done
diag "sessions per stack: $(for p in $STACKS; do printf '%s=%s ' "$p" "${count[$p]}"; done)"
check "new sessions spread over the stacks (at least two of three used)" [ "$used" -ge 2 ]
holders=$(for ((i = 0; i < N; i++)); do [ -n "${own[$i]}" ] && echo x; done | wc -l)
assert_eq "each session is held by exactly one stack" "$holders" "$N"

# --- sessions persist through the balancer (routing on the header) ----------
bad=0
for ((i = 0; i < N; i++)); do
	req POST /execute -H 'Content-Type: application/json' -H "Pyexec-Session: ${ids[$i]}" \
	    --data-binary '{"code": "print(x)"}'
	[ "$STATUS $BODY" = "200 {\"id\": \"${ids[$i]}\", \"stdout\": \"$i\\n\"}" ] || { bad=$((bad + 1)); diag "$i: $STATUS $BODY"; }
done
assert_eq "each session's state is there through the balancer (header only)" "$bad" 0
bad=0
for ((i = 0; i < N; i++)); do
	req POST /execute -H 'Content-Type: application/json' -H "Pyexec-Session: ${ids[$i]}" \
	    --data-binary "{\"id\": \"${ids[$i]}\", \"code\": \"x += 100; print(x)\"}"
	[ "$(jget .stdout)" = "$((i + 100))" ] || bad=$((bad + 1))
done
assert_eq "header and body id together: same stack, state kept" "$bad" 0

# --- losing one stack affects only its own sessions -------------------------
victim=""
for p in $STACKS; do [ "${count[$p]}" -gt 0 ] && { victim=$p; break; }; done
t_stack_stop "$victim"
sleep 2	# the balancer's health check notices (a request would find out too)
lost=0 kept=0 badlost=0 badkept=0
for ((i = 0; i < N; i++)); do
	req POST /execute -H 'Content-Type: application/json' -H "Pyexec-Session: ${ids[$i]}" \
	    --data-binary '{"code": "print(x)"}'
	if [ "${own[$i]}" = "$victim" ]; then
		lost=$((lost + 1))
		[ "$STATUS $BODY" = '404 {"error": "session not found"}' ] || { badlost=$((badlost + 1)); diag "lost $i: $STATUS $BODY"; }
	else
		kept=$((kept + 1))
		[ "$STATUS $(jget .stdout)" = "200 $((i + 100))" ] || { badkept=$((badkept + 1)); diag "kept $i: $STATUS $BODY"; }
	fi
done
diag "stopped stack $victim: $lost sessions lost, $kept kept"
assert_eq "the stopped stack's sessions answer 404 session not found" "$badlost" 0
assert_eq "the other stacks' sessions keep working" "$badkept" 0
bad=0
for ((i = 0; i < 6; i++)); do
	exec_code 'print(7)'
	[ "$STATUS $(jget .stdout)" = "200 7" ] || bad=$((bad + 1))
done
assert_eq "new sessions still work with one stack down" "$bad" 0
req GET /health
assert_eq "health through the balancer" "$STATUS $BODY" '200 {"status": "healthy"}'

# --- the balancer's own failure is JSON ---------------------------------------
for p in $STACKS; do t_stack_stop "$p"; done
req GET /health
assert_eq "every stack down: the API's 500, as JSON" "$STATUS $BODY" '500 {"error": "Internal server error"}'

b_stop
t_done

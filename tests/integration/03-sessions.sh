#!/bin/bash
# Sessions (api.md, code mode): creation, persistence, isolation, ordering,
# queue and session limits, idle expiry.
. "$(dirname "$0")/../lib.sh"

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
BG_PIDS=""
DEFAULT_URL=$PYEXEC_URL

# bg_exec NAME CODE [ID]: POST /execute in the background; the reply goes to
# $T_TMP/NAME.body, the status to $T_TMP/NAME.status, the headers to NAME.headers.
bg_exec() {
	local name=$1 code=$2 id=${3:-} body
	if [ -n "$id" ]; then
		body=$(jq -cn --arg c "$code" --arg i "$id" '{code: $c, id: $i}')
	else
		body=$(jq -cn --arg c "$code" '{code: $c}')
	fi
	curl -s -o "$T_TMP/$name.body" -D "$T_TMP/$name.headers" -w '%{http_code}' --max-time 60 \
	    -X POST -H 'Content-Type: application/json' --data-binary "$body" \
	    "$PYEXEC_URL/execute" > "$T_TMP/$name.status" 2>/dev/null &
	BG_PIDS="$BG_PIDS $!"
}

# wait_bg: waits for the requests started by bg_exec (not for stack stops).
wait_bg() {
	local p
	for p in $BG_PIDS; do wait "$p"; done
	BG_PIDS=""
}

now_ms() { date +%s%3N; }

# --- queue full: 409; session limit: 503 (stack of its own) ---------------------------
if t_stack_start 18710 queue_max=2 max_sessions=2 pool_size=1 time_limit_ms=5000; then
	PYEXEC_URL=http://127.0.0.1:18710
	exec_code ''
	q=$(jget .id)
	bg_exec q0 $'import time\ntime.sleep(3.5)\nprint("q0")' "$q"
	sleep 0.8
	bg_exec q1 'print("q1")' "$q"
	bg_exec q2 'print("q2")' "$q"
	sleep 1.0
	exec_code 'print("q3")' "$q"
	assert_eq "queue_max=2, 1 running + 2 queued: next is 409" "$STATUS" 409
	assert_eq "409: body" "$BODY" '{"error": "session busy"}'
	assert_eq "409: Pyexec-Session header" "$(header pyexec-session)" "$q"
	assert_eq "409: content type" "$(header content-type)" "application/json"
	wait_bg
	assert_eq "the running one completed" "$(cat "$T_TMP/q0.status") $(cat "$T_TMP/q0.body")" "200 {\"id\": \"$q\", \"stdout\": \"q0\\n\"}"
	assert_eq "queued 1 completed" "$(cat "$T_TMP/q1.status") $(cat "$T_TMP/q1.body")" "200 {\"id\": \"$q\", \"stdout\": \"q1\\n\"}"
	assert_eq "queued 2 completed" "$(cat "$T_TMP/q2.status") $(cat "$T_TMP/q2.body")" "200 {\"id\": \"$q\", \"stdout\": \"q2\\n\"}"
	exec_code 'print("after")' "$q"
	assert_eq "queue drained: the session takes requests again" "$BODY" "{\"id\": \"$q\", \"stdout\": \"after\\n\"}"

	exec_code ''
	r=$(jget .id)
	assert_match "max_sessions=2: second session made" "$r" "$UUID_RE"
	exec_code 'print(1)'
	assert_eq "max_sessions=2: third is 503" "$STATUS" 503
	assert_eq "503: body" "$BODY" '{"error": "max sessions reached"}'
	assert_match "503: Retry-After header" "$(header retry-after)" '^[0-9]+$'
	assert_eq "503: content type" "$(header content-type)" "application/json"
	exec_code 'print(1)' "$r"
	assert_eq "at the limit, existing sessions still run" "$BODY" "{\"id\": \"$r\", \"stdout\": \"1\\n\"}"
	req DELETE "/sessions/$r"
	exec_code 'print(3)'
	assert_eq "after a DELETE, a new session fits" "$STATUS $(jget .stdout)" "200 3"
	PYEXEC_URL=$DEFAULT_URL
	bg_stop 18710
else
	not_ok "stack with queue_max=2 max_sessions=2 did not start"
	sed 's/^/# /' "$T_TMP/stack-18710.log"
fi

# --- idle expiry (stack of its own) ---------------------------------------------------
if t_stack_start 18711 idle_timeout_s=2; then
	PYEXEC_URL=http://127.0.0.1:18711
	exec_code 'v = 1'
	i1=$(jget .id)
	exec_code 'v = 2'
	i2=$(jget .id)
	# Used every 0.8 s (well under the 2 s), it outlives 2 s since its creation.
	t0=$(now_ms)
	alive=""
	for k in 1 2 3; do
		sleep 0.8
		exec_code 'print(v)' "$i2"
		alive="$alive $STATUS:$(jget .stdout)"
	done
	t1=$(now_ms)
	assert_eq "idle_timeout_s=2: used every 0.8 s, still alive after $((t1 - t0)) ms" "$alive" " 200:2 200:2 200:2"
	check "idle_timeout_s=2: that was over 2 s ($((t1 - t0)) ms)" [ $((t1 - t0)) -gt 2000 ]
	exec_code 'print(v)' "$i1"
	assert_eq "idle_timeout_s=2: the unused one expired meanwhile" "$STATUS $BODY" '404 {"error": "session not found"}'
	sleep 3.5
	exec_code 'print(v)' "$i2"
	assert_eq "idle_timeout_s=2: after 3.5 s idle, 404" "$STATUS" 404
	assert_eq "idle expiry: body" "$BODY" '{"error": "session not found"}'
	PYEXEC_URL=$DEFAULT_URL
	bg_stop 18711
else
	not_ok "stack with idle_timeout_s=2 did not start"
	sed 's/^/# /' "$T_TMP/stack-18711.log"
fi

# --- a new session when no id -----------------------------------------------
exec_code 'x = 1'
track
a=$(jget .id)
assert_eq "no id: status 200" "$STATUS" 200
assert_match "no id: a new session id" "$a" "$UUID_RE"
assert_eq "no id: body is only the id" "$BODY" "{\"id\": \"$a\"}"
exec_code 'x = 1'
track
b=$(jget .id)
check "no id again: another session" [ -n "$b" -a "$a" != "$b" ]

# --- persistence ----------------------------------------------------------------
exec_code 'counter = 41' "$a"
exec_code 'counter += 1; print(counter)' "$a"
assert_eq "variable persists" "$BODY" "{\"id\": \"$a\", \"stdout\": \"42\\n\"}"
exec_code 'import json as J, collections' "$a"
exec_code 'print(J.dumps({"k": [1]}), collections.Counter("aab")["a"])' "$a"
assert_eq "imports persist (aliased too)" "$BODY" "{\"id\": \"$a\", \"stdout\": \"{\\\"k\\\": [1]} 2\\n\"}"
exec_code $'def sq(v):\n    return v * v\n' "$a"
exec_code 'print(sq(7))' "$a"
assert_eq "functions persist" "$BODY" "{\"id\": \"$a\", \"stdout\": \"49\\n\"}"
exec_code $'class P:\n    def __init__(self, n):\n        self.n = n\n    def twice(self):\n        return 2 * self.n\np = P(5)\n' "$a"
exec_code 'print(p.twice(), P(8).twice(), type(p).__name__)' "$a"
assert_eq "classes and instances persist" "$BODY" "{\"id\": \"$a\", \"stdout\": \"10 16 P\\n\"}"
exec_code 'import sys; print(__name__, "sq" in dir(sys.modules["__main__"]))' "$a"
assert_eq "code runs as __main__, names in its namespace" "$BODY" "{\"id\": \"$a\", \"stdout\": \"__main__ True\\n\"}"

# --- isolation ----------------------------------------------------------------
exec_code 'x = "in a"; only_a = 1' "$a"
exec_code 'x = "in b"' "$b"
exec_code 'print(x)' "$a"
assert_eq "isolation: a keeps its x" "$BODY" "{\"id\": \"$a\", \"stdout\": \"in a\\n\"}"
exec_code 'print(x)' "$b"
assert_eq "isolation: b keeps its x" "$BODY" "{\"id\": \"$b\", \"stdout\": \"in b\\n\"}"
exec_code 'print(only_a)' "$b"
assert_eq "isolation: a's name is a NameError in b" "$BODY" "{\"id\": \"$b\", \"stderr\": \"Traceback (most recent call last):\\n  File \\\"<stdin>\\\", line 1, in <module>\\nNameError: name 'only_a' is not defined\\n\"}"
exec_code 'import sys; sys.modules["json"].marker = "a"' "$a"
exec_code 'import json; print(hasattr(json, "marker"))' "$b"
assert_eq "isolation: a module changed in a is untouched in b" "$BODY" "{\"id\": \"$b\", \"stdout\": \"False\\n\"}"

# --- an exception does not end the session ---------------------------------------
exec_code 'raise ValueError("boom")' "$a"
assert_eq "exception: traceback in stderr" "$BODY" "{\"id\": \"$a\", \"stderr\": \"Traceback (most recent call last):\\n  File \\\"<stdin>\\\", line 1, in <module>\\nValueError: boom\\n\"}"
exec_code 'print(counter, x)' "$a"
assert_eq "exception: the session works afterwards, state kept" "$BODY" "{\"id\": \"$a\", \"stdout\": \"42 in a\\n\"}"
exec_code $'y = 1\nraise KeyError(y)\ny = 2' "$a"
exec_code 'print(y)' "$a"
assert_eq "exception: assignments before the raise stay, after it do not" "$BODY" "{\"id\": \"$a\", \"stdout\": \"1\\n\"}"

# --- a timeout that was interrupted in time keeps the state -------------------------
exec_code 'kept = "still here"' "$a"
t0=$(now_ms)
exec_code 'import time; time.sleep(10)' "$a"
t1=$(now_ms)
assert_eq "sleep(10): execution timeout" "$BODY" "{\"id\": \"$a\", \"error\": \"execution timeout\"}"
check "sleep(10): stopped after about 2 s ($((t1 - t0)) ms)" [ $((t1 - t0)) -ge 1900 -a $((t1 - t0)) -lt 5000 ]
exec_code 'print(kept, counter)' "$a"
assert_eq "after an interrupted timeout: same session, state kept" "$BODY" "{\"id\": \"$a\", \"stdout\": \"still here 42\\n\"}"

# --- one session: one request at a time ---------------------------------------------
exec_code 'L = []'
track
c=$(jget .id)
for i in 1 2 3 4 5; do
	bg_exec "burst$i" $'import time\nn = len(L)\ntime.sleep(0.1)\nL.append(n)\nprint(n)' "$c"
done
wait_bg
got=""
for i in 1 2 3 4 5; do
	st=$(cat "$T_TMP/burst$i.status")
	[ "$st" = 200 ] || got="$got status$i=$st"
	got="$got $(jq -r '.stdout // "none"' "$T_TMP/burst$i.body" 2>/dev/null | tr -d '\n')"
done
got=$(echo $got | tr ' ' '\n' | sort | tr '\n' ' ')
assert_eq "5 concurrent requests: each saw its own index (none overlapped)" "$got" "0 1 2 3 4 "
exec_code 'print(L)' "$c"
assert_eq "5 concurrent requests: the list has 5 entries, in order" "$BODY" "{\"id\": \"$c\", \"stdout\": \"[0, 1, 2, 3, 4]\\n\"}"

# Arrival order: requests that arrive well apart while the session is busy
# run in the order they arrived.
exec_code 'order = []' "$c"
bg_exec ord1 $'import time\norder.append("first")\ntime.sleep(1.6)' "$c"
sleep 0.6
bg_exec ord2 'order.append("second")' "$c"
sleep 0.6
bg_exec ord3 'order.append("third")' "$c"
wait_bg
exec_code 'print(order)' "$c"
assert_eq "queued requests run in arrival order" "$BODY" "{\"id\": \"$c\", \"stdout\": \"['first', 'second', 'third']\\n\"}"

# --- a busy session does not delay another -------------------------------------
exec_code 'pass'
track
d=$(jget .id)
t0=$(now_ms)
bg_exec slow $'import time\ntime.sleep(1.5)\nprint("slow done")' "$c"
sleep 0.2
t1=$(now_ms)
exec_code 'print(1)' "$d"
t2=$(now_ms)
wait_bg
t3=$(now_ms)
assert_eq "other session during a 1.5 s sleep: its reply" "$BODY" "{\"id\": \"$d\", \"stdout\": \"1\\n\"}"
check "other session during a 1.5 s sleep: answered in $((t2 - t1)) ms (< 800)" [ $((t2 - t1)) -lt 800 ]
assert_eq "the slow session's reply" "$(cat "$T_TMP/slow.body")" "{\"id\": \"$c\", \"stdout\": \"slow done\\n\"}"
check "the slow session really slept ($((t3 - t0)) ms)" [ $((t3 - t0)) -ge 1500 ]

# --- ids ---------------------------------------------------------------------------
all="$a $b $c $d"
for i in 1 2 3 4; do
	exec_code ''
	track
	all="$all $(jget .id)"
done
bad=""
for i in $all; do [[ "$i" =~ $UUID_RE ]] || bad="$bad $i"; done
assert_eq "8 ids: all lowercase UUID v4" "$bad" ""
assert_eq "8 ids: all distinct" "$(echo $all | tr ' ' '\n' | sort -u | wc -l)" 8

# --- empty code ----------------------------------------------------------------------
exec_code ''
track
e=$(jget .id)
assert_eq "empty code: status 200" "$STATUS" 200
assert_eq "empty code: only the id" "$BODY" "{\"id\": \"$e\"}"
assert_eq "empty code: Pyexec-Session header" "$(header pyexec-session)" "$e"
exec_code '' "$e"
assert_eq "empty code in an existing session: only the same id" "$BODY" "{\"id\": \"$e\"}"
exec_code 'print(2)' "$e"
assert_eq "session made by empty code runs code" "$BODY" "{\"id\": \"$e\", \"stdout\": \"2\\n\"}"

# --- random state: each session its own ---------------------------------------------
# Sessions come from one forked interpreter: Python's and numpy's global
# generators must not hand every session the same numbers.
RAND_CODE=$'import random, numpy as np\nprint(random.getrandbits(64), np.random.randint(0, 2**62), np.random.rand())'
draws=""
for i in 1 2 3 4 5 6; do
	exec_code "$RAND_CODE"
	track
	draws="$draws$(jget .stdout)"$'\n'
done
assert_eq "6 new sessions: 6 lines of draws" "$(printf '%s' "$draws" | wc -l)" 6
assert_eq "random.getrandbits differs in every session" \
    "$(printf '%s' "$draws" | cut -d' ' -f1 | sort -u | wc -l)" 6
assert_eq "numpy.random.randint differs in every session" \
    "$(printf '%s' "$draws" | cut -d' ' -f2 | sort -u | wc -l)" 6
exec_code $'import numpy as np\nnp.random.seed(5)\nprint(np.random.rand(), np.random.randint(0, 1000))\nnp.random.seed(5)\nprint(np.random.rand(), np.random.randint(0, 1000))'
track
assert_eq "numpy.random.seed(5) still gives numpy's sequence, twice" "$(jget .stdout)" \
    $'0.22199317108973948 701\n0.22199317108973948 701'
exec_code $'import numpy as np\nx = np.random.normal(size=100000)\nprint(abs(x.mean()) < 0.05, 0.95 < x.std() < 1.05)'
track
assert_eq "the reseeded generator draws a normal distribution" "$(jget .stdout)" "True True"

forget_all
wait
t_done

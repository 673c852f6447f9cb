#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# Issue 3: the time, memory and process limits, each breached through the real
# HTTP API. A test passes only when the limit held, the reply followed the
# contract (api.md: "Execution errors", the error-XOR-output rule) and the
# service still answers afterwards.
#
# Expects the default configuration on $PYEXEC_URL: time_limit_ms=2000,
# grace_ms=200, memory_limit_mb=100, pids_max=64, nofile=256.
. "$(dirname "$0")/../lib.sh"

# --- local helpers ---------------------------------------------------------

# Sessions this script made, ended at exit so that the shared stack is not
# left holding them (its max_sessions is 40, its idle timeout 300 s).
L_SESSIONS=""
l_release() {
	local id
	for id in $L_SESSIONS; do
		curl -s -o /dev/null --max-time 5 -X DELETE "$PYEXEC_URL/sessions/$id" || true
	done
	L_SESSIONS=""
}
l_cleanup() {
	l_release
	t_cleanup
}
trap 'l_cleanup' EXIT

# run CODE [ID]: like exec_code, and also sets TIME (seconds, curl's
# time_total) and ID (the session id of the reply, "" if none).
run() {
	local code=$1 id=${2:-} body out
	if [ -n "$id" ]; then
		body=$(jq -cn --arg c "$code" --arg i "$id" '{code: $c, id: $i}')
	else
		body=$(jq -cn --arg c "$code" '{code: $c}')
	fi
	out=$(curl -s -o "$T_TMP/body" -w '%{http_code} %{time_total}' --max-time 60 \
	    -H 'Content-Type: application/json' --data-binary "$body" "$PYEXEC_URL/execute") || out="000 60"
	STATUS=${out% *}
	TIME=${out#* }
	BODY=$(cat "$T_TMP/body" 2>/dev/null || true)
	ID=$(jget '.id // empty')
	if [ -n "$ID" ]; then
		case " $L_SESSIONS " in *" $ID "*) ;; *) L_SESSIONS="$L_SESSIONS $ID" ;; esac
	fi
}

# assert_lt NAME GOT MAX: GOT < MAX, as decimal numbers.
assert_lt() {
	if awk -v a="$2" -v b="$3" 'BEGIN { exit !(a + 0 < b + 0) }'; then
		ok "$1"
	else
		not_ok "$1"
		diag "got:  $2" "want: < $3"
	fi
}

# assert_ge NAME GOT MIN
assert_ge() {
	if awk -v a="$2" -v b="$3" 'BEGIN { exit !(a + 0 >= b + 0) }'; then
		ok "$1"
	else
		not_ok "$1"
		diag "got:  $2" "want: >= $3"
	fi
}

# The exact reply of an execution error: {"id": "...", "error": "WHAT"}.
assert_exec_error() {
	local name=$1 what=$2
	assert_eq "$name: reply is exactly the '$what' error" "$BODY" "{\"id\": \"$ID\", \"error\": \"$what\"}"
}

# assert_gone NAME ID: the session answers 404 "session not found".
assert_gone() {
	run 'print(1)' "$2"
	assert_eq "$1: the session ended (404 session not found)" "$STATUS $BODY" '404 {"error": "session not found"}'
}

# assert_healthy NAME: /health answers 200 promptly, and a new session runs code.
assert_healthy() {
	local name=$1 t
	t=$(curl -s -o "$T_TMP/health" -w '%{http_code} %{time_total}' --max-time 10 "$PYEXEC_URL/health") || t="000 10"
	assert_eq "$name: GET /health is 200 healthy" "${t% *} $(cat "$T_TMP/health" 2>/dev/null)" '200 {"status": "healthy"}'
	assert_lt "$name: GET /health answers within 2 s" "${t#* }" 2
	run 'print(6 * 7)'
	assert_eq "$name: a new session runs code" "$STATUS $(jget .stdout)" "200 42"
	assert_lt "$name: ...within 2 s" "$TIME" 2
	[ -n "$ID" ] && curl -s -o /dev/null -X DELETE "$PYEXEC_URL/sessions/$ID"
}

# median of the time_total of N print(1) runs in session ID.
median_latency() {
	local id=$1 n=${2:-11} i
	for ((i = 0; i < n; i++)); do
		curl -s -o /dev/null -w '%{time_total}\n' --max-time 10 -H 'Content-Type: application/json' \
		    --data-binary "$(jq -cn --arg i "$id" '{code: "print(1)", id: $i}')" "$PYEXEC_URL/execute"
	done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Limits of the default configuration; replies are due by limit + grace +
# 100 ms = 2.3 s; the VM is slow and shared, so 2.5 s is asserted.
LIMIT_S=2
LATE_S=2.5

# --- 1. time -----------------------------------------------------------------

# timeout_case NAME CODE SURVIVES(yes|no|any)
#   Sets x = 41 first; after the timeout, "yes" wants print(x + 1) to give 42
#   (interrupted, state kept), "no" wants 404 (killed after the grace period).
timeout_case() {
	local name=$1 code=$2 survives=$3 sid try
	for try in 1 2; do
		run 'x = 41'
		sid=$ID
		run "$code" "$sid"
		# A late reply on a loaded VM is retried once; a real delay repeats.
		awk -v a="$TIME" -v b="$LATE_S" 'BEGIN { exit !(a + 0 < b + 0) }' && break
		[ $try = 1 ] && diag "$name: reply after ${TIME}s (load $(cut -d' ' -f1 /proc/loadavg)), retrying once"
	done
	assert_eq "$name: status 200" "$STATUS" 200
	assert_exec_error "$name" "execution timeout"
	check "$name: no stdout/stderr beside the error (XOR rule)" xor_rule_holds
	assert_ge "$name: not stopped before the limit (${LIMIT_S} s)" "$TIME" 1.95
	assert_lt "$name: reply within limit + grace + margin (${LATE_S} s)" "$TIME" "$LATE_S"
	case $survives in
	yes)
		run 'print(x + 1)' "$sid"
		assert_eq "$name: the session lives on with its state" "$STATUS $BODY" "200 {\"id\": \"$sid\", \"stdout\": \"42\\n\"}"
		;;
	no)
		assert_gone "$name" "$sid"
		;;
	esac
	l_release
}

timeout_case "while True: pass" 'while True: pass' yes
timeout_case "time.sleep(10)" $'import time\ntime.sleep(10)' yes
timeout_case "loop catching KeyboardInterrupt (sleeping)" $'import time\nwhile True:\n    try:\n        while True:\n            time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass' no
# Pure Python work; the interrupt lands inside work() and is caught around the call.
# (A bare `try: while True: pass` cannot catch it on CPython 3.11: the jump
# that checks for signals lies outside the try block's range.)
timeout_case "loop catching KeyboardInterrupt (computing)" $'def work():\n    s = 0\n    for i in range(100000):\n        s += i\n    return s\nwhile True:\n    try:\n        while True:\n            work()\n    except KeyboardInterrupt:\n        pass' no
# Output written before the limit struck is not sent beside the error.
timeout_case "output, then a loop" $'import os, sys\nprint("partial out")\nsys.stderr.write("partial err\\n")\nos.write(1, b"raw\\n")\nwhile True: pass' yes
timeout_case "SIGINT ignored, then a loop" $'import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass' no
# Stuck in C: whether the interrupt reaches it is the engine's business (sre
# checks for signals, numpy's reduction does not); the reply must come in time.
timeout_case "catastrophic regex backtracking" $'import re\nre.match(r"(a+)+$", "a" * 40 + "b")' any
timeout_case "long numpy operation (in C)" $'import numpy as np\nprint(np.broadcast_to(np.ones(1), (10**11,)).sum())' any

# A thread still running after an interrupted timeout: the session is ended.
run 'x = 41'
sid=$ID
run $'import threading, time\ndef spin():\n    while True:\n        pass\nthreading.Thread(target=spin, daemon=True).start()\nwhile True:\n    time.sleep(0.1)' "$sid"
assert_exec_error "spinning thread + main loop" "execution timeout"
assert_lt "spinning thread + main loop: reply within ${LATE_S} s" "$TIME" "$LATE_S"
assert_gone "thread left running after an interrupted timeout" "$sid"
l_release

# A background thread (and processes) spinning after the execution returned
# must not slow another session: they are frozen with their session until its
# next execution (and a session's CPU is capped at 1 CPU while it runs).
run ''
b=$ID
median_latency "$b" 5 >/dev/null	# warm up
idle=$(median_latency "$b")
spin_code=$'import os, threading\ndef spin():\n    while True:\n        pass\nfor i in range(3):\n    if os.fork() == 0:\n        spin()\nfor i in range(2):\n    threading.Thread(target=spin, daemon=True).start()\nprint("spinning")'
run "$spin_code"
a=$ID
assert_eq "spinner: the execution returns while its threads and processes spin" "$STATUS $(jget .stdout)" "200 spinning"
sleep 0.5
busy=$(median_latency "$b")
diag "median print(1) latency of another session: idle ${idle}s, beside the spinner ${busy}s"
assert_lt "spinner: another session's median latency stays within 2x idle + 10 ms" "$busy" "$(awk -v i="$idle" 'BEGIN { print 2 * i + 0.010 }')"
# A's time is not over: its next execution still runs (the spinner lives on).
run 'print("still here")' "$a"
assert_eq "spinner: its own session still answers" "$STATUS $(jget .stdout)" "200 still here"
req DELETE "/sessions/$a"
assert_eq "spinner: DELETE ends it" "$STATUS" 204
assert_gone "spinner after DELETE" "$a"
l_release

# What the code leaves running gets the CPU only while its session executes:
# a counting thread gains less in a second between executions than in 0.2 s
# of an execution (without the freeze it would gain five times as much).
run $'import threading, time\nc = [0]\ndef count():\n    while True:\n        c[0] += 1\nthreading.Thread(target=count, daemon=True).start()\ntime.sleep(0.1)\nprint(c[0])'
f=$ID
before=$(jget .stdout)
assert_eq "counting thread: started" "$STATUS" 200
sleep 1
run 'print(c[0])' "$f"
idle_gain=$(( $(jget .stdout) - before ))
run $'a = c[0]\ntime.sleep(0.2)\nprint(c[0] - a)' "$f"
run_gain=$(jget .stdout)
diag "counting thread: +$idle_gain in 1 s between executions, +$run_gain in 0.2 s of one"
check "counting thread: it counts during an execution" test "$run_gain" -gt 0
check "counting thread: between executions it is frozen" test "$idle_gain" -lt "$run_gain"
req DELETE "/sessions/$f"
assert_eq "counting thread: DELETE ends a frozen session" "$STATUS" 204
assert_gone "counting thread after DELETE" "$f"
l_release

# --- 2. memory ---------------------------------------------------------------

# oom_case NAME CODE: the reply is "memory limit exceeded" and the session ends.
oom_case() {
	local name=$1 code=$2
	run "$code"
	assert_eq "$name: status 200" "$STATUS" 200
	assert_exec_error "$name" "memory limit exceeded"
	check "$name: no stdout/stderr beside the error (XOR rule)" xor_rule_holds
	assert_lt "$name: reply within 10 s" "$TIME" 10
	assert_gone "$name" "$ID"
	l_release
}

oom_case "bytearray(150 MB)" 'x = bytearray(150 * 1024 * 1024)'
oom_case "a list of 20 million ints" 'x = list(range(20_000_000))'
oom_case "numpy.ones(30_000_000)" $'import numpy\nx = numpy.ones(30_000_000)'
oom_case "300 MB spike freed at once" $'x = bytearray(300 * 1024 * 1024)\ndel x\nprint("unnoticed")'
oom_case "output, then 150 MB" $'import os, sys\nprint("partial out", flush=True)\nsys.stderr.write("partial err\\n")\nx = bytearray(150 * 1024 * 1024)'
oom_case "memory of a forked child counts too" $'import os\nif os.fork() == 0:\n    x = bytearray(150 * 1024 * 1024)\n    os._exit(0)\nos.wait()\nprint("unnoticed")'

for mb in 10 50; do
	run 'y = 1'
	sid=$ID
	run "import numpy, pandas
x = bytearray($mb * 1024 * 1024)
print(len(x) // (1024 * 1024))" "$sid"
	assert_eq "${mb} MB allocation succeeds (numpy and pandas imported)" "$BODY" "{\"id\": \"$sid\", \"stdout\": \"$mb\\n\"}"
	run 'del x; print(y)' "$sid"
	assert_eq "${mb} MB allocation: the session lives on" "$BODY" "{\"id\": \"$sid\", \"stdout\": \"1\\n\"}"
	l_release
done

# --- 3. processes and files --------------------------------------------------

# Fork bomb: contained by pids.max; the reply is an error or a traceback.
run $'import os\nwhile True:\n    os.fork()'
assert_eq "fork bomb: status 200" "$STATUS" 200
assert_match "fork bomb: reply is an execution error or stderr" "$(jget 'if has("error") then "error" elif has("stderr") then "stderr" else "neither" end')" '^(error|stderr)$'
check "fork bomb: XOR rule" xor_rule_holds
assert_lt "fork bomb: reply within 10 s" "$TIME" 10
assert_healthy "after the fork bomb"
l_release

# Process count: pids.max (64) stops a session's forks with EAGAIN.
# 64 forks of the preloaded interpreter take seconds on the loaded VM, so
# threads (cheap, and counted by pids.max as well) fill most of the quota
# first: 48 threads + the main one, then forks until they fail.
fork_probe=$'import os, threading, time\nev = threading.Event()\nts = [threading.Thread(target=ev.wait, daemon=True) for i in range(48)]\nfor t in ts:\n    t.start()\npids = []\ntry:\n    for i in range(200):\n        p = os.fork()\n        if p == 0:\n            time.sleep(30)\n            os._exit(0)\n        pids.append(p)\n    print("ESCAPED forks=%d" % len(pids))\nexcept OSError as e:\n    print("BLOCKED errno=%d tasks_le_64=%s" % (e.errno, 49 + len(pids) <= 64))\nfor p in pids:\n    os.kill(p, 9)\n    os.waitpid(p, 0)\nev.set()\nfor t in ts:\n    t.join()'
run "$fork_probe"
if [ "$(jget .error)" = "execution timeout" ]; then
	diag "forks: timed out once (load $(cut -d' ' -f1 /proc/loadavg)), retrying"
	run "$fork_probe"
fi
assert_eq "forks beside 48 threads: stopped at 64 tasks with EAGAIN" "$(jget .stdout)" "BLOCKED errno=11 tasks_le_64=True"
[ "$(jget .stdout)" = "BLOCKED errno=11 tasks_le_64=True" ] || diag "reply: $BODY"

# Thread bomb.
run $'import threading, time\nts = []\ntry:\n    for i in range(1000):\n        t = threading.Thread(target=time.sleep, args=(5,), daemon=True)\n        t.start()\n        ts.append(t)\n    print("ESCAPED threads=%d" % len(ts))\nexcept RuntimeError as e:\n    print("BLOCKED %s threads_lt_64=%s" % (e, len(ts) < 64))'
tb=$ID
assert_eq "thread bomb: stopped below 64 threads" "$(jget .stdout)" "BLOCKED can't start new thread threads_lt_64=True"
assert_healthy "after the thread bomb"
req DELETE "/sessions/$tb"

run $'while True:\n    __import__("threading").Thread(target=__import__("time").sleep, args=(5,)).start()'
assert_match "unbounded thread bomb: stderr ends in 'can't start new thread'" "$(jget .stderr)" "RuntimeError: can't start new thread$"
assert_healthy "after the unbounded thread bomb"
l_release

# rlimits.
run $'import resource as r\nprint(r.getrlimit(r.RLIMIT_CORE))'
assert_eq "RLIMIT_CORE is (0, 0)" "$(jget .stdout)" "(0, 0)"
run $'import resource as r\ns, h = r.getrlimit(r.RLIMIT_NOFILE)\nprint(s == h, 0 < h <= 4096)\ntry:\n    r.setrlimit(r.RLIMIT_NOFILE, (h + 1, h + 1))\n    print("ESCAPED")\nexcept ValueError as e:\n    print("BLOCKED", e)'
assert_eq "RLIMIT_NOFILE bounded (soft = hard <= 4096) and cannot be raised" "$(jget .stdout)" $'True True\nBLOCKED not allowed to raise maximum limit'
run $'import resource as r\ns, h = r.getrlimit(r.RLIMIT_NPROC)\nprint(s == h, 0 < h <= 1024)'
assert_eq "RLIMIT_NPROC bounded" "$(jget .stdout)" "True True"
run $'fs = []\ntry:\n    for i in range(100000):\n        fs.append(open("/dev/null"))\n    print("ESCAPED")\nexcept OSError as e:\n    print("BLOCKED errno=%d" % e.errno)\nfor f in fs:\n    f.close()\nprint(open("/dev/null").read() == "")'
fd=$ID
assert_eq "opening /dev/null without end hits EMFILE, then files open again" "$(jget .stdout)" $'BLOCKED errno=24\nTrue'
run 'print("alive")' "$fd"
assert_eq "after EMFILE: the session lives on" "$(jget .stdout)" "alive"
l_release
# File size: RLIMIT_FSIZE bounds a memfd (no /tmp in the default configuration).
run $'import os, resource as r\ns, h = r.getrlimit(r.RLIMIT_FSIZE)\nfd = os.memfd_create("x")\ntry:\n    for i in range(h // 65536 + 2):\n        os.write(fd, b"x" * 65536)\n    print("ESCAPED")\nexcept OSError as e:\n    print("BLOCKED errno=%d" % e.errno, s == h, h <= 1 << 30)'
assert_eq "RLIMIT_FSIZE: a memfd grown past it fails with EFBIG" "$(jget .stdout)" "BLOCKED errno=27 True True"

l_release
assert_healthy "at the end"
t_done

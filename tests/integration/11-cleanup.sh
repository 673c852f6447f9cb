#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# Issue 3, point 4: every resource of a session goes away when it ends,
# whichever way it ends. On a stack of its own (pool_size=2, idle_timeout_s=2,
# time_limit_ms=300, grace_ms=100) four clients in parallel end 128 sessions
# in eight ways: idle expiry, DELETE, DELETE with forked children still
# running, timeout kill (SIGINT ignored), timeout with a thread left running,
# OOM kill, os._exit, and a segfault. Then: no cgroup, process, zombie or
# descriptor is left, and the daemon's memory stayed flat. Last, the daemon
# is shut down (SIGTERM) with sessions alive, and must take them, and its
# cgroups, with it. The memory limit is lowered to 48 MB so that an
# allocation reaches it well within the 300 ms time limit on a slow machine.
#
# Scaled down from the issue's 300 sessions: on the shared 2-core development
# VM a new session costs about 0.25 s (fork from the zygote, sandbox set-up),
# so 300 would take this script past its 3-minute budget. L_ROUNDS (rounds
# per client, 8 sessions each; default 4, so 4 x 4 x 8 = 128) scales it:
# L_ROUNDS=10 gives 320.
. "$(dirname "$0")/../lib.sh"

T0=$(date +%s)
PORT=18722
STATE=/run/pyexec-dev/$PORT
POOL=2
WORKERS=4
ROUNDS=${L_ROUNDS:-4}

if ! t_stack_start "$PORT" pool_size=$POOL idle_timeout_s=2 time_limit_ms=300 grace_ms=100 memory_limit_mb=48; then
	not_ok "a stack with pool_size=$POOL idle_timeout_s=2 time_limit_ms=300 grace_ms=100 starts"
diag "stack started in $(( $(date +%s) - T0 ))s"
	sed 's/^/# /' "$T_TMP/stack-$PORT.log"
	t_done
	exit 1
fi
ok "a stack with pool_size=$POOL idle_timeout_s=2 time_limit_ms=300 grace_ms=100 starts"
diag "stack started in $(( $(date +%s) - T0 ))s"
SAVED_URL=$PYEXEC_URL
PYEXEC_URL=http://127.0.0.1:$PORT
DPID=$(cat "$STATE/sessiond.pid")

# --- measurements ----------------------------------------------------------

# s<N> directories of this stack in one cgroup v1 hierarchy (or v2).
cg_dirs() {
	local h=${1:-memory} d=/sys/fs/cgroup/$1/pyexec-$PORT
	[ "$h" = v2 ] && d=/sys/fs/cgroup/pyexec-$PORT
	find "$d" -mindepth 1 -maxdepth 1 -type d -name 's[0-9]*' 2>/dev/null | wc -l
}
# The daemon and all its descendants (pids, one per line).
tree_pids() {
	ps -eo pid=,ppid= | awk -v root="$DPID" '
	    { parent[$1] = $2; pids[NR] = $1 }
	    END {
		for (i in pids) {
			p = pids[i]; q = p
			for (n = 0; n < 64 && q != "" && q != 0 && q != 1; n++) {
				if (q == root) { print p; break }
				q = parent[q]
			}
		}
	    }'
}
# Processes in this stack's cgroups (any hierarchy, any session).
cg_procs() {
	grep -l "pyexec-$PORT/" /proc/[0-9]*/cgroup 2>/dev/null | wc -l
}
# Processes of the daemon's tree running as a session uid (>= 900000).
tree_session_procs() {
	local p n=0
	for p in $(tree_pids); do
		[ "$(awk '/^Uid:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)" -ge 900000 ] && n=$((n + 1))
	done
	echo "$n"
}
# Zombies in the daemon's tree.
tree_zombies() {
	local p n=0
	for p in $(tree_pids); do
		[ "$(awk '/^State:/ { print $2 }' "/proc/$p/status" 2>/dev/null)" = Z ] && n=$((n + 1))
	done
	echo "$n"
}
fd_count() { ls "/proc/$DPID/fd" 2>/dev/null | wc -l; }
# The daemon's accepted client connections: each FastCGI worker thread keeps
# its own (fcgi_main.c), so their number follows how many threads have served
# a request (at most 2 workers x fcgi_threads), not how many sessions lived.
conn_count() {
	ss -xp 2>/dev/null | awk -v p="pid=$DPID," -v a="$STATE/sessiond.sock" \
	    '$2 == "ESTAB" && $5 == a && index($0, p) { n++ } END { print n + 0 }'
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status"; }

# wait_until SECONDS COMMAND...: polls every 0.2 s.
wait_until() {
	local limit=$1 i; shift
	for ((i = 0; i < limit * 5; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}
pool_settled() { [ "$(cg_dirs memory)" -le "$POOL" ] && [ "$(cg_procs)" -le "$POOL" ]; }

# --- the clients ---------------------------------------------------------------

# w_exec CODE [ID]: prints the reply body.
w_exec() {
	local body
	if [ -n "${2:-}" ]; then
		body=$(jq -cn --arg c "$1" --arg i "$2" '{code: $c, id: $i}')
	else
		body=$(jq -cn --arg c "$1" '{code: $c}')
	fi
	curl -s --max-time 30 -H 'Content-Type: application/json' --data-binary "$body" "$PYEXEC_URL/execute"
}
w_delete() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X DELETE "$PYEXEC_URL/sessions/$1"; }

# w_round LOG: ends eight sessions, one each way; logs "ok WAY" or "bad WAY reply".
w_round() {
	local log=$1 b id
	note() { if [ "$2" = "$3" ]; then echo "ok $1"; else echo "bad $1 $4"; fi >> "$log"; }

	b=$(w_exec 'x = 1')
	id=$(printf '%s' "$b" | jq -r '.id // empty' 2>/dev/null)
	note idle "$b" "{\"id\": \"$id\"}" "$b"
	echo "$id" >> "$log.idle"

	b=$(w_exec 'x = 1')
	id=$(printf '%s' "$b" | jq -r '.id // empty' 2>/dev/null)
	note delete "$(w_delete "$id")" 204 "$b"
	echo "$id" >> "$log.gone"

	# One fork per execution: a fork of the preloaded interpreter is not
	# free, and the time limit is 300 ms.
	fork=$'import os, time\nif os.fork() == 0:\n    time.sleep(60)\n    os._exit(0)\nprint("forked")'
	b=$(w_exec "$fork")
	id=$(printf '%s' "$b" | jq -r '.id // empty' 2>/dev/null)
	b="$b $(w_exec "$fork" "$id")"
	if [ "$b" = "{\"id\": \"$id\", \"error\": \"execution timeout\"} {\"error\": \"session not found\"}" ] ||
	    [ "$b" = "{\"id\": \"$id\", \"stdout\": \"forked\\n\"} {\"id\": \"$id\", \"error\": \"execution timeout\"}" ]; then
		# The machine was too slow to fork within 300 ms: the session
		# still ended, by the time limit instead.
		echo "late delete_forked" >> "$log"
		w_delete "$id" >/dev/null
	else
		note delete_forked "$b $(w_delete "$id")" "{\"id\": \"$id\", \"stdout\": \"forked\\n\"} {\"id\": \"$id\", \"stdout\": \"forked\\n\"} 204" "$b"
	fi
	echo "$id" >> "$log.gone"

	b=$(w_exec $'import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass')
	note timeout_kill "$(printf '%s' "$b" | jq -r .error 2>/dev/null)" "execution timeout" "$b"
	printf '%s' "$b" | jq -r '.id // empty' >> "$log.gone" 2>/dev/null

	b=$(w_exec $'import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\nwhile True:\n    time.sleep(0.01)')
	note timeout_threads "$(printf '%s' "$b" | jq -r .error 2>/dev/null)" "execution timeout" "$b"
	printf '%s' "$b" | jq -r '.id // empty' >> "$log.gone" 2>/dev/null

	# MAP_POPULATE (0x8000): the kernel fills the pages at once, many times
	# faster here than page faults, so the limit is hit well within 300 ms.
	b=$(w_exec $'import mmap\nm = mmap.mmap(-1, 150 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x8000)')
	if [ "$(printf '%s' "$b" | jq -r .error 2>/dev/null)" = "execution timeout" ]; then
		echo "late oom" >> "$log"	# too slow to reach the limit within 300 ms
	else
		note oom "$(printf '%s' "$b" | jq -r .error 2>/dev/null)" "memory limit exceeded" "$b"
	fi
	printf '%s' "$b" | jq -r '.id // empty' >> "$log.gone" 2>/dev/null

	b=$(w_exec $'import os\nos._exit(3)')
	note exit "$(printf '%s' "$b" | jq -r .error 2>/dev/null)" "session terminated" "$b"
	printf '%s' "$b" | jq -r '.id // empty' >> "$log.gone" 2>/dev/null

	b=$(w_exec $'import ctypes\nctypes.string_at(0)')
	note segfault "$(printf '%s' "$b" | jq -r .error 2>/dev/null)" "session terminated" "$b"
	printf '%s' "$b" | jq -r '.id // empty' >> "$log.gone" 2>/dev/null
}

worker() {
	local n=$1 r
	for ((r = 0; r < ROUNDS; r++)); do
		w_round "$T_TMP/w$n.log"
	done
}

# --- baseline, warm-up, the run -------------------------------------------------------

wait_until 20 pool_settled
fd0=$(( $(fd_count) - $(conn_count) ))
diag "at start: daemon pid $DPID, $(fd_count) descriptors ($(conn_count) client connections), RSS $(rss_kb) kB, $(cg_dirs memory) session cgroups"
# One round to warm up what the daemon allocates once (tables, buffers).
w_round "$T_TMP/warm.log"
wait_until 20 pool_settled
rss0=$(rss_kb)
diag "warm-up done at $(( $(date +%s) - T0 ))s"

start=$(date +%s)
for ((w = 0; w < WORKERS; w++)); do worker "$w" & done
wait
elapsed=$(( $(date +%s) - start ))
cat "$T_TMP"/w[0-9]*.log > "$T_TMP/all.log"
total=$(wc -l < "$T_TMP/all.log")
diag "$total sessions ended in ${elapsed}s by $WORKERS clients"
assert_eq "every session was created and ended (count)" "$total" $((WORKERS * ROUNDS * 8))
for way in idle delete delete_forked timeout_kill timeout_threads oom exit segfault; do
	good=$(grep -c "^ok $way\$" "$T_TMP/all.log")
	late=$(grep -c "^late $way\$" "$T_TMP/all.log")
	bad=$(grep -c "^bad $way " "$T_TMP/all.log")
	assert_eq "$way: no unexpected reply ($good as meant, $late ended by the time limit first)" "$bad" 0
	grep -m 3 "^bad $way " "$T_TMP/all.log" | sed 's/^/# /'
	case $way in delete_forked|oom)
		# On a loaded machine a fork or a 48 MB fill can miss 300 ms now
		# and then; most must still end the way they were meant to.
		check "$way: at least half ended the way they were meant to ($good of $((WORKERS * ROUNDS)))" \
		    test "$good" -ge $((WORKERS * ROUNDS / 2))
	esac
done

diag "run done at +$(( $(date +%s) - start ))s"
# Idle sessions expire 2 s after their last use; give it room.
sleep 3
check "within 20 s, only the pool's cgroups and processes are left" wait_until 20 pool_settled
assert_eq "no zombie in the daemon's tree" "$(tree_zombies)" 0
n=$(ps -eo stat= | grep -c '^Z')
[ "$n" = 0 ] || diag "zombies on the machine (any owner): $(ps -eo pid,ppid,stat,comm | awk '$3 ~ /^Z/' | tr '\n' ';')"
for h in memory pids cpu; do
	if [ -d "/sys/fs/cgroup/$h/pyexec-$PORT" ]; then
		check "cgroup $h: no s<N> directory beyond the pool's ($(cg_dirs "$h") <= $POOL)" test "$(cg_dirs "$h")" -le "$POOL"
	elif [ -d "/sys/fs/cgroup/pyexec-$PORT" ] && [ "$h" = memory ]; then
		check "cgroup v2: no s<N> directory beyond the pool's" test "$(cg_dirs v2)" -le "$POOL"
	else
		skip "no $h hierarchy for this stack"
	fi
done
check "no process in this stack's cgroups beyond the pool's ($(cg_procs) <= $POOL)" test "$(cg_procs)" -le "$POOL"
check "no process of the daemon's tree runs as a session uid beyond the pool's ($(tree_session_procs) <= $POOL)" \
    test "$(tree_session_procs)" -le "$POOL"
conns=$(conn_count)
fd1=$(( $(fd_count) - conns ))
rss1=$(rss_kb)
diag "after: $fd1 descriptors besides $conns kept client connections (start $fd0), RSS $rss1 kB (after warm-up $rss0 kB)"
if need_cmd ss; then
	check "the daemon's descriptors (besides client connections) are back to their count at start (+/- 3)" \
	    test "$fd1" -ge $((fd0 - 3)) -a "$fd1" -le $((fd0 + 3))
	check "kept client connections are bounded by the FastCGI threads ($conns <= 384)" test "$conns" -le 384
else
	skip "ss (iproute2) is missing: cannot tell client connections from leaked descriptors"
	skip "ss (iproute2) is missing"
fi
if [[ "${PYEXEC_BUILD:-}" == *asan* ]]; then
	# AddressSanitizer keeps freed memory in quarantine: RSS says nothing there
	# (LeakSanitizer checks the daemon at its exit instead).
	skip "the daemon's RSS (not with an ASan build)"
else
	check "the daemon's RSS grew by less than 4 MB" test $((rss1 - rss0)) -lt 4096
fi
bad_idle=0 bad_gone=0
for id in $(cat "$T_TMP"/w[0-9]*.log.idle); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	    --data-binary "{\"code\": \"\", \"id\": \"$id\"}" "$PYEXEC_URL/execute")" = 404 ] || bad_idle=$((bad_idle + 1))
done
assert_eq "every idle session expired (answers 404)" "$bad_idle" 0
for id in $(sed -n '1~9p' "$T_TMP"/w[0-9]*.log.gone); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	    --data-binary "{\"code\": \"\", \"id\": \"$id\"}" "$PYEXEC_URL/execute")" = 404 ] || bad_gone=$((bad_gone + 1))
done
assert_eq "ended sessions answer 404 (a sample of them)" "$bad_gone" 0
req GET /health
assert_eq "the stack is healthy after it all" "$STATUS $BODY" '200 {"status": "healthy"}'

diag "checks done at +$(( $(date +%s) - start ))s"

# --- daemon shutdown with sessions alive ----------------------------------------------------

w_exec 'x = 1' >/dev/null
w_exec $'import os, time\nfor i in range(3):\n    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\nprint("forked")' >/dev/null
w_exec $'import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()' >/dev/null
( w_exec $'import time\ntime.sleep(0.25)' >/dev/null ) &
sleep 0.1
diag "before shutdown: $(cg_procs) processes in the stack's cgroups, $(cg_dirs memory) session cgroups"
zyg=$(ps -eo pid=,ppid= | awk -v d="$DPID" '$2 == d { print $1 }' | tr '\n' ' ')
diag "SIGTERM at $(( $(date +%s) - T0 ))s"
kill -TERM "$DPID"
check "SIGTERM: the daemon exits by itself within 10 s" wait_until 10 eval '! kill -0 '"$DPID"' 2>/dev/null'
wait
check "its children (zygote: $zyg) are gone" wait_until 5 eval '! ps -o pid= -p "'"${zyg:-0}"'" >/dev/null 2>&1'
check "no process is left in the stack's cgroups" wait_until 5 eval '[ "$(cg_procs)" = 0 ]'
check "no session cgroup directory is left (memory)" test "$(cg_dirs memory)" = 0
check "no session cgroup directory is left (pids)" test "$(cg_dirs pids)" = 0
check "no session cgroup directory is left (cpu)" test "$(cg_dirs cpu)" = 0
left=$(ls -d /sys/fs/cgroup/*/pyexec-$PORT /sys/fs/cgroup/pyexec-$PORT 2>/dev/null | tr '\n' ' ')
assert_eq "the daemon removed its own pyexec-$PORT cgroups on shutdown" "$left" ""

diag "shutdown checked at $(( $(date +%s) - T0 ))s"
PYEXEC_URL=$SAVED_URL
t_stack_stop "$PORT"
check "after stack stop: $STATE is gone" test ! -e "$STATE"
check "after stack stop: no pyexec-$PORT cgroup directory anywhere" \
    test -z "$(ls -d /sys/fs/cgroup/*/pyexec-$PORT /sys/fs/cgroup/pyexec-$PORT 2>/dev/null)"
check "after stack stop: no process of the stack is left" test "$(cg_procs)" = 0
diag "whole script: $(( $(date +%s) - T0 ))s"
t_done

#!/bin/bash
# Soak: a mixed workload against a stack of its own for SOAK_SECONDS (default
# 120), then invariants.  Prints TAP.  `make soak SOAK_SECONDS=3600` for hours.
#
# Workload, from SOAK_CLIENTS parallel clients: new sessions that keep a
# secret, reuse of their sessions (each must echo its own secret: no reply is
# ever mixed up between sessions), errors, timeouts, memory kills, crashes,
# deletes, idle expiry, bursts of concurrent requests to one session, script
# runs.  Invariants afterwards: every reply valid under api.md, every secret
# right, the daemon's memory and descriptors flat, and once the stack is
# stopped no process, zombie or cgroup left.
# servers: one
. "$(dirname "$0")/../lib.sh"

need_cmd curl jq || { skip "curl and jq needed"; t_done; exit; }
port=${SOAK_PORT:-18735}
secs=${SOAK_SECONDS:-120}
clients=${SOAK_CLIENTS:-6}
# Each FastCGI thread that has served a request keeps a connection to the
# daemon; how many threads the load reaches is up to the kernel (idle threads
# are woken last-in first-out), so those connections are counted apart from
# the daemon's own descriptors: the connections must stay within the threads
# (2 processes of 12), everything else flat.
t_stack_start $port idle_timeout_s=3 max_sessions=30 queue_max=4 pool_size=3 \
    fcgi_threads=12 || { not_ok "soak stack starts"; t_done; exit 1; }
PYEXEC_URL=http://127.0.0.1:$port
dpid=$(cat /run/pyexec-dev/$port/sessiond.pid)

daemon_rss() { awk '/^VmRSS/ {print $2}' /proc/$dpid/status; }
sock=/run/pyexec-dev/$port/sessiond.sock
# The daemon's descriptors other than connections accepted on its socket.
daemon_fds() { echo $(( $(ls /proc/$dpid/fd | wc -l) - $(daemon_conns) )); }
daemon_conns() {
	# Accepted sockets carry the listener's path in net/unix; state 03 is connected.
	local inodes
	inodes=$(awk -v p="$sock" '$6 == "03" && $8 == p {print $7}' /proc/$dpid/net/unix)
	[ -n "$inodes" ] || { echo 0; return; }
	ls -l /proc/$dpid/fd | grep -cF -f <(printf 'socket:[%s]\n' $inodes)
}

# One request: appends "kind status body" (one line) to the client's log.
# The body is kept only when it is not what the kind expects.
post() {
	curl -s -o "$tmp/b.$c" -w '%{http_code}' --max-time 30 -X POST \
	    -H 'Content-Type: application/json' --data-binary "$1" "$PYEXEC_URL/execute"
}

# A client: random actions until the deadline.  Writes one line per request:
#   KIND STATUS VERDICT   (VERDICT ok or bad:<reason>)
client() {
	local c=$1 end=$2 log=$T_TMP/client.$c tmp=$T_TMP
	local ids=() secrets=() r kind st body id sec i n code
	while [ "$(date +%s)" -lt "$end" ]; do
		r=$((RANDOM % 100))
		if [ ${#ids[@]} -eq 0 ] || [ $r -lt 20 ]; then
			kind=new
			sec=s$RANDOM$RANDOM$c
			st=$(post "{\"code\": \"secret = '$sec'\"}")
			body=$(cat "$tmp/b.$c")
			id=$(printf '%s' "$body" | jq -r '.id // empty' 2>/dev/null)
			if [ "$st" = 200 ] && [ -n "$id" ] && [ "$body" = "{\"id\": \"$id\"}" ]; then
				ids+=("$id"); secrets+=("$sec"); echo "$kind $st ok"
			elif [ "$st" = 503 ] && [ "$body" = '{"error": "max sessions reached"}' ]; then
				echo "$kind $st ok"
			else
				echo "$kind $st bad:$body"
			fi
			continue
		fi
		i=$((RANDOM % ${#ids[@]}))
		id=${ids[$i]} sec=${secrets[$i]}
		if [ $r -lt 55 ]; then
			kind=echo
			st=$(post "{\"id\": \"$id\", \"code\": \"print(secret)\"}")
			body=$(cat "$tmp/b.$c")
			if [ "$st" = 200 ] && [ "$body" = "{\"id\": \"$id\", \"stdout\": \"$sec\\n\"}" ]; then
				echo "$kind $st ok"
			elif [ "$st" = 404 ] && [ "$body" = '{"error": "session not found"}' ]; then
				unset "ids[$i]" "secrets[$i]"; ids=("${ids[@]}"); secrets=("${secrets[@]}")
				echo "$kind $st ok"
			else
				echo "$kind $st bad:$body"
			fi
			continue
		fi
		case $((r % 8)) in
		0) kind=timeout code='while True: pass' ;;
		1) kind=memory code='x = bytearray(200 * 1024 * 1024)' ;;
		2) kind=crash code='import os; os._exit(3)' ;;
		3) kind=stderr code='1 / 0' ;;
		4) kind=delete ;;
		5) kind=burst ;;
		6) kind=script ;;
		*) kind=sleep code='import time; time.sleep(0.2); print(secret)' ;;
		esac
		case $kind in
		delete)
			st=$(curl -s -o "$tmp/b.$c" -w '%{http_code}' --max-time 30 -X DELETE \
			    "$PYEXEC_URL/sessions/$id")
			body=$(cat "$tmp/b.$c")
			unset "ids[$i]" "secrets[$i]"; ids=("${ids[@]}"); secrets=("${secrets[@]}")
			if [ "$st" = 204 ] || { [ "$st" = 404 ] && [ "$body" = '{"error": "session not found"}' ]; }; then
				echo "$kind $st ok"
			else
				echo "$kind $st bad:$body"
			fi
			;;
		burst)
			# Four at once to one session: each must echo that session's secret.
			for n in 1 2 3 4; do
				curl -s --max-time 30 -X POST -H 'Content-Type: application/json' \
				    --data-binary "{\"id\": \"$id\", \"code\": \"print(secret)\"}" \
				    -o "$tmp/burst.$c.$n" -w '%{http_code}\n' "$PYEXEC_URL/execute" \
				    > "$tmp/burst.$c.$n.st" &
			done
			wait
			for n in 1 2 3 4; do
				st=$(cat "$tmp/burst.$c.$n.st"); body=$(cat "$tmp/burst.$c.$n")
				case "$st $body" in
				"200 {\"id\": \"$id\", \"stdout\": \"$sec\\n\"}") echo "burst $st ok" ;;
				"404 {\"error\": \"session not found\"}") echo "burst $st ok" ;;
				"409 {\"error\": \"session busy\"}") echo "burst $st ok" ;;
				*) echo "burst $st bad:$body" ;;
				esac
			done
			;;
		script)
			st=$(post "{\"script\": \"def main():\\n    return {\\\"n\\\": $c}\"}")
			body=$(cat "$tmp/b.$c")
			if { [ "$st" = 200 ] && [ "$body" = "{\"result\": {\"n\": $c}}" ]; } ||
			    { [ "$st" = 503 ] && [ "$body" = '{"error": "max sessions reached"}' ]; }; then
				echo "$kind $st ok"
			else
				echo "$kind $st bad:$body"
			fi
			;;
		*)
			st=$(post "$(jq -cn --arg c "$code" --arg i "$id" '{code: $c, id: $i}')")
			body=$(cat "$tmp/b.$c")
			if ! printf '%s' "$body" | jq -e '(has("error") and (has("stdout") or has("stderr"))) | not' >/dev/null 2>&1; then
				echo "$kind $st bad:xor:$body"
				continue
			fi
			case "$kind:$st:$(printf '%s' "$body" | jq -r '.error // .stderr // .stdout // empty' 2>/dev/null | head -n 1)" in
			# A memory hog on a loaded machine may reach the time limit first.
			timeout:200:"execution timeout"|memory:200:"memory limit exceeded"|memory:200:"execution timeout"|crash:200:"session terminated")
				echo "$kind $st ok" ;;
			stderr:200:Traceback*|sleep:200:"$sec")
				echo "$kind $st ok" ;;
			*:404:"session not found"|*:409:"session busy")
				echo "$kind $st ok" ;;
			*)
				echo "$kind $st bad:$body" ;;
			esac
			# These end the session (a timeout only if the code ignored the interrupt).
			if [ "$kind" = memory ] || [ "$kind" = crash ] || [ "$st" = 404 ]; then
				unset "ids[$i]" "secrets[$i]"; ids=("${ids[@]}"); secrets=("${secrets[@]}")
			fi
			;;
		esac
		# Now and then, let a session idle past its expiry.
		[ $((RANDOM % 50)) = 0 ] && sleep 3.5
	done > "$log"
}

# Warm up, then take the daemon's baseline.
for i in $(seq 60); do req GET /health; done
exec_code 'print(1)' >/dev/null
sleep 5	# its session expires (idle_timeout_s=3), as at the end
rss0=$(daemon_rss) fds0=$(daemon_fds) conns0=$(daemon_conns)
diag "soak: $clients clients for $secs s on port $port; daemon rss ${rss0} kB, fds $fds0 and $conns0 connections"

end=$(( $(date +%s) + secs ))
for ((c = 1; c <= clients; c++)); do client $c $end & done
wait

cat "$T_TMP"/client.* > "$T_TMP/all"
total=$(wc -l < "$T_TMP/all")
bad=$(grep -c ' bad:' "$T_TMP/all")
diag "requests: $total; by kind and status:" "$(awk '{print $1, $2}' "$T_TMP/all" | sort | uniq -c | tr '\n' ';')"
check "soak: a real workload ran ($total requests)" test "$total" -gt $((secs * 2))
assert_eq "soak: every reply valid under api.md, every secret echoed right" "$bad" 0
[ "$bad" = 0 ] || diag "$(grep ' bad:' "$T_TMP/all" | head -n 5)"

# Let idle sessions expire, then compare with the baseline.
sleep 5
rss1=$(daemon_rss) fds1=$(daemon_fds) conns1=$(daemon_conns)
diag "daemon after: rss ${rss1} kB, fds $fds1 and $conns1 connections"
check "soak: daemon memory flat (${rss0} -> ${rss1} kB)" test $((rss1 - rss0)) -lt 4096
check "soak: daemon descriptors flat ($fds0 -> $fds1)" test $((fds1 - fds0)) -le 4
check "soak: daemon connections within the FastCGI threads ($conns0 -> $conns1, of 24)" \
    test "$conns0" -ge 1 -a "$conns1" -le 24
req GET /health
assert_eq "soak: healthy at the end" "$STATUS $BODY" '200 {"status": "healthy"}'

# Every process of the stack's sessions, and the zygote, must go with it.
procs=$(cat /sys/fs/cgroup/pyexec-$port/s*/cgroup.procs /sys/fs/cgroup/memory/pyexec-$port/s*/cgroup.procs 2>/dev/null | sort -u | tr '\n' ' ')
procs="$procs $(pgrep -P "$dpid" | tr '\n' ' ')"
t_stack_stop $port
sleep 1
left=""
for p in $procs; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
assert_eq "soak: no process of the stack left (of: $(echo $procs | wc -w))" "$left" ""
check "soak: no daemon left" bash -c "! kill -0 $dpid 2>/dev/null"
check "soak: no zombie left" bash -c "! ps -eo stat=,ppid= | awk '\$1 ~ /^Z/ && \$2 == $dpid' | grep -q ."
check "soak: no cgroup left" bash -c "! ls -d /sys/fs/cgroup/pyexec-$port /sys/fs/cgroup/*/pyexec-$port 2>/dev/null | grep -q ."
t_done
